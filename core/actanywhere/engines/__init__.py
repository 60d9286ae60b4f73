"""Engines turn plate frames, mattes and a background into output frames.

A registry in the manner of segment-anything's ``sam_model_registry``: an engine's name maps to
the module and class that implement it, imported only when a job picks it (so the composite
engine never imports torch). A new engine is one module here plus one line in ``REGISTRY``;
ShotSpec's ``engine.name`` choices come from it. The interfaces are in ``base``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import Engine

#: engine name -> "module:Class" inside this package
REGISTRY: dict[str, str] = {
    "composite": "composite:CompositeEngine",
    "diffusion": "diffusion:DiffusionEngine",
}
NAMES: tuple[str, ...] = tuple(REGISTRY)


def engine_class(name: str) -> type[Engine]:
    """The class registered as ``name`` (imported now)."""
    module, _, cls = REGISTRY[name].partition(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)


def check(spec, frames: list[int]) -> None:
    """Ask the chosen engine whether its settings can work for this shot, before any pixel is
    read and without loading a model (``job.check``: the worker refuses such a job at
    submit). Raises the error a run would."""
    engine_class(spec.engine.name).check(spec, frames)


def create(spec, color, report=None) -> Engine:
    """The engine a ShotSpec asks for (the diffusion engine loads its model here)."""
    from ..progress import null_reporter

    return engine_class(spec.engine.name)(spec, color, report or null_reporter)
