"""ActAnywhere checkpoints: a diffusers-style folder of safetensors, read only from local disk.

Layout (``model_index.json`` for diffusers tools, ``actanywhere.json`` is our manifest)::

    model/
      actanywhere.json            format, architecture summary, per-file sha256, trained parts
      model_index.json
      unet/config.json            + diffusion_pytorch_model.safetensors
      vae/config.json             + diffusion_pytorch_model.safetensors
      image_encoder/config.json   + model.safetensors
      condition_projector/config.json + diffusion_pytorch_model.safetensors
      feature_extractor/preprocessor_config.json
      scheduler/scheduler_config.json

Loading checks every tensor's name and shape against the config before any weight is read,
so a wrong, partial or mismatched checkpoint fails with the file and tensor named; weights
are then converted to the run's dtype (``model info`` lists the dtypes stored).
Pickle files (.bin/.pt/.ckpt) are refused unless ``allow_pickle`` is set: they can run code.
Nothing here ever contacts a hub.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from accelerate import init_empty_weights
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .. import __version__
from ..api import atomic
from ..errors import ModelError
from .components import (
    IN_CHANNELS,
    PREPROCESSOR_CONFIG,
    SCHEDULER_CONFIG,
    WEIGHTED,
    Components,
    build_module,
    clip_processor,
)

FORMAT = 1
MANIFEST = "actanywhere.json"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")
HINT = "build a complete checkpoint with `actanywhere model init`"


@dataclass
class TensorSpec:
    shape: tuple[int, ...]
    dtype: str


@dataclass
class ComponentReport:
    name: str
    weights: str
    tensors: int
    parameters: int
    dtypes: list[str]
    sha256: str
    bytes: int
    trained: str = "unknown"


@dataclass
class Report:
    path: str
    manifest: dict[str, Any]
    components: list[ComponentReport] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------------- saving
def save(components: Components, path: str, *, trained: dict[str, str] | None = None,
         source: dict[str, Any] | None = None, overwrite: bool = False,
         recommended: dict[str, Any] | None = None) -> str:
    """Write a complete checkpoint folder atomically (temp folder, then rename).

    ``recommended``: diffusion settings the model was trained for (resolution, window, ...);
    the engine uses them for settings a job leaves unset."""
    path = os.path.abspath(path)
    if os.path.exists(path) and os.listdir(path) and not overwrite:
        raise ModelError(f"{path}: folder exists and is not empty; choose another --out or pass "
                         "--overwrite")
    with atomic_folder(path, ".aa-model-") as tmp:
        files: dict[str, dict[str, Any]] = {}
        for name, module in components.modules().items():
            _, weights, config = WEIGHTED[name]
            os.makedirs(os.path.join(tmp, name))
            save_weights(module, os.path.join(tmp, name, weights))
            _write_json(os.path.join(tmp, name, config), module_config(module))
            rel = f"{name}/{weights}"
            files[rel] = {"sha256": _sha256(os.path.join(tmp, rel)),
                          "trained": (trained or {}).get(name, "random")}
        os.makedirs(os.path.join(tmp, "feature_extractor"))
        components.feature_extractor.to_json_file(os.path.join(tmp, PREPROCESSOR_CONFIG))
        os.makedirs(os.path.join(tmp, "scheduler"))
        _write_json(os.path.join(tmp, SCHEDULER_CONFIG),
                    {"_class_name": "DDIMScheduler", **components.scheduler_config})
        _write_json(os.path.join(tmp, "model_index.json"), {
            "_class_name": "ActAnywherePipeline",
            "_actanywhere_version": __version__,
            "unet": ["diffusers", "UNetMotionModel"],
            "vae": ["diffusers", "AutoencoderKL"],
            "image_encoder": ["transformers", "CLIPVisionModelWithProjection"],
            "condition_projector": ["actanywhere.model.components", "ConditionProjector"],
            "feature_extractor": ["transformers", "CLIPImageProcessor"],
            "scheduler": ["diffusers", "DDIMScheduler"],
        })
        unet = components.unet.config
        _write_json(os.path.join(tmp, MANIFEST), {
            "format": FORMAT,
            "created_by": f"ActAnywhere for VFX {__version__}",
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "architecture": {
                "unet_channels": list(unet.block_out_channels),
                "in_channels": unet.in_channels,
                "cross_attention_dim": unet.cross_attention_dim,
                "max_frames": unet.motion_max_seq_length,
                "condition": components.condition_projector.config.mode,
                "pathway": components.pathway,
            },
            "files": files,
            "source": source or {},
            "recommended": recommended or {},
        })
        _umask_permissions(tmp)
    return path


@contextmanager
def atomic_folder(path: str, prefix: str) -> Iterator[str]:
    """A temp folder beside ``path``, renamed to ``path`` (replacing it) when the block ends
    without error and removed otherwise, so nobody ever sees a half-written folder."""
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=prefix, dir=parent)
    try:
        yield tmp
        if os.path.exists(path):
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def save_weights(module: torch.nn.Module, file: str) -> None:
    """A module's state dict as safetensors (contiguous CPU copies)."""
    state = {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}
    save_file(state, file, metadata={"format": "pt"})


