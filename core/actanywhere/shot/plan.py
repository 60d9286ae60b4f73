"""A shot planned before its first pixel is read: inputs opened and checked, the output
sequence planned and checked. ``generate`` (job.py) and ``segment`` (segment.py) both start
here, so both refuse the same bad inputs with the same one-line errors."""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from ..api import atomic
from ..api.patterns import frames_on_disk
from ..errors import OutputError
from ..matte.shot import ShotMattes, check, files
from ..media import frames
from ..media.color import ColorContext
from ..progress import ProgressEvent, Reporter
from ..spec import ColorSpec, MatteSpec, PlateSpec, ShotSpec
from .plate import Plate


@dataclass
class Inputs:
    """The plate and its mattes, opened and checked."""

    color: ColorContext
    plate: Plate
    matte_files: dict[int, str]
    mattes: ShotMattes
    key_mattes: list[str] = field(default_factory=list)  # painted mattes of key frames

    def real_paths(self) -> set[str]:
        """Every input file, as a real path (an output must not be one of them)."""
        paths = {os.path.realpath(s.path) for s in self.plate.sources if s.path}
        return paths | {os.path.realpath(p) for p in [*self.matte_files.values(),
                                                        *self.key_mattes]}


def spec_inputs(spec: ShotSpec) -> set[str]:
    """Every file ``spec`` reads that is on disk now, as real paths: each file of the plate's
    and the matte's patterns (whatever their range), the painted key mattes, the background
    and a motion file. Nothing is opened."""
    patterns = [spec.plate.path, spec.matte.path or ""]
    single = [spec.background.path, spec.motion.path or "",
              *(k.matte or "" for k in spec.matte.keys)]
    found = [p for pattern in patterns if pattern
             for _, p in frames_on_disk(frames.template(pattern))]
    return {os.path.realpath(p) for p in [*found, *single] if p and os.path.isfile(p)}


def refuse_over_inputs(paths: list[str], inputs: set[str], what: str) -> None:
    """OutputError naming the first of ``paths`` that is one of ``inputs`` (real paths):
    nothing a job writes may replace a file it reads."""
    for path in paths:
        if os.path.realpath(path) in inputs:
            raise OutputError(f"{path}: {what} would overwrite an input; choose another "
                              "output path")


def remove_leftovers(paths: list[str], warn: Callable[[str], None]) -> None:
    """Remove the temporary files a killed run left while writing ``paths`` (hidden
    ``.<name>.<random>.tmp.<ext>`` beside each); says how many."""
    gone = 0
    for tmp in atomic.leftovers(paths):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
            gone += 1
    if gone:
        warn(f"removed {gone} temporary file(s) a stopped run left beside the output")


def color_context(spec: ColorSpec) -> ColorContext:
    return ColorContext(spec.config, spec.working_space, spec.highlight, spec.knee)


def inputs(plate: PlateSpec, matte: MatteSpec, color: ColorSpec) -> Inputs:
    """Open the plate (frames planned, every frame checked whole, view and colourspace
    chosen) and check the matte settings against it."""
    ctx = color_context(color)
    opened = Plate.open(plate, ctx)
    matte_files = files(matte, opened.seq, opened.ref)
    check(matte, opened.frames, opened.ref)
    mattes = ShotMattes(matte, ctx, opened.frames, opened.ref, matte_files)
    return Inputs(ctx, opened, matte_files, mattes, [k.matte for k in matte.keys if k.matte])


@dataclass
class OutputPlan:
    sequence: frames.Sequence
    skipped: list[int]  # frames on disk kept (output.existing=skip)
    todo: list[int]  # frames to write


def output(pattern: str, plate_seq: frames.Sequence, inputs: set[str], existing: str,
           what: str) -> OutputPlan:
    """The output sequence over the plate frames, checked: it overwrites no input (``inputs``
    are real paths), its folder is writable, existing frames follow the ``existing`` policy."""
    seq = frames.Sequence(frames.template(pattern), plate_seq.frames)
    if not seq.template.lower().endswith(".exr"):
        raise OutputError(f"{seq.template}: {what} frames are written as OpenEXR; give the "
                          "output path a .exr extension")
    if seq.template == plate_seq.template:
        raise OutputError(f"{seq.template}: output would overwrite an input; choose another "
                          "output path")
    refuse_over_inputs(seq.paths(), inputs, "output")
    check_writable(seq.template)
    found = [f for f in plate_seq.frames if os.path.exists(seq.path(f))]
    if found and existing == "error":
        raise OutputError(f"{seq.template}: {len(found)} {what} frame(s) exist "
                          f"({frames.compact(found)}); pass --existing skip to resume or "
                          "--existing overwrite to replace them")
    skipped = found if existing == "skip" else []
    todo = [f for f in plate_seq.frames if f not in set(skipped)]
    return OutputPlan(seq, skipped, todo)


def check_writable(template: str) -> None:
    """The output folder, or the nearest existing folder above it, takes files. Nothing is
    created: the folder is made by the first frame written, so a job refused for its inputs
    leaves no empty folder behind."""
    directory = os.path.dirname(os.path.abspath(template))
    probe = directory
    while not os.path.exists(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise OutputError(f"{directory}: output folder is not writable ({probe} is a file); "
                          "choose another output path")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        raise OutputError(f"{probe}: output folder is not writable ({exc.strerror}); choose "
                          "a writable output path") from exc


@dataclass
class Warnings:
    """Warnings of one run: kept for its result and reported as they come (any thread)."""

    report: Reporter
    lines: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __call__(self, msg: str) -> None:
        with self._lock:
            self.lines.append(msg)
        self.report(ProgressEvent("warning", message=msg))

    def plate(self, inp: Inputs) -> None:
        """What opening the plate chose or found: view, colourspace, missing frames."""
        if inp.plate.note:
            self(inp.plate.note)
        for src in inp.plate.sources:
            if src.path is None:
                self(f"frame {src.frame}: missing plate frame, rendered black (--missing black)")
            elif src.held_from is not None:
                self(f"frame {src.frame}: missing plate frame, holding frame {src.held_from}")
