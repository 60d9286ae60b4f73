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
