"""What a remote user's job needs of the worker's disks, checked at submit: every path it
names is absolute, each input it uses can be read and the output folder written, as the
worker sees them (after the client's path maps). Each refusal is an ``HttpError`` naming the
field and the worker's path, so the client can add the map it used. Nothing is opened or
created: existence and permissions only."""

from __future__ import annotations

import os
from typing import Any

from ..api.pathmap import spec_paths
from ..errors import InputError, OutputError
from .models import HttpError

#: fields read only under a setting: (field, section, setting, values that use it)
_USED_WHEN = {
    "matte.path": ("matte", "source", {"file"}),
    "matte.sam.checkpoint": ("matte", "source", {"sam", "sam2"}),
    "motion.path": ("motion", "source", {"file"}),
    "motion.weights": ("motion", "source", {"subject", "auto"}),
}
_PATTERNS = {"plate.path", "matte.path"}  # frame patterns: their folder is checked
#: made when needed (a job without it still runs), or read only where frames are there
_NOT_CHECKED = {"matte.sam.cache_dir", "matte.sam.resume_from"}


def _refuse(field: str, path: str, why: str, *, output: bool = False) -> HttpError:
    fix = ("choose an output folder the worker can write" if output else
           "check that the worker mounts it and that the client's path maps point there")
    err = OutputError if output else InputError
    return HttpError(409 if output else 422, f"{field}: {path} (as the worker sees it) {why}; "
                     f"{fix}", field, err.exit_code)


def _used(field: str, spec: dict[str, Any]) -> bool:
    rule = _USED_WHEN.get(field)
    if rule is None:
        return field not in _NOT_CHECKED
    section, setting, values = rule
    return (spec.get(section) or {}).get(setting) in values


def check(spec: dict[str, Any]) -> None:
    """HttpError for the first path of ``spec`` (a full ShotSpec dict, defaults included)
    that the worker cannot use."""
    for field, holder, key in spec_paths(spec):
        path = holder[key]
        if not os.path.isabs(path):
            raise HttpError(422, f"{field}: {path} is a relative path; a remote worker needs "
                            "absolute paths (the client makes them so)", field, 2)
        if field == "output.path":
            _writable(field, os.path.dirname(path))
        elif _used(field, spec):
            _readable(field, os.path.dirname(path) if field in _PATTERNS else path,
                      folder=field in _PATTERNS)


def _readable(field: str, path: str, *, folder: bool) -> None:
    if not os.path.exists(path):
        raise _refuse(field, path, "does not exist on the worker")
    if folder and not os.path.isdir(path):
        raise _refuse(field, path, "is not a folder")
    need = os.R_OK | (os.X_OK if os.path.isdir(path) else 0)
    if not os.access(path, need):
        raise _refuse(field, path, "cannot be read by the worker's user")


def _writable(field: str, folder: str) -> None:
    probe = folder
    while not os.path.exists(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise _refuse(field, probe, "is a file, not a folder", output=True)
    if not os.access(probe, os.W_OK | os.X_OK):
        raise _refuse(field, probe, "cannot be written by the worker's user", output=True)