def module_config(module: torch.nn.Module) -> dict[str, Any]:
    """A component's config as written to its config.json (private keys dropped)."""
    cfg = module.config
    return clean_config(cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg))


def _umask_permissions(root: str) -> None:
    """mkdtemp and safetensors create owner-only entries; give them the user's usual modes."""
    mask = atomic.UMASK  # read once at import: never set in a thread
    os.chmod(root, 0o777 & ~mask)
    for folder, dirs, files in os.walk(root):
        for d in dirs:
            os.chmod(os.path.join(folder, d), 0o777 & ~mask)
        for f in files:
            os.chmod(os.path.join(folder, f), 0o666 & ~mask)


def clean_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """A diffusers/transformers config without its bookkeeping keys (``_class_name`` kept)."""
    return {k: v for k, v in cfg.items() if not k.startswith("_") or k == "_class_name"}


def _write_json(path: str, data: dict[str, Any]) -> None:
    with open(path, "w") as fh:
        json.dump(data, fh, indent=2, sort_keys=True, default=_jsonable)
        fh.write("\n")


def _jsonable(o: Any) -> Any:
    if isinstance(o, tuple | set):
        return list(o)
    if isinstance(o, torch.dtype):
        return str(o).removeprefix("torch.")
    raise TypeError(f"cannot store {type(o).__name__} in a config")


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------------------------- loading
def read_json(path: str, what: str) -> dict[str, Any]:
    if not os.path.isfile(path):
        raise ModelError(f"{path}: missing {what}; this folder is not a complete ActAnywhere "
                         f"checkpoint ({HINT})")
    try:
        with open(path) as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: unreadable {what} ({exc}); re-copy the checkpoint") from exc
    if not isinstance(data, dict):
        raise ModelError(f"{path}: {what} is not a JSON object; re-copy the checkpoint")
    return data


def weights_file(folder: str, preferred: str, allow_pickle: bool) -> str:
    """The weights file of a component folder: safetensors, or pickle only when allowed."""
    if os.path.isfile(os.path.join(folder, preferred)):
        return os.path.join(folder, preferred)
    if not os.path.isdir(folder):
        raise ModelError(f"{folder}: missing component folder ({HINT})")
    names = sorted(os.listdir(folder))
    safes = [n for n in names if n.endswith(".safetensors") and ".fp16." not in n]
    safes += [n for n in names if n.endswith(".safetensors") and n not in safes]
    if safes:
        return os.path.join(folder, safes[0])
    pickles = [n for n in names if n.endswith(PICKLE_SUFFIXES)]
    if pickles:
        target = os.path.join(folder, pickles[0])
        if not allow_pickle:
            raise ModelError(f"{target}: pickle weights can run arbitrary code and are refused; "
                             "convert to safetensors, or pass --allow-pickle if you trust the file")
        return target
    raise ModelError(f"{folder}: no weights file ({preferred} expected); re-copy the component")


