"""The ``composite`` engine: the no-model baseline, frame by frame, no torch."""

from __future__ import annotations

import threading

import numpy as np

from ..media import raster
from ..motion.backdrop import Backdrop
from ..progress import Reporter, null_reporter
from ..spec import CompositeSettings
from .base import EngineInput, EngineOutput, FrameEngine, over, subject_of


class CompositeEngine(FrameEngine):
    """The no-model baseline: subject over the background plate (moved per frame by the shot's
    motion), harmonised, with a shadow.

    A full plate (not premultiplied) has the old set mixed into the subject's soft edges; those
    edge pixels take the colour of the nearby solid subject instead (``raster.decontaminate``),
    so no fringe of the old background survives. Harmonisation multiplies the subject by one
    per-channel gain for the whole shot, ``(mean_bg / mean_subject) ** harmonize`` with the
    subject's mean over ``calibration_frames`` frames spread over the shot (an exposure and
    white-balance match that cannot flicker; 0, the default, leaves the subject untouched, so
    its highlights survive exactly). The contact shadow (``raster.soft_shadow``, at plate
    scale: offset and softness are fractions of the plate's height) darkens the background
    from the matte's lowest points, where the feet touch the ground: darkest there (no gap
    under the feet), fading toward ``shadow_offset`` and blurred by ``shadow_softness``.
    """

    name = "composite"
    window = 1

    def __init__(self, spec, color, report: Reporter = null_reporter) -> None:
        del color, report  # works in the working space as given; nothing to report
        settings: CompositeSettings = spec.composite
        self.settings = settings
        self.background: Backdrop | None = None
        self.bg_mean: np.ndarray | None = None
        self.gain: np.ndarray | None = None
        self.calibration_frames = 5 if settings.harmonize > 0 else 0

    def prepare(self, background: Backdrop, pixel_aspect: float) -> None:
        self.background = background
        self.bg_mean = np.maximum(background.still.reshape(-1, 3).mean(axis=0), 1e-6)

    def calibrate(self, samples: list[EngineInput]) -> None:
        assert self.bg_mean is not None, "prepare() first"
        coverage = sum(float(s.matte.sum()) for s in samples)
        if self.settings.harmonize <= 0 or coverage <= 0:
            return
        total = sum(subject_of(s).sum(axis=(0, 1), dtype=np.float64) for s in samples)
        subj_mean = np.maximum(total / coverage, 1e-6)
        self.gain = np.clip((self.bg_mean / subj_mean) ** self.settings.harmonize,
                            0.25, 4.0).astype(np.float32)

    def render(self, inputs: list[EngineInput],
               cancel: threading.Event | None = None) -> list[EngineOutput]:
        return [self._one(inp) for inp in inputs]

    def _one(self, inp: EngineInput) -> EngineOutput:
        assert self.background is not None and self.bg_mean is not None, "prepare() first"
        s = self.settings
        matte = inp.matte
        fg = subject_of(inp)
        coverage = float(matte.sum())
        if self.gain is not None:
            fg = fg * self.gain
        bg = self.background.at(inp.frame)
        if s.shadow > 0 and coverage > 0:
            h = matte.shape[0]
            shade = raster.soft_shadow(
                matte, (s.shadow_offset[0] * h, s.shadow_offset[1] * h), s.shadow_softness * h)
            shade *= -s.shadow
            shade += 1.0
            bg = bg * shade[..., None]
        return EngineOutput(background=bg, comp=over(fg, matte, bg))
