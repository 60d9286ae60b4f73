"""Wan VACE model folders: the diffusers layout the hub repos hold, checked, described, loaded.

Accepted (downloaded with ``hf download REPO --local-dir DIR``; nothing here ever downloads)::

    Wan-AI/Wan2.1-VACE-1.3B-diffusers   480p    transformer/ (30 layers, 15 VACE blocks)
    Wan-AI/Wan2.1-VACE-14B-diffusers    720p    transformer/ (40 layers, 8 VACE blocks)
    Wan2.2 VACE-Fun A14B (diffusers)    720p    transformer/ + transformer_2/, boundary_ratio

    DIR/model_index.json                WanVACEPipeline (or modular_model_index.json of a Wan
                                        VACE modular pipeline saved with all its parts)
    DIR/transformer[_2]/config.json     + diffusion_pytorch_model[-0000N-of-0000M].safetensors
    DIR/vae/config.json                 + diffusion_pytorch_model.safetensors
    DIR/text_encoder/config.json        + model[-0000N-of-0000M].safetensors (umT5-xxl)
    DIR/tokenizer/                      tokenizer.json (+ spiece.model, tokenizer_config.json)
    DIR/scheduler/scheduler_config.json

``inspect`` reads JSON and safetensors headers only: every tensor name and shape is compared
with the modules its config builds on the meta device, so a partial download, a truncated file
or a part from another model is named before any weight is read. Pickle weights (.bin/.pt) can
run code: refused unless ``allow_pickle``. place, vram_estimate: memory (re-exported);
loading: load.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from ...errors import ModelError
from . import memory as vm
from .headers import pickle_header, read_header, shard_files
from .memory import describe, offline, one_line, place, vram_estimate

__all__ = ["KIND", "FolderInfo", "PartInfo", "describe", "hashes", "inspect", "is_vace_folder",
           "is_wan_folder", "offline", "place", "read_header", "vram_estimate"]

KIND = "wan-vace"
PIPELINE = "WanVACEPipeline"
INDEX, MODULAR_INDEX = "model_index.json", "modular_model_index.json"
WEIGHTED = ("transformer", "transformer_2", "vae", "text_encoder")
PARTS = WEIGHTED + ("tokenizer", "scheduler")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")
REPOS = ("download Wan-AI/Wan2.1-VACE-1.3B-diffusers (480p) or Wan-AI/Wan2.1-VACE-14B-diffusers "
         "(720p)")



@dataclass
class PartInfo:
    """One part folder: its class, weight files (relative to the model folder) and tensors."""

    name: str
    library: str
    class_name: str
    files: list[str] = field(default_factory=list)
    format: str = ""  # "safetensors" | "pickle" | "" (no weights: tokenizer, scheduler)
    tensors: int = 0
    parameters: int = 0
    dtypes: list[str] = field(default_factory=list)
    bytes: int = 0


@dataclass
class FolderInfo:
    """What ``inspect`` found: the model, its parts and the numbers the engine needs."""

    path: str
    name: str  # "Wan2.1 VACE 1.3B", "Wan2.1 VACE 14B", "Wan2.2 VACE-Fun A14B (two experts)"
    size: str  # "1.3B" | "14B" | "A14B" | "custom"
    layout: str  # "pipeline" (model_index.json) | "modular" (modular_model_index.json)
    parts: dict[str, PartInfo]
    two_experts: bool
    boundary_ratio: float | None
    native_width: int
    native_height: int
    scheduler: str
    flow_shift: float | None
    patch_size: tuple[int, int, int]
    vae_scale_spatial: int  # pixels per latent pixel (8)
    vae_scale_temporal: int  # frames per latent frame after the first (4)
    transformer: dict[str, Any]  # dim, heads, head_dim, ffn_dim, num_layers, vace_layers, text_dim
    text_encoder: dict[str, Any]  # d_model, num_layers, vocab_size
    vae_base_dim: int
    kind: str = KIND

    @property
    def frame_multiple(self) -> int:
        """Height and width must be multiples of this (VAE scale x transformer patch): 16."""
        return self.vae_scale_spatial * self.patch_size[1]

    @property
    def native_resolution(self) -> int:
        """The native frame height: 480 (1.3B) or 720 (14B, A14B)."""
        return self.native_height

    @property
    def parameters(self) -> int:
        return sum(p.parameters for p in self.parts.values())

    @property
    def bytes(self) -> int:
        return sum(p.bytes for p in self.parts.values())

    @property
    def dtype(self) -> str:
        """The transformer's dtype on disk (the one holding most of its bytes)."""
        dts = self.parts["transformer"].dtypes
        return dts[0] if dts else ""

    def latent_frames(self, frames: int) -> int:
        """Latent frames of ``frames`` video frames: (n - 1) // 4 + 1 (n = 4k + 1 frames)."""
        return (frames - 1) // self.vae_scale_temporal + 1

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "frame_multiple": self.frame_multiple, "dtype": self.dtype,
                "native_resolution": self.native_height, "parameters": self.parameters,
                "bytes": self.bytes}


