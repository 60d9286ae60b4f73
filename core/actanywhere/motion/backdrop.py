"""The background plate as each frame of the shot sees it: fitted once, with enough overscan to
cover every frame the motion moves it to, then warped per frame.

The canvas is the background fitted (``cover``, ``contain`` or ``stretch``, as without motion)
over the region of the reference frame that any frame shows (the frame's corners taken back
through its motion), at the finest scale any frame needs (a push-in magnifies the reference).
Each frame samples it with a bicubic warp clamped to the neighbourhood's range (sharp, no
shimmer when the move is slow, no ringing next to HDR highlights), from a pyramid level chosen
so no frame minifies by more than 2x (no aliasing on a pull-out). With no motion, or on a
frame whose motion is the identity, the frame is the fitted canvas itself, pixel for pixel.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..media import frames as frameseq
from ..media import raster
from .format import Motion

#: the overscan region is clipped to this many frame widths/heights around the frame (a
#: homography near the horizon can send a corner to infinity)
MAX_REGION = 4.0
#: the canvas's long side is at most this many pixels (memory)
MAX_CANVAS = 8192
#: background pixels magnified more than this on a frame are reported as soft
SOFT = 1.5


class Backdrop:
    """``at(frame)``: the background (H, W, 3) of that frame; ``still``: the reference frame's
    (what a static camera sees); ``warnings``: one line per problem, frames named."""

    def __init__(self, image: np.ndarray, width: int, height: int, fit: raster.FitMode,
                 pixel_aspect: float = 1.0, source_aspect: float = 1.0,
                 motion: Motion | None = None, name: str = "background") -> None:
        self.width, self.height, self.motion = width, height, motion
        self.warnings: list[str] = []
        self._levels: list[np.ndarray] = []
        self._ranges: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        if motion is None or all(_identity(h) for h in motion.frames.values()):
            self.still = raster.fit(image, width, height, fit, pixel_aspect, source_aspect)
            return
        inverses = {f: np.linalg.inv(h) for f, h in motion.frames.items()}
        x0, y0, x1, y1, outside = _region(inverses, width, height)
        # how much each frame magnifies the reference around its centre; the canvas is made at
        # the finest scale a frame needs
        zooms = {f: _scale(h, (width / 2, height / 2)) for f, h in motion.frames.items()}
        density = max(1.0, max(zooms.values()))
        long_side = max(x1 - x0, y1 - y0) * density
        density = min(density, MAX_CANVAS / long_side) if long_side > MAX_CANVAS else density
        cw, ch = max(1, round((x1 - x0) * density)), max(1, round((y1 - y0) * density))
        canvas = raster.fit(image, cw, ch, fit, pixel_aspect, source_aspect)
        # canvas pixel centre (u, v) <- reference point (x, y); pixel centres at integers
        sx, sy = cw / (x1 - x0), ch / (y1 - y0)
        self._ref_to_canvas = np.array([[sx, 0, -x0 * sx + (sx - 1) / 2],
                                        [0, sy, -y0 * sy + (sy - 1) / 2], [0, 0, 1]])
        self._levels = [canvas]
        while min(self._levels[-1].shape[:2]) > 16 and len(self._levels) < 6:
            self._levels.append(cv2.pyrDown(self._levels[-1]))
        self._inverses = inverses
        self.still = self.at(motion.reference_frame) \
            if motion.reference_frame in motion.frames else self._warp(np.eye(3))
        # how many background pixels one output pixel spans where it is least (softness)
        bg_h, bg_w = image.shape[:2]
        bg_per_canvas = min(bg_w * source_aspect / (cw * pixel_aspect), bg_h / ch) \
            if fit == "cover" else max(bg_w * source_aspect / (cw * pixel_aspect), bg_h / ch)
        soft = [f for f, zoom in zooms.items() if zoom / (sx * bg_per_canvas) > SOFT]
        if soft:
            self.warnings.append(
                f"{name}: the camera move enlarges the background more than {SOFT:g}x on "
                f"frame(s) {frameseq.compact(sorted(soft))} (it looks soft there); use a "
                "larger background image")
        if outside:
            self.warnings.append(
                f"{name}: the motion sends frame(s) {frameseq.compact(sorted(outside))} beyond "
                f"{MAX_REGION:g}x the frame (near the horizon); their edges repeat the "
                "background's border: check the motion")

    @property
    def moving(self) -> bool:
        """Whether any frame differs from ``still``."""
        return bool(self._levels)

    def at(self, frame: int) -> np.ndarray:
        if not self._levels:
            return self.still
        return self._warp(self._inverses[frame])

    def _warp(self, inverse: np.ndarray) -> np.ndarray:
        """Output pixel -> reference point (``inverse``) -> canvas, sampled from the level
        where the frame minifies by less than 2x."""
        m = self._ref_to_canvas @ inverse
        minify = _scale(m, (self.width / 2, self.height / 2))  # canvas px per output px
        level = min(len(self._levels) - 1, max(0, math.floor(math.log2(max(minify, 1.0)))))
        m = np.diag([0.5 ** level, 0.5 ** level, 1.0]) @ m  # pyrDown: u' = u / 2
        src = self._levels[level]
        if _identity(m) and src.shape[:2] == (self.height, self.width):
            return src.copy()
        if level not in self._ranges:
            self._ranges[level] = raster.local_range(src)
        lo, hi = self._ranges[level]
        size, inv = (self.width, self.height), cv2.WARP_INVERSE_MAP
        sharp = cv2.warpPerspective(src, m, size, flags=cv2.INTER_CUBIC | inv,
                                    borderMode=cv2.BORDER_REPLICATE)
        lo = cv2.warpPerspective(lo, m, size, flags=cv2.INTER_LINEAR | inv,
                                 borderMode=cv2.BORDER_REPLICATE)
        hi = cv2.warpPerspective(hi, m, size, flags=cv2.INTER_LINEAR | inv,
                                 borderMode=cv2.BORDER_REPLICATE)
        return np.clip(sharp, lo, hi)


def enlargement(motion: Motion) -> float:
    """How much ``motion`` enlarges a background of the plate's own size and shape (fit
    ``cover``) at most: the push-in times how far the region the frames show reaches past the
    frame. ``Backdrop`` warns past ``SOFT``; a larger background image needs less."""
    if all(_identity(h) for h in motion.frames.values()):
        return 1.0
    w, h = motion.width, motion.height
    x0, y0, x1, y1, _ = _region({f: np.linalg.inv(m) for f, m in motion.frames.items()}, w, h)
    zoom = max(_scale(m, (w / 2, h / 2)) for m in motion.frames.values())
    return max(1.0, zoom) * max((x1 - x0) / w, (y1 - y0) / h)


def _region(inverses: dict[int, np.ndarray], w: int, h: int
            ) -> tuple[float, float, float, float, list[int]]:
    """The reference-frame box every frame shows (clipped), and the frames clipped."""
    corners = np.array([[-0.5, -0.5], [w - 0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h - 0.5]])
    lo = np.array([-0.5, -0.5]) - (MAX_REGION - 1) / 2 * np.array([w, h])
    hi = np.array([w - 0.5, h - 0.5]) + (MAX_REGION - 1) / 2 * np.array([w, h])
    box_lo, box_hi = corners[0].copy(), corners[2].copy()
    outside = []
    for f, inv in inverses.items():
        ph = np.c_[corners, np.ones(4)] @ inv.T
        if np.any(ph[:, 2] <= 1e-9):
            outside.append(f)
            box_lo, box_hi = lo, hi
            continue
        pts = ph[:, :2] / ph[:, 2:]
        if np.any(pts < lo) or np.any(pts > hi):
            outside.append(f)
        box_lo = np.minimum(box_lo, np.maximum(pts.min(0), lo))
        box_hi = np.maximum(box_hi, np.minimum(pts.max(0), hi))
    # as pixel-edge coordinates: (x0, y0) is the left/top edge of the region
    return box_lo[0] + 0.5, box_lo[1] + 0.5, box_hi[0] + 0.5, box_hi[1] + 0.5, outside


def _identity(h: np.ndarray) -> bool:
    return bool(np.allclose(h, np.eye(3), atol=1e-9))


def _scale(h: np.ndarray, point: tuple[float, float]) -> float:
    """The local linear magnification of ``h`` at ``point`` (square root of the Jacobian's
    determinant)."""
    x, y = point
    p = h @ np.array([x, y, 1.0])
    w = p[2]
    jac = (h[:2, :2] * w - np.outer(p[:2], h[2, :2])) / (w * w)
    return math.sqrt(max(abs(float(np.linalg.det(jac))), 1e-12))
