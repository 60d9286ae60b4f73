"""The host-neutral layer: what Nuke, Blender, the CLI's ``--worker`` runs and the farm
exporter share. Standard library only (Python 3.10+; no numpy, torch, pydantic or OIIO), so
a host's own Python imports it.

- ``client``: talk to the worker (connect or start it, submit, follow, cancel)
- ``connection``: the worker's connection file; ``status``: progress stages, job statuses
- ``shotspec``: ShotSpec dicts (version, absolute paths, a builder); ``prompts``: key-frame
  prompt strings; ``patterns``: ``####`` / ``%04d`` frame patterns
- ``handle``: a job followed on a background thread, callbacks on the host's main thread
- ``takes``: versioned take folders and their records; ``take_session``: a take run
  through the worker (``takes.start``); ``atomic``: files written whole or not at all
"""

from __future__ import annotations

import importlib
from typing import Any

#: name -> the module of this package that defines it (imported when first asked for, so
#: ``import actanywhere.api.takes`` or ``.status`` loads no HTTP client)
_HOME = {"Client": "client", "WorkerError": "client", "JobHandle": "handle",
         "MainThreadQueue": "handle", "SPEC_VERSION": "shotspec",
         "absolute_paths": "shotspec", "build": "shotspec", "Take": "takes", "Takes": "takes"}

__all__ = list(_HOME)


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
