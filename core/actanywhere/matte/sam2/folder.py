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
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from ...errors import ModelError
from .deps import KINDS, model_class, need_timm

ENV = "ACTANYWHERE_SAM2_MODEL"
GET = ("download one beforehand, e.g. `hf download facebook/sam2.1-hiera-tiny --local-dir DIR` "
       "(nothing is downloaded at run time)")
PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json")
PICKLES = ("pytorch_model.bin",)

#: SAM 2.1 image encoders by (first stage width, blocks per stage), as the facebook/sam2.1-*
#: configs give them
HIERA = {(96, (1, 2, 7, 2)): "hiera-tiny", (96, (1, 2, 11, 2)): "hiera-small",
         (112, (2, 3, 16, 3)): "hiera-base-plus", (144, (2, 6, 36, 4)): "hiera-large"}


@dataclass(frozen=True)
class FolderInfo:
    """What a model folder holds."""

    path: str
    model_type: str  # sam2_video | edgetam_video
    class_name: str  # the transformers class
    name: str  # "SAM 2.1 hiera-tiny", "EdgeTAM", "SAM 2.1 (custom size)"
    format: str  # safetensors | pickle
    files: tuple[str, ...]
    parameters: int
    image_size: int


def model_folder(given: str | None) -> str:
    """The folder ``matte.sam.checkpoint`` (or $ACTANYWHERE_SAM2_MODEL) names, as a real path."""
    path = given or os.environ.get(ENV)
    if not path:
        raise ModelError(f"matte.sam.checkpoint: no SAM 2 model folder given; set it "
                         f"(--sam-checkpoint DIR) or ${ENV}; {GET}")
    if os.path.isfile(path):
        raise ModelError(f"{path}: a file, not a model folder; matte.source sam2 takes a "
                         "transformers folder (config.json + model.safetensors) such as "
                         "facebook/sam2.1-hiera-tiny; a .pth checkpoint is for matte.source sam")
    if not os.path.isdir(path):
        raise ModelError(f"{path}: SAM 2 model folder not found; {GET}")
    return os.path.realpath(path)


_SEEN: dict[tuple, FolderInfo] = {}


def inspect(given: str | None, *, allow_pickle: bool = False) -> FolderInfo:
    """The folder checked (once while its files stay the same); ModelError naming the file and
    the fix for anything a load would trip on."""
    path = model_folder(given)
    stamp = (path, allow_pickle, *_stamps(path))
    if stamp not in _SEEN:
        _SEEN[stamp] = _inspect(path, allow_pickle)
    return _SEEN[stamp]


def _stamps(path: str) -> tuple:
    out = []
    for name in sorted(os.listdir(path)):
        st = os.stat(os.path.join(path, name))
        out.append((name, st.st_size, st.st_mtime_ns))
    return tuple(out)


def _inspect(path: str, allow_pickle: bool) -> FolderInfo:
    cfg_file = os.path.join(path, "config.json")
    config = _read_json(cfg_file)
    model_type = config.get("model_type")
    if model_type not in KINDS:
        hint = (" (an image-only SAM 2: download the same repo; transformers saves the video "
                "model from it)" if model_type in ("sam2", "edgetam") else "")
        raise ModelError(f"{cfg_file}: model_type {model_type!r} is not a SAM 2 video model"
                         f"{hint}; matte.source sam2 takes {' or '.join(KINDS)} folders "
                         "(facebook/sam2.1-hiera-*, EdgeTAM)")
    class_name, label = KINDS[model_type]
    model_class(class_name, cfg_file)
    if model_type == "edgetam_video":
        need_timm(cfg_file)
    if not any(os.path.isfile(os.path.join(path, f)) for f in PROCESSOR_FILES):
        raise ModelError(f"{path}: no {PROCESSOR_FILES[0]} or {PROCESSOR_FILES[1]} (the "
                         "Sam2VideoProcessor's settings); download the whole repo, not only "
                         "the weights")
    fmt, files = _weight_files(path, allow_pickle)
    parameters = _check_tensors(path, class_name, config, fmt, files)
    vision = config.get("vision_config") or {}
    backbone = vision.get("backbone_config") or {}
    size = HIERA.get((backbone.get("hidden_size"),
                      tuple(backbone.get("blocks_per_stage") or ())))
    name = label if model_type == "edgetam_video" else f"{label} {size or '(custom size)'}"
    return FolderInfo(path, model_type, class_name, name, fmt, tuple(files), parameters,
                      int(config.get("image_size") or 1024))


def _read_json(file: str) -> dict[str, Any]:
    if not os.path.isfile(file):
        raise ModelError(f"{file}: not found; a SAM 2 model folder holds config.json, "
                         f"model.safetensors and the processor's config; {GET}")
    try:
        with open(file, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:
        raise ModelError(f"{file}: unreadable ({' '.join(str(exc).split())[:120]}); "
                         "download it again") from exc
    if not isinstance(data, dict):
        raise ModelError(f"{file}: not a model config (a JSON object); download it again")
    return data


def _weight_files(path: str, allow_pickle: bool) -> tuple[str, list[str]]:
    """(format, files), safetensors preferred; pickle refused unless allowed."""
    index = os.path.join(path, "model.safetensors.index.json")
    if os.path.isfile(index):
        wmap = _read_json(index).get("weight_map")
        if not isinstance(wmap, dict) or not wmap:
            raise ModelError(f"{index}: no weight_map; download it again")
        files = sorted({os.path.join(path, f) for f in wmap.values()})
        for f in files:
            if not os.path.isfile(f):
                raise ModelError(f"{f}: missing shard listed in {os.path.basename(index)}; the "
                                 "download is incomplete, download it again")
        return "safetensors", files
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
    raise ModelError(f"{single}: not found (the folder has no weights); {GET}")


def _check_tensors(path: str, class_name: str, config: dict, fmt: str, files: list[str]) -> int:
    """Every tensor the config's model has, with its shape, is in the files; their count of
    parameters."""
    from ...model.vace.headers import pickle_header, read_header
    from ...model.vace.memory import expected_tensors

    found: dict[str, tuple[str, tuple[int, ...]]] = {}
    where: dict[str, str] = {}
    for f in files:
        specs = read_header(f) if fmt == "safetensors" else pickle_header(f)
        found.update(specs)
        where.update(dict.fromkeys(specs, f))
    expected, optional, ignored = expected_tensors(path, "transformers", class_name, config)
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
