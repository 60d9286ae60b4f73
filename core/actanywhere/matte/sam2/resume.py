"""The mattes a stopped run already wrote (``matte.sam.resume_from``): kept as they are, and
the frames beside them seed the model again."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ...media import frames as frameseq
from ...media.imageio import ImageInfo
from .. import channels


def written(pattern: str | None, frames: Sequence[int]) -> dict[int, str]:
    """{index into ``frames``: file} of the shot's frames ``pattern`` has on disk."""
    if not pattern:
        return {}
    seq = frameseq.Sequence(frameseq.template(pattern), tuple(frames))
    gone = set(seq.missing())
    return {i: seq.path(f) for i, f in enumerate(frames) if f not in gone}


def reader(files: dict[int, str], ref: ImageInfo, channel: str,
           warn: Callable[[str], None]) -> Callable[[int], np.ndarray]:
    """``read(i)``: the written matte of frame index i, float32 in [0, 1]."""
    def read(i: int) -> np.ndarray:
        m = channels.matte_image(files[i], ref, channel, warn)
        return np.clip(m, 0.0, 1.0).astype(np.float32)

    return read