# ---------------------------------------------------------------------------------- finding
def _index(path: str) -> tuple[str, dict[str, Any]] | None:
    """(file, content) of the folder's model_index.json or modular_model_index.json."""
    for name in (INDEX, MODULAR_INDEX):
        file = os.path.join(path, name)
        if os.path.isfile(file):
            try:
                with open(file) as fh:
                    data = json.load(fh)
            except (OSError, ValueError):
                return file, {}
            return file, data if isinstance(data, dict) else {}
    return None


def _is_vace_class(name: str) -> bool:
    return name == PIPELINE or bool(re.fullmatch(r"Wan\w*Vace\w*ModularPipeline", name))


def is_vace_folder(path: str) -> bool:
    """True for a folder whose (modular_)model_index.json names a Wan VACE pipeline (cheap)."""
    found = _index(path) if os.path.isdir(path) else None
    return bool(found) and _is_vace_class(str(found[1].get("_class_name", "")))


def is_wan_folder(path: str) -> bool:
    """True for any diffusers Wan pipeline folder, VACE or not: the CLI sends these here so a
    plain Wan text-to-video folder is refused with the repo to download instead."""
    found = _index(path) if os.path.isdir(path) else None
    return bool(found) and str(found[1].get("_class_name", "")).startswith("Wan")


