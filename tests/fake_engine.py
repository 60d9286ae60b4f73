"""A third engine that lives only in the tests (not a mock: a real engine, just a plain one).

Importing this module registers it, as a studio's own engine package would; processes learn
of it from ``ACTANYWHERE_ENGINES=fake_engine`` (with this folder on ``PYTHONPATH``). The
test (test_engine_plugin.py) checks that the CLI, the worker, takes, farm export and the
browser handle it with no change anywhere else: they ask its traits, not its name.
"""

from __future__ import annotations

import threading

import numpy as np

from actanywhere import catalog
from actanywhere.engines.base import EngineOutput, FrameEngine, over, subject_of

TRAITS = catalog.register_engine(catalog.EngineTraits(
    name="flat", entry="fake_engine:FlatEngine",
    summary="The background's mean colour behind the subject",
    # traits unlike both built-in engines' mix: frames independent (chunked on a farm),
    # yet a GPU host asked for; no model, no seed, no settings section
    needs_gpu=True))


class FlatEngine(FrameEngine):
    """Every frame: the moved background's mean colour, the subject over it."""

    name = "flat"

    def __init__(self, spec, color, report) -> None:
        del spec, color, report
        self.background = None

    def prepare(self, background, pixel_aspect: float) -> None:
        self.background = background

    def render(self, inputs, cancel: threading.Event | None = None) -> list[EngineOutput]:
        out = []
        for inp in inputs:
            bg = self.background.at(inp.frame)
            flat = np.empty_like(bg)
            flat[...] = bg.reshape(-1, 3).mean(axis=0)
            out.append(EngineOutput(background=flat, comp=over(subject_of(inp), inp.matte,
                                                               flat)))
        return out