def read_state(path: str, allow_pickle: bool = False) -> dict[str, torch.Tensor]:
    """All tensors of a weights file, with damage reported against the file."""
    if path.endswith(".safetensors"):
        try:
            with safe_open(path, framework="pt") as fh:
                return {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
        except (SafetensorError, OSError, RuntimeError) as exc:
            raise ModelError(f"{path}: damaged or truncated safetensors file ({exc}); re-copy "
                             "it") from exc
    if not allow_pickle:
        raise ModelError(f"{path}: pickle weights are refused; pass --allow-pickle if you "
                         "trust the file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad pickle
        raise ModelError(f"{path}: cannot read the weights ({exc}); re-copy it") from exc
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    return state


def tensor_specs(path: str) -> dict[str, TensorSpec]:
    """Names, shapes and dtypes from a safetensors header, without reading the data."""
    try:
        with safe_open(path, framework="pt") as fh:
            out = {}
            for k in fh.keys():  # noqa: SIM118
                sl = fh.get_slice(k)
                out[k] = TensorSpec(tuple(sl.get_shape()), str(sl.get_dtype()))
            return out
    except (SafetensorError, OSError, RuntimeError) as exc:
        raise ModelError(f"{path}: damaged or truncated safetensors file ({exc}); re-copy "
                         "it") from exc


def expected_specs(name: str, config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """The tensors a component built from ``config`` holds (built on the meta device: free)."""
    try:
        with init_empty_weights():
            module = build_module(name, clean_config(config))
    except Exception as exc:  # a config that cannot build the class
        raise ModelError(f"{name}/config.json: not a valid {WEIGHTED[name][0].__name__} config "
                         f"({exc}); re-copy the checkpoint") from exc
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def check_tensors(file: str, found: dict[str, tuple[int, ...]],
                  expected: dict[str, tuple[int, ...]]) -> None:
    """Raise ModelError naming ``file`` and the first tensor that does not match the config."""
    missing = [k for k in expected if k not in found]
    if missing:
        raise ModelError(f"{file}: tensor {missing[0]} is missing ({len(missing)} missing in "
                         "all); the file is partial or from another model")
    extra = [k for k in found if k not in expected]
    if extra:
        raise ModelError(f"{file}: unexpected tensor {extra[0]} ({len(extra)} in all); the file "
                         "does not match its config.json")
    for k, shape in expected.items():
        if tuple(found[k]) != shape:
            raise ModelError(f"{file}: tensor {k} has shape {list(found[k])}, the config "
                             f"expects {list(shape)}; the weights and config.json do not match")


def load(path: str, *, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu",
         allow_pickle: bool = False) -> Components:
    """Every component of the checkpoint at ``path``, checked, on ``device`` in ``dtype``."""
    path = os.path.abspath(path)
    if not os.path.isdir(path):
        raise ModelError(f"{path}: no such model folder; pass --model with a checkpoint folder "
                         f"({HINT})")
    modules: dict[str, torch.nn.Module] = {}
    for name, (_cls, weights, config_name) in WEIGHTED.items():
        folder = os.path.join(path, name)
        config = read_json(os.path.join(folder, config_name), f"{name} config")
        file = weights_file(folder, weights, allow_pickle)
        expected = expected_specs(name, config)
        if file.endswith(".safetensors"):
            check_tensors(file, {k: v.shape for k, v in tensor_specs(file).items()}, expected)
            state = read_state(file)
        else:
            state = read_state(file, allow_pickle)
            check_tensors(file, {k: tuple(v.shape) for k, v in state.items()}, expected)
        with init_empty_weights():
            module = build_module(name, clean_config(config))
        module.load_state_dict(state, strict=True, assign=True)
        modules[name] = module.to(device=device, dtype=dtype).eval()
    pre = read_json(os.path.join(path, PREPROCESSOR_CONFIG), "feature_extractor config")
    processor = clip_processor(int(pre.get("crop_size", {}).get("height", 224)))
    for key in ("image_mean", "image_std"):
        if key in pre:
            setattr(processor, key, pre[key])
    sched = read_json(os.path.join(path, SCHEDULER_CONFIG), "scheduler config")
    comps = Components(**modules, feature_extractor=processor,  # type: ignore[arg-type]
                       scheduler_config=clean_config(sched))
    channels, pathway = int(comps.unet.config.in_channels), comps.pathway
    if channels != IN_CHANNELS[pathway]:
        raise ModelError(f"{path}/unet/config.json: in_channels {channels}, but "
                         f"condition_projector/config.json says pathway {pathway!r}, whose UNet "
                         f"takes {IN_CHANNELS[pathway]}; the checkpoint's parts do not match")
    return comps


def manifest(path: str) -> dict[str, Any]:
    file = os.path.join(path, MANIFEST)
    return read_json(file, "manifest") if os.path.isfile(file) else {}


def verify(path: str, hashes: bool = True) -> Report:
    """Check a checkpoint without loading weights: configs, tensor names and shapes, hashes
    (and list each file's stored dtypes)."""
    path = os.path.abspath(path)
    man = manifest(path)
    report = Report(path, man)
    for extra in (PREPROCESSOR_CONFIG, SCHEDULER_CONFIG):
        try:
            read_json(os.path.join(path, extra), extra.split("/")[0] + " config")
        except ModelError as exc:
            report.problems.append(str(exc))
    recorded = man.get("files", {})
    for name, (_cls, weights, config_name) in WEIGHTED.items():
        try:
            folder = os.path.join(path, name)
            config = read_json(os.path.join(folder, config_name), f"{name} config")
            file = weights_file(folder, weights, allow_pickle=False)
            specs = tensor_specs(file)
            check_tensors(file, {k: v.shape for k, v in specs.items()},
                          expected_specs(name, config))
        except ModelError as exc:
            report.problems.append(str(exc))
            continue
        rel = os.path.relpath(file, path)
        digest = _sha256(file) if hashes else ""
        want = recorded.get(rel, {}).get("sha256")
        if hashes and want and want != digest:
            report.problems.append(f"{file}: sha256 {digest[:12]}... differs from the manifest's "
                                   f"{want[:12]}...; the file changed since the checkpoint was "
                                   "made")
        report.components.append(ComponentReport(
            name, rel, len(specs), sum(_numel(s.shape) for s in specs.values()),
            sorted({s.dtype for s in specs.values()}), digest, os.path.getsize(file),
            recorded.get(rel, {}).get("trained", "unknown")))
    return report


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n