# --------------------------------------------------------------------------------- inspect
def _read_json(file: str, what: str) -> dict[str, Any]:
    if not os.path.isfile(file):
        raise ModelError(f"{file}: missing {what}; re-download the {_part_of(file)} of the repo")
    try:
        with open(file, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:
        raise ModelError(f"{file}: unreadable {what} ({one_line(exc)}); re-download it") from exc
    if not isinstance(data, dict):
        raise ModelError(f"{file}: {what} is not a JSON object; re-download it")
    return data


def _part_of(file: str) -> str:
    parent = os.path.basename(os.path.dirname(file))
    return f"{parent}/ folder" if parent in PARTS else "model folder"


def _parts(path: str, index_file: str, index: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """{part: (library, class)} from the index; modular entries must live in this folder."""
    out = {}
    for name in PARTS:
        entry = index.get(name)
        if not isinstance(entry, list) or len(entry) < 2 or entry[0] is None or entry[1] is None:
            continue
        if len(entry) == 3 and isinstance(entry[2], dict):  # modular: [lib, class, load spec]
            sub = entry[2].get("subfolder") or name
            if sub != name or not os.path.isdir(os.path.join(path, name)):
                raise ModelError(f"{index_file}: {name} is loaded from "
                                 f"{entry[2].get('pretrained_model_name_or_path')}/{sub}, not "
                                 "from this folder; save the pipeline with all its parts")
        out[name] = (str(entry[0]), str(entry[1]))
    return out


#: (folder, allow_pickle) -> (the folder's files' sizes and times, its FolderInfo)
_INSPECTED: dict[tuple[str, bool], tuple[tuple, FolderInfo]] = {}


def inspect(folder: str, *, allow_pickle: bool = False) -> FolderInfo:
    """Check a VACE folder from its JSON files and safetensors headers (no weights read).
    A job asks at check, for its effective settings, when made and when loading: the answer
    is kept while no file in the folder changes (size or time)."""
    path = os.path.abspath(folder)
    stamp = _stamp(path)
    kept = _INSPECTED.get((path, allow_pickle))
    if kept is not None and kept[0] == stamp:
        return kept[1]
    info = _inspect(path, allow_pickle)
    _INSPECTED[(path, allow_pickle)] = (stamp, info)
    return info


def _stamp(path: str) -> tuple:
    """Every file under ``path`` (hub cache records aside) with its size and time."""
    out = []
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d != ".cache")
        for name in sorted(files):
            with contextlib.suppress(OSError):
                st = os.stat(os.path.join(root, name))
                out.append((root, name, st.st_size, st.st_mtime_ns))
    return tuple(out)


def _inspect(path: str, allow_pickle: bool) -> FolderInfo:
    if not os.path.isdir(path):
        raise ModelError(f"{path}: no such model folder; {REPOS} with `hf download REPO "
                         "--local-dir DIR`")
    found = _index(path)
    if found is None:
        raise ModelError(f"{path}/{INDEX}: missing; not a diffusers model folder ({REPOS})")
    index_file = found[0]
    index = _read_json(index_file, "pipeline index")
    cls = str(index.get("_class_name", ""))
    if not _is_vace_class(cls):
        what = "a Wan model without VACE blocks" if cls.startswith("Wan") else "not Wan VACE"
        raise ModelError(f"{index_file}: {what} ({cls or 'no _class_name'}); {REPOS}")
    classes = _parts(path, index_file, index)
    for name in ("transformer", "vae", "text_encoder", "tokenizer", "scheduler"):
        if name not in classes:
            raise ModelError(f"{index_file}: no {name} entry; re-download model_index.json")
    for name in classes:
        if not os.path.isdir(os.path.join(path, name)):
            raise ModelError(f"{path}/{name}: missing part folder; the download is incomplete, "
                             f"re-download the {name}/ folder of the repo")
    two = "transformer_2" in classes
    ratio = index.get("boundary_ratio")
    if two and ratio is None:
        raise ModelError(f"{index_file}: transformer_2 is present but boundary_ratio is not set; "
                         "re-download model_index.json of the two-expert repo")
    configs: dict[str, dict[str, Any]] = {}
    for name in WEIGHTED:
        if name in classes:
            configs[name] = _read_json(os.path.join(path, name, "config.json"), f"{name} config")
    tcfg = configs["transformer"]
    for name in ("transformer", "transformer_2"):
        if name in classes and (classes[name][1] != "WanVACETransformer3DModel"
                                or "vace_layers" not in configs[name]):
            raise ModelError(f"{path}/{name}/config.json: a Wan transformer without VACE blocks "
                             f"({classes[name][1]}, no vace_layers); {REPOS}")
    if two and any(configs["transformer_2"].get(k) != tcfg.get(k)
                   for k in ("num_attention_heads", "attention_head_dim", "num_layers")):
        raise ModelError(f"{path}/transformer_2/config.json: its size differs from transformer/"
                         "config.json; the two experts come from different models")
    parts = {n: PartInfo(n, lib, c) for n, (lib, c) in classes.items()}
    for name in WEIGHTED:
        if name in classes:
            _check_weights(path, parts[name], configs[name], allow_pickle)
    _check_tokenizer(os.path.join(path, "tokenizer"))
    sched = _read_json(os.path.join(path, "scheduler", "scheduler_config.json"),
                       "scheduler config")
    vcfg, ecfg = configs["vae"], configs["text_encoder"]
    _check_agreement(path, tcfg, vcfg, ecfg)
    try:
        return _info(path, index_file, parts, two, ratio, tcfg, vcfg, ecfg, sched)
    except (KeyError, TypeError, ValueError) as exc:  # a field diffusers would have defaulted
        raise ModelError(f"{path}/transformer/config.json: missing or invalid field "
                         f"{one_line(exc, 80)}; re-download it") from exc


def _info(path, index_file, parts, two, ratio, tcfg, vcfg, ecfg, sched) -> FolderInfo:
    down = list(vcfg.get("temperal_downsample", [False, True, True]))
    dim = int(tcfg["num_attention_heads"]) * int(tcfg["attention_head_dim"])
    name, size, (width, height) = vm.identify(dim, int(tcfg["num_layers"]), two)
    return FolderInfo(
        path=path, name=name, size=size,
        layout="modular" if index_file.endswith(MODULAR_INDEX) else "pipeline",
        parts=parts, two_experts=two, boundary_ratio=None if ratio is None else float(ratio),
        native_width=width, native_height=height,
        scheduler=str(sched.get("_class_name", "")),
        flow_shift=None if sched.get("flow_shift") is None else float(sched["flow_shift"]),
        patch_size=tuple(int(p) for p in tcfg.get("patch_size", (1, 2, 2))),  # type: ignore[arg-type]
        vae_scale_spatial=2 ** len(down), vae_scale_temporal=2 ** sum(bool(d) for d in down),
        transformer={"dim": dim, "heads": int(tcfg["num_attention_heads"]),
                     "head_dim": int(tcfg["attention_head_dim"]),
                     "ffn_dim": int(tcfg["ffn_dim"]), "num_layers": int(tcfg["num_layers"]),
                     "vace_layers": list(tcfg["vace_layers"]), "text_dim": int(tcfg["text_dim"]),
                     "in_channels": int(tcfg.get("in_channels", 16)),
                     "vace_in_channels": int(tcfg.get("vace_in_channels", 96))},
        text_encoder={"d_model": int(ecfg.get("d_model", 0)),
                      "num_layers": int(ecfg.get("num_layers", 0)),
                      "vocab_size": int(ecfg.get("vocab_size", 0))},
        vae_base_dim=int(vcfg.get("base_dim", 96)))


def _check_agreement(path: str, tcfg: dict, vcfg: dict, ecfg: dict) -> None:
    """The parts' configs fit together (a VAE or text encoder from another model)."""
    if ecfg.get("d_model") is not None and ecfg["d_model"] != tcfg.get("text_dim"):
        raise ModelError(f"{path}/text_encoder/config.json: d_model {ecfg['d_model']}, but the "
                         f"transformer takes text_dim {tcfg.get('text_dim')}; the parts come "
                         "from different models, re-download the folder")
    z, scale = vcfg.get("z_dim", 16), 2 ** len(vcfg.get("temperal_downsample", [0, 0, 0]))
    if z != tcfg.get("in_channels", 16) or 2 * z + scale**2 != tcfg.get("vace_in_channels", 96):
        raise ModelError(f"{path}/vae/config.json: z_dim {z} does not fit the transformer "
                         f"(in_channels {tcfg.get('in_channels')}, vace_in_channels "
                         f"{tcfg.get('vace_in_channels')}); the VAE is from another model")


def _check_tokenizer(folder: str) -> None:
    if not os.path.isdir(folder):
        raise ModelError(f"{folder}: missing part folder; re-download the tokenizer/ folder")
    names = os.listdir(folder)
    if "tokenizer.json" not in names and "spiece.model" not in names:
        raise ModelError(f"{folder}: neither tokenizer.json nor spiece.model; re-download the "
                         "tokenizer/ folder of the repo")
    if "tokenizer_config.json" in names:
        _read_json(os.path.join(folder, "tokenizer_config.json"), "tokenizer config")
    if "tokenizer.json" in names:
        data = _read_json(os.path.join(folder, "tokenizer.json"), "tokenizer")
        if not isinstance(data.get("model"), dict):
            raise ModelError(f"{folder}/tokenizer.json: no tokenizer model in it; re-download "
                             "the tokenizer/ folder of the repo")


# ---------------------------------------------------------------------------------- weights
def _weight_files(folder: str, library: str, allow_pickle: bool) -> tuple[str, list[str], str]:
    """(format, files, index file or "") of a part folder, preferring safetensors."""
    base = "diffusion_pytorch_model" if library == "diffusers" else "model"
    index = os.path.join(folder, f"{base}.safetensors.index.json")
    if os.path.isfile(index):
        files = shard_files(index, _read_json(index, "shard index").get("weight_map"), folder,
                            "re-download it")
        return "safetensors", files, index
    single = os.path.join(folder, f"{base}.safetensors")
    if os.path.isfile(single):
        return "safetensors", [single], ""
    names = sorted(os.listdir(folder))
    pickles = [os.path.join(folder, n) for n in names if n.endswith(PICKLE_SUFFIXES)]
    if pickles:
        if not allow_pickle:
            raise ModelError(f"{pickles[0]}: pickle weights can run arbitrary code and are "
                             "refused; download the safetensors files, or pass --allow-pickle "
                             "if you trust the file")
        return "pickle", pickles, ""
    others = [n for n in names if n.endswith(".safetensors")]
    hint = f" ({others[0]} is a variant diffusers does not load by default)" if others else ""
    raise ModelError(f"{folder}: no {base}.safetensors{hint}; re-download the "
                     f"{os.path.basename(folder)}/ folder of the repo")


def _check_weights(path: str, part: PartInfo, config: dict, allow_pickle: bool) -> None:
    folder = os.path.join(path, part.name)
    fmt, files, index = _weight_files(folder, part.library, allow_pickle)
    found: dict[str, tuple[str, tuple[int, ...]]] = {}
    where: dict[str, str] = {}
    for f in files:
        specs = read_header(f) if fmt == "safetensors" else pickle_header(f)
        found.update(specs)
        where.update(dict.fromkeys(specs, f))
    if index:
        for key, shard in _read_json(index, "shard index")["weight_map"].items():
            if key not in found:
                raise ModelError(f"{os.path.join(folder, shard)}: tensor {key} listed in "
                                 f"{os.path.basename(index)} is not in the file; re-download it")
    expected, optional, ignored = vm.expected_tensors(folder, part.library, part.class_name,
                                                   config)
    missing = [k for k in expected if k not in found and k not in optional]
    if missing:
        raise ModelError(f"{index or files[0]}: tensor {missing[0]} is missing ({len(missing)} "
                         f"missing in all); the file is partial or from another model, "
                         f"re-download the {part.name}/ folder")
    extra = [k for k in found if k not in expected and not any(p.search(k) for p in ignored)]
    if extra:
        raise ModelError(f"{where[extra[0]]}: unexpected tensor {extra[0]} ({len(extra)} in all); "
                         f"the weights do not match {part.name}/config.json")
    for k, shape in expected.items():
        if k in found and found[k][1] != shape:
            raise ModelError(f"{where[k]}: tensor {k} has shape {list(found[k][1])}, "
                             f"{part.name}/config.json expects {list(shape)}; the weights and "
                             "config.json are from different models, re-download the folder")
    by_dtype: dict[str, int] = {}
    for dtype, shape in found.values():
        n = 1
        for s in shape:
            n *= s
        by_dtype[dtype] = by_dtype.get(dtype, 0) + n
        part.parameters += n
    part.format, part.tensors = fmt, len(found)
    part.dtypes = sorted(by_dtype, key=lambda d: -by_dtype[d])
    part.files = [os.path.relpath(f, path) for f in files]
    part.bytes = sum(os.path.getsize(f) for f in files)


# ------------------------------------------------------------------------------- hashes
def hashes(info: FolderInfo) -> tuple[dict[str, str], list[str]]:
    """sha256 of every file in the folder, and problems where ``hf download --local-dir``'s
    own record (.cache/huggingface/download/FILE.metadata) holds a different sha256."""
    digests, problems = {}, []
    for root, dirs, files in os.walk(info.path):
        dirs[:] = sorted(d for d in dirs if d != ".cache")
        for name in sorted(files):
            file = os.path.join(root, name)
            rel = os.path.relpath(file, info.path)
            h = hashlib.sha256()
            with open(file, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 22), b""):  # noqa: B023
                    h.update(block)
            digests[rel] = h.hexdigest()
            record = os.path.join(info.path, ".cache", "huggingface", "download", rel + ".metadata")
            if os.path.isfile(record):
                with open(record) as fh:
                    etag = (fh.read().splitlines() + ["", ""])[1].strip()
                if re.fullmatch(r"[0-9a-f]{64}", etag) and etag != digests[rel]:
                    problems.append(f"{file}: sha256 {digests[rel][:12]}... differs from the "
                                    f"download's {etag[:12]}...; the file changed or is damaged, "
                                    "re-download it")
    return digests, problems
