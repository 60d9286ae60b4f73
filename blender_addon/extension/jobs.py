"""Takes running in the worker, followed without blocking Blender.

Each job is an ``actanywhere.api`` ``JobHandle`` (its own thread connects, submits and waits
on the worker); its callbacks are posted to ``QUEUE`` and run on Blender's main thread by
``tick``, a ``bpy.app.timers`` function: no ``bpy`` call ever happens on another thread. In
background mode (``blender -b``, ``import bpy``) timers do not fire by themselves: call
``tick()`` from the script's own loop (the tests do; that is their only difference from the
UI).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import bpy

from . import props, strips
from .vendor.actanywhere.api import JobHandle, MainThreadQueue, Take
from .vendor.actanywhere.api.status import describe

QUEUE = MainThreadQueue()
INTERVAL = 0.2


@dataclass
class Run:
    handle: JobHandle
    take: Take
    scene: str  # the scene's and the plate strip's names: bpy objects are not kept
    plate: str


#: running takes by folder
RUNS: dict[str, Run] = {}
#: Send to farm exports running, by bundle folder
FARM: dict[str, threading.Thread] = {}


def running(plate: str | None = None, scene: str | None = None) -> list[Run]:
    return [r for r in RUNS.values() if not r.handle.finished.is_set()
            and (scene is None or r.scene == scene)
            and (plate is None or r.plate == plate)]


def tick() -> float | None:
    """The timer: run what the job threads posted, redraw; again in INTERVAL s while a take
    runs."""
    QUEUE.pump()
    _redraw()
    for folder in [f for f, t in FARM.items() if not t.is_alive()]:
        FARM.pop(folder, None)  # its end was posted before the thread ended
    if RUNS or FARM:
        return INTERVAL
    return None


def watch() -> None:
    if not bpy.app.timers.is_registered(tick):
        bpy.app.timers.register(tick, first_interval=INTERVAL, persistent=True)


def stop_all(wait: float = 10.0) -> None:
    """Cancel every running take (unregistering): frames written so far are kept."""
    for run in list(RUNS.values()):
        run.handle.cancel()
    end = time.monotonic() + wait
    for run in list(RUNS.values()):
        run.handle.finished.wait(max(0.0, end - time.monotonic()))
    for thread in list(FARM.values()):  # an export: its bundle is whole or removed
        thread.join(max(0.0, end - time.monotonic()))
    RUNS.clear()
    FARM.clear()
    QUEUE.pump()
    if bpy.app.timers.is_registered(tick):
        bpy.app.timers.unregister(tick)


def _redraw() -> None:
    wm = bpy.context.window_manager
    for window in getattr(wm, "windows", []):
        for area in window.screen.areas:
            if area.type in ("SEQUENCE_EDITOR", "STATUSBAR"):
                area.tag_redraw()


# --------------------------------------------------------------- what the job thread posts
def item(scene_name: str, folder: str):
    """The take's entry in its scene's list, or None (scene or entry gone, file reloaded)."""
    scene = bpy.data.scenes.get(scene_name)
    if scene is None:
        return None, None
    for entry in scene.actanywhere.takes:
        if entry.folder == folder:
            return scene, entry
    return scene, None


def on_progress(scene_name: str, take: Take, ev: dict) -> None:
    scene, entry = item(scene_name, take.folder)
    if entry is None:
        return
    if ev.get("stage") != "warning":
        entry.status = "running"
        if ev.get("total"):
            entry.progress = ev.get("done", 0) / ev["total"]
    entry.message = describe(ev)
    scene.actanywhere.status = f"{take.name}: {entry.message}"


def on_end(scene_name: str, take: Take, handle: JobHandle) -> None:
    RUNS.pop(take.folder, None)
    scene, entry = item(scene_name, take.folder)
    if entry is None:
        if handle.status not in ("done", "cancelled"):
            report(f"ActAnywhere {take.name} {handle.status}: {handle.error}")
        return
    entry.status, entry.written = handle.status, take.written
    if take.seed is not None:
        entry.seed = int(take.seed)
    settings = scene.actanywhere
    if handle.status == "done":
        strip = strips.add(scene, entry)
        entry.progress = 1.0
        entry.message = (f"{take.written} frames in {take.timings.get('total_s', 0):.1f} s"
                         + (f" as strip {strip.name!r}" if strip is not None else ""))
        settings.status = f"{take.name} done: {entry.message}"
        if strip is not None:
            strips.show_only(scene, entry)
        report(f"ActAnywhere: {settings.status}", "INFO")
    elif handle.status == "cancelled":
        entry.message = f"cancelled after {take.written} frames (kept; Load Strip shows them)"
        settings.status = f"{take.name} {entry.message}"
        report(f"ActAnywhere: {settings.status}", "WARNING")
    else:
        entry.message = " ".join(str(handle.error).split())
        line = f"{take.name} {handle.status}: {entry.message}"
        settings.status = f"error: {line}"
        report(f"ActAnywhere: {line}")


def farm_queued(take: Take) -> bool:
    """A take the farm has not run yet: queued, no worker job, no frames."""
    return take.status == "queued" and not take.job and not take.files()


def on_farm_sent(scene_name: str, plate_name: str, seq, sent, error: str | None) -> None:
    """Send to farm ended (on the main thread): each take the bundle reserved in the list as
    queued on the farm, and what was done with the bundle (submitted, or the command to
    submit it) in the panel and the reports."""
    scene = bpy.data.scenes.get(scene_name)
    if scene is None:
        return
    settings = scene.actanywhere
    if sent is None:
        settings.status = f"error: Send to farm: {' '.join(str(error).split())}"
        report(f"ActAnywhere: {settings.status[len('error: '):]}")
        return
    names = []
    for folder in sent.takes:
        try:
            take = Take.load(folder)
        except (OSError, ValueError, TypeError):
            continue
        entry = next((t for t in settings.takes if t.folder == folder), None) or \
            props.add_take(settings, take, plate_name, seq)
        entry.status, entry.label, entry.engine = take.status, take.label, take.engine
        entry.output, entry.seed, entry.farm = take.output, int(take.seed or 0), sent.folder
        entry.message = "queued on the farm" + (f": submitted ({sent.submitted})"
                                                if sent.submitted else "")
        names.append(take.name)
        settings.take_index = len(settings.takes) - 1
    what = ", ".join(names) or "the take"
    if sent.submitted:
        settings.status = f"{what} queued on the farm: submitted to Deadline Cloud " \
            f"({sent.submitted})"
    else:
        settings.status = (f"{what} queued on the farm: bundle {sent.folder}; submit it with: "
                           f"{sent.submit} ({sent.not_submitted})")
    report(f"ActAnywhere: {settings.status}", "INFO")


def refresh_entry(entry, take: Take) -> bool:
    """An entry's fields from its take's record on disk; True when a take queued on the farm
    has since been done (its strip can be shown)."""
    arrived = entry.status == "queued" and take.status == "done" and bool(take.files())
    entry.status, entry.label, entry.engine = take.status, take.label, take.engine
    entry.output, entry.written = take.output, take.written or len(take.files())
    entry.seed = int(take.seed or 0)
    if take.error:
        entry.message = take.error
    elif farm_queued(take):
        entry.message = "queued on the farm"
    elif arrived:
        entry.message = f"{entry.written} frames from the farm"
    return arrived


def report(message: str, level: str = "ERROR") -> None:
    """One line in Blender's reports (status bar, Info editor; the console in background
    mode), from the main thread where no operator is running."""
    try:
        bpy.ops.actanywhere.report(message=message, level=level)
    except RuntimeError as exc:  # bpy.ops raises an operator's error report: it was made
        if message not in str(exc):  # no context for operators: the console at least
            print(f"{level.title()}: {message}")
    except AttributeError:  # the add-on is being disabled
        print(f"{level.title()}: {message}")
