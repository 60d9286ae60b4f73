"""Local SAM checkpoints: found, read, checked and kept warm once per process."""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass

from ...errors import ModelError
from .arch import HINT, SIZES, Arch, infer_arch
from .builder import build
from .deps import need

ENV = "ACTANYWHERE_SAM_CHECKPOINT"


def checkpoint_path(given: str | None) -> str:
    path = given or os.environ.get(ENV)
    if not path:
        raise ModelError(f"matte.sam.checkpoint: no SAM checkpoint given; set it (or ${ENV}) to "
                         "a local sam_vit_*.pth file (nothing is downloaded at run time)")
    if not os.path.isfile(path):
        raise ModelError(f"{path}: SAM checkpoint not found; {HINT}, downloaded beforehand "
                         "(nothing is downloaded at run time)")
    return path


def read_state_dict(path: str) -> dict:
    torch = need().torch
    size = os.path.getsize(path)
    try:
        if path.endswith(".safetensors"):
            from safetensors.torch import load_file

            sd = load_file(path, device="cpu")
        else:
            sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure here means an unreadable file
        raise ModelError(f"{path}: cannot read the SAM checkpoint ({size:,} bytes; "
                         f"{str(exc).splitlines()[0][:120]}): damaged or truncated? vit_b is "
                         f"{SIZES['vit_b']}, vit_l {SIZES['vit_l']}, vit_h {SIZES['vit_h']}; "
                         "download it again") from exc
    if isinstance(sd, dict) and "model" in sd and isinstance(sd["model"], dict):
        sd = sd["model"]
    if not isinstance(sd, dict):
        raise ModelError(f"{path}: not a state dict; {HINT}")
    return sd


@dataclass
class SamModel:
    sam: object
    arch: Arch
    path: str
    device: str
    key: str  # identity of the weights for the embedding cache

    @property
    def kind(self) -> str:
        return self.arch.kind


_MODELS: dict[tuple, SamModel] = {}
_MODELS_LOCK = threading.Lock()


def load(given: str | None, model_type: str = "auto", device: str = "auto") -> SamModel:
    """Load (once per process: kept warm for the worker) a SAM checkpoint."""
    need()
    from ...model.device import pick

    path = os.path.realpath(checkpoint_path(given))
    device = str(pick(device, "matte.sam.device"))
    st = os.stat(path)
    ident = (path, st.st_size, st.st_mtime_ns, device)
    with _MODELS_LOCK:
        if ident in _MODELS:
            model = _MODELS[ident]
        else:
            sd = read_state_dict(path)
            arch = infer_arch(sd, path)
            sam = build(arch)
            result = sam.load_state_dict(sd, strict=False)
            if result.missing_keys or result.unexpected_keys:
                bad = (result.missing_keys or result.unexpected_keys)[0]
                raise ModelError(f"{path}: weights do not fit the {arch.kind} SAM architecture "
                                 f"(first mismatch: {bad}); {HINT}")
            sam.to(device)
            key = hashlib.sha1(f"{path}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()
            model = _MODELS[ident] = SamModel(sam, arch, path, device, key)
    if model_type != "auto" and model.arch.kind != model_type:
        raise ModelError(f"{path}: this checkpoint is {model.arch.kind}, but "
                         f"matte.sam.model_type says {model_type}; fix one of them")
    return model
