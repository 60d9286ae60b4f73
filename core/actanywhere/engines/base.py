"""What every engine gets and returns, and the two ways an engine runs a shot.

An engine gets linear working-space pixels at plate resolution and returns, per frame, the
new background and the composite. A ``FrameEngine`` renders frames (or small windows of
frames) independently; a ``ShotEngine`` sees every plate frame before it generates anything.
"""

from __future__ import annotations

import importlib.util
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import catalog
from ..errors import SpecError
from ..media import frames as frames_mod
from ..media import raster
from ..motion.backdrop import Backdrop
from ..progress import Reporter


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


def over(subject: np.ndarray, matte: np.ndarray, background: np.ndarray) -> np.ndarray:
    """The premultiplied subject over the background (a new array; two full-frame passes)."""
    comp = background * (1.0 - matte)[..., None]
    comp += subject
    return comp


def settings_from(spec, from_model: Iterable[str] = ()) -> dict[str, str]:
    """Where each setting of the engine's section of ``spec`` (as the user gave it) comes
    from: ``{"diffusion.resolution": "model", "diffusion.seed": "spec", ...}``; "spec" when
    the ShotSpec sets it, "model" for the fields in ``from_model`` (filled from the model
    folder), else "default" (the ShotSpec's own default)."""
    section = catalog.engine(spec.engine.name).settings
    settings = getattr(spec, section, None) if section else None
    if settings is None:
        return {}
    given, model = settings.model_fields_set, set(from_model)
    return {f"{section}.{name}": "spec" if name in given else "model" if name in model
            else "default" for name in type(settings).model_fields}


def importable(module: str) -> bool:
    """Whether ``module`` is installed, found without importing it (torch takes seconds)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def span(shot_frames: str | None, frames: list[int], field: str) -> tuple[int, int] | None:
    """(first, total) of ``frames`` in ``shot_frames`` (a ``<settings>.shot_frames``, named
    ``field``), the whole shot a job is a part of (None: the job is the whole shot);
    SpecError when they are not a run of it."""
    if shot_frames is None:
        return None
    whole = frames_mod.parse_frames(shot_frames)
    first = whole.index(frames[0]) if frames and frames[0] in whole else -1
    if first < 0 or whole[first : first + len(frames)] != list(frames):
        raise SpecError(f"{field} {shot_frames}: this job's frames "
                        f"{frames_mod.compact(list(frames))} are not a run of them; give the "
                        "whole shot's range")
    return first, len(whole)


class Engine(ABC):
    """Made by ``engines.create(spec, color, report)``: ``cls(spec, color, report)``."""

    name: str = ""
    #: plate frames (evenly spaced over the whole shot) the engine measures before rendering
    calibration_frames: int = 0

    @abstractmethod
    def __init__(self, spec, color, report: Reporter) -> None:
        """Take the settings (and load a model) for one shot."""

    @classmethod
    def check(cls, spec, frames: list[int]) -> None:
        """Raise the error a run would give when the settings cannot work for this shot;
        no pixel read, no model loaded, nothing heavy imported."""
        del spec, frames  # engines whose settings always work

    @classmethod
    def effective(cls, spec) -> tuple[Any, dict[str, str]]:
        """(``spec`` as this engine runs it, where each setting of its section comes from:
        ``settings_from``). An engine whose model fills settings the ShotSpec leaves unset (a
        manifest's recommended settings, a folder's native size) returns the spec with them
        set, so the job records what runs (take.json, each frame's ``actanywhere:spec``) and a
        run from that record is the same run. Asked before the engine is made: reads a model
        folder's small files at most, imports nothing heavy."""
        return spec, settings_from(spec)

    @classmethod
    def check_split(cls, spec, name: str) -> None:
        """Raise a one-line SpecError when ``spec`` cannot be generated in parts that agree
        (farm export --split; asked only of engines whose traits say ``splittable``)."""
        del spec, name

    @classmethod
    def part_settings(cls, spec, overlap: int) -> tuple[dict[str, object], str | None]:
        """Fields of the engine's settings section that each part of a split take needs
        beyond ``shot_frames`` (parts share ``overlap`` frames), and a line saying why (None:
        nothing changes)."""
        del spec, overlap
        return {}, None

    @classmethod
    def gpu_memory_gib(cls, spec) -> float | None:
        """GiB of GPU memory a farm host needs to run ``spec`` (None: no estimate); asked at
        farm export, so nothing heavy is imported and no model loaded."""
        del spec
        return None

    @abstractmethod
    def prepare(self, background: Backdrop, pixel_aspect: float) -> None:
        """Receive the background, fitted to the plate's display window and moved by the
        shot's motion: ``background.at(frame)`` per frame, ``background.still`` for the
        reference frame."""

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
    ``generate``, then ``finish`` per output frame with its full-resolution input (kept by
    the job from the read pass, or read again)."""

    @abstractmethod
    def add(self, inp: EngineInput) -> None:
        """Take one plate frame (any thread, any order)."""

    @abstractmethod
    def generate(self, cancel: threading.Event | None = None) -> None:
        """Generate the shot from the frames added."""

    @abstractmethod
    def finish(self, inp: EngineInput) -> EngineOutput:
        """The output of one frame, from its full-resolution input."""
