"""Several workers: the one a take goes to. Standard library only (Python 3.10+).

Each worker is asked for ``/v1/health`` (a short timeout); one that does not answer, refuses
the token or is not trusted is skipped with one warning line. Of those that answer, a worker
where the take's engine (and model) is warm (``warm`` in its health: the engines and models
of the jobs it ran that are still loaded) is taken first, the one with the fewest jobs ahead
(queued, plus one running) among them; else the one with the fewest jobs ahead; a tie goes to
the first in the list. ``pick`` says which in one line.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from . import pathmap
from .failure import WorkerError
from .remote import Remote

DEFAULT_MODEL = "(default)"  # the worker's name for "the engine's default model"
HEALTH_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Choice:
    """The worker a take goes to, why, and the workers skipped (one warning each)."""

    settings: Remote
    health: dict[str, Any]
    line: str
    warnings: tuple[str, ...]


def _ahead(health: dict[str, Any]) -> int:
    return int(health.get("queued") or 0) + (1 if health.get("running") else 0)


def _warm(health: dict[str, Any], engine: str, model: str | None) -> bool:
    for entry in health.get("warm") or []:
        if not isinstance(entry, dict) or entry.get("engine") != engine:
            continue
        have = entry.get("model")
        if have is None or model is None and have == DEFAULT_MODEL:
            return True
        if model is not None and have == model:
            return True
    return False


def _model_there(spec: dict[str, Any], settings: Remote) -> str | None:
    """The spec's model folder as that worker sees it (its path maps applied)."""
    model = (spec.get("engine") or {}).get("model")
    if not model:
        return None
    found = pathmap.to_worker(model, settings.path_maps) if settings.path_maps else None
    return os.path.normpath(found[0] if found else model)


def pick(workers: Sequence[Remote], spec: dict[str, Any],
         health: Callable[[Remote], dict[str, Any]]) -> Choice:
    """The worker for ``spec`` among ``workers``; ``health(settings)`` asks one (raising
    the client's WorkerError when it cannot). WorkerError naming every worker when none
    answers."""
    engine = str((spec.get("engine") or {}).get("name") or "composite")
    answered: list[tuple[Remote, dict[str, Any], bool]] = []
    warnings = []
    for settings in workers:
        try:
            info = health(settings)
        except WorkerError as exc:
            warnings.append(f"skipped the worker {settings.url}: {exc}")
            continue
        answered.append((settings, info, _warm(info, engine, _model_there(spec, settings))))
    if not answered:
        raise WorkerError(f"none of the {len(workers)} workers answered: "
                          + "; ".join(warnings) + "; check the workers list in the connection "
                          "file (or ACTANYWHERE_WORKER) and that the workers run")
    warm = [a for a in answered if a[2]]
    settings, info, is_warm = min(warm or answered, key=lambda a: _ahead(a[1]))
    others = ", ".join(f"{s.url} {_ahead(h)}" for s, h, _ in answered if s is not settings)
    why = (f"{engine} is warm there" if is_warm else "the shortest queue")
    line = (f"worker {settings.url}: {why} ({_ahead(info)} job(s) ahead"
            f"{'; others: ' + others if others else ''})")
    return Choice(settings, info, line, tuple(warnings))


def health_of(client_type: Callable[..., Any], timeout: float = HEALTH_TIMEOUT_S
              ) -> Callable[[Remote], dict[str, Any]]:
    """``pick``'s question to one worker, asked through a ``client_type`` (``Client``)."""
    def ask(settings: Remote) -> dict[str, Any]:
        return client_type(settings.url, settings.token, 0, timeout, None, ca=settings.ca,
                           path_maps=settings.path_maps, settings=settings).health()

    return ask
