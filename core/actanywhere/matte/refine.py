"""Matte refinement: islands, holes, grow/shrink, feather, and temporal smoothing.

Spatial steps work on one frame; the temporal filter is edge preserving: a neighbour frame's
value counts only where it is close to the current frame's (a flicker), so an edge that moves
is never averaged with where it was: smoothing without lag.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from .. import catalog


class RefineParams(Protocol):
    """ShotSpec's ``matte.refine``: None means the source's default."""

    grow: float | None
    feather: float | None
    fill_holes: float | None
    min_island: float | None
    temporal: int | None
    temporal_tolerance: float


@dataclass(frozen=True)
class Refine:
    """``matte.refine`` with the source's defaults filled in."""

    grow: float = 0.0
    feather: float = 0.0
    fill_holes: float = 0.0
    min_island: float = 0.0
    temporal: int = 0
    temporal_tolerance: float = 0.2

    @classmethod
    def resolve(cls, s: RefineParams, source: str) -> Refine:
        """Computed sources are cleaned by default, tracked ones smoothed over time."""
        kind = catalog.matte(source)
        area = 0.001 if kind.computed else 0.0
        return cls(
            grow=s.grow if s.grow is not None else 0.0,
            feather=s.feather if s.feather is not None else 0.0,
            fill_holes=s.fill_holes if s.fill_holes is not None else area,
            min_island=s.min_island if s.min_island is not None else area,
            temporal=s.temporal if s.temporal is not None else
            (1 if kind.tracked else 0),
            temporal_tolerance=s.temporal_tolerance,
        )

    @property
    def spatial(self) -> bool:
        return bool(self.grow or self.feather or self.fill_holes or self.min_island)


def drop_islands(matte: np.ndarray, max_area: float) -> np.ndarray:
    """Zero every connected part of the matte whose solid core (> 0.5) covers less than
    ``max_area`` pixels; its soft fringe goes with it."""
    support = (matte > 0.02).astype(np.uint8)
    n, labels = cv2.connectedComponents(support, connectivity=8)
    if n <= 2 and max_area <= 0:
        return matte
    core = np.bincount(labels[matte > 0.5].ravel(), minlength=n)
    small = core < max_area
    small[0] = False
    return _set_regions(matte, labels, small, 0.0)


def fill_holes(matte: np.ndarray, max_area: float) -> np.ndarray:
    """Set to 1 every hole (a non-subject region not touching the frame border) of at most
    ``max_area`` pixels."""
    outside = (matte <= 0.5).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(outside, connectivity=4)
    if n <= 1:
        return matte
    h, w = matte.shape
    x, y, bw, bh, area = (stats[:, i] for i in range(5))
    border = (x == 0) | (y == 0) | (x + bw == w) | (y + bh == h)
    hole = (~border) & (area <= max_area)
    hole[0] = False
    return _set_regions(matte, labels, hole, 1.0)


def _set_regions(matte: np.ndarray, labels: np.ndarray, chosen: np.ndarray,
                 value: float) -> np.ndarray:
    """A copy of ``matte`` with every labelled region marked in ``chosen`` set to ``value``
    (``matte`` itself when none is)."""
    if not chosen.any():
        return matte
    out = matte.copy()
    out[chosen[labels]] = value
    return out


def grow(matte: np.ndarray, pixels: float) -> np.ndarray:
    """Dilate (pixels > 0) or erode (< 0) with a disc; fractional radii blend two discs."""
    if not pixels:
        return matte
    r = abs(pixels)
    lo, hi = int(np.floor(r)), int(np.ceil(r))
    op = cv2.dilate if pixels > 0 else cv2.erode

    def disc(radius: int) -> np.ndarray:
        if radius == 0:
            return matte
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        return op(matte, k)

    a = disc(lo)
    if hi == lo:
        return a
    t = r - lo
    return (1 - t) * a + t * disc(hi)


def feather(matte: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(matte, (0, 0), sigma) if sigma > 0 else matte


def spatial(matte: np.ndarray, r: Refine) -> np.ndarray:
    """Islands, holes, grow, feather, in that order; float32 in [0, 1] out."""
    area = matte.shape[0] * matte.shape[1]
    out = np.ascontiguousarray(matte, np.float32)
    if r.min_island:
        out = drop_islands(out, r.min_island * area)
    if r.fill_holes:
        out = fill_holes(out, r.fill_holes * area)
    out = grow(out, r.grow)
    out = feather(out, r.feather)
    return np.clip(out, 0.0, 1.0, out=np.asarray(out, np.float32))


def temporal(mattes: Sequence[np.ndarray], radius: int, tolerance: float
             ) -> Iterator[np.ndarray]:
    """Centred, edge-preserving temporal filter: each neighbour within ``radius`` frames
    weighs ``max(0, 1 - |difference| / tolerance)`` per pixel (1 for the frame itself). Yields
    the frames in order (float32), reading each input once and holding ``2 * radius + 1``."""
    n = len(mattes)
    if radius <= 0 or n < 2:
        yield from (np.asarray(m, np.float32) for m in mattes)
        return
    window: dict[int, np.ndarray] = {}
    for t in range(n):
        for j in range(max(0, t - radius), min(n, t + radius + 1)):
            if j not in window:
                window[j] = np.asarray(mattes[j], np.float32)
        window.pop(t - radius - 1, None)
        cur = window[t]
        acc, wsum = cur.copy(), np.ones_like(cur)
        for d in range(-radius, radius + 1):
            if d == 0 or not 0 <= t + d < n:
                continue
            nb = window[t + d]
            w = np.clip(1.0 - np.abs(nb - cur) / tolerance, 0.0, 1.0)
            acc += w * nb
            wsum += w
        yield acc / wsum
