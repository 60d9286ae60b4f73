"""``keys``: the artist's own camera move, translate/scale/rotate keys interpolated linearly
(smoothstep-free: what was keyed is what is used) and held before the first / after the last."""

from __future__ import annotations

import math

import numpy as np

from ..errors import SpecError
from .format import Motion
from .keyspec import parse

__all__ = ["estimate", "parse", "similarity"]


def similarity(tx: float, ty: float, scale: float, rotate: float, cx: float,
               cy: float) -> np.ndarray:
    """Scale and rotate (degrees, counter-clockwise on screen) about (cx, cy), then move."""
    a = math.radians(rotate)
    c, s = scale * math.cos(a), scale * math.sin(a)
    return np.array([[c, s, cx - c * cx - s * cy + tx],
                     [-s, c, cy + s * cx - c * cy + ty],
                     [0.0, 0.0, 1.0]])


def estimate(keys: list[dict], frames: list[int], width: int, height: int) -> Motion:
    if not keys:
        raise SpecError("motion source keys: give at least one key (--motion-key)")
    if any(k.get("scale", 1.0) <= 0 for k in keys):
        raise SpecError("motion keys: scale must be above 0")
    keys = sorted(keys, key=lambda k: k["frame"])
    kf = np.array([k["frame"] for k in keys], np.float64)
    out = {}
    for f in frames:
        params = [float(np.interp(f, kf, [k.get(name, d) for k in keys]))
                  for name, d in (("tx", 0.0), ("ty", 0.0), ("scale", 1.0), ("rotate", 0.0))]
        out[f] = similarity(*params, (width - 1) / 2.0, (height - 1) / 2.0)  # pixel centres
    ref = np.linalg.inv(out[frames[0]])  # relative to the reference (first) frame
    return Motion("keys", width, height, frames[0], {f: h @ ref for f, h in out.items()},
                  {f: 1.0 for f in frames})
