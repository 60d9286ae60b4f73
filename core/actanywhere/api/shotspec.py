"""ShotSpecs as plain dicts, for hosts that cannot import pydantic: the format version, the
one list of fields that hold paths (made absolute here, and nowhere else), and a builder.

The worker checks what it receives against the full schema (``GET /openapi.json`` serves it
as ``components.schemas.ShotSpec``) and answers 422 naming the field at fault.
"""

from __future__ import annotations

import os
from typing import Any

from .. import catalog
from ..errors import SpecError

#: the ShotSpec format this build writes; older ones are upgraded by ``spec.MIGRATIONS``
SPEC_VERSION = 1


def absolute_paths(data: dict[str, Any], base: str) -> dict[str, Any]:
    """Every file path of a spec dict made absolute against ``base``, in place (and returned):
    a spec file's folder (paths in a file are relative to it, as artists expect), a host
    script's folder, or the current folder before a spec goes to a worker that runs
    elsewhere. The one list of the ShotSpec fields that hold paths."""

    def fix(holder: Any, key: str) -> None:
        value = holder.get(key) if isinstance(holder, dict) else None
        if isinstance(value, str) and value and "://" not in value:  # not ocio://default
            # join keeps absolute paths as they are
            holder[key] = os.path.abspath(os.path.join(base, holder[key]))

    for section in ("plate", "matte", "background", "motion", "output"):
        fix(data.get(section), "path")
    matte = data.get("matte")
    if isinstance(matte, dict):
        for key in matte.get("keys") or []:
            fix(key, "matte")
        fix(matte.get("sam"), "checkpoint")
    fix(data.get("motion"), "weights")
    fix(data.get("engine"), "model")
    fix(data.get("color"), "config")
    return data


def _clean(value: Any) -> Any:
    """Nested dicts without None values and without sections left empty."""
    if isinstance(value, dict):
        out = {k: _clean(v) for k, v in value.items() if v is not None}
        return {k: v for k, v in out.items() if v != {}}
    return value


def build(plate: str, background: str, output: str, *, frames: str | None = None,
          plate_colorspace: str | None = None, background_colorspace: str | None = None,
          matte: dict[str, Any] | None = None, engine: str = "composite",
          model: str | None = None, diffusion: dict[str, Any] | None = None,
          composite: dict[str, Any] | None = None, color: dict[str, Any] | None = None,
          existing: str = "error", base: str | None = None, **more: Any) -> dict[str, Any]:
    """A ShotSpec dict with the current version; None values are left out (the worker's
    defaults, or a model's recommended settings, apply to them); relative paths are made
    absolute against ``base`` (default the current folder). ``more``: other top-level
    sections or fields (``threads=2``, another engine's settings section); the settings
    sections of engines other than ``engine`` are left out."""
    own = {"diffusion": diffusion, "composite": composite, **more}
    chosen = catalog.engines().get(engine)
    others = {t.settings for t in catalog.engines().values() if t.settings} - \
        {chosen.settings if chosen else None}
    data = _clean({
        "version": SPEC_VERSION,
        "plate": {"path": plate, "frames": frames, "colorspace": plate_colorspace},
        "matte": matte,
        "background": {"path": background, "colorspace": background_colorspace},
        "engine": {"name": engine, "model": model},
        **{k: v for k, v in own.items() if k not in others},
        "color": color,
        "output": {"path": output, "existing": existing},
    })
    return absolute_paths(data, base or os.getcwd())


#: no path or name in a ShotSpec is longer (Linux's PATH_MAX), nor nested deeper
MAX_TEXT = 4096
MAX_DEPTH = 16


def check_size(data: Any) -> None:
    """SpecError naming the field when ``data`` holds text longer than ``MAX_TEXT`` or nests
    deeper than ``MAX_DEPTH`` (checked without recursion, before any slower check)."""
    todo: list[tuple[str, Any, int]] = [("", data, 0)]
    while todo:
        where, value, depth = todo.pop()
        if depth > MAX_DEPTH:
            raise SpecError(f"{where or 'spec'}: nested more than {MAX_DEPTH} levels deep; a "
                            "ShotSpec's sections hold a few levels (docs/shotspec.md)")
        if isinstance(value, str) and len(value) > MAX_TEXT:
            raise SpecError(f"{where or 'spec'}: {len(value)} characters, at most {MAX_TEXT}; "
                            "give a real path or name")
        items = value.items() if isinstance(value, dict) else enumerate(value) \
            if isinstance(value, list) else ()
        for key, item in items:
            todo.append((f"{where}.{key}" if where else str(key), item, depth + 1))
