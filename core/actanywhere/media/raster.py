"""Pixel operations on float32 (H, W, C) or (H, W) arrays: resize, fit, blur, shift."""

from __future__ import annotations

from typing import Literal

import cv2
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
    2x faster than OIIO's default) and Catmull-Rom when enlarging (sharp, no blur), clamped to
    the source's local range: Catmull-Rom's negative lobes would otherwise ring next to HDR
    highlights (a sun of 50 next to a sky of 0.2 undershoots far below 0)."""
    if a.shape[1] == width and a.shape[0] == height:
        return a
    nch = 1 if a.ndim == 2 else a.shape[2]
    roi = oiio.ROI(0, width, 0, height, 0, 1, 0, nch)
    if not quality:
        return _pixels(oiio.ImageBufAlgo.resample(_buf(a), roi=roi), a)
    shrinking = width * height < a.shape[0] * a.shape[1]
    name = "triangle" if shrinking else "catmull-rom"
    out = _pixels(oiio.ImageBufAlgo.resize(_buf(a), filtername=name, roi=roi), a)
    if not shrinking:
        lo, hi = local_range(a)
        np.clip(out, resize(lo, width, height, quality=False),
                resize(hi, width, height, quality=False), out=out)
    return out


def local_range(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel minimum and maximum over each pixel's 3x3 neighbourhood (per channel)."""
    kernel = np.ones((3, 3), np.uint8)
    src = np.ascontiguousarray(a, np.float32)
    if src.ndim == 3 and src.shape[2] > 4:  # OpenCV morphology takes at most 4 channels
        parts = [local_range(src[..., i]) for i in range(src.shape[2])]
        return np.stack([p[0] for p in parts], -1), np.stack([p[1] for p in parts], -1)
    lo = cv2.erode(src, kernel, borderType=cv2.BORDER_REPLICATE)
    hi = cv2.dilate(src, kernel, borderType=cv2.BORDER_REPLICATE)
    return lo.reshape(a.shape), hi.reshape(a.shape)


def fill_nonfinite(a: np.ndarray) -> tuple[np.ndarray, int]:
    """``a`` with every pixel that holds a NaN or Inf replaced by the mean of its finite
    neighbours (growing outward until filled; 0 where a whole image is non-finite), and the
    number of such pixels. Unlike clamping Inf to 65504, nothing huge is left for a filter to
    spread."""
    bad = ~np.isfinite(a)
    if a.ndim == 3:
        bad = bad.any(axis=2)
    count = int(bad.sum())
    if not count:
        return a, 0
    out = np.where(bad[..., None] if a.ndim == 3 else bad, 0.0, a).astype(np.float32)
    good = (~bad).astype(np.float32)
    num, den = out.copy(), good.copy()
    todo = bad.copy()
    for _ in range(64):
        if not todo.any() or not den.any():
            break
        num, den = _box3(num), _box3(den)
        ready = todo & (den > 1e-6)
        fill = num / np.maximum(den, 1e-6)[..., None] if a.ndim == 3 else num / np.maximum(
            den, 1e-6)
        out[ready] = fill[ready]
        todo &= ~ready
    out[todo] = 0.0
    return out, count


