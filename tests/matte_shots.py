"""Synthetic shots with a known matte for the matte tests and benchmarks: a textured subject
(a body and a head) walking across a textured background or a lit green screen."""

from __future__ import annotations

import os

import cv2
import numpy as np
from conftest import write_exr


def _noise(h: int, w: int, rng: np.random.Generator, scale: int) -> np.ndarray:
    small = rng.random((max(2, h // scale), max(2, w // scale), 3)).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def _coverage(h: int, w: int, cx: float, cy: float, size: float, ss: int = 4) -> np.ndarray:
    """Anti-aliased subject coverage: an ellipse body and a round head."""
    big = np.zeros((h * ss, w * ss), np.uint8)
    c = lambda v: int(round(v * ss))  # noqa: E731
    cv2.ellipse(big, (c(cx), c(cy)), (c(size * 0.32), c(size * 0.55)), 0, 0, 360, 255, -1)
    cv2.circle(big, (c(cx), c(cy - size * 0.75)), c(size * 0.22), 255, -1)
    return cv2.resize(big.astype(np.float32) / 255.0, (w, h), interpolation=cv2.INTER_AREA)


def walking_shot(count: int = 24, width: int = 320, height: int = 180, speed: float = 3.0,
                 seed: int = 0, screen: str | None = None
                 ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(linear RGB frames, true mattes). ``screen="green"``: a green screen with a lighting
    falloff and noise, and green spill on the subject's edge."""
    rng = np.random.default_rng(seed)
    h, w = height, width
    if screen == "green":
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        falloff = 1.0 - 0.35 * (((xx - w / 2) / w) ** 2 + ((yy - h / 2) / h) ** 2)
        bg = np.stack([0.05 * falloff, 0.45 * falloff, 0.08 * falloff], -1)
        bg = bg * (0.93 + 0.14 * _noise(h, w, rng, 3))
    else:
        bg = 0.08 + 0.5 * _noise(h, w, rng, 12) * _noise(h, w, rng, 3)
    n = _noise(h, w, rng, 6)
    # warm skin/cloth tones, well away from green (as on a real screen shoot)
    tex = np.stack([0.45 + 0.45 * n[..., 0], 0.2 + 0.3 * n[..., 1], 0.15 + 0.4 * n[..., 2]], -1)
    size = 0.45 * h
    frames, mattes = [], []
    for i in range(count):
        cx = 0.25 * w + speed * i
        cy = 0.62 * h + 0.02 * h * np.sin(i * 0.6)
        m = _coverage(h, w, cx, cy, size)
        shift = np.float32([[1, 0, cx - 0.25 * w], [0, 1, cy - 0.62 * h]])
        subj = cv2.warpAffine(tex, shift, (w, h), borderMode=cv2.BORDER_REFLECT)
        if screen == "green":  # spill: the screen's light on the subject's edges
            edge = np.clip(1.0 - np.abs(m - 0.5) * 2, 0, 1)[..., None]
            subj = subj + 0.12 * edge * np.array([0, 1, 0], np.float32)
        frames.append((subj * m[..., None] + bg * (1 - m[..., None])).astype(np.float32))
        mattes.append(m.astype(np.float32))
    return frames, mattes


def write_sequence(folder: str, frames: list[np.ndarray], first: int = 1001,
                   alpha: list[np.ndarray] | None = None, name: str = "plate") -> str:
    """EXR frames (RGB or RGBA) named ``name.####.exr``; returns the pattern."""
    os.makedirs(folder, exist_ok=True)
    for i, rgb in enumerate(frames):
        h, w = rgb.shape[:2]
        names: tuple[str, ...] = ("R", "G", "B")
        px = rgb
        if alpha is not None:
            names += ("A",)
            px = np.concatenate([rgb, alpha[i][..., None]], -1)
        write_exr(os.path.join(folder, f"{name}.{first + i:04d}.exr"), px, names,
                  display=(0, 0, w, h))
    return os.path.join(folder, f"{name}.####.exr")


def iou(a: np.ndarray, b: np.ndarray) -> float:
    ma, mb = a > 0.5, b > 0.5
    return float(np.count_nonzero(ma & mb) / max(1, np.count_nonzero(ma | mb)))
