"""What Generate reads off the sequencer: a strip's visible frames as a numbered file
sequence, in the worker's terms (pattern, file frames, colourspace), and the inputs that must
line up with the plate frame for frame.

An image strip shows element ``i`` at timeline frame ``frame_start - animation_offset_start
+ i``; what is visible runs from ``frame_final_start`` to ``frame_final_end`` (offsets and
handles applied). Frames held beyond the footage (a strip stretched past its files) have no
file of their own and are not generated.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass

import bpy

from . import colour
from .vendor.actanywhere.api.patterns import frame_file, numbered
from .vendor.actanywhere.errors import InputError


@dataclass
class Sequence:
    """A strip's visible frames as files: ``pattern`` (``####``) over ``first``..``last``
    (file frames), the first of them at timeline frame ``timeline_start``."""

    strip_name: str
    folder: str
    pattern: str
    first: int
    last: int
    timeline_start: int
    colorspace: str  # Blender's name
    channel: int

    @property
    def path(self) -> str:
        return os.path.join(self.folder, self.pattern)

    @property
    def frames(self) -> str:
        return f"{self.first}-{self.last}"

    def file_frame(self, timeline_frame: int) -> int:
        return self.first + timeline_frame - self.timeline_start

    def timeline_frame(self, file_frame: int) -> int:
        return self.timeline_start + file_frame - self.first


def _visible(strip) -> list[tuple[int, int]]:
    """(timeline frame, element index) of every visible frame that has a file."""
    count = len(strip.elements)
    base = int(strip.frame_start) - int(strip.animation_offset_start)
    out = []
    for frame in range(int(strip.frame_final_start), int(strip.frame_final_end)):
        index = frame - base
        if int(strip.animation_offset_start) <= index < count - int(strip.animation_offset_end):
            out.append((frame, index))
    return out


def _kind(strip, what: str) -> None:
    if strip.type == "MOVIE":
        raise InputError(
            f"{what} strip {strip.name!r} is a movie: the worker reads image sequences; render "
            "it to an EXR or PNG sequence (Render > Render Animation) and add that as an "
            "image strip")
    if strip.type != "IMAGE":
        raise InputError(f"{what} strip {strip.name!r} is a {strip.type.lower()} strip; use "
                         "an image strip (an EXR, PNG or JPEG sequence)")


def sequence(strip, what: str = "plate") -> Sequence:
    """The strip's visible frames as a numbered sequence on disk; InputError naming the strip
    and the fix when they are not one."""
    _kind(strip, what)
    visible = _visible(strip)
    if not visible:
        raise InputError(f"{what} strip {strip.name!r}: no frame of its files is visible "
                         "(its offsets hide them all)")
    folder = bpy.path.abspath(strip.directory)
    pattern, first = None, None
    missing = []
    for k, (_, index) in enumerate(visible):
        name = strip.elements[index].filename
        found = numbered(name)
        if found is None or (pattern is not None and _stem(found[0]) != _stem(pattern)) \
                or (first is not None and found[1] != first + k):
            raise InputError(f"{what} strip {strip.name!r}: {name!r} does not continue one "
                             "numbered sequence (name.####.exr, every frame); use an image "
                             "sequence strip")
        if pattern is None:
            pattern, first = found[0], found[1]
        if not os.path.isfile(os.path.join(folder, name)):
            missing.append(found[1])
    if missing:
        raise InputError(f"{what} strip {strip.name!r}: missing frame(s) {_ranges(missing)} "
                         f"of {os.path.join(folder, pattern)}")
    return Sequence(strip.name, folder, pattern, first, first + len(visible) - 1, visible[0][0],
                    strip.colorspace_settings.name, int(strip.channel))


def _stem(pattern: str) -> str:
    """A pattern without its padding: unpadded files (img_9, img_10) are one sequence."""
    return re.sub("#+", "#", pattern)


def _ranges(frames: list[int]) -> str:
    out, start = [], frames[0]
    for a, b in zip(frames, frames[1:] + [None], strict=True):
        if b != a + 1:
            out.append(f"{start}" if start == a else f"{start}-{a}")
            start = b
    return ", ".join(out)


def still(strip, at_timeline: int, what: str = "background") -> tuple[str, str]:
    """(file, Blender colourspace) of the frame an image strip shows at ``at_timeline``
    (its first visible frame when it does not reach there): the background is one image."""
    _kind(strip, what)
    visible = _visible(strip)
    if not visible:
        raise InputError(f"{what} strip {strip.name!r}: no frame of its files is visible")
    index = next((i for f, i in visible if f == at_timeline), visible[0][1])
    path = os.path.join(bpy.path.abspath(strip.directory), strip.elements[index].filename)
    if not os.path.isfile(path):
        raise InputError(f"{what} strip {strip.name!r}: {path} does not exist")
    return path, strip.colorspace_settings.name


def lined_up(strip, plate: Sequence, folder: str, stem: str, what: str = "matte") -> str:
    """The frames ``strip`` shows at the plate's visible frames, as a sequence numbered like
    the plate (links, or copies where links cannot be made, in ``folder``); its pattern.
    InputError naming the frames the strip does not cover."""
    _kind(strip, what)
    shown = dict(_visible(strip))
    src_folder = bpy.path.abspath(strip.directory)
    uncovered = [f for f in range(plate.first, plate.last + 1)
                 if plate.timeline_frame(f) not in shown]
    if uncovered:
        raise InputError(f"{what} strip {strip.name!r} does not cover plate frame(s) "
                         f"{_ranges(uncovered)}; extend it to the plate's range")
    ext = os.path.splitext(strip.elements[0].filename)[1]
    pattern = os.path.join(folder, f"{stem}.####{ext}")
    os.makedirs(folder, exist_ok=True)
    for f in range(plate.first, plate.last + 1):
        src = os.path.join(src_folder, strip.elements[shown[plate.timeline_frame(f)]].filename)
        if not os.path.isfile(src):
            raise InputError(f"{what} strip {strip.name!r}: {src} does not exist")
        dst = frame_file(pattern, f)
        try:
            os.symlink(src, dst)
        except OSError:  # no symlinks (Windows without the privilege): a copy
            shutil.copyfile(src, dst)
    return pattern


def ocio(seq_colorspace: str, what: str) -> str:
    try:
        return colour.ocio_name(seq_colorspace, what)
    except colour.ColourError as exc:
        raise InputError(str(exc)) from None
