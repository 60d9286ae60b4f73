"""``matte.source = sam3``: SAM 3 video models finding and tracking a concept named by a text
prompt (matte.text, or each of matte.objects' text)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ...errors import SpecError
from ...media.imageio import ImageInfo
from ...progress import ProgressEvent, Reporter
from ..sam2.folder import inspect
from ..sam2.loader import load
from ..source import TrackedSource
from .family import SAM3
from .segmenter import Sam3Segmenter


class Sam3Source(TrackedSource):
    @classmethod
    def check(cls, spec, ref: ImageInfo) -> None:
        """The prompts SAM 3 can use, then the model folder (config, tokenizer, weights' names
        and shapes) before any pixel is read."""
        s = spec.sam
        if s.model_type != "auto":
            raise SpecError(f"matte.sam.model_type {s.model_type}: names a SAM v1 architecture "
                            "(source sam); leave it auto for sam3, whose folder's config.json "
                            "says what it is")
        for where, keys in [("matte.keys", spec.keys),
                            *((f"matte.objects {o.name}", o.keys) for o in spec.objects)]:
            for k in keys:
                if k.matte is not None:
                    raise SpecError(f"{where}: key frame {k.frame} has a painted matte; sam3 "
                                    "picks among the instances its text finds with points or "
                                    "boxes (painted key mattes are for sam, sam2 and grabcut)")
        inspect(s.checkpoint, allow_pickle=s.allow_pickle, family=SAM3)

    def segmenter(self, image: Callable[[int], np.ndarray], count: int,
                  report: Reporter) -> Sam3Segmenter:
        s = self.spec.sam
        report(ProgressEvent("matte", message="loading SAM 3"))
        vm = load(s.checkpoint, device=s.device, allow_pickle=s.allow_pickle, family=SAM3)
        seg = Sam3Segmenter(vm, image, text=self.spec.text, settings=s, report=report)
        report(ProgressEvent("matte", message=f"{vm.describe()}, memory {seg.keep} frames"))
        return seg
