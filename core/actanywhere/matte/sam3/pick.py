"""Which of the instances SAM 3 found on a key frame its points and boxes pick."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def pick(mattes: Mapping[int, np.ndarray], *, points: Sequence[tuple[float, float, int]],
         boxes: Sequence[tuple[float, float, float, float]]) -> set[int]:
    """Ids of the instances (soft mattes at frame size) a subject point lies on, and for each
    box the instance filling it best (IoU of its solid part with the box); an instance a
    non-subject point (label 0) lies on is never picked."""
    solid = {oid: m > 0.5 for oid, m in mattes.items()}
    chosen: set[int] = set()
    for x, y, label in points:
        if label == 1:
            chosen |= {oid for oid, m in solid.items() if _on(m, x, y)}
    for box in boxes:
        scores = {oid: _box_iou(m, box) for oid, m in solid.items()}
        best = max(scores, key=scores.__getitem__, default=None)
        if best is not None and scores[best] > 0.0:
            chosen.add(best)
    for x, y, label in points:
        if label == 0:
            chosen -= {oid for oid, m in solid.items() if _on(m, x, y)}
    return chosen


def _on(solid: np.ndarray, x: float, y: float) -> bool:
    h, w = solid.shape
    c, r = int(x), int(y)
    return 0 <= r < h and 0 <= c < w and bool(solid[r, c])


def _box_iou(solid: np.ndarray, box: tuple[float, float, float, float]) -> float:
    h, w = solid.shape
    x0, y0 = max(0, int(box[0])), max(0, int(box[1]))
    x1, y1 = min(w, int(np.ceil(box[2]))), min(h, int(np.ceil(box[3])))
    if x1 <= x0 or y1 <= y0:
        return 0.0
    inter = int(np.count_nonzero(solid[y0:y1, x0:x1]))
    union = (x1 - x0) * (y1 - y0) + int(np.count_nonzero(solid)) - inter
    return inter / union if union else 0.0
