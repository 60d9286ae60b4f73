"""Subject mattes for a whole shot, one interface over every source.

Sources are registered by name, like segment-anything's ``sam_model_registry``: the name maps
to the class that makes the matte, imported only when a shot uses it (SAM imports torch, the
others do not). A new source is one module plus one line in ``SOURCES``; ShotSpec's
``matte.source`` choices, the refine defaults and the key-frame requirement all read it.

``ShotMattes`` (shot.py) runs a source over a shot and refines it (refine.py); per-frame
sources implement ``source.FrameSource``, key-frame sources ``source.TrackedSource`` whose
segmenter ``track.propagate`` carries through the shot. See docs/mattes.md.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Registered:
    target: str  # "module:Class" inside this package
    #: made from prompts on key frames and tracked through the whole shot (needs matte.keys)
    tracked: bool = False
    #: computed by an algorithm rather than read: clean-up defaults on, an empty matte is an error
    computed: bool = False


SOURCES: dict[str, Registered] = {
    "alpha": Registered("source:AlphaSource"),
    "file": Registered("source:FileSource"),
    "keyer": Registered("keyer:KeyerSource", computed=True),
    "sam": Registered("sam:SamSource", tracked=True, computed=True),
    "grabcut": Registered("grabcut:GrabCutSource", tracked=True, computed=True),
}
NAMES: tuple[str, ...] = tuple(SOURCES)


def source_class(name: str) -> type:
    """The class registered as ``name`` (imported now)."""
    module, _, cls = SOURCES[name].target.partition(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)
