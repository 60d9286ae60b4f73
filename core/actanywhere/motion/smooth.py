"""Smoothing a camera path without lag: a centred (zero-phase) weighted average of each frame's
motion over its neighbours, so jitter goes and a real move is not delayed."""

from __future__ import annotations

import numpy as np


def smooth(frames: dict[int, np.ndarray], radius: int,
           confidence: dict[int, float] | None = None) -> dict[int, np.ndarray]:
    """Each homography averaged (entries, normalised h22 = 1) with its ``radius`` neighbours on
    both sides, triangle weights times confidence; the window shrinks symmetrically at the
    ends (a move that starts at the first frame keeps its start). The reference frame, if it
    is the identity at the first frame, stays it."""
    if radius <= 0 or len(frames) < 3:
        return dict(frames)
    order = sorted(frames)
    stack = np.stack([frames[f] for f in order])
    conf = np.array([(confidence or {}).get(f, 1.0) for f in order]) + 1e-3
    out = {}
    n = len(order)
    for i, f in enumerate(order):
        r = min(radius, i, n - 1 - i)
        idx = np.arange(i - r, i + r + 1)
        w = (r + 1 - np.abs(idx - i)) * conf[idx]
        out[f] = np.tensordot(w / w.sum(), stack[idx], axes=1)
    return out
