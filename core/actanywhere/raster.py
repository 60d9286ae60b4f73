"""Pixel operations on float32 (H, W, C) or (H, W) arrays: resize, fit, blur, shift."""

from __future__ import annotations

from typing import Literal

import numpy as np
import OpenImageIO as oiio

FitMode = Literal["cover", "contain", "stretch"]


def _buf(a: np.ndarray) -> oiio.ImageBuf:
    return oiio.ImageBuf(np.ascontiguousarray(a, dtype=np.float32))


def _pixels(buf: oiio.ImageBuf, like: np.ndarray) -> np.ndarray:
    out = buf.get_pixels(oiio.FLOAT)
    return out[..., 0] if like.ndim == 2 else out


def resize(a: np.ndarray, width: int, height: int, quality: bool = True) -> np.ndarray:
    """Resize to (width, height): filtered (``quality``) or bilinear sampling (fast).

    Filtered uses a triangle filter scaled to the footprint when shrinking (no ringing, about
    2x faster than OIIO's default) and Catmull-Rom when enlarging (sharp, no blur)."""
    if a.shape[1] == width and a.shape[0] == height:
        return a
    nch = 1 if a.ndim == 2 else a.shape[2]
    roi = oiio.ROI(0, width, 0, height, 0, 1, 0, nch)
    if not quality:
        return _pixels(oiio.ImageBufAlgo.resample(_buf(a), roi=roi), a)
    shrinking = width * height < a.shape[0] * a.shape[1]
    name = "triangle" if shrinking else "catmull-rom"
    return _pixels(oiio.ImageBufAlgo.resize(_buf(a), filtername=name, roi=roi), a)


def fit(a: np.ndarray, width: int, height: int, mode: FitMode = "cover",
        pixel_aspect: float = 1.0) -> np.ndarray:
    """Fit an image into a (width, height) frame whose pixels are ``pixel_aspect`` wide.

    cover: fill the frame, crop the overflow (centred); contain: fit inside, pad with black;
    stretch: ignore aspect.
    """
    if mode == "stretch":
        return resize(a, width, height)
    src_h, src_w = a.shape[:2]
    # Scale in physical (square-pixel) units, then express the width in frame pixels.
    scale = (max if mode == "cover" else min)(width * pixel_aspect / src_w, height / src_h)
    new_w = max(1, round(src_w * scale / pixel_aspect))
    new_h = max(1, round(src_h * scale))
    scaled = resize(a, new_w, new_h)
    out = np.zeros((height, width) + a.shape[2:], np.float32)
    # Centre: crop when larger than the frame, pad when smaller.
    sx, dx = max(0, (new_w - width) // 2), max(0, (width - new_w) // 2)
    sy, dy = max(0, (new_h - height) // 2), max(0, (height - new_h) // 2)
    w, h = min(width, new_w), min(height, new_h)
    out[dy : dy + h, dx : dx + w] = scaled[sy : sy + h, sx : sx + w]
    return out


def downsample(a: np.ndarray, factor: int) -> np.ndarray:
    """Box-filter by an integer ``factor`` (edges padded with the last row and column)."""
    if factor <= 1:
        return a
    h, w = a.shape[:2]
    hs, ws = -(-h // factor), -(-w // factor)
    pad = [(0, hs * factor - h), (0, ws * factor - w)] + [(0, 0)] * (a.ndim - 2)
    padded = np.pad(a, pad, mode="edge")
    return padded.reshape(hs, factor, ws, factor, *a.shape[2:]).mean(axis=(1, 3))


def soft_shadow(matte: np.ndarray, offset_px: tuple[float, float], radius_px: float,
                reach_px: float | None = None) -> np.ndarray:
    """A contact shadow for ``matte`` (H, W): a blurred, offset copy of the matte that fades
    out above the subject's lowest point over ``reach_px`` (default 4 x radius), so it pools
    around where the subject touches the ground. Computed at reduced resolution."""
    h, w = matte.shape
    rows = np.nonzero(matte.max(axis=1) > 0.5)[0]
    if rows.size == 0:
        return np.zeros_like(matte)
    ground = rows[-1] + offset_px[1]
    reach = reach_px or 4.0 * radius_px
    yy = np.arange(h, dtype=np.float32)
    falloff = np.clip(1.0 - (ground - yy) / reach, 0.0, 1.0)[:, None]
    step = max(1, int(radius_px // 4))
    small = downsample(matte, step)
    hs, ws = small.shape
    dx, dy = round(offset_px[0] / step), round(offset_px[1] / step)
    small = _shift(small, dx, dy)
    sigma = max(radius_px / step, 0.5)
    small = _gaussian(small, sigma)
    up = resize(small, ws * step, hs * step, quality=False)
    return np.clip(up[:h, :w] * falloff, 0.0, 1.0)


def _shift(a: np.ndarray, dx: int, dy: int) -> np.ndarray:
    out = np.zeros_like(a)
    h, w = a.shape
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[yd, xd] = a[ys, xs]
    return out


def _gaussian(a: np.ndarray, sigma: float) -> np.ndarray:
    radius = max(1, int(3 * sigma))
    x = np.arange(-radius, radius + 1, dtype=np.float32)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    k /= k.sum()
    padded = np.pad(a, radius, mode="constant")
    rows = np.apply_along_axis(lambda r: np.convolve(r, k, mode="valid"), 1, padded)
    return np.apply_along_axis(lambda c: np.convolve(c, k, mode="valid"), 0, rows)
