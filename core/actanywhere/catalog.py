"""What engines and matte sources exist, and what each is like: data only, no pixels.

Registries in the manner of segment-anything's ``sam_model_registry``: a name maps to the
class that implements it (``entry``, imported only when a job picks it, so the composite
engine never imports torch) and to its traits, the questions the rest of the product asks of
it (does it take a seed, does it need a GPU, can the farm cut it into frame chunks or parts).
Nothing outside ``engines/`` branches on an engine's name: it asks ``engine(name)``.

A new engine is one module plus one ``register_engine`` call. Engines of other packages
(a studio's own) register themselves when their module is imported: list those modules in
``ACTANYWHERE_ENGINES`` (comma-separated) and every process (CLI, worker, farm task,
host) imports them on first use of the catalog. This module imports only the standard
library and ``errors`` (hosts' own Pythons import it through ``api``).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from .errors import SpecError

#: modules of other packages that register engines when imported (comma-separated)
PLUGINS_ENV = "ACTANYWHERE_ENGINES"


@dataclass(frozen=True)
class EngineTraits:
    """An engine as the product sees it."""

    name: str
    #: ``package.module:Class`` implementing ``engines.base.Engine``
    entry: str
    summary: str = ""
    #: the ShotSpec section holding its settings (``diffusion``), or None (no settings)
    settings: str | None = None
    #: its frames depend on ``<settings>.seed`` (takes are labelled and wedged by seed)
    seeded: bool = False
    #: it sees every plate frame before writing one (the farm runs a take as one task);
    #: otherwise frames are rendered independently (the farm chunks them by frames)
    whole_shot: bool = False
    #: it wants a GPU (farm host requirements, OpenCue tags)
    needs_gpu: bool = False
    #: the kind of folder ``engine.model`` names (``actanywhere``: a checkpoint of this
    #: package), or None when it uses no model
    model: str | None = None
    #: a long shot can be generated in overlapping parts (farm export --split); its settings
    #: section then has ``shot_frames`` (the whole shot's range the parts share)
    splittable: bool = False


@dataclass(frozen=True)
class MatteTraits:
    """A matte source as the product sees it."""

    name: str
    entry: str  # ``package.module:Class``
    #: made from prompts on key frames and tracked through the whole shot (needs matte.keys)
    tracked: bool = False
    #: computed by an algorithm rather than read: clean-up defaults on, an empty matte is an
    #: error
    computed: bool = False


_ENGINES: dict[str, EngineTraits] = {}
_MATTES: dict[str, MatteTraits] = {}
_plugins_loaded = False


def register_engine(traits: EngineTraits) -> EngineTraits:
    """Add (or replace) an engine; returns its traits."""
    _ENGINES[traits.name] = traits
    return traits


def unregister_engine(name: str) -> None:
    """Remove an engine (a test's, or a studio package being reloaded)."""
    _ENGINES.pop(name, None)


def register_matte(traits: MatteTraits) -> MatteTraits:
    _MATTES[traits.name] = traits
    return traits


def _load_plugins() -> None:
    """Import the modules ``ACTANYWHERE_ENGINES`` lists (once per process)."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for module in filter(None, (m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(","))):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise SpecError(f"{PLUGINS_ENV}: cannot import engine module {module!r} ({exc}); "
                            "fix the module or remove it from the list") from None


def engines() -> Mapping[str, EngineTraits]:
    """Every engine, by name (read-only)."""
    _load_plugins()
    return MappingProxyType(_ENGINES)


def engine_names() -> tuple[str, ...]:
    return tuple(engines())


def engine(name: str) -> EngineTraits:
    """The traits of engine ``name``; SpecError naming the choices when there is none."""
    found = engines().get(name)
    if found is None:
        raise SpecError(f"engine.name {name!r}: no such engine; use one of "
                        f"{', '.join(engine_names())}")
    return found


def matte_sources() -> Mapping[str, MatteTraits]:
    return MappingProxyType(_MATTES)


def matte(name: str) -> MatteTraits:
    found = _MATTES.get(name)
    if found is None:
        raise SpecError(f"matte.source {name!r}: no such source; use one of "
                        f"{', '.join(_MATTES)}")
    return found


def load(entry: str) -> Any:
    """The object ``package.module:Name`` names (imported now)."""
    module, _, name = entry.partition(":")
    return getattr(importlib.import_module(module), name)


def seeded(name: str) -> bool:
    """Whether engine ``name`` takes a seed (False for an engine not registered here)."""
    traits = engines().get(name)
    return bool(traits and traits.seeded and traits.settings)


def _seed_section(spec: Mapping[str, Any]) -> str | None:
    """The settings section holding the seed of a ShotSpec dict's engine, or None."""
    name = (spec.get("engine") or {}).get("name", "composite")
    return engines()[name].settings if seeded(name) else None


def seed_of(spec: Mapping[str, Any]) -> int | None:
    """The seed of a ShotSpec dict's engine (None when the engine takes none): hosts label
    and vary takes by it."""
    section = _seed_section(spec)
    return None if section is None else int((spec.get(section) or {}).get("seed", 0))


def set_seed(spec: dict[str, Any], seed: int) -> bool:
    """Set the seed of a ShotSpec dict's engine, if it takes one; whether it did."""
    section = _seed_section(spec)
    if section is None:
        return False
    spec.setdefault(section, {})["seed"] = int(seed)
    return True


def shot_frames(spec: Any) -> str | None:
    """The whole shot's range a part of a split take belongs to (``<settings>.shot_frames``
    of a splittable engine's ShotSpec), or None."""
    traits = engine(spec.engine.name)
    if not traits.splittable or not traits.settings:
        return None
    return getattr(getattr(spec, traits.settings, None), "shot_frames", None)


register_engine(EngineTraits(
    name="composite", entry="actanywhere.engines.composite:CompositeEngine",
    summary="Subject over the background plate, harmonised, with a contact shadow (no model)",
    settings="composite"))
register_engine(EngineTraits(
    name="diffusion", entry="actanywhere.engines.diffusion:DiffusionEngine",
    summary="The ActAnywhere model generates the background (a checkpoint of this package)",
    settings="diffusion", seeded=True, whole_shot=True, needs_gpu=True, model="actanywhere",
    splittable=True))
register_engine(EngineTraits(
    name="vace", entry="actanywhere.engines.vace:VaceEngine",
    summary="Wan VACE generates the background (a diffusers folder you downloaded, "
    "docs/vace.md)",
    settings="vace", seeded=True, whole_shot=True, needs_gpu=True, model="wan-vace",
    splittable=True))

register_matte(MatteTraits("alpha", "actanywhere.matte.source:AlphaSource"))
register_matte(MatteTraits("file", "actanywhere.matte.source:FileSource"))
register_matte(MatteTraits("keyer", "actanywhere.matte.keyer:KeyerSource", computed=True))
register_matte(MatteTraits("sam", "actanywhere.matte.sam:SamSource", tracked=True,
                           computed=True))
register_matte(MatteTraits("sam2", "actanywhere.matte.sam2:Sam2Source", tracked=True,
                           computed=True))
register_matte(MatteTraits("sam3", "actanywhere.matte.sam3:Sam3Source", tracked=True,
                           computed=True))
register_matte(MatteTraits("grabcut", "actanywhere.matte.grabcut:GrabCutSource", tracked=True,
                           computed=True))
