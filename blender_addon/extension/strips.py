"""A take as a strip: its EXR frames placed above the plate, frame for frame; showing one take
mutes its siblings' strips. Nothing here deletes a file."""

from __future__ import annotations

import os

from . import compat
from .vendor.actanywhere.api.patterns import frames_on_disk

MAX_CHANNEL = 128


def _overlaps(strip, start: int, end: int) -> bool:
    return int(strip.frame_final_start) < end and start < int(strip.frame_final_end)


def free_channel(ed, lowest: int, start: int, end: int) -> int:
    """The lowest channel from ``lowest`` up with nothing in ``start``..``end`` (exclusive)."""
    busy = {int(s.channel) for s in compat.strips(ed) if _overlaps(s, start, end)}
    channel = max(1, lowest)
    while channel in busy and channel < MAX_CHANNEL:
        channel += 1
    return channel


def find(scene, take):
    ed = compat.editor(scene)
    return None if ed is None or not take.strip else compat.strips_all(ed).get(take.strip)


def add(scene, take):
    """The take's strip (made when it has none): the frames on disk from the first one on,
    as far as they run without a gap, at the timeline frames of the plate frames they were
    made from, in the first free channel above the plate. None when no frame is on disk."""
    existing = find(scene, take)
    if existing is not None:
        return existing
    on_disk = dict(frames_on_disk(take.output))
    run = []
    for frame in range(take.first, take.first + take.count):
        if frame in on_disk:
            run.append(frame)
        elif run:
            break
    if not run:
        return None
    ed = compat.editor(scene, create=True)
    start = take.timeline_start + run[0] - take.first
    channel = free_channel(ed, take.channel + 1, start, start + len(run))
    name = f"{take.plate} {take.name}"[:63]
    strip = compat.strips(ed).new_image(name=name, filepath=on_disk[run[0]], channel=channel,
                                        frame_start=start)
    for frame in run[1:]:
        strip.elements.append(os.path.basename(on_disk[frame]))
    strip.colorspace_settings.name = take.colorspace
    take.strip = strip.name
    return strip


def show_only(scene, take) -> None:
    """Unmute ``take``'s strip and mute the strips of the other takes of its plate."""
    mine = find(scene, take)
    if mine is None:
        return
    for other in scene.actanywhere.takes:
        if other.plate == take.plate and other.name != take.name:
            strip = find(scene, other)
            if strip is not None:
                strip.mute = True
    mine.mute = False
