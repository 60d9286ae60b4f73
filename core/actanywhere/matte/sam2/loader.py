"""A checked model folder loaded offline onto its device, kept warm once per process."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ...errors import ModelError
from .deps import model_class, need
from .folder import SAM2, Family, FolderInfo, inspect


@dataclass
class VideoModel:
    """A loaded video model and its processor."""

    model: Any  # Sam2VideoModel | EdgeTamVideoModel | Sam3VideoModel, eval mode on ``device``
    processor: Any  # the family's processor (Sam2VideoProcessor, Sam3VideoProcessor)
    info: FolderInfo
    device: Any  # torch.device
    dtype: Any  # torch.dtype: float32 on the CPU, bfloat16 (or float16) on CUDA

    def describe(self) -> str:
        dt = str(self.dtype).removeprefix("torch.")
        return f"{self.info.name} ({self.info.parameters / 1e6:.1f} M parameters) on " \
               f"{self.device.type} in {dt}"


_MODELS: dict[tuple, VideoModel] = {}
_LOCK = threading.Lock()


def load(given: str | None, *, device: str = "auto", allow_pickle: bool = False,
         family: Family = SAM2) -> VideoModel:
    """The folder's model and processor (checked first by ``folder.inspect``), offline; on CUDA
    in bfloat16 (float16 where the GPU has none), on the CPU in float32."""
    d = need(family.source, family.processor)
    from ...model.device import pick
    from ...model.vace.memory import offline, one_line

    info = inspect(given, allow_pickle=allow_pickle, family=family)
    dev = pick(device, "matte.sam.device")
    torch = d.torch
    dtype = torch.float32
    if dev.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    key = (info, str(dev))
    with _LOCK:
        if key in _MODELS:
            return _MODELS[key]
        cls = model_class(info.class_name, f"{info.path}/config.json")
        with offline(), _quiet():
            try:
                model, report = cls.from_pretrained(
                    info.path, local_files_only=True, dtype=dtype, output_loading_info=True,
                    use_safetensors=info.format == "safetensors")
                processor = d.processor.from_pretrained(info.path, local_files_only=True)
            except Exception as exc:  # transformers raises many types for a bad folder
                raise ModelError(f"{info.path}: cannot load the {info.name} model "
                                 f"({type(exc).__name__}: {one_line(exc, 160)}); download the "
                                 "folder again") from exc
        bad = [*report.get("missing_keys", ()), *report.get("unexpected_keys", ()),
               *(k[0] if isinstance(k, tuple) else k for k in report.get("mismatched_keys", ()))]
        if bad:
            raise ModelError(f"{info.files[0]}: weights do not fit config.json (first: "
                             f"{sorted(bad)[0]}); download the folder again")
        model.to(dev).eval()
        _MODELS[key] = VideoModel(model, processor, info, dev, dtype)
        return _MODELS[key]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """No loading progress bars from transformers (the job reports its own)."""
    from transformers.utils import logging as tlog

    tlog.disable_progress_bar()
    try:
        yield
    finally:
        tlog.enable_progress_bar()
