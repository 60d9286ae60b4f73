"""``matte.source = sam``: Segment Anything on key frames, tracked through the shot."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ...media.imageio import ImageInfo
from ...progress import ProgressEvent, Reporter
from ..source import TrackedSource
from .cache import cache_folder, shared_cache
from .loader import checkpoint_path, load
from .segmenter import SamSegmenter


class SamSource(TrackedSource):
    @classmethod
    def check(cls, spec, ref: ImageInfo) -> None:
        checkpoint_path(spec.sam.checkpoint)  # found before any pixel is read

    def segmenter(self, image: Callable[[int], np.ndarray], count: int,
                  report: Reporter) -> SamSegmenter:
        s = self.spec.sam
        report(ProgressEvent("matte", message="loading SAM"))
        model = load(s.checkpoint, s.model_type, s.device)
        report(ProgressEvent("matte", message=f"SAM {model.kind} on {model.device}"))
        return SamSegmenter(model, image, shared_cache(cache_folder(s.cache_dir)), s.batch,
                            count)