def fit(a: np.ndarray, width: int, height: int, mode: FitMode = "cover",
        pixel_aspect: float = 1.0, source_aspect: float = 1.0) -> np.ndarray:
    """Fit an image whose pixels are ``source_aspect`` wide (2.0: anamorphic) into a
    (width, height) frame whose pixels are ``pixel_aspect`` wide.

    cover: fill the frame, crop the overflow (centred); contain: fit inside, pad with black;
    stretch: ignore aspect.
    """
    if mode == "stretch":
        return resize(a, width, height)
    src_h, src_w = a.shape[:2]
    phys_w = src_w * source_aspect  # the source's width in square-pixel units
    # Scale in physical (square-pixel) units, then express the width in frame pixels.
    scale = (max if mode == "cover" else min)(width * pixel_aspect / phys_w, height / src_h)
    new_w = max(1, round(phys_w * scale / pixel_aspect))
    new_h = max(1, round(src_h * scale))
    scaled = resize(a, new_w, new_h)
    out = np.zeros((height, width) + a.shape[2:], np.float32)
    # Centre: crop when larger than the frame, pad when smaller.
    sx, dx = max(0, (new_w - width) // 2), max(0, (width - new_w) // 2)
    sy, dy = max(0, (new_h - height) // 2), max(0, (height - new_h) // 2)
    w, h = min(width, new_w), min(height, new_h)
    out[dy : dy + h, dx : dx + w] = scaled[sy : sy + h, sx : sx + w]
    return out


def shrink(a: np.ndarray, width: int) -> np.ndarray:
    """``a`` (H, W[, C]) averaged down to ``width`` pixels wide, aspect kept (OpenCV's area
    filter, up to four channels at a time); an image at most that wide is returned as is.
    The colour of an RGBA frame (a view of its first three channels) is resized with its
    alpha rather than copied out first (a 2K copy costs three times the resize)."""
    h, w = a.shape[:2]
    if w <= width:
        return a
    size = (width, max(1, round(h * width / w)))
    base = a.base
    if a.ndim == 3 and not a.flags.c_contiguous and isinstance(base, np.ndarray) and \
            base.ndim == 3 and base.shape[:2] == (h, w) and a.shape[2] < base.shape[2] <= 4 \
            and base.flags.c_contiguous and base.dtype == np.float32 and \
            a.strides == base[..., : a.shape[2]].strides and \
            a.__array_interface__["data"][0] == base.__array_interface__["data"][0]:
        return cv2.resize(base, size, interpolation=cv2.INTER_AREA)[..., : a.shape[2]]
    src = np.ascontiguousarray(a, np.float32)
    if src.ndim == 2:
        return cv2.resize(src, size, interpolation=cv2.INTER_AREA)
    parts = [cv2.resize(np.ascontiguousarray(src[..., i : i + 4]), size,
                        interpolation=cv2.INTER_AREA).reshape(size[1], size[0], -1)
             for i in range(0, src.shape[2], 4)]
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=2)


def rgb3(a: np.ndarray) -> np.ndarray:
    """Three colour channels of ``a`` (H, W[, C]): its first three (a view), or its first
    channel repeated (a luminance image, or one with only luminance and alpha)."""
    if a.ndim == 2:
        a = a[..., None]
    return a[..., :3] if a.shape[2] >= 3 else np.repeat(a[..., :1], 3, axis=2)


def spread(items: list, count: int) -> list:
    """``count`` items evenly spaced from first to last (all of them when fewer)."""
    if len(items) <= count:
        return list(items)
    if count <= 1:
        return list(items[:count])
    return [items[round(i * (len(items) - 1) / (count - 1))] for i in range(count)]


def grid(tiles: list[list[np.ndarray]], gap: int = 4, fill: float = 0.1) -> np.ndarray:
    """Rows of tiles (H, W, >=3) of one size laid out in a grid with ``gap`` pixels
    between and around them, on ``fill`` grey (RGB)."""
    th, tw = tiles[0][0].shape[:2]
    cols = max(len(r) for r in tiles)
    sheet = np.full((len(tiles) * (th + gap) + gap, cols * (tw + gap) + gap, 3), fill,
                    np.float32)
    for r, row in enumerate(tiles):
        for c, tile in enumerate(row):
            y, x = gap + r * (th + gap), gap + c * (tw + gap)
            sheet[y : y + th, x : x + tw] = tile[:th, :tw, :3]
    return sheet


def downsample(a: np.ndarray, factor: int) -> np.ndarray:
    """Box-filter by an integer ``factor`` (edges padded with the last row and column)."""
    if factor <= 1:
        return a
    h, w = a.shape[:2]
    hs, ws = -(-h // factor), -(-w // factor)
    pad = [(0, hs * factor - h), (0, ws * factor - w)] + [(0, 0)] * (a.ndim - 2)
    padded = np.pad(a, pad, mode="edge")
    return padded.reshape(hs, factor, ws, factor, *a.shape[2:]).mean(axis=(1, 3))


def decontaminate(rgb: np.ndarray, matte: np.ndarray, solid: float = 0.98) -> np.ndarray:
    """Premultiplied subject colour from a full plate, without the old background in its edges.

    Where the matte is solid (>= ``solid``) the plate colour is the subject's. In the soft edge
    the plate mixes subject and old set, so the colour there is replaced by a smooth
    extension of the nearby solid colour (normalised blur at quarter resolution), then
    multiplied by the matte. Work is limited to the matte's bounding box.
    """
    out = np.zeros_like(rgb, dtype=np.float32)
    ys, xs = np.nonzero(matte.max(axis=1) > 0)[0], np.nonzero(matte.max(axis=0) > 0)[0]
    if ys.size == 0:
        return out
    pad = 8
    y0, y1 = max(0, ys[0] - pad), min(matte.shape[0], ys[-1] + pad + 1)
    x0, x1 = max(0, xs[0] - pad), min(matte.shape[1], xs[-1] + pad + 1)
    m = matte[y0:y1, x0:x1]
    c = rgb[y0:y1, x0:x1]
    core = (m >= solid).astype(np.float32)
    edge = (m > 0) & (m < solid)
    colour = c
    if edge.any() and core.any():
        factor = 4 if min(m.shape) >= 32 else 1
        num = downsample(c * core[..., None], factor)
        den = downsample(core, factor)
        for _ in range(3):  # grow the solid colour outward a few (coarse) pixels
            num = _box3(num)
            den = _box3(den)
        num = resize(num, m.shape[1], m.shape[0], quality=False)
        den = resize(den, m.shape[1], m.shape[0], quality=False)
        extended = num / np.maximum(den, 1e-6)[..., None]
        colour = np.where((edge & (den > 1e-4))[..., None], extended, c)
    out[y0:y1, x0:x1] = colour * m[..., None]
    return out


def _box3(a: np.ndarray) -> np.ndarray:
    """3x3 box blur with zero padding."""
    p = np.pad(a, [(1, 1), (1, 1)] + [(0, 0)] * (a.ndim - 2))
    rows = p[:-2] + p[1:-1] + p[2:]
    return (rows[:, :-2] + rows[:, 1:-1] + rows[:, 2:]) / 9.0


def soft_shadow(matte: np.ndarray, offset_px: tuple[float, float], radius_px: float,
                reach_px: float | None = None) -> np.ndarray:
    """A contact shadow (H, W) in [0, 1], darkest (1) where the subject touches the ground.

    The contact line runs through the subject's lowest points: in each column, the lowest
    matte pixel (> 0.5) within ``reach_px`` (default 4 x radius) of the subject's lowest row,
    drawn straight across the columns between (under both feet, not one ground line).
    Along the ground the shadow is where the subject is near that row (weighted toward it:
    feet, not a hand held low), blurred by ``radius_px``; from the contact line it fades
    toward ``offset_px``: down the frame over radius x 0.6 + y (up over radius x 0.3; a
    negative y swaps them: a light in front of the subject), leaning x pixels sideways by
    the end of the fade. Its peak is 1 at the contact, so the engine's opacity means what it
    says; only the rows it reaches are computed.
    """
    h, w = matte.shape
    rows = np.nonzero(matte.max(axis=1) > 0.5)[0]
    if rows.size == 0:
        return np.zeros_like(matte)
    ground = int(rows[-1])
    top = max(0, int(ground - (reach_px or 4.0 * radius_px)))
    band = matte[top : ground + 1]
    solid = band > 0.5
    cols = np.nonzero(solid.any(axis=0))[0]
    lowest = ground - np.argmax(solid[::-1], axis=0)
    contact = np.interp(np.arange(w), cols, lowest[cols]).astype(np.float32)
    closeness = np.linspace(0.2, 1.0, band.shape[0], dtype=np.float32)[:, None]
    profile = _gaussian1d((band * closeness).max(axis=0), max(radius_px, 0.5))
    peak = float(profile.max())
    if peak <= 1e-6:
        return np.zeros_like(matte)
    profile /= peak
    ox, oy = offset_px
    sign = -1.0 if oy < 0 else 1.0
    ahead = max(radius_px * 0.6 + abs(oy), 0.5)  # the fade toward the offset
    behind = max(radius_px * 0.3, 0.5)
    lo = max(0, int(contact.min() - 3 * (behind if sign > 0 else ahead)))
    hi = min(h, int(contact.max() + 3 * (ahead if sign > 0 else behind)) + 2)
    along = (np.arange(lo, hi, dtype=np.float32)[:, None] - contact[None, :]) * sign
    fade = np.exp(-0.5 * (along / np.where(along >= 0, ahead, behind)) ** 2)
    if ox:
        lean = ox * np.clip(along / max(abs(oy), radius_px, 1.0), 0.0, 1.0)
        xs = np.arange(w, dtype=np.float32)
        ground_row = np.interp((xs[None, :] - lean).ravel(), xs, profile, left=0.0,
                               right=0.0).reshape(along.shape)
    else:
        ground_row = np.broadcast_to(profile[None, :], along.shape)
    out = np.zeros_like(matte, dtype=np.float32)
    out[lo:hi] = np.clip(fade * ground_row, 0.0, 1.0)
    return out


def _gaussian1d(a: np.ndarray, sigma: float) -> np.ndarray:
    radius = max(1, int(3 * sigma))
    x = np.arange(-radius, radius + 1, dtype=np.float32)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    # Pad then "valid": the result has len(a) even when the kernel is longer than ``a``.
    return np.convolve(np.pad(a, radius), k / k.sum(), mode="valid").astype(np.float32)
