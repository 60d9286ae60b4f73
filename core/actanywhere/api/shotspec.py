"""ShotSpecs as plain dicts, for hosts that cannot import pydantic: the format version, the
one list of fields that hold paths (made absolute here, and nowhere else), a builder, and
what a host's panel offers for each engine (``engines``, ``panel``: the settings it shows,
where they go, the values they start at).

The worker checks what it receives against the full schema (``GET /openapi.json`` serves it
as ``components.schemas.ShotSpec``) and answers 422 naming the field at fault.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from .. import catalog
from ..errors import SpecError

#: the ShotSpec format this build writes; older ones are upgraded by ``spec.MIGRATIONS``
SPEC_VERSION = 1

#: model kinds (``EngineTraits.model``) this package ships a model of; an engine whose kind
#: is not here needs ``engine.model`` (vace: a Wan VACE folder the user downloaded)
SHIPPED_MODELS = frozenset({"actanywhere"})

#: the engine settings a host's panel shows, by ShotSpec settings section, each with the
#: value the panel starts at (diffusion: the shipped model's recommended values; vace: its
#: section's defaults). A section not here shows none. Hosts name their knobs/properties as
#: the fields; an empty text is not sent (the engine's own default applies). Standard library
#: only, so it repeats the schema: tests/test_hosts_vace.py holds it to ``settings.py``.
PANEL: dict[str, dict[str, Any]] = {
    "diffusion": {"seed": 0, "steps": 25, "guidance": 2.0, "init_strength": 0.5},
    "vace": {"seed": 0, "steps": 30, "guidance": 5.0, "init_strength": 0.0, "prompt": "",
             "negative_prompt": ""},
}


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
        fix(matte.get("sam"), "resume_from")
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


def engines() -> tuple[list[catalog.EngineTraits], str]:
    """Every engine a host's menu offers (the catalog's, in order), and "" or the one line
    saying why a module ``ACTANYWHERE_ENGINES`` lists is missing from it (the catalog then
    holds all the others: a host says the line and goes on)."""
    try:
        return list(catalog.engines().values()), ""
    except SpecError as exc:  # raised once: the catalog does not try the module again
        return list(catalog.engines().values()), str(exc)


def panel(engine: str) -> dict[str, Any]:
    """The settings a host's panel shows for engine ``engine``, with the values they start
    at ({} for an engine with no settings section, or none named so)."""
    traits = catalog.engines().get(engine)
    return dict(PANEL.get(traits.settings or "", {})) if traits is not None else {}


def panel_settings(engine: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """Of a host panel's ``values`` (field -> value), those engine ``engine``'s settings
    section takes: the ``settings`` to ``build`` with. Empty text is left out (the engine's
    default prompt applies)."""
    fields = panel(engine)
    return {k: v for k, v in values.items() if k in fields and v is not None
            and not (isinstance(v, str) and not v.strip())}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):  # a host's 32-bit float property
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and \
            abs(float(a) - float(b)) < 1e-6
    return a == b


def switched(engine: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """What a host sets when the artist switches its engine to ``engine``: each field of the
    new engine's panel whose value in ``values`` is still the value some engine's panel
    starts it at takes the new engine's starting value (steps 25 -> 30 for vace); values the
    artist chose are kept, and fields the new engine does not show are left as they are."""
    out = {}
    for key, start in panel(engine).items():
        if key not in values:
            continue
        starts = [p[key] for p in PANEL.values() if key in p]
        if any(_same(values[key], s) for s in starts) and not _same(values[key], start):
            out[key] = start
    return out


def check_model(engine: str, model: str | None) -> None:
    """A one-line SpecError when engine ``engine`` needs a model folder this package does not
    ship (``SHIPPED_MODELS``) and ``model`` names none: said before a job is sent."""
    traits = catalog.engines().get(engine)
    if traits is None or traits.model is None or traits.model in SHIPPED_MODELS:
        return
    if not (model or "").strip():
        raise SpecError(f"the {engine} engine needs a model folder and none is set: "
                        f"{traits.summary}")


def build(plate: str, background: str, output: str, *, frames: str | None = None,
          plate_colorspace: str | None = None, background_colorspace: str | None = None,
          matte: dict[str, Any] | None = None, engine: str = "composite",
          model: str | None = None, settings: dict[str, Any] | None = None,
          diffusion: dict[str, Any] | None = None,
          composite: dict[str, Any] | None = None, color: dict[str, Any] | None = None,
          existing: str = "error", base: str | None = None, **more: Any) -> dict[str, Any]:
    """A ShotSpec dict with the current version; None values are left out (the worker's
    defaults, or a model's recommended settings, apply to them); relative paths are made
    absolute against ``base`` (default the current folder). ``settings``: the chosen
    engine's settings, put in its section (``catalog.engine(engine).settings``: ``vace`` for
    vace), over that section when it is also given by name; left out for an engine with no
    section. ``more``: other top-level sections or fields (``threads=2``, another engine's
    settings section); the settings sections of engines other than ``engine`` are left out,
    and so is ``model`` for an engine that uses none (a host's model folder kept from
    another engine). SpecError (``check_model``) for an engine that needs a model folder and
    has none."""
    check_model(engine, model)
    own = {"diffusion": diffusion, "composite": composite, **more}
    chosen = catalog.engines().get(engine)
    if chosen is not None and chosen.model is None:
        model = None
    if settings and chosen is not None and chosen.settings:
        own[chosen.settings] = {**(own.get(chosen.settings) or {}), **settings}
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
