"""Optical flow (OpenCV) and matte warping between frames of a shot.

Dense flow is unreliable right at a moving subject's edge (it mixes the subject's motion with
the background's), and that error compounds frame after frame. So the subject's motion is also
fitted as an affine transform from the flow deep inside its matte (RANSAC), and in a band
around its edge that motion replaces the dense flow. Warps are kept as coordinate maps back to
the anchor matte and composed, so the anchor is resampled once, not blurred at every frame.
"""

from __future__ import annotations

import cv2
import numpy as np


def _disc(r: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))


class Flow:
    """Dense flow at a reduced working size; warps full-resolution mattes."""

    def __init__(self, method: str = "dis", long_side: int = 1024) -> None:
        self.method = method
        self.long_side = long_side
        self._dis = None
        if method == "dis":
            self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        self._grid: tuple[np.ndarray, np.ndarray] | None = None

    def small_gray(self, rgb8: np.ndarray) -> np.ndarray:
        """The frame (uint8 RGB, display-referred) as gray at the working size."""
        gray = cv2.cvtColor(np.ascontiguousarray(rgb8), cv2.COLOR_RGB2GRAY)
        h, w = gray.shape
        s = min(1.0, self.long_side / max(h, w))
        if s < 1.0:
            gray = cv2.resize(gray, (max(1, round(w * s)), max(1, round(h * s))),
                              interpolation=cv2.INTER_AREA)
        return gray

    def backward(self, dst_small: np.ndarray, src_small: np.ndarray) -> np.ndarray:
        """For every pixel of ``dst``, where it was in ``src`` (offset, working-size pixels)."""
        if self._dis is not None:
            return self._dis.calc(dst_small, src_small, None)
        return cv2.calcOpticalFlowFarneback(dst_small, src_small, None, 0.5, 4, 21, 5, 7, 1.5,
                                            cv2.OPTFLOW_FARNEBACK_GAUSSIAN)

    def grid(self, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        if self._grid is None or self._grid[0].shape != (h, w):
            gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
            self._grid = (gx, gy)
        return self._grid

    def subject_flow(self, src_small: np.ndarray, dst_small: np.ndarray,
                     src_matte: np.ndarray) -> np.ndarray:
        """Backward flow (dst -> src) at full size, with the subject's fitted motion in a band
        around its edge."""
        h, w = src_matte.shape
        fb_small = self.backward(dst_small, src_small)
        fh, fw = fb_small.shape[:2]
        sx, sy = w / fw, h / fh
        fb = cv2.resize(fb_small, (w, h), interpolation=cv2.INTER_LINEAR)
        fb[..., 0] *= sx
        fb[..., 1] *= sy
        solid = (src_matte > 0.5).astype(np.uint8)
        ys, xs = np.nonzero(solid)
        if len(xs) < 16:
            return fb
        size = max(xs.max() - xs.min(), ys.max() - ys.min()) + 1
        # band width: 8% of the subject, at most half its thickest part (thin limbs)
        thick = float(cv2.distanceTransform(solid, cv2.DIST_L2, 3).max())
        r = max(1, int(min(0.08 * size, 0.5 * thick)))
        # where the subject's interior went: forward flow at working size
        inner = cv2.erode(cv2.resize(solid, (fw, fh), interpolation=cv2.INTER_NEAREST),
                          _disc(max(1, round(r / sx))))
        iy, ix = np.nonzero(inner)
        if len(ix) < 16:
            return fb
        ff = self.backward(src_small, dst_small)
        step = max(1, len(ix) // 4000)
        ix, iy = ix[::step], iy[::step]
        src_pts = np.stack([ix * sx, iy * sy], 1).astype(np.float32)
        dst_pts = src_pts + ff[iy, ix] * np.float32([sx, sy])
        affine, _ = cv2.estimateAffine2D(src_pts, dst_pts, ransacReprojThreshold=1.0)
        if affine is None:
            return fb
        inv = cv2.invertAffineTransform(affine)
        gx, gy = self.grid(h, w)
        pred = (cv2.warpAffine(src_matte, affine, (w, h)) > 0.5).astype(np.uint8)
        band = cv2.dilate(pred, _disc(r)) > cv2.erode(pred, _disc(r))
        fb[..., 0][band] = (inv[0, 0] * gx + inv[0, 1] * gy + inv[0, 2] - gx)[band]
        fb[..., 1][band] = (inv[1, 0] * gx + inv[1, 1] * gy + inv[1, 2] - gy)[band]
        return fb

    def compose(self, maps: tuple[np.ndarray, np.ndarray] | None,
                flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Coordinate maps into the anchor frame after one more step along ``flow``."""
        h, w = flow.shape[:2]
        gx, gy = self.grid(h, w)
        px, py = gx + flow[..., 0], gy + flow[..., 1]
        if maps is None:
            return px, py
        return (cv2.remap(maps[0], px, py, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE),
                cv2.remap(maps[1], px, py, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))

    @staticmethod
    def sample(anchor: np.ndarray, maps: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        return cv2.remap(np.ascontiguousarray(anchor, np.float32), maps[0], maps[1],
                         cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
