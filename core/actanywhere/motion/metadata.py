"""The ``metadata`` source: the motion of a background at infinity from the camera matrices CG
renderers write into EXR headers (exact on CG plates).

For a direction ``d`` (a point at infinity) every convention below gives a 3x3 ``G`` with
``pixel ~ G d``; the motion of frame f is then ``G_f G_ref^-1`` (for ``worldToCamera``:
``K_f R_f R_ref^T K_ref^-1``, the rotation and the focal change; the camera's translation does
not move what is at infinity). Matrices are Imath's row-vector 4x4 (``p' = p M``), as OpenEXR
stores them. Read, in this order:

- ``worldToNDC``: NDC as RenderMan defines it, x and y in [0, 1] across the display window,
  origin top left, y down;
- ``worldToScreen``: OpenEXR screen space, placed on the display window by the header's
  ``screenWindowCenter`` / ``screenWindowWidth`` (y up);
- ``worldToCamera`` (camera looking down -z, x right, y up) with the horizontal field of view
  in degrees from the header (``fov``, ``cameraFov``) or the setting ``motion.fov``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from ..errors import InputError
from .format import Motion, normalised

FOV_NAMES = ("fov", "cameraFov", "camera:fov")
MATRICES = ("worldToNDC", "worldToScreen", "worldToCamera")


def _value(meta: Mapping[str, object], name: str) -> object | None:
    for key, value in meta.items():
        if key.lower() == name.lower():
            return getattr(value, "value", value)
    return None


def _matrix(meta: Mapping[str, object], name: str) -> np.ndarray | None:
    value = _value(meta, name)
    if value is None:
        return None
    m = np.asarray(value, np.float64).reshape(-1)
    return m.reshape(4, 4) if m.size == 16 and np.all(np.isfinite(m)) else None


def has_camera(meta: Mapping[str, object]) -> bool:
    """Whether a header carries any camera matrix this source reads."""
    return any(_matrix(meta, n) is not None for n in MATRICES)


def projection(meta: Mapping[str, object], width: int, height: int, pixel_aspect: float = 1.0,
               fov: float | None = None, where: str = "frame") -> np.ndarray:
    """``G`` (3x3): a direction in world space to homogeneous display-window pixels (pixel
    centres at integers)."""
    m = _matrix(meta, "worldToNDC")
    if m is not None:  # [0, 1] x [0, 1], y down -> pixel centres
        to_px = np.array([[width, 0, -0.5], [0, height, -0.5], [0, 0, 1.0]])
        return to_px @ m[:3, [0, 1, 3]].T
    m = _matrix(meta, "worldToScreen")
    if m is not None:
        centre = np.asarray(_value(meta, "screenWindowCenter") or (0.0, 0.0), np.float64)
        sw = float(_value(meta, "screenWindowWidth") or 1.0)
        sh = sw * height / (width * pixel_aspect)  # the window's height in screen units
        left, top = centre[0] - sw / 2, centre[1] + sh / 2
        to_px = np.array([[width / sw, 0, -left * width / sw - 0.5],
                          [0, -height / sh, top * height / sh - 0.5], [0, 0, 1.0]])
        return to_px @ m[:3, [0, 1, 3]].T
    m = _matrix(meta, "worldToCamera")
    if m is not None:
        deg = next((v for v in (_value(meta, n) for n in FOV_NAMES) if v), fov)
        if deg is None:
            raise InputError(f"{where}: worldToCamera has no field of view (header fov / "
                             "cameraFov); give motion.fov (horizontal, degrees)")
        deg = float(deg)  # type: ignore[arg-type]
        if not 0.1 < deg < 179.0:
            raise InputError(f"{where}: field of view {deg:g} degrees; give one between 0.1 "
                             "and 179")
        fx = width / 2 / math.tan(math.radians(deg) / 2)
        k = np.array([[fx, 0, (width - 1) / 2], [0, fx * pixel_aspect, (height - 1) / 2],
                      [0, 0, 1.0]])
        rot = m[:3, :3].T  # column form: d_camera = rot d
        return k @ np.diag([1.0, -1.0, -1.0]) @ rot
    raise InputError(f"{where}: no camera matrix in the header ({', '.join(MATRICES)}); use "
                     "motion.source track or keys")


def estimate(headers: Mapping[int, Mapping[str, object]], width: int, height: int,
             pixel_aspect: float = 1.0, fov: float | None = None,
             names: Mapping[int, str] | None = None) -> Motion:
    """The motion from every frame's header (``names``: the file of each frame, for errors)."""
    order = sorted(headers)
    names = names or {}
    g = {f: projection(headers[f], width, height, pixel_aspect, fov,
                       names.get(f, f"frame {f}")) for f in order}
    try:
        ref_inv = np.linalg.inv(g[order[0]])
    except np.linalg.LinAlgError:
        raise InputError(f"{names.get(order[0], f'frame {order[0]}')}: the camera matrix is "
                         "singular") from None
    frames = {f: normalised(g[f] @ ref_inv, f) for f in order}
    return Motion("metadata", width, height, order[0], frames, {f: 1.0 for f in order})
