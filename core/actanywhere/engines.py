"""Engines turn plate frames, mattes and a background into composited frames.

An engine gets linear working-space pixels at plate resolution and returns, per frame, the
generated background and the composite. ``composite`` needs no model and works per frame; the
diffusion engine (model/) needs whole windows of frames.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from . import raster
from .spec import CompositeSettings


@dataclass
class EngineInput:
    frame: int
    rgb: np.ndarray  # (H, W, 3) linear working space
    matte: np.ndarray  # (H, W) in [0, 1], 1 = subject
    premultiplied: bool


@dataclass
class EngineOutput:
    background: np.ndarray  # (H, W, 3): the new background behind the subject
    comp: np.ndarray  # (H, W, 3): subject over the new background


def subject_of(inp: EngineInput) -> np.ndarray:
    """Premultiplied subject colour, without the old set in a full plate's soft edges."""
    return inp.rgb if inp.premultiplied else raster.decontaminate(inp.rgb, inp.matte)


class Engine(ABC):
    name: str = ""
    #: plate frames (evenly spaced over the whole shot) the engine measures before rendering
    calibration_frames: int = 0

    @abstractmethod
    def prepare(self, background: np.ndarray, pixel_aspect: float) -> None:
        """Receive the background, already fitted to the plate's display window."""

    def calibrate(self, samples: list[EngineInput]) -> None:
        """Measure what must be one value for the whole shot (``calibration_frames`` of
        them, the same frames however much of the shot is rendered, so a resumed job
        matches)."""
        del samples  # engines that measure nothing


class FrameEngine(Engine):
    """Frames (or small groups of ``window`` frames) are rendered independently."""

    window: int = 1

    @abstractmethod
    def render(self, inputs: list[EngineInput],
               cancel: threading.Event | None = None) -> list[EngineOutput]:
        """One output per input, in order."""


class ShotEngine(Engine):
    """The whole shot is generated together: every frame is added (and reduced), then one
    ``generate``, then ``finish`` per output frame with the full-resolution input again."""

    @abstractmethod
    def add(self, inp: EngineInput) -> None:
        """Take one plate frame (any thread, any order)."""

    @abstractmethod
    def generate(self, cancel: threading.Event | None = None) -> None:
        """Generate the shot from the frames added."""

    @abstractmethod
    def finish(self, inp: EngineInput) -> EngineOutput:
        """The output of one frame, from its full-resolution input."""


class CompositeEngine(FrameEngine):
    """The no-model baseline: subject over the background plate, harmonised, with a shadow.

    A full plate (not premultiplied) has the old set mixed into the subject's soft edges; those
    edge pixels take the colour of the nearby solid subject instead (``raster.decontaminate``),
    so no fringe of the old background survives. Harmonisation multiplies the subject by one
    per-channel gain for the whole shot, ``(mean_bg / mean_subject) ** harmonize`` with the
    subject's mean over ``calibration_frames`` frames spread over the shot (an exposure and
    white-balance match that cannot flicker; 0, the default, leaves the subject untouched, so
    its highlights survive exactly). The contact shadow darkens the background along the
    ground line under the subject's lowest point.
    """

    name = "composite"
    window = 1

    def __init__(self, settings: CompositeSettings) -> None:
        self.settings = settings
        self.background: np.ndarray | None = None
        self.bg_mean: np.ndarray | None = None
        self.gain: np.ndarray | None = None
        self.calibration_frames = 5 if settings.harmonize > 0 else 0

    def prepare(self, background: np.ndarray, pixel_aspect: float) -> None:
        self.background = background
        self.bg_mean = np.maximum(background.reshape(-1, 3).mean(axis=0), 1e-6)

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
        bg = self.background
        if s.shadow > 0 and coverage > 0:
            h = matte.shape[0]
            shade = raster.soft_shadow(
                matte, (s.shadow_offset[0] * h, s.shadow_offset[1] * h), s.shadow_softness * h)
            shade *= -s.shadow
            shade += 1.0
            bg = bg * shade[..., None]
        # In place where we own the arrays: every full-frame pass counts at 2K.
        comp = bg * (1.0 - matte)[..., None]
        comp += fg
        return EngineOutput(background=bg, comp=comp)


def check(spec, frames: list[int]) -> None:
    """Settings of the chosen engine that cannot work for this shot, found before any pixel
    is read (``job.check``, so the worker refuses such a job at submit). No model is loaded."""
    from .errors import ModelError

    d = spec.diffusion
    if (spec.engine.name == "diffusion" and d.condition == "composite"
            and d.condition_frame is not None and d.condition_frame not in frames):
        raise ModelError(f"diffusion.condition_frame {d.condition_frame} is not in the shot's "
                         f"frames ({frames[0]}-{frames[-1]}); pick a plate frame")


def create(spec, color, report=None) -> Engine:
    """The engine a ShotSpec asks for (the diffusion engine loads its model here)."""
    if spec.engine.name == "composite":
        return CompositeEngine(spec.composite)
    try:
        from .model.engine import DiffusionEngine
    except ImportError as exc:
        from .errors import ModelError

        raise ModelError(f"engine 'diffusion' needs torch and diffusers ({exc.msg}); install "
                         "them with: python3 install.py setup --torch cpu (or cuda)") from exc
    return DiffusionEngine(spec, color, report) if report else DiffusionEngine(spec, color)
