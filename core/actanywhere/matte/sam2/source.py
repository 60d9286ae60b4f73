"""``matte.source = sam2``: SAM 2.1 or EdgeTAM video models from prompts on key frames,
tracked through the shot with the model's memory."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ...errors import SpecError
from ...media.imageio import ImageInfo
from ...progress import ProgressEvent, Reporter
from ..source import TrackedSource
from .folder import inspect
from .loader import load
from .segmenter import Sam2Segmenter


class Sam2Source(TrackedSource):
    @classmethod
    def check(cls, spec, ref: ImageInfo) -> None:
        """The model folder checked (config, weights' names, shapes and sizes) before any pixel
        is read."""
        s = spec.sam
        if s.model_type != "auto":
            raise SpecError(f"matte.sam.model_type {s.model_type}: names a SAM v1 architecture "
                            "(source sam); leave it auto for sam2, whose folder's config.json "
                            "says what it is")
        inspect(s.checkpoint, allow_pickle=s.allow_pickle)

    def segmenter(self, image: Callable[[int], np.ndarray], count: int,
                  report: Reporter) -> Sam2Segmenter:
        s = self.spec.sam
        report(ProgressEvent("matte", message="loading SAM 2"))
        vm = load(s.checkpoint, device=s.device, allow_pickle=s.allow_pickle)
        seg = Sam2Segmenter(vm, image, ref=self.ref, settings=s, report=report)
        report(ProgressEvent("matte", message=f"{vm.describe()}, memory {seg.keep} frames"))
        return seg
