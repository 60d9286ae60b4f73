"""Takes running in the worker, followed without blocking Blender.

Each job is an ``actanywhere.api`` ``JobHandle`` (its own thread connects, submits and waits
on the worker); its callbacks are posted to ``QUEUE`` and run on Blender's main thread by
``tick``, a ``bpy.app.timers`` function: no ``bpy`` call ever happens on another thread. In
background mode (``blender -b``, ``import bpy``) timers do not fire by themselves: call
``tick()`` from the script's own loop (the tests do; that is their only difference from the
UI).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import bpy

from . import strips
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


def running(plate: str | None = None, scene: str | None = None) -> list[Run]:
    return [r for r in RUNS.values() if not r.handle.finished.is_set()
            and (scene is None or r.scene == scene)
            and (plate is None or r.plate == plate)]


def tick() -> float | None:
    """The timer: run what the job threads posted, redraw; again in INTERVAL s while a take
    runs."""
    QUEUE.pump()
    _redraw()
    if RUNS:
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
    RUNS.clear()
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
