"""ShotSpec files and flags: load a JSON or TOML file, merge CLI flags into it, dump a spec,
and the Markdown table of every field (docs/shotspec.md is generated from it)."""

from __future__ import annotations

import json
import os
from typing import Any, get_args, get_origin

import tomllib
from pydantic import BaseModel

from .api.shotspec import absolute_paths
from .errors import SpecError
from .spec import ShotSpec


def load(path: str) -> dict[str, Any]:
    """Read a JSON or TOML ShotSpec file into a dict (validated later, with CLI overrides)."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise SpecError(f"{path}: cannot read the ShotSpec ({exc.strerror})") from exc
    try:
        if path.lower().endswith(".toml"):
            data = tomllib.loads(raw.decode("utf-8"))
        else:
            data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        kind = "TOML" if path.lower().endswith(".toml") else "JSON"
        why = "nested too deeply" if isinstance(exc, RecursionError) else exc
        raise SpecError(f"{path}: not valid {kind} ({why})") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: a ShotSpec is an object with plate, background and output")
    absolute_paths(data, os.path.dirname(os.path.abspath(path)))
    return data


def merge(base: dict[str, Any], overrides: dict[str, Any], where: str = "") -> dict[str, Any]:
    """Deep-merge ``overrides`` (from CLI flags; None values ignored) into ``base``; a
    SpecError names a section of ``base`` that is not an object."""
    out = dict(base)
    for key, value in overrides.items():
        if value is None:
            continue
        if isinstance(value, dict):
            section = out.get(key) or {}
            if not isinstance(section, dict):
                shown = json.dumps(section)[:60]
                raise SpecError(f"{where}{key}: is {shown} in the ShotSpec; a section is an "
                                "object of fields (e.g. \"plate\": {\"path\": "
                                "\"plate.####.exr\"}), see docs/shotspec.md")
            out[key] = merge(section, value, f"{where}{key}.")
        else:
            out[key] = value
    return out


def dump_json(spec: ShotSpec, set_only: bool = False) -> str:
    """The spec as JSON; ``set_only``: only the fields given (the rest stay defaults and the
    model's recommended settings when the file is run again)."""
    return spec.model_dump_json(indent=2, exclude_unset=set_only)


def reference_markdown(root: type[BaseModel] | None = None) -> str:
    """A Markdown table of every field of ``root`` (default ShotSpec; docs/shotspec.md and
    docs/training.md are generated from this)."""
    lines = ["| field | type | default | meaning |", "| --- | --- | --- | --- |"]

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, f in model.model_fields.items():
            ann = f.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                walk(ann, f"{prefix}{name}.")
                continue
            args = get_args(ann)
            if get_origin(ann) is list and args and isinstance(args[0], type) and \
                    issubclass(args[0], BaseModel):
                desc = (f.description or "").replace("|", "/")
                lines.append(f"| `{prefix}{name}` | list | `[]` | {desc} |")
                walk(args[0], f"{prefix}{name}[].")
                continue
            kind = str(ann).replace("typing.", "").replace("<class '", "").replace("'>", "")
            if f.is_required():
                default = "required"
            elif f.default_factory is not None:
                default = f"`{f.default_factory()}`"
            else:
                default = f"`{f.default}`"
            desc = (f.description or "").replace("|", "/")
            lines.append(f"| `{prefix}{name}` | {kind.replace('|', '/')} | {default} | {desc} |")

    walk(root or ShotSpec, "")
    return "\n".join(lines) + "\n"
