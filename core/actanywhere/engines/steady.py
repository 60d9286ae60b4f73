"""Steady shading: a model's change to the moved background made safe to put on the plate.

On real photographs a small model's frames differ from the moved background in three ways
that are not shading (issue 33): a hue cast (a grey photograph turns purple), light it
invents over the whole frame, and boil (the change differs from frame to frame where the
camera is still). ``steady`` turns the model's frames of a whole shot into frames that keep
only the shading, at the model's resolution, display-referred, before the plate detail
(``detail.py``):

1. Per frame, the change relative to the moved background is split into light (the log
   ratio of the blurred lumas) and colour (the difference of the blurred chromas: each
   pixel's RGB minus its luma).
2. Each is averaged over the neighbouring frames (a Gaussian of ``frames`` frames), each
   neighbour's maps moved onto the frame with the shot's camera motion and left out where
   its subject covered the background (the model saw nothing there).
3. With ``exposure`` off, the part of each frame's light change that depends only on the
   background's brightness (the median change of each brightness: the model's exposure and
   tone curve, e.g. lifted blacks) is removed; shadows and local light stay.
4. The frame is rebuilt from the moved background: ``moved * exp(light) + colour * chroma``,
   ``colour`` 0 keeping the plate's hue, 1 the model's.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np

from ..model.modelspace import Geometry
from ..motion.format import Motion

LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)
#: light changes are kept within 1/4..4 (display-referred)
LIGHT_LIMIT = math.log(4.0)
EPS = 0.02  # keeps the ratio of near-black lumas finite
SIGMA = 1.0  # model pixels: the blur the light and colour are measured at


def _changes(generated: np.ndarray, moved: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(light (h, w), colour (h, w, 3)) of ``generated`` over ``moved`` (both (h, w, 3))."""
    g = cv2.GaussianBlur(np.ascontiguousarray(generated, np.float32), (0, 0), SIGMA)
    m = cv2.GaussianBlur(np.ascontiguousarray(moved, np.float32), (0, 0), SIGMA)
    yg, ym = g @ LUMA, m @ LUMA
    light = np.clip(np.log((yg + EPS) / (ym + EPS)), -LIGHT_LIMIT, LIGHT_LIMIT)
    return light, (g - yg[..., None]) - (m - ym[..., None])


def _onto(motion: Motion | None, geo: Geometry, src: int, dst: int) -> np.ndarray | None:
    """Content-pixel homography taking frame ``src``'s maps onto frame ``dst`` (None: the
    same pixels)."""
    if motion is None or src == dst or src not in motion.frames or dst not in motion.frames:
        return None
    h = motion.frames[dst] @ np.linalg.inv(motion.frames[src])
    sx, sy = geo.content_w / geo.plate_w, geo.content_h / geo.plate_h
    # content pixel centre u = (x + 0.5) * s - 0.5
    to_content = np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1]])
    m = to_content @ h @ np.linalg.inv(to_content)
    return None if np.allclose(m, np.eye(3), atol=1e-6) else m


def _warp(a: np.ndarray, m: np.ndarray | None) -> np.ndarray:
    if m is None:
        return a
    h, w = a.shape[:2]
    return cv2.warpPerspective(a, m, (w, h), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def tone_curve(change: np.ndarray, luma: np.ndarray, bins: int = 12
               ) -> Callable[[np.ndarray], np.ndarray]:
    """The light ``change`` (1-D) as a function of the background's ``luma`` alone (the
    median change of each brightness, between quantiles, interpolated): the model's exposure
    and tone curve, not shading. Returns luma (any shape) -> that part of the change."""
    if change.size < bins * 8:
        level = float(np.median(change)) if change.size else 0.0
        return lambda y: np.full(y.shape, level, np.float32)
    edges = np.quantile(luma, np.linspace(0.0, 1.0, bins + 1))
    which = np.clip(np.searchsorted(edges, luma, side="right") - 1, 0, bins - 1)
    centres, medians = [], []
    for b in range(bins):
        inside = which == b
        if inside.any():
            centres.append(float(np.median(luma[inside])))
            medians.append(float(np.median(change[inside])))
    return lambda y: np.interp(y, centres, medians).astype(np.float32)


def steady(generated: dict[int, np.ndarray], moved: dict[int, np.ndarray],
           background: dict[int, np.ndarray], *, geo: Geometry, motion: Motion | None,
           frames: float, colour: float, exposure: bool) -> dict[int, np.ndarray]:
    """The shot's model frames (frame -> (model_h, model_w, 3), display-referred, subject
    already filled) with only their steadied shading over ``moved`` (frame -> the moved
    background at content size); ``background`` (frame -> (model_h, model_w), 1 where the
    model saw background) weighs each frame's change; ``frames`` the Gaussian's sigma in
    frames (0: each frame alone)."""
    order = sorted(generated)
    light, chroma, weight = {}, {}, {}
    for f in order:
        light[f], chroma[f] = _changes(geo.content(generated[f]), moved[f])
        weight[f] = np.ascontiguousarray(geo.content(background[f]), np.float32)
    reach = int(math.ceil(3 * frames)) if frames > 0 else 0
    steadied: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for i, f in enumerate(order):
        acc_l = 1e-4 * light[f]  # the frame's own change where nothing else is
        acc_c = 1e-4 * chroma[f]
        acc_w = np.full_like(light[f], 1e-4)
        for g in order[max(0, i - reach): i + reach + 1]:
            k = math.exp(-0.5 * ((g - f) / frames) ** 2) if frames > 0 else 1.0
            m = _onto(motion, geo, g, f)
            w = _warp(weight[g], m) * k
            acc_l += _warp(light[g], m) * w
            acc_c += _warp(chroma[g], m) * w[..., None]
            acc_w += w
        steadied[f] = acc_l / acc_w, acc_c / acc_w[..., None]
    luma = {f: moved[f] @ LUMA for f in order}
    out = {}
    for i, f in enumerate(order):
        lt, ct = steadied[f]
        if not exposure:  # the tone curve of the frames the steadying reached, so it is steady
            near = order[max(0, i - reach): i + reach + 1]
            seen = {g: weight[g] > 0.5 for g in near}
            curve = tone_curve(np.concatenate([steadied[g][0][m] for g, m in seen.items()]),
                               np.concatenate([luma[g][m] for g, m in seen.items()]))
            lt = lt - curve(luma[f])
        lt = np.clip(lt, -LIGHT_LIMIT, LIGHT_LIMIT)
        rebuilt = moved[f] * np.exp(lt)[..., None] + colour * ct
        frame = generated[f].copy()
        geo.content(frame)[...] = np.clip(rebuilt, 0.0, 1.0)
        out[f] = frame
    return out
