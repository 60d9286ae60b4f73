"""Progress events (stage, frame, done, total, eta) and the reporters that show them."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from .api.status import OTHER_STAGES, WORK_STAGES

__all__ = ["OTHER_STAGES", "SETTINGS", "WORK_STAGES", "ProgressEvent", "Reporter",
           "StageClock", "is_settings", "json_reporter", "null_reporter", "RichReporter"]


@dataclass
class ProgressEvent:
    stage: str  # one of WORK_STAGES or OTHER_STAGES
    done: int = 0
    total: int = 0
    frame: int | None = None
    eta_s: float | None = None
    message: str = ""

    def to_json(self) -> str:
        return json.dumps({k: v for k, v in asdict(self).items() if v not in (None, "")})


Reporter = Callable[[ProgressEvent], None]

#: how the one ``prepare`` line naming the settings a model filled begins (the job's; shown
#: by every progress mode, the plain bar of a farm log too)
SETTINGS = "settings from the model: "


def is_settings(ev: ProgressEvent) -> bool:
    return ev.stage == "prepare" and ev.message.startswith(SETTINGS)


def null_reporter(_: ProgressEvent) -> None:
    return None


class StageClock:
    """Counts work done in one stage and estimates the time left (from any thread)."""

    def __init__(self, report: Reporter, stage: str, total: int) -> None:
        self.report, self.stage, self.total = report, stage, total
        self.done = 0
        self.start = time.monotonic()
        self._lock = threading.Lock()
        report(ProgressEvent(stage, 0, total))

    def advance(self, frame: int | None = None, n: int = 1) -> None:
        with self._lock:  # frames finish on pool threads: no count lost, none reported twice
            self.done += n
            done = self.done
        elapsed = time.monotonic() - self.start
        eta = elapsed / done * (self.total - done) if done else None
        self.report(ProgressEvent(self.stage, done, self.total, frame,
                                  None if eta is None else round(eta, 2)))


def json_reporter(stream=None) -> Reporter:
    """One JSON object per line on ``stream`` (stdout by default), flushed at once."""
    out = stream or sys.stdout

    def report(ev: ProgressEvent) -> None:
        out.write(ev.to_json() + "\n")
        out.flush()

    return report


#: how far into a job each counted stage starts and ends, for one overall percentage
_SPAN = {"prepare": (0, 5), "matte": (5, 15), "load": (15, 20), "read": (20, 30),
         "denoise": (30, 80), "frames": (80, 100)}


def openjd_reporter(stream=None) -> Reporter:
    """Open Job Description's progress and status lines (``openjd_progress: 42.0``,
    ``openjd_status: frames 3/10``) on ``stream`` (stdout), and warnings as plain lines, so a
    farm shows how far a task is. The percentage never goes back."""
    out = stream or sys.stdout
    best = [0.0]

    def report(ev: ProgressEvent) -> None:
        if ev.stage == "warning":
            out.write(f"warning: {ev.message}\n")
        elif ev.stage == "done":
            best[0] = 100.0
            out.write(f"openjd_progress: 100.0\nopenjd_status: {ev.message}\n")
        elif ev.stage in _SPAN:
            lo, hi = _SPAN[ev.stage]
            part = ev.done / ev.total if ev.total else 0.0
            best[0] = max(best[0], lo + (hi - lo) * min(max(part, 0.0), 1.0))
            status = f"{ev.stage} {ev.done}/{ev.total}" if ev.total else \
                f"{ev.stage}: {ev.message}" if ev.message else ev.stage
            out.write(f"openjd_progress: {best[0]:.1f}\nopenjd_status: {status}\n")
        out.flush()

    return report


class RichReporter:
    """A terminal progress bar per stage; warnings printed above the bars."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.console = Console(stderr=True)
        self.progress = Progress(TextColumn("{task.description:>10}"), BarColumn(),
                                 MofNCompleteColumn(), TimeRemainingColumn(),
                                 console=self.console, transient=False)
        self.tasks: dict[str, int] = {}

    def __enter__(self) -> RichReporter:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, ev: ProgressEvent) -> None:
        if ev.stage == "warning":
            self.console.print(f"[yellow]warning:[/] {ev.message}", highlight=False)
            return
        if ev.message:
            self.console.print(ev.message, highlight=False)
        if ev.total <= 0:
            return
        if ev.stage not in self.tasks:
            self.tasks[ev.stage] = self.progress.add_task(ev.stage, total=ev.total)
        self.progress.update(self.tasks[ev.stage], completed=ev.done, total=ev.total)
