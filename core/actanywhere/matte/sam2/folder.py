"""SAM 2 video model folders as transformers saves them, checked before any weight is read.

Accepted (downloaded beforehand, e.g. ``hf download facebook/sam2.1-hiera-tiny --local-dir
DIR``; nothing here ever downloads)::

    DIR/config.json               model_type sam2_video (SAM 2.1) or edgetam_video (EdgeTAM)
    DIR/model.safetensors         or model-0000N-of-0000M.safetensors + its .index.json;
                                  pytorch_model.bin only with matte.sam.allow_pickle
    DIR/processor_config.json     or preprocessor_config.json: the Sam2VideoProcessor

``inspect`` reads JSON and safetensors headers only: every tensor name and shape is compared
with the model its config builds on the meta device, so a partial download, a truncated file or
weights from another model are named before a pixel is read or a weight loaded.

The same checks serve every video-model source: a ``Family`` names its model types, processor,
extra files and messages (``SAM2`` here; ``matte.sam3`` defines ``SAM3``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from ...errors import ModelError
from .deps import KINDS, model_class, need_timm

ENV = "ACTANYWHERE_SAM2_MODEL"
PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json")
PICKLES = ("pytorch_model.bin",)

#: SAM 2.1 image encoders by (first stage width, blocks per stage), as the facebook/sam2.1-*
#: configs give them
HIERA = {(96, (1, 2, 7, 2)): "hiera-tiny", (96, (1, 2, 11, 2)): "hiera-small",
         (112, (2, 3, 16, 3)): "hiera-base-plus", (144, (2, 6, 36, 4)): "hiera-large"}


@dataclass(frozen=True)
class Family:
    """The model folders one ``matte.source`` takes, and how its messages name them."""

    source: str  # the matte.source: "sam2"
    what: str  # "SAM 2": how messages name its models
    env: str  # the environment variable naming a default folder
    kinds: dict[str, tuple[str, str]]  # config.json model_type -> (transformers class, label)
    example: str  # a hub repo, for the download hint: "facebook/sam2.1-hiera-tiny"
    processor: str  # the transformers processor class: "Sam2VideoProcessor"
    #: model_type values that are the wrong model of the family -> the hint to give
    near: dict[str, str] = field(default_factory=dict)
    #: files besides the processor's config: (alternatives, what they are)
    extra: tuple[tuple[tuple[str, ...], str], ...] = ()
    #: transformers renames this model's tensors when it saves them (its conversion mapping):
    #: the files are checked against the saved names
    renamed: bool = False

    @property
    def get(self) -> str:
        return (f"download one beforehand, e.g. `hf download {self.example} --local-dir DIR` "
                "(nothing is downloaded at run time)")


SAM2 = Family(
    source="sam2", what="SAM 2", env=ENV, kinds=KINDS, example="facebook/sam2.1-hiera-tiny",
    processor="Sam2VideoProcessor",
    near=dict.fromkeys(("sam2", "edgetam"), "an image-only SAM 2: download the same repo; "
                       "transformers saves the video model from it"))
GET = SAM2.get


@dataclass(frozen=True)
class FolderInfo:
    """What a model folder holds."""

    path: str
    model_type: str  # sam2_video | edgetam_video | sam3_video
    class_name: str  # the transformers class
    name: str  # "SAM 2.1 hiera-tiny", "EdgeTAM", "SAM 2.1 (custom size)"
    format: str  # safetensors | pickle
    files: tuple[str, ...]
    parameters: int
    image_size: int


def model_folder(given: str | None, family: Family = SAM2) -> str:
    """The folder ``matte.sam.checkpoint`` (or the family's environment variable) names, as a
    real path."""
    f = family
    path = given or os.environ.get(f.env)
    if not path:
        raise ModelError(f"matte.sam.checkpoint: no {f.what} model folder given; set it "
                         f"(--sam-checkpoint DIR) or ${f.env}; {f.get}")
    if os.path.isfile(path):
        raise ModelError(f"{path}: a file, not a model folder; matte.source {f.source} takes a "
                         "transformers folder (config.json + model.safetensors) such as "
                         f"{f.example}; a .pth checkpoint is for matte.source sam")
    if not os.path.isdir(path):
        raise ModelError(f"{path}: {f.what} model folder not found; {f.get}")
    return os.path.realpath(path)


_SEEN: dict[tuple, FolderInfo] = {}


def inspect(given: str | None, *, allow_pickle: bool = False,
            family: Family = SAM2) -> FolderInfo:
    """The folder checked (once while its files stay the same); ModelError naming the file and
    the fix for anything a load would trip on."""
    path = model_folder(given, family)
    stamp = (path, allow_pickle, family.source, *_stamps(path))
    if stamp not in _SEEN:
        _SEEN[stamp] = _inspect(path, allow_pickle, family)
    return _SEEN[stamp]


def _stamps(path: str) -> tuple:
    out = []
    for name in sorted(os.listdir(path)):
        st = os.stat(os.path.join(path, name))
        out.append((name, st.st_size, st.st_mtime_ns))
    return tuple(out)


def _inspect(path: str, allow_pickle: bool, family: Family) -> FolderInfo:
    f = family
    cfg_file = os.path.join(path, "config.json")
    config = _read_json(cfg_file, f)
    model_type = config.get("model_type")
    if model_type not in f.kinds:
        hint = f" ({f.near[model_type]})" if model_type in f.near else ""
        examples = ("facebook/sam2.1-hiera-*, EdgeTAM" if f is SAM2 else f.example)
        raise ModelError(f"{cfg_file}: model_type {model_type!r} is not a {f.what} video model"
                         f"{hint}; matte.source {f.source} takes {' or '.join(f.kinds)} "
                         f"folders ({examples})")
    class_name, label = f.kinds[model_type]
    model_class(class_name, cfg_file)
    if model_type == "edgetam_video":
        need_timm(cfg_file)
    for names, what in ((PROCESSOR_FILES, f"the {f.processor}'s settings"), *f.extra):
        if not any(os.path.isfile(os.path.join(path, n)) for n in names):
            raise ModelError(f"{path}: no {' or '.join(names)} ({what}); download the whole "
                             "repo, not only the weights")
    fmt, files = _weight_files(path, allow_pickle, f)
    parameters = _check_tensors(path, class_name, config, fmt, files, renamed=f.renamed)
    vision = config.get("vision_config") or {}
    backbone = vision.get("backbone_config") or {}
    size = HIERA.get((backbone.get("hidden_size"),
                      tuple(backbone.get("blocks_per_stage") or ())))
    name = (f"{label} {size or '(custom size)'}" if model_type == "sam2_video" else label)
    return FolderInfo(path, model_type, class_name, name, fmt, tuple(files), parameters,
                      int(config.get("image_size") or 1024))


def _read_json(file: str, family: Family = SAM2) -> dict[str, Any]:
    if not os.path.isfile(file):
        raise ModelError(f"{file}: not found; a {family.what} model folder holds config.json, "
                         f"model.safetensors and the processor's config; {family.get}")
    try:
        with open(file, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:
        raise ModelError(f"{file}: unreadable ({' '.join(str(exc).split())[:120]}); "
                         "download it again") from exc
    if not isinstance(data, dict):
        raise ModelError(f"{file}: not a model config (a JSON object); download it again")
    return data


def _weight_files(path: str, allow_pickle: bool, family: Family) -> tuple[str, list[str]]:
    """(format, files), safetensors preferred; pickle refused unless allowed."""
    index = os.path.join(path, "model.safetensors.index.json")
    if os.path.isfile(index):
        from ...model.vace.headers import shard_files

        return "safetensors", shard_files(index, _read_json(index).get("weight_map"), path,
                                          "download it again")
    single = os.path.join(path, "model.safetensors")
    if os.path.isfile(single):
        return "safetensors", [single]
    pickles = [os.path.join(path, n) for n in PICKLES if os.path.isfile(os.path.join(path, n))]
    if pickles and not allow_pickle:
        raise ModelError(f"{pickles[0]}: pickle weights can run arbitrary code and are refused; "
                         "download model.safetensors, or set matte.sam.allow_pickle if you "
                         "trust the file")
    if pickles:
        return "pickle", pickles
    raise ModelError(f"{single}: not found (the folder has no weights); {family.get}")


def _check_tensors(path: str, class_name: str, config: dict, fmt: str, files: list[str], *,
                   renamed: bool = False) -> int:
    """Every tensor the config's model has, with its shape, is in the files (under the names
    transformers saves them with, when ``renamed``); their count of parameters."""
    from ...model.vace.headers import pickle_header, read_header
    from ...model.vace.memory import expected_tensors

    found: dict[str, tuple[str, tuple[int, ...]]] = {}
    where: dict[str, str] = {}
    for f in files:
        specs = read_header(f) if fmt == "safetensors" else pickle_header(f)
        found.update(specs)
        where.update(dict.fromkeys(specs, f))
    expected, optional, ignored = expected_tensors(path, "transformers", class_name, config)
    if renamed:
        saved = _saved_names(path, class_name, expected)
        expected = {k: expected[m] for k, m in saved.items()}
        optional = {k for k, m in saved.items() if m in optional}
    missing = [k for k in expected if k not in found and k not in optional]
    if missing:
        raise ModelError(f"{files[0]}: tensor {missing[0]} is missing ({len(missing)} missing "
                         "in all); the weights are partial or from another model, download "
                         "the folder again")
    extra = [k for k in found if k not in expected and not any(p.search(k) for p in ignored)]
    if extra:
        raise ModelError(f"{where[extra[0]]}: unexpected tensor {extra[0]} ({len(extra)} in "
                         "all); the weights do not match config.json, download the folder again")
    for k, shape in expected.items():
        if k in found and found[k][1] != shape:
            raise ModelError(f"{where[k]}: tensor {k} has shape {list(found[k][1])}, "
                             f"config.json expects {list(shape)}; the weights and config.json "
                             "are from different models, download the folder again")
    total = 0
    for _, shape in found.values():
        n = 1
        for s in shape:
            n *= s
        total += n
    return total


def _saved_names(path: str, class_name: str, names: dict) -> dict[str, str]:
    """{name in the files: name in the model} as transformers' ``save_pretrained`` writes them
    (the model's conversion mapping reversed), from the model built on the meta device."""
    import transformers
    from accelerate import init_empty_weights
    from transformers.core_model_loading import revert_weight_conversion

    from ...model.vace.memory import offline, one_line

    try:
        with offline(), init_empty_weights():
            module = getattr(transformers, class_name)(
                transformers.AutoConfig.from_pretrained(path, local_files_only=True))
        return dict(revert_weight_conversion(module, {k: k for k in names}))
    except Exception as exc:  # transformers raises many types for a config it cannot build
        raise ModelError(f"{path}/config.json: not a valid {class_name} config "
                         f"({one_line(exc)}); download the folder again") from exc
