"""Engines turn plate frames, mattes and a background into output frames.

Which engines exist and what each is like (seeded, whole-shot, needs a GPU, model kind,
splittable on the farm) is in ``catalog``; this package holds their implementations and
the two calls a job makes: ``check`` (before any pixel) and ``create``. A new engine is one
module (here or in another package) plus one ``catalog.register_engine`` call. The
interfaces are in ``base``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import catalog

if TYPE_CHECKING:
    from .base import Engine


def engine_class(name: str) -> type[Engine]:
    """The class registered as ``name`` (imported now)."""
    return catalog.load(catalog.engine(name).entry)


def check(spec, frames: list[int]) -> None:
    """Ask the chosen engine whether its settings can work for this shot, before any pixel is
    read and without loading a model (``job.check``: the worker refuses such a job at
    submit). Raises the error a run would."""
    engine_class(spec.engine.name).check(spec, frames)


def create(spec, color, report=None) -> Engine:
    """The engine a ShotSpec asks for (the diffusion engine loads its model here)."""
    from ..progress import null_reporter

    return engine_class(spec.engine.name)(spec, color, report or null_reporter)
