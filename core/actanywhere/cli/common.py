"""What the commands share: the progress display and the options several commands take."""

from __future__ import annotations

import contextlib
import os
import sys
from enum import Enum
from typing import Annotated

import typer


class ProgressMode(str, Enum):
    bar = "bar"
    json = "json"
    openjd = "openjd"
    none = "none"


def reporter(mode: ProgressMode):
    """A context manager yielding the reporter for ``--progress``; progress to a closed pipe
    (``... | head -1``) is dropped, the job goes on (``unless_closed``)."""
    from ..progress import RichReporter, json_reporter, openjd_reporter

    if mode == ProgressMode.json:
        return contextlib.nullcontext(unless_closed(json_reporter(), sys.stdout))
    if mode == ProgressMode.openjd:
        return contextlib.nullcontext(unless_closed(openjd_reporter(), sys.stdout))
    if mode == ProgressMode.bar and sys.stderr.isatty():
        return RichReporter()  # a terminal: no pipe to close
    if mode == ProgressMode.bar:
        # Not a terminal (a farm log): plain lines for warnings and the summary only.
        def plain(ev):
            if ev.stage in ("warning", "done"):
                prefix = "warning: " if ev.stage == "warning" else ""
                print(prefix + ev.message, file=sys.stderr, flush=True)

        return contextlib.nullcontext(unless_closed(plain, sys.stderr))

    def warnings_only(ev):  # --progress none hides progress, never a warning
        if ev.stage == "warning":
            print("warning: " + ev.message, file=sys.stderr, flush=True)

    return contextlib.nullcontext(unless_closed(warnings_only, sys.stderr))


def unless_closed(report, stream):
    """``report``, quiet once ``stream`` is a closed pipe (its reader gone: ``| head -1``):
    the job finishes and writes its frames and record, only the progress is lost. The
    stream's file is pointed at the null device, so nothing later (Python's own flush at
    exit) fails on it either."""
    closed = []

    def report_open(ev) -> None:
        if closed:
            return
        try:
            report(ev)
        except BrokenPipeError:
            closed.append(True)
            with contextlib.suppress(OSError, ValueError):
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, stream.fileno())
                os.close(null)

    return report_open


ProgressOpt = Annotated[ProgressMode, typer.Option(
    "--progress", help="bar: terminal bar; json: one JSON event per line on stdout; openjd: "
    "Open Job Description progress/status lines (farm tasks); none")]
PlateOpt = Annotated[str | None, typer.Option(help="Plate pattern, e.g. plate.####.exr")]
FramesOpt = Annotated[str | None, typer.Option(help="Frame range, e.g. 1001-1100 or 1-50x2")]
PlateLayerOpt = Annotated[str | None, typer.Option(help="Plate layer holding the colour")]
PlateViewOpt = Annotated[str | None, typer.Option(help="Stereo plates: the view to use (default: the hero view)")]
PlateSpaceOpt = Annotated[str | None, typer.Option(help="OCIO colourspace of the plate")]
MatteChannelOpt = Annotated[str | None, typer.Option(help="Matte channel, e.g. A or matte.A")]
PointOpt = Annotated[list[str] | None, typer.Option(
    "--point", help="A click FRAME:X,Y[,LABEL] in display pixels from the top left (label 1 "
    "subject, default; 0 not subject); repeat")]
BoxOpt = Annotated[list[str] | None, typer.Option(
    "--box", help="A box FRAME:X0,Y0,X1,Y1 around the subject; repeat")]
KeyMatteOpt = Annotated[list[str] | None, typer.Option(
    "--key-matte", help="A painted matte for a key frame, FRAME:PATH; repeat")]
SamOpt = Annotated[str | None, typer.Option(
    "--sam-checkpoint", help="SAM checkpoint: a .pth file (sam) or a model folder (sam2); "
    "default $ACTANYWHERE_SAM_CHECKPOINT")]
ScreenOpt = Annotated[str | None, typer.Option("--screen", help="Keyer: green|blue")]
