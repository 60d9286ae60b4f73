"""The motion of a shot's background: per plate frame, a 3x3 homography that maps a point of
the background in the reference frame (the first frame of the range) to where it is in that
frame (display-window pixels, origin top left, x right, y down). docs/motion.md.

One source a module: ``keys`` (user keys, interpolated), ``track`` (the plate's own
background, OpenCV feature tracks); ``none`` (a static camera) needs none. ``shot.SOURCES``
lists them and ``shot.estimate`` runs one on a plate.
"""

from __future__ import annotations

from .format import Motion, load, save

__all__ = ["Motion", "load", "save"]
