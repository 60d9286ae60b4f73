"""Colour through OpenColorIO: sources to the scene-linear working space and back, and the
display-referred sRGB "model space" the diffusion model works in.

Policy (see docs/colour.md):
- Working space: ``Linear Rec.709 (sRGB)`` (scene-linear, Rec.709 primaries). Compositing
  happens here; outputs are written here unless an output colourspace is set.
- To model space: negatives (out-of-gamut) are clipped to 0; values above the knee are rolled
  off with an invertible exponential shoulder (``softclip``) or clipped at 1 (``clip``); then
  the sRGB transfer function encodes the result into [0, 1].
- From model space: the exact inverse. Highlights the model could not represent are not
  recovered in the generated background; the subject keeps its original values (above 1 and
  negative alike) because it is recomposited from the plate.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Literal

import numpy as np
import PyOpenColorIO as ocio

from .errors import SpecError

DEFAULT_CONFIG = "ocio://studio-config-v2.2.0_aces-v1.3_ocio-v2.4"
WORKING_SPACE = "Linear Rec.709 (sRGB)"
SRGB_SPACE = "sRGB Encoded Rec.709 (sRGB)"
HighlightPolicy = Literal["softclip", "clip"]

# Formats whose pixels are usually scene-linear floats; the rest default to sRGB-encoded.
_LINEAR_FORMATS = {"openexr", "hdr", "pfm"}


def config_ref(explicit: str | None = None) -> str:
    """The config to use: the ShotSpec's, else ``$OCIO``, else the pinned built-in one."""
    return explicit or os.environ.get("OCIO") or DEFAULT_CONFIG


@lru_cache(maxsize=8)
def load_config(ref: str) -> ocio.Config:
    try:
        return ocio.Config.CreateFromFile(ref)
    except Exception as exc:  # noqa: BLE001 - OCIO raises several unrelated types
        raise SpecError(f"colour.config {ref!r}: cannot load the OCIO config ({exc}); fix $OCIO or "
                        f"use {DEFAULT_CONFIG}") from exc


def default_colorspace(file_format: str) -> str:
    """The colourspace assumed for a file format when the ShotSpec names none."""
    return WORKING_SPACE if file_format.lower() in _LINEAR_FORMATS else SRGB_SPACE


class ColorContext:
    """Cached OCIO processors for one job."""

    def __init__(self, config: str | None = None, working_space: str = WORKING_SPACE,
                 highlight: HighlightPolicy = "softclip", knee: float = 0.8) -> None:
        self.ref = config_ref(config)
        self.config = load_config(self.ref)
        self.working_space = self.check(working_space, "colour.working_space")
        self.model_space = self.check(SRGB_SPACE, "colour.model_space") if self._has(
            SRGB_SPACE) else self._srgb_fallback()
        if not 0.0 < knee < 1.0:
            raise SpecError(f"colour.knee {knee}: must be between 0 and 1 (e.g. 0.8)")
        self.highlight = highlight
        self.knee = knee
        self._cpu: dict[tuple[str, str], ocio.CPUProcessor] = {}

    def _has(self, name: str) -> bool:
        return self.config.getColorSpace(name) is not None

    def _srgb_fallback(self) -> str:
        for cs in self.config.getColorSpaces():
            if "srgb" in cs.getName().lower() and "display" not in cs.getName().lower():
                return cs.getName()
        raise SpecError(f"colour.config {self.ref}: has no sRGB-encoded colourspace for the model")

    def check(self, name: str, field: str) -> str:
        if not self._has(name):
            known = ", ".join(cs.getName() for cs in list(self.config.getColorSpaces())[:12])
            raise SpecError(f"{field} {name!r}: not in OCIO config {self.ref}; known: {known}, ...")
        return self.config.getColorSpace(name).getName()

    def _processor(self, src: str, dst: str) -> ocio.CPUProcessor:
        key = (src, dst)
        if key not in self._cpu:
            self._cpu[key] = self.config.getProcessor(src, dst).getDefaultCPUProcessor()
        return self._cpu[key]

    def convert(self, rgb: np.ndarray, src: str, dst: str) -> np.ndarray:
        """``rgb`` (..., 3) float32 from ``src`` to ``dst``; a new array, or ``rgb`` itself when
        the spaces are the same (callers never modify the result in place)."""
        if src == dst:
            return rgb
        out = np.array(rgb, dtype=np.float32, order="C", copy=True)
        self._processor(src, dst).applyRGB(out)
        return out

    def to_working(self, rgb: np.ndarray, src: str) -> np.ndarray:
        return self.convert(rgb, src, self.working_space)

    def from_working(self, rgb: np.ndarray, dst: str) -> np.ndarray:
        return self.convert(rgb, self.working_space, dst)

    # model space -------------------------------------------------------------------------
    def to_model(self, linear: np.ndarray) -> np.ndarray:
        """Working-space linear RGB to display-referred sRGB in [0, 1] (see module policy)."""
        x = np.maximum(np.asarray(linear, np.float32), 0.0)
        x = soft_clip(x, self.knee) if self.highlight == "softclip" else np.minimum(x, 1.0)
        x = self.convert(x, self.working_space, self.model_space)
        return np.clip(x, 0.0, 1.0)

    def from_model(self, srgb: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`to_model` for values in [0, 1]."""
        x = self.convert(np.clip(srgb, 0.0, 1.0), self.model_space, self.working_space)
        x = np.clip(x, 0.0, 1.0)
        return soft_unclip(x, self.knee) if self.highlight == "softclip" else x


def soft_clip(x: np.ndarray, knee: float) -> np.ndarray:
    """Identity below ``knee``; above it, an exponential shoulder approaching 1."""
    span = 1.0 - knee
    over = np.maximum(x - knee, 0.0)
    return np.where(x > knee, knee + span * (1.0 - np.exp(-over / span)), x).astype(np.float32)


def soft_unclip(y: np.ndarray, knee: float) -> np.ndarray:
    """Inverse of :func:`soft_clip`; 1.0 maps to a finite ceiling (knee + 12 * span)."""
    span = 1.0 - knee
    t = np.clip((y - knee) / span, 0.0, 1.0 - 6e-6)
    return np.where(y > knee, knee - span * np.log1p(-t), y).astype(np.float32)
