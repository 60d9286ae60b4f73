"""The samplers a ShotSpec names (``diffusion.scheduler``): the one table of name -> diffusers
scheduler class, built from a checkpoint's scheduler config."""

from __future__ import annotations

from typing import Any

from diffusers import (
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    SchedulerMixin,
)

#: name -> (scheduler class, options it is built with); the first is the default. The spec's
#: ``DiffusionSettings.scheduler`` allows exactly these names (tests/test_model.py checks).
SCHEDULERS: dict[str, tuple[type[SchedulerMixin], dict[str, Any]]] = {
    "ddim": (DDIMScheduler, {}),
    "dpmsolver++": (DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++"}),
    "euler_a": (EulerAncestralDiscreteScheduler, {}),
}
DEFAULT = next(iter(SCHEDULERS))


def make_scheduler(name: str, config: dict[str, Any]) -> SchedulerMixin:
    """The scheduler ``name`` from a checkpoint's scheduler config (a fresh one per run: it
    keeps per-run state; set it as the pipeline's ``scheduler``)."""
    if name not in SCHEDULERS:
        *most, last = SCHEDULERS
        raise ValueError(f"unknown scheduler {name!r}; use {', '.join(most)} or {last}")
    cls, options = SCHEDULERS[name]
    return cls.from_config({k: v for k, v in config.items() if not k.startswith("_")},
                           **options)
