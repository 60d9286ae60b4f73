"""Frame sequences: patterns (####, %04d, @, $F4), explicit ranges, discovery on disk, gaps.

Built on fileseq with one digit per ``#`` (``PAD_STYLE_HASH1``), as Nuke and Blender write it.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Literal

import fileseq
from fileseq import FileSequence, FrameSet

from ..errors import InputError, SpecError

MissingPolicy = Literal["error", "hold", "black"]
PAD = fileseq.PAD_STYLE_HASH1


def _sequence(pattern: str) -> FileSequence:
    try:
        seq = FileSequence(pattern, pad_style=PAD)
    except fileseq.ParseException as exc:
        raise SpecError(f"{pattern}: not a frame pattern ({exc}); use e.g. plate.####.exr") from exc
    if not seq.padding():
        raise SpecError(
            f"{pattern}: no frame number placeholder; use ####, %04d, @ or $F4 "
            "(e.g. plate.####.exr)"
        )
    return seq


#: the most frames one job takes (11.5 hours at 24 fps): a longer range is a typo
MAX_FRAMES = 1_000_000
#: lists longer than this are compacted as plain runs (FrameSet's step search is slow)
_COMPACT_STEPS = 10_000


def parse_frames(frames: str) -> list[int]:
    """Frames of a range string: ``1001-1100``, ``1-50x2``, ``1,5,9``, ``-5-5``."""
    try:
        found = FrameSet(frames.strip())
        count = len(found)  # counted without listing the frames
    except (fileseq.ParseException, ValueError) as exc:
        raise SpecError(
            f"frames {frames!r}: not a frame range; use e.g. 1001-1100 or 1-50x2"
        ) from exc
    if count > MAX_FRAMES:
        raise SpecError(f"frames {frames[:60]!r}: {count} frames, at most {MAX_FRAMES} in one "
                        "job; check the range (e.g. 1001-1100)")
    return list(found)


def compact(frames: list[int]) -> str:
    """A short range string for a list of frames, e.g. ``1001-1004,1010``."""
    if not frames:
        return ""
    unique = sorted(set(frames))
    if len(unique) <= _COMPACT_STEPS:
        return str(FrameSet(unique))
    runs: list[str] = []
    start = prev = unique[0]
    for f in [*unique[1:], None]:
        if f is not None and f == prev + 1:
            prev = f
            continue
        runs.append(f"{start}-{prev}" if prev != start else str(start))
        start = prev = f
    return ",".join(runs)


@functools.lru_cache(maxsize=256)
def _frame_name(pattern: str) -> tuple[str, int, str]:
    """(text before the frame number, its padding, text after) of a pattern, parsed once."""
    seq = _sequence(pattern)
    return f"{seq.dirname()}{seq.basename()}", seq.zfill(), seq.extension()


@dataclass(frozen=True)
class Sequence:
    """A frame pattern with the frames a job asks for; the paths may or may not exist."""

    pattern: str
    frames: tuple[int, ...]

    def path(self, frame: int) -> str:
        """The file name of one frame (negative frames as printf writes them: ``-003``)."""
        head, pad, tail = _frame_name(self.pattern)
        return f"{head}{frame:0{pad}d}{tail}"

    def paths(self) -> list[str]:
        return [self.path(f) for f in self.frames]

    def missing(self) -> list[int]:
        """The frames with no file, from one listing of the folder (not a look per frame)."""
        head, pad, tail = _frame_name(self.pattern)
        folder, stem = os.path.split(head)
        try:
            names = set(os.listdir(folder or "."))
        except OSError:
            return list(self.frames)
        return [f for f in self.frames if f"{stem}{f:0{pad}d}{tail}" not in names]

    @property
    def template(self) -> str:
        """The pattern without a range, with ``#`` padding: ``/shot/plate.####.exr``."""
        return template(self.pattern)


def frames_on_disk(pattern: str) -> list[int]:
    """Frames of ``pattern`` that exist on disk, with exactly the pattern's padding."""
    seq = _sequence(pattern)
    template = f"{seq.dirname()}{seq.basename()}{seq.padding()}{seq.extension()}"
    try:
        found = FileSequence.findSequenceOnDisk(template, strictPadding=True, pad_style=PAD)
    except fileseq.FileSeqException:
        return []
    frameset = found.frameSet()
    return sorted(frameset) if frameset is not None else []


def template(pattern: str) -> str:
    """The pattern without any range, with ``#`` padding: ``/shot/plate.####.exr``."""
    seq = _sequence(pattern)
    return f"{seq.dirname()}{seq.basename()}{'#' * seq.zfill()}{seq.extension()}"


def resolve(pattern: str, frames: str | None = None) -> Sequence:
    """A Sequence from a pattern (which may embed a range) and an optional explicit range.

    With no range anywhere, the range is the first to last frame found on disk, so gaps in
    between show up as missing frames.
    """
    seq = _sequence(pattern)
    template = f"{seq.dirname()}{seq.basename()}{seq.padding()}{seq.extension()}"
    if frames:
        wanted = parse_frames(frames)
    elif seq.frameSet() is not None:
        wanted = list(seq.frameSet())
    else:
        on_disk = frames_on_disk(template)
        if not on_disk:
            raise InputError(
                f"{template}: no frames found on disk; check the path and the padding "
                "(#### is four digits, # or @ is one)"
            )
        wanted = list(range(on_disk[0], on_disk[-1] + 1))
    if not wanted:
        raise SpecError(f"frames of {pattern}: the range is empty")
    return Sequence(template, tuple(wanted))


@dataclass(frozen=True)
class FrameSource:
    """Where one output frame's input comes from: a file, or nothing (black)."""

    frame: int
    path: str | None
    held_from: int | None = None


def plan(seq: Sequence, missing: MissingPolicy = "error", what: str = "plate") -> list[FrameSource]:
    """One FrameSource per frame, applying the missing-frame policy."""
    gaps = seq.missing()
    if gaps and missing == "error":
        raise InputError(
            f"{seq.template}: {len(gaps)} missing {what} frame(s) {compact(gaps)}; render them, "
            "narrow --frames, or pass --missing hold|black"
        )
    gapset = set(gaps)
    present = [f for f in seq.frames if f not in gapset]
    if not present:
        raise InputError(
            f"{seq.template}: none of the {what} frames {compact(list(seq.frames))} exist"
        )
    out: list[FrameSource] = []
    for f in seq.frames:
        if f not in gapset:
            out.append(FrameSource(f, seq.path(f)))
        elif missing == "black":
            out.append(FrameSource(f, None))
        else:
            earlier = [p for p in present if p < f]
            src = earlier[-1] if earlier else min(present)
            out.append(FrameSource(f, seq.path(src), held_from=src))
    return out
