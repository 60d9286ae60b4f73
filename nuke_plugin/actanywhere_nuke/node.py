"""The ActAnywhere node's buttons and callbacks (thin: the work is in ``actanywhere.api``).

Generate runs on Nuke's main thread only as long as it takes to render the inputs that need
it; the job is then followed on a background thread (``JobHandle``), progress and Cancel go
through a ``nuke.ProgressTask``, and every change to the node comes back through
``nuke.executeInMainThread``. Every failure ends as one line in the status knob and a
``nuke.message``, never a traceback dialog.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from dataclasses import dataclass

import nuke

from actanywhere.api import Client, JobHandle, Take, Takes, WorkerError, build, shotspec
from actanywhere.api.prompts import key_frames
from actanywhere.api.status import describe
from actanywhere.api.take_session import start as start_take
from actanywhere.errors import SpecError

from . import inputs
from .colour import color_section
from .definition import ENGINE_KNOBS
from .inputs import InputError


@dataclass
class Run:
    handle: JobHandle
    take: Take


#: the job each node (by full name) is running
RUNS: dict[str, Run] = {}


# ------------------------------------------------------------------------------- buttons
def generate(node) -> Take | None:
    """Make a new take: inputs as files, a ShotSpec, the job sent to the worker."""
    try:
        return _generate(node)
    except (InputError, SpecError) as exc:
        _fail(node, str(exc))
    except Exception as exc:  # noqa: BLE001 - one line in Nuke, never a traceback dialog
        _fail(node, f"internal error: {type(exc).__name__}: {exc}")
    return None


def _generate(node) -> Take:
    running = RUNS.get(node.fullName())
    if running is not None and not running.handle.finished.is_set():
        raise InputError(f"{running.take.name} is still generating; Cancel it first")
    engine = node["engine"].value()
    shotspec.check_model(engine, _model(node))  # said before a take folder is made
    folder = take_root(node)
    first, last = frame_range(node)
    try:
        take = Takes(folder).new()
    except OSError as exc:
        raise InputError(f"output folder {folder} cannot be written ({exc.strerror or exc}); "
                         "choose another output folder") from None
    _status(node, f"{take.name}: preparing the inputs")
    try:
        spec = _spec(node, take, first, last)
    except (InputError, SpecError) as exc:
        take.status, take.error = "failed", str(exc)
        take.save()
        raise
    handle = start_take(take, spec, _connect, stem=node.name(), main_thread=_on_main,
                        on_progress=lambda ev: _progress(node, take, ev),
                        on_end=lambda t, h: _ended(node, t, h), client="nuke")
    RUNS[node.fullName()] = Run(handle, take)
    threading.Thread(target=_watch, args=(handle, take), name="actanywhere-progress",
                     daemon=True).start()
    _status(node, f"{take.name}: sent to the worker")
    return take


def cancel(node) -> None:
    running = RUNS.get(node.fullName())
    if running is None or running.handle.finished.is_set():
        _status(node, "nothing is generating")
        return
    running.handle.cancel()
    _status(node, f"{running.take.name}: cancelling (frames written so far are kept)")


def read_from_take(node):
    """A standalone Read of the chosen take at the script's top level, beside the node."""
    take = chosen_take(node)
    span = take.frame_range() if take is not None else None
    if span is None:
        _fail(node, "no take with frames to read: Generate one first")
        return None
    with nuke.root():
        read = nuke.nodes.Read(file=take.output, first=span[0], last=span[1],
                               origfirst=span[0], origlast=span[1], raw=True,
                               label=f"{node.name()} {take.name}")
    read.setXYpos(node.xpos() + 120, node.ypos() + 60)
    _status(node, f"{take.name}: Read made ({read.name()})")
    return read


def refresh(node, select: str | None = None) -> list[Take]:
    """The take list read again from the output folder; ``select``: the take to show
    (default: the one shown now)."""
    try:
        found = Takes(take_root(node)).list()
    except InputError:
        found = []
    items = [t.menu_item() for t in found] or ["none"]
    node["take"].setValues(items)
    current = select or _shown_take_name(node)
    take = next((t for t in found if t.name == current), None)
    if take is not None:
        node["take"].setValue(take.menu_item())
    _show(node, take)
    return found


def on_create(node) -> None:
    """When the node is made, its script opened or its panel shown: the engine menu from the
    catalog, the take list from disk."""
    try:
        refresh_engines(node)
    except Exception as exc:  # noqa: BLE001 - never stop a script from opening
        print(f"ActAnywhere: {node.name()}: engine menu not read ({exc})")
    try:
        refresh(node)
    except Exception as exc:  # noqa: BLE001 - never stop a script from opening
        print(f"ActAnywhere: {node.name()}: take list not read ({exc})")


