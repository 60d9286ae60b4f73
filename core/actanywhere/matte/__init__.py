"""Subject mattes for a whole shot, one interface over every source.

Sources are registered by name in ``catalog`` (like segment-anything's
``sam_model_registry``): the name maps to the class that makes the matte, imported only when
a shot uses it (SAM imports torch, the others do not), and to its traits (tracked from key
frames, computed). A new source is one module plus one ``catalog.register_matte`` call;
ShotSpec's ``matte.source`` choices, the refine defaults and the key-frame requirement all
read it.

``ShotMattes`` (shot.py) runs a source over a shot and refines it (refine.py); per-frame
sources implement ``source.FrameSource``, key-frame sources ``source.TrackedSource`` whose
segmenter ``track.propagate`` carries through the shot. See docs/mattes.md.
"""

from __future__ import annotations

from .. import catalog


def source_class(name: str) -> type:
    """The class registered as ``name`` (imported now)."""
    return catalog.load(catalog.matte(name).entry)
