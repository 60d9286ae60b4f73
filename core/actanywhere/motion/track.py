"""``track``: the background's motion from the plate itself, outside the (grown) matte.

Corners (``cv2.goodFeaturesToTrack``) are followed with pyramidal Lucas-Kanade (forward and
backward, so bad tracks are dropped) and a model is fitted robustly (RANSAC): similarity,
affine or homography. Frame-to-frame steps are chained, and every frame is re-anchored to the
reference frame (the reference warped by the chained guess, its corners followed to this
frame, the residual fitted) wherever enough of it still overlaps, so errors do not accumulate
over a long shot and a strong zoom or roll since the reference does not defeat the match.
Confidence is the fraction of inliers. A frame with too little background texture (a green
screen, a subject filling the frame) stops with a one-line error naming it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import InputError
from .format import Motion

MODELS = ("similarity", "affine", "homography")


@dataclass
class TrackSettings:
    model: str = "similarity"
    scale: int = 960  # long side (px) tracking works at
    min_features: int = 30
    grow: float = 0.02  # matte grown by this fraction of the height (the subject's edges move)
    corners: int = 800


def _gray(rgb: np.ndarray) -> np.ndarray:
    """Linear RGB as 8-bit display-ish luminance (corners need contrast in the darks too)."""
    y = rgb[..., 0] * 0.2126 + rgb[..., 1] * 0.7152 + rgb[..., 2] * 0.0722
    return (np.clip(np.sqrt(np.maximum(y, 0.0)), 0, 1) * 255).astype(np.uint8)


def _fit(src: np.ndarray, dst: np.ndarray, model: str) -> tuple[np.ndarray | None, int]:
    if len(src) < 4:
        return None, 0
    if model == "homography":
        h, inl = cv2.findHomography(src, dst, cv2.RANSAC, 1.0)
    else:
        est = cv2.estimateAffinePartial2D if model == "similarity" else cv2.estimateAffine2D
        a, inl = est(src, dst, method=cv2.RANSAC, ransacReprojThreshold=1.0)
        h = None if a is None else np.vstack([a, [0.0, 0.0, 1.0]])
    return h, int(inl.sum()) if inl is not None else 0


def _follow(a: np.ndarray, b: np.ndarray, pts: np.ndarray,
            guess: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(points in a, their places in b) that survive the forward-backward check."""
    lk = {"winSize": (21, 21), "maxLevel": 4,
          "criteria": (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01)}
    p0 = pts.reshape(-1, 1, 2).astype(np.float32)
    if guess is not None:
        p1, st, _ = cv2.calcOpticalFlowPyrLK(a, b, p0, guess.reshape(-1, 1, 2).astype(
            np.float32).copy(), flags=cv2.OPTFLOW_USE_INITIAL_FLOW, **lk)
    else:
        p1, st, _ = cv2.calcOpticalFlowPyrLK(a, b, p0, None, **lk)
    back, st2, _ = cv2.calcOpticalFlowPyrLK(b, a, p1, None, **lk)
    ok = (st.ravel() == 1) & (st2.ravel() == 1) & \
        (np.linalg.norm((back - p0).reshape(-1, 2), axis=1) < 0.5)
    return p0.reshape(-1, 2)[ok], p1.reshape(-1, 2)[ok]


def _mask(matte: np.ndarray, grow_px: int) -> np.ndarray:
    """Where the background is: outside the matte grown by ``grow_px``."""
    subject = (matte > 0.05).astype(np.uint8)
    if grow_px > 0:
        subject = cv2.dilate(subject, np.ones((2 * grow_px + 1,) * 2, np.uint8))
    return ((1 - subject) * 255).astype(np.uint8)


def estimate(frames: Iterable[tuple[int, np.ndarray, np.ndarray]], width: int, height: int,
             settings: TrackSettings | None = None) -> Motion:
    """``frames``: (frame, linear RGB (H, W, 3) in the display window, matte (H, W)) in
    frame order; the first is the reference."""
    s = settings or TrackSettings()
    if s.model not in MODELS:
        raise InputError(f"motion model {s.model!r}: use one of {', '.join(MODELS)}")
    k = min(1.0, s.scale / max(width, height))
    size = (max(8, round(width * k)), max(8, round(height * k)))
    to_small = np.diag([size[0] / width, size[1] / height, 1.0])
    to_full = np.linalg.inv(to_small)
    out: dict[int, np.ndarray] = {}
    conf: dict[int, float] = {}
    ref_img = ref_pts = prev_img = prev_pts = None
    chained = np.eye(3)
    for frame, rgb, matte in frames:
        img = cv2.resize(_gray(rgb), size, interpolation=cv2.INTER_AREA)
        mask = cv2.resize(_mask(matte, round(s.grow * height)), size,
                          interpolation=cv2.INTER_NEAREST)
        pts = cv2.goodFeaturesToTrack(img, s.corners, 0.01, 6, mask=mask)
        pts = np.zeros((0, 2), np.float32) if pts is None else pts.reshape(-1, 2)
        if ref_img is None:
            if len(pts) < s.min_features:
                raise _too_little(frame, len(pts), s)
            ref_img, ref_pts, reference = img, pts, frame
            out[frame], conf[frame] = np.eye(3), 1.0
            prev_img, prev_pts = img, pts
            continue
        a, b = _follow(prev_img, img, prev_pts)
        step, inliers = _fit(a, b, s.model)
        if step is None or inliers < s.min_features:
            raise _too_little(frame, inliers, s)
        chained = step @ chained
        # re-anchor: the reference warped by the chained guess (so a zoom or roll since the
        # reference does not defeat the match), its corners followed here: the residual
        guess = cv2.perspectiveTransform(ref_pts.reshape(-1, 1, 2).astype(np.float64),
                                         chained).reshape(-1, 2)
        inside = (guess[:, 0] >= 8) & (guess[:, 0] < size[0] - 9) & \
            (guess[:, 1] >= 8) & (guess[:, 1] < size[1] - 9)
        warped = cv2.warpPerspective(ref_img, chained, size, flags=cv2.INTER_LINEAR)
        ra, rb = _follow(warped, img, guess[inside])
        residual, direct_inl = _fit(ra, rb, s.model)
        if residual is not None and direct_inl >= s.min_features:
            chained, used, total = residual @ chained, direct_inl, len(ra)
        else:
            used, total = inliers, len(a)
        out[frame] = to_full @ chained @ to_small
        conf[frame] = used / max(total, 1)
        prev_img, prev_pts = img, pts if len(pts) >= s.min_features else b
    if not out:
        raise InputError("motion track: no frames to track")
    return Motion("track", width, height, reference, out, conf)


def _too_little(frame: int, found: int, s: TrackSettings) -> InputError:
    return InputError(
        f"motion track: frame {frame} has too little background texture outside the matte "
        f"({found} usable corners, {s.min_features} needed; a green screen or a subject "
        "filling the frame); use motion source keys, or none")