def refresh_engines(node) -> list[str]:
    """The engine menu: every engine of the catalog (the gizmo file lists the shipped ones),
    its tooltip their summaries, the knobs of the chosen engine shown. The engine saved in
    the hidden ``engine_name`` is chosen again when the script's menu could not hold it (a
    studio's engine, missing from the gizmo's menu when the script was read)."""
    found, problem = shotspec.engines()
    if problem:
        print(f"ActAnywhere: {problem}")
    names = [t.name for t in found]
    menu = node["engine"]
    current, saved = menu.value(), node["engine_name"].value()
    if menu.values() != names:
        menu.setValues(names)
    if saved in names and saved != current and current == (menu.values() or [""])[0]:
        current = saved  # the script's menu fell back to its first item
    if current in names and menu.value() != current:
        menu.setValue(current)
    menu.setTooltip("; ".join(f"{t.name}: {t.summary}" for t in found if t.summary))
    _show_engine_knobs(node)
    return names


def _engine_changed(node) -> None:
    """The artist chose another engine: its knobs shown, the settings still at an engine's
    starting value moved to this engine's (steps 25 -> 30 for vace), the choice recorded."""
    engine = node["engine"].value()
    node["engine_name"].setValue(engine)
    for name, value in shotspec.switched(engine, _panel_values(node, engine)).items():
        node[name].setValue(value)
    _show_engine_knobs(node)


def _show_engine_knobs(node) -> None:
    engine = node["engine"].value()
    traits = next((t for t in shotspec.engines()[0] if t.name == engine), None)
    shown = set(shotspec.panel(engine)) | ({"model"} if traits and traits.model else set())
    for name in ENGINE_KNOBS:
        if node.knob(name) is not None:
            node[name].setVisible(name in shown)


def knob_changed(node, knob) -> None:
    if knob is None:
        return
    if knob.name() == "engine":
        _engine_changed(node)
    elif knob.name() == "take":
        take = chosen_take(node)
        _show(node, take)
        if take is not None:
            _status(node, take.menu_item() + (f" ({take.error})" if take.error else ""))
    elif knob.name() == "showPanel":
        on_create(node)


# ------------------------------------------------------------------------- what Generate reads
def take_root(node) -> str:
    """This node's take folder: the output folder knob, else ``actanywhere/<node>`` beside
    the saved script."""
    script = nuke.root().name()
    saved = bool(script) and script != "Root"
    folder = node["output_folder"].evaluate().strip()
    if not folder:
        if not saved:
            raise InputError("save the script first (takes go beside it), or set the "
                             "output folder")
        return os.path.join(os.path.dirname(script), "actanywhere", node.name())
    if not os.path.isabs(folder):
        if not saved:
            raise InputError(f"output folder {folder!r} is relative: save the script first "
                             "or make it absolute")
        folder = os.path.join(os.path.dirname(script), folder)
    return folder


def frame_range(node) -> tuple[int, int]:
    mode = node["range_mode"].value()
    if mode == "root":
        root = nuke.root()
        first, last = int(root["first_frame"].value()), int(root["last_frame"].value())
    elif mode == "custom":
        text = node["frames"].value().strip()
        match = re.fullmatch(r"(-?\d+)(?:\s*-\s*(-?\d+))?", text)
        if match is None:
            raise InputError(f"frame range {text!r}: write FIRST-LAST, e.g. 1001-1100")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) else first
    else:
        plate = node.input(0)
        if plate is None:
            raise InputError("connect the plate input")
        first, last = int(plate.firstFrame()), int(plate.lastFrame())
    if last < first:
        raise InputError(f"frame range {first}-{last}: the last frame is before the first")
    return first, last


def _spec(node, take: Take, first: int, last: int) -> dict:
    folder = os.path.join(take.folder, "inputs")
    plate = inputs.source(node.input(0), "plate", first, last, folder)
    bg = inputs.source(node.input(1), "bg", first, last, folder, still=True)
    engine = node["engine"].value()
    node["engine_name"].setValue(engine)  # the engine of the script's last take
    settings = shotspec.panel_settings(engine, _panel_values(node, engine))
    script = nuke.root().name()
    # the output is a placeholder: takes.start puts it in the take's folder
    return build(plate.path, bg.path, "take.####.exr", frames=f"{first}-{last}",
                 plate_colorspace=plate.colorspace, background_colorspace=bg.colorspace,
                 matte=_matte(node, first, last, folder), engine=engine, model=_model(node),
                 settings=settings, color=color_section(),
                 motion={"source": node["motion"].value()},
                 base=os.path.dirname(script) if script and script != "Root" else take.folder)


def _model(node) -> str | None:
    return node["model"].evaluate().strip() or None


