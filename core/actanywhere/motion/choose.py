"""One motion from a shot's settings: the source named, or ``auto``'s first that applies.

``auto`` tries, in this order (docs/motion.md): ``metadata`` when the first plate frame carries
a camera matrix; ``track`` unless the plate shows too little background texture; ``subject``
(the subject's mattes, learned) only when it is a sure cue: a subject that steps (not a rigid
element, whose move in frame may be its own) and a move that enlarges a background of the
plate's size no more than ``backdrop.SOFT``; else ``none`` (a static camera), with a one-line
note saying why.
The same function serves ``actanywhere motion`` and ``generate`` (``motion.*`` of the
ShotSpec); the caller gives the frames' headers and pictures, read its own way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

import numpy as np

from ..errors import InputError
from . import SOURCES, metadata, track
from . import keys as keys_mod
from .format import Motion, load
from .smooth import smooth

Pictures = Callable[[], Iterator[tuple[int, np.ndarray, np.ndarray]]]


class Settings(Protocol):
    """What a motion needs of ``ShotSpec.motion`` (``spec.MotionSpec``)."""

    source: str
    path: str | None
    keys: list[str]
    model: str
    smooth: int
    min_features: int
    fov: float | None
    weights: str | None


def static(frames: list[int], width: int, height: int) -> Motion:
    return Motion("none", width, height, frames[0], {f: np.eye(3) for f in frames},
                  {f: 1.0 for f in frames})


def estimate(settings: Settings, *, frames: list[int], width: int, height: int,
             pixel_aspect: float, headers: Callable[[int], Mapping[str, Any]],
             pictures: Pictures, note: Callable[[str], None] = lambda _m: None,
             names: Mapping[int, str] | None = None) -> Motion:
    """The shot's motion over ``frames`` (``source`` "none" for a static camera) at the
    plate's display size. ``headers(frame)``: a plate frame's metadata; ``pictures()``:
    (frame, linear rgb, matte) over the shot, in order; ``note``: what auto chose and why;
    ``names``: each frame's file, for messages."""
    source = settings.source

    def from_headers() -> Motion:
        return metadata.estimate({f: headers(f) for f in frames}, width, height, pixel_aspect,
                                 settings.fov, names)

    if source == "none":
        return static(frames, width, height)
    if source == "file":
        if not settings.path:
            raise InputError("motion.path: source file needs a motion.json (write one with "
                             "`actanywhere motion`)")
        motion = load(settings.path)
        motion.check(width, height, frames, settings.path)
        motion.frames = {f: motion.frames[f] for f in frames}
        return motion
    if source == "keys":
        if not settings.keys:
            raise InputError("motion.keys: source keys needs at least one key, e.g. "
                             "1001:0,0 and 1100:-300,0")
        return keys_mod.estimate(keys_mod.parse(settings.keys), frames, width, height)
    if source == "metadata":
        return from_headers()
    if source == "track":
        return _track(settings, frames, width, height, pictures)
    if source == "subject":
        return _subject(settings, width, height, pictures, note)
    if source != "auto":
        raise InputError(f"motion.source {source!r}: use one of {', '.join(SOURCES)}")
    if metadata.has_camera(headers(frames[0])):
        motion = from_headers()
        note("motion: auto chose metadata (the plate's camera matrices)")
        return motion
    try:
        motion = _track(settings, frames, width, height, pictures)
    except InputError as exc:
        why = f"motion: auto found no camera matrices and could not track ({exc})"
    else:
        note(f"motion: auto chose track (lowest confidence "
             f"{min(motion.confidence.values()):.2f})")
        return motion
    try:
        motion, doubt = _subject_auto(settings, width, height, pictures, note)
    except InputError as exc:
        note(f"{why}, nor follow the subject ({exc}); using a static camera "
             "(motion.source none)")
        return static(frames, width, height)
    if doubt:
        note(f"{why}, and the subject is no sure cue ({doubt}); using a static camera "
             "(motion.source subject follows it anyway)")
        return static(frames, width, height)
    note(f"{why}; it chose subject (learned from the subject's mattes)")
    return motion


def _subject_auto(settings: Settings, width: int, height: int, pictures: Pictures,
                  note: Callable[[str], None]) -> tuple[Motion, str]:
    """``subject``'s motion, and why ``auto`` should not trust it ("" when it should): a
    rigid subject (its silhouette does not step: the move in frame may be its own), or a move
    that would enlarge a background of the plate's size past ``backdrop.SOFT`` (soft)."""
    from . import subject  # torch: only when asked for
    from .backdrop import SOFT, enlargement

    frames, stack = subject.read(pictures())
    motion = subject.from_mattes(frames, stack, width, height, subject.load(settings.weights),
                                 note)
    motion.frames = smooth(motion.frames, settings.smooth, motion.confidence)
    shape = subject.articulation(stack)
    if shape < subject.ARTICULATED:
        return motion, (f"its silhouette hardly changes shape, {shape:.3f} where a walker's "
                        f"is over {subject.ARTICULATED:g}: a rigid element's move in frame may "
                        "be its own, not the camera's")
    grow = enlargement(motion)
    if grow > SOFT:
        return motion, (f"its move would enlarge a background of the plate's size {grow:.2f}x, "
                        f"past the {SOFT:g}x that looks soft")
    return motion, ""


def _subject(settings: Settings, width: int, height: int, pictures: Pictures,
             note: Callable[[str], None]) -> Motion:
    from . import subject  # torch: only when asked for

    net = subject.load(settings.weights)
    motion = subject.estimate(pictures(), width, height, net, note)
    motion.frames = smooth(motion.frames, settings.smooth, motion.confidence)
    return motion


def _track(settings: Settings, frames: list[int], width: int, height: int,
           pictures: Pictures) -> Motion:
    motion = track.estimate(pictures(), width, height,
                            track.TrackSettings(model=settings.model,
                                                min_features=settings.min_features))
    motion.frames = smooth(motion.frames, settings.smooth, motion.confidence)
    return motion
