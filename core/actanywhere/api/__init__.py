"""The host-neutral layer: what Nuke, Blender, the CLI's ``--worker`` runs and the farm
exporter share. Standard library only (Python 3.10+; no numpy, torch, pydantic or OIIO), so
a host's own Python imports it.

- ``client``: talk to the worker (connect or start it, submit, follow, cancel)
- ``connection``: the worker's connection file; ``status``: progress stages, job statuses
- ``shotspec``: ShotSpec dicts (version, absolute paths, a builder); ``prompts``: key-frame
  prompt strings; ``patterns``: ``####`` / ``%04d`` frame patterns
- ``handle``: a job followed on a background thread, callbacks on the host's main thread
- ``takes``: versioned take folders and their records
"""

from .client import Client, WorkerError
from .handle import JobHandle, MainThreadQueue
from .shotspec import SPEC_VERSION, absolute_paths, build
from .takes import Take, Takes

__all__ = ["Client", "WorkerError", "JobHandle", "MainThreadQueue", "SPEC_VERSION",
           "absolute_paths", "build", "Take", "Takes"]
