"""The motion of a shot's background: per plate frame, a 3x3 homography that maps a point of
the background in the reference frame (the first frame of the range) to where it is in that
frame (display-window pixels, origin top left, x right, y down). docs/motion.md.

One source a module: ``keys`` (user keys, interpolated), ``track`` (the plate's own
background, OpenCV feature tracks), ``metadata`` (the camera matrices of CG plates),
``subject`` (learned from the subject's mattes alone, for green screens); ``none``
(a static camera) and ``file`` (a motion.json) need none. ``choose.estimate`` runs the one a
shot names (or ``auto``'s pick), ``shot.estimate`` does it on files for the CLI, and
``backdrop.Backdrop`` moves a background plate through the result.
"""

from __future__ import annotations

from typing import Any

#: sources a user can name (``motion.source``); ``auto`` tries metadata, track, then subject
SOURCES = ("none", "auto", "file", "keys", "metadata", "track", "subject")
#: sources that need no plate pictures: a part of a split shot (the farm) lays them over the
#: whole shot's frames
WITHOUT_PICTURES = ("none", "keys", "file")

__all__ = ["SOURCES", "WITHOUT_PICTURES", "Motion", "load", "save"]


def __getattr__(name: str) -> Any:
    """``Motion``, ``load``, ``save`` from ``format`` on first use: the settings (spec.py,
    the worker) read SOURCES without loading numpy."""
    if name in ("Motion", "load", "save"):
        from . import format as fmt

        return getattr(fmt, name)
    raise AttributeError(name)