def _panel_values(node, engine: str) -> dict:
    """The knobs of engine ``engine``'s settings (named as its fields), typed as its panel
    starts them: Nuke's values, never Tcl-evaluated (a prompt may hold [brackets])."""
    out = {}
    for name, start in shotspec.panel(engine).items():
        knob = node.knob(name)
        if knob is not None:
            out[name] = type(start)(knob.value())
    return out


def _matte(node, first: int, last: int, folder: str) -> dict:
    source = node["matte_source"].value()
    if source == "plate alpha":
        return {"source": "alpha"}
    if source == "matte input":
        matte = inputs.source(node.input(2), "matte", first, last, folder)
        return {"source": "file", "path": matte.path, "channel": "A"}
    if source == "keyer":
        return {"source": "keyer"}
    keys = key_frames(node["points"].value().split(), node["boxes"].value().split(),
                      names=("points", "boxes", "key matte"))
    if not keys:
        raise InputError(f"matte {source}: add points or boxes on a key frame, e.g. "
                         "points 1001:812,440")
    height = _plate_height(node)
    for key in keys:  # Nuke's Viewer counts y up from the bottom; the ShotSpec from the top
        for point in key.get("points", []):
            point[1] = height - point[1]
        key["boxes"] = [[x0, height - y1, x1, height - y0]
                        for x0, y0, x1, y1 in key.get("boxes", [])]
    out: dict = {"source": source, "keys": keys}
    checkpoint = node["sam_checkpoint"].evaluate().strip()
    if source == "sam" and checkpoint:
        out["sam"] = {"checkpoint": checkpoint}
    return out


def _plate_height(node) -> int:
    return int(node.input(0).format().height())


def _connect() -> Client:
    """The running worker, or one started from the venv ``ACTANYWHERE_PYTHON`` names."""
    python = os.environ.get("ACTANYWHERE_PYTHON")
    try:
        return Client.connect(python=python, start=bool(python))
    except WorkerError as exc:
        if python:
            raise
        raise WorkerError(f"{exc}; or set ACTANYWHERE_PYTHON to the ActAnywhere venv's python "
                          "(python3 install.py nuke does)") from None


# --------------------------------------------------------------------------- the node's look
def chosen_take(node) -> Take | None:
    try:
        return Takes(take_root(node)).get(node["take"].value())
    except InputError:
        return None


def _shown_take_name(node) -> str:
    path = node["take_file"].value()
    return os.path.basename(os.path.dirname(path)) if path else ""


def _show(node, take: Take | None) -> None:
    """Point the node's internal Read at ``take`` (through the hidden knobs it reads)."""
    span = take.frame_range() if take is not None else None
    if take is None or span is None:
        node["has_take"].setValue(False)
        return
    node["take_file"].setValue(take.output)
    node["take_first"].setValue(span[0])
    node["take_last"].setValue(span[1])
    node["has_take"].setValue(True)


def _status(node, text: str) -> None:
    node["status"].setValue(text)


def _fail(node, text: str) -> None:
    line = " ".join(str(text).split())
    _status(node, f"error: {line}")
    nuke.message(f"ActAnywhere ({node.name()}): {line}")


# ----------------------------------------------------------------- background and callbacks
def _on_main(fn) -> None:
    nuke.executeInMainThread(fn)


def _watch(handle: JobHandle, take: Take) -> None:
    """Nuke's progress bar for the job; its Cancel cancels the job (a thread of its own)."""
    task = nuke.ProgressTask(f"ActAnywhere {take.name}")
    try:
        while not handle.finished.wait(0.2):
            if task.isCancelled() and not handle.cancel_requested:
                handle.cancel()
                task.setMessage("cancelling")
            ev = handle.last_event
            if ev and ev.get("total"):
                task.setProgress(int(100 * ev.get("done", 0) / ev["total"]))
                task.setMessage(describe(ev))
    finally:
        del task


def _progress(node, take: Take, ev: dict) -> None:
    with contextlib.suppress(ValueError, NameError):  # the node was deleted meanwhile
        _status(node, f"{take.name}: {describe(ev)}")


def _ended(node, take: Take, handle: JobHandle) -> None:
    running = RUNS.get(node.fullName())
    if running is not None and running.take is take:
        del RUNS[node.fullName()]
    try:
        refresh(node, select=take.name if take.written else None)
        if handle.status == "done":
            _status(node, f"{take.name} done: {take.written} frames in "
                    f"{take.timings.get('total_s', 0):.1f} s")
        elif handle.status == "cancelled":
            _status(node, f"{take.name} cancelled after {take.written} frames (kept)")
        else:
            _fail(node, f"{take.name} {handle.status}: {handle.error}")
    except (ValueError, NameError):  # the node was deleted meanwhile
        pass
