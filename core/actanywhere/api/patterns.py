"""Frame-number patterns (``####``, ``%04d``) as hosts write them, standard library only
(the core's ``frames.py`` does the same and more with fileseq, which hosts do not have)."""

from __future__ import annotations

import os
import re

FRAME = re.compile(r"#+|%0?(\d*)d")


def has_frame_number(path: str) -> bool:
    return FRAME.search(path) is not None


def frame_file(pattern: str, frame: int) -> str:
    """One frame's file: ``####`` is four digits, ``%04d`` zero-pads to four."""
    def digits(m: re.Match) -> str:
        width = len(m.group(0)) if m.group(0).startswith("#") else int(m.group(1) or 1)
        return f"{frame:0{width}d}"

    return FRAME.sub(digits, pattern)


def frames_on_disk(pattern: str) -> list[tuple[int, str]]:
    """(frame, path) of the files matching a ``####`` / ``%04d`` pattern, by frame."""
    if not pattern:
        return []
    folder, name = os.path.split(pattern)
    hashes = FRAME.search(name)
    if hashes is None:  # one file, no frame number
        return [(0, pattern)] if os.path.isfile(pattern) else []
    regex = re.compile(f"^{re.escape(name[:hashes.start()])}(-?\\d+)"
                       f"{re.escape(name[hashes.end():])}$")
    try:
        names = os.listdir(folder or ".")
    except OSError:
        return []
    found = [(int(m.group(1)), os.path.join(folder, n)) for n in names
             if (m := regex.match(n))]
    return sorted(found)


_LAST_NUMBER = re.compile(r"^(.*?)(-?\d+)(\.[A-Za-z0-9]+)?$")


def numbered(filename: str) -> tuple[str, int, int] | None:
    """A numbered file's name as (pattern, frame, digits): ``plate.1001.exr`` ->
    (``plate.####.exr``, 1001, 4), the frame being the last number before the extension.
    None for a name without one. Hosts that list a sequence's files (Blender's image strips)
    turn them into the pattern a ShotSpec takes with it."""
    match = _LAST_NUMBER.match(filename)
    if match is None:
        return None
    head, number, ext = match.group(1), match.group(2), match.group(3) or ""
    if number.startswith("-") and head and head[-1].isalnum():  # shot-10.exr: a dash, not minus
        head, number = head + "-", number[1:]
    digits = len(number.lstrip("-"))
    return f"{head}{'#' * digits}{ext}", int(number), digits
