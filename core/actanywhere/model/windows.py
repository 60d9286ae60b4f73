"""Overlapping frame windows for shots longer than the motion modules can see at once.

At every denoising step each window predicts noise for its frames; the predictions are averaged
per frame with weights that ramp down towards a window's ends, then the scheduler takes one step
on the whole shot. Adjacent windows therefore agree on the shared frames at every step, and no
seam appears where one window hands over to the next.
"""

from __future__ import annotations


def plan(frames: int, window: int, overlap: int) -> list[tuple[int, int]]:
    """(start, end) of each window; the last one ends at the last frame."""
    if frames <= 0:
        return []
    if window <= 0:
        raise ValueError("window must be at least 1 frame")
    if frames <= window:
        return [(0, frames)]
    overlap = min(max(overlap, 0), window - 1)
    stride = window - overlap
    starts = list(range(0, frames - window + 1, stride))
    if starts[-1] + window < frames:
        starts.append(frames - window)
    return [(s, s + window) for s in starts]


def cut(windows: list[tuple[int, int]], start: int, end: int
        ) -> list[tuple[int, int, tuple[int, int]]]:
    """The windows that meet frames ``start..end-1``, cut to them: (start, end, the whole
    window). A part of a shot generated on its own keeps the whole shot's windows."""
    return [(max(s, start), min(e, end), (s, e)) for s, e in windows if s < end and e > start]


def weights(length: int, overlap: int) -> list[float]:
    """Blend weight per frame of one window: 1 in the middle, a linear ramp over ``overlap``
    frames at each end (never 0, so a frame covered by one window keeps its prediction)."""
    ramp = max(overlap, 0) + 1
    return [min(1.0, (i + 1) / ramp, (length - i) / ramp) for i in range(length)]
