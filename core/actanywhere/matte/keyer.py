"""Colour-difference keyer for green and blue screens, with despill (no model needed).

key = S - (b * O1 + (1 - b) * O2), S the screen channel, O1/O2 the other two (R, B for green;
R, G for blue), b = ``balance``. The screen's own key value K normalises it: matte = 1 - key / K,
then the black/white clips stretch it. Despill limits the screen channel to the same mix of the
other two, on the subject's colour only. Works on scene-linear colour.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ..errors import InputError
from ..media.imageio import Image
from .source import FrameSource, Warn


class KeyerParams(Protocol):
    """What the keyer reads (ShotSpec's ``matte.keyer`` has these fields)."""

    screen: str
    screen_color: tuple[float, float, float] | None
    balance: float
    clip_black: float
    clip_white: float
    despill: float


_CHANNELS = {"green": (1, 0, 2), "blue": (2, 0, 1)}


def _mix(rgb: np.ndarray, screen: str, balance: float) -> tuple[np.ndarray, np.ndarray]:
    s, o1, o2 = _CHANNELS[screen]
    return rgb[..., s], balance * rgb[..., o1] + (1.0 - balance) * rgb[..., o2]


#: a screen covers at least this fraction of the frame; less is a coloured object, not a screen
MIN_SCREEN_AREA = 0.05
#: a key that keeps more than this fraction of the frame as subject found no screen behind it
MAX_SUBJECT_COVERAGE = 0.9


def screen_color(rgb: np.ndarray, screen: str, where: str = "") -> np.ndarray:
    """Median colour of the pixels where the screen channel clearly dominates; an error when
    they cover less than ``MIN_SCREEN_AREA`` of the frame (a green object is not a screen)."""
    s, o1, o2 = _CHANNELS[screen]
    sub = rgb[::4, ::4].reshape(-1, 3)
    dominant = (sub[:, s] > 1.2 * np.maximum(sub[:, o1], sub[:, o2])) & (sub[:, s] > 0.02)
    found = np.count_nonzero(dominant)
    area = found / max(1, sub.shape[0])
    if found < 16 or area < MIN_SCREEN_AREA:
        raise InputError(f"{where}: no {screen} screen found in the frame (only {area:.1%} of "
                         f"it is {screen}, a screen covers at least {MIN_SCREEN_AREA:.0%}); "
                         f"check matte.keyer.screen or give matte.keyer.screen_color")
    return np.median(sub[dominant], axis=0).astype(np.float32)


def key(rgb: np.ndarray, settings: KeyerParams, where: str = "") -> tuple[np.ndarray,
                                                                           np.ndarray]:
    """(matte in [0, 1], despilled colour) for one linear RGB frame."""
    ref = (np.asarray(settings.screen_color, np.float32) if settings.screen_color is not None
           else screen_color(rgb, settings.screen, where))
    s_ref, o_ref = _mix(ref[None, None, :], settings.screen, settings.balance)
    k_ref = float((s_ref - o_ref).item())
    if k_ref <= 1e-6:
        raise InputError(f"{where}: the screen colour {tuple(round(float(c), 4) for c in ref)} "
                         f"is not {settings.screen}; check matte.keyer.screen / screen_color")
    s, o = _mix(rgb, settings.screen, settings.balance)
    matte = 1.0 - np.clip((s - o) / k_ref, 0.0, 1.0)
    lo, hi = settings.clip_black, max(settings.clip_white, settings.clip_black + 1e-3)
    matte = np.clip((matte - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)
    coverage = float(matte[::4, ::4].mean())
    if coverage > MAX_SUBJECT_COVERAGE:
        raise InputError(f"{where}: the key keeps {coverage:.0%} of the frame as subject: no "
                         f"{settings.screen} screen behind it; check matte.keyer.screen / "
                         "screen_color, or use another matte source")
    out = rgb
    if settings.despill > 0:
        out = rgb.copy()
        idx = _CHANNELS[settings.screen][0]
        spill = np.maximum(s - o, 0.0)
        out[..., idx] = s - settings.despill * spill
    return matte, out


class KeyerSource(FrameSource):
    """Green/blue-screen key of each frame; the subject's colour despilled."""

    def matte(self, frame: int, img: Image, rgb: np.ndarray, warn: Warn
              ) -> tuple[np.ndarray, np.ndarray]:
        return key(rgb, self.spec.keyer, img.info.path)

    def colour(self, img: Image, rgb: np.ndarray) -> np.ndarray:
        return key(rgb, self.spec.keyer, img.info.path)[1]
