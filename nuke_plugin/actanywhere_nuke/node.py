"""The ActAnywhere node's buttons and callbacks (thin: the work is in ``actanywhere.api``).

Generate runs on Nuke's main thread only as long as it takes to render the inputs that need
it; the job is then followed on a background thread (``JobHandle``), progress and Cancel go
through a ``nuke.ProgressTask``, and every change to the node comes back through
``nuke.executeInMainThread``. Every failure ends as one line in the status knob and a
``nuke.message``, never a traceback dialog.

The worker is the one on this machine (started from ``$ACTANYWHERE_PYTHON``), or a shared one
named by the node's worker connection file (else ``$ACTANYWHERE_CONNECTION``): the spec's paths
go to it mapped to its mounts, the take's files are read back from this machine's. Send to
farm exports the take as a job bundle on a thread of its own (``api.farm.send``).
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from dataclasses import dataclass

import nuke

from actanywhere import catalog
from actanywhere.api import (
    Client,
    JobHandle,
    Take,
    Takes,
    WorkerError,
    build,
    farm,
    pathmap,
    remote,
    shotspec,
)
from actanywhere.api import objects as matte_objects
from actanywhere.api.prompts import key_frames
from actanywhere.api.status import describe
from actanywhere.api.take_session import start as start_take
from actanywhere.errors import SpecError

from . import inputs
from .colour import color_section
from .definition import ENGINE_KNOBS, MATTE_KNOBS, MATTE_LABELS, TEXT_SOURCES
from .inputs import InputError


@dataclass
class Run:
    handle: JobHandle
    take: Take


#: the job each node (by full name) is running
RUNS: dict[str, Run] = {}
#: the Send to farm each node (by full name) is exporting
FARM_SENDS: dict[str, threading.Thread] = {}


# ------------------------------------------------------------------------------- buttons
def generate(node) -> Take | None:
    """Make a new take: inputs as files, a ShotSpec, the job sent to the worker."""
    try:
        return _generate(node)
    except (InputError, SpecError, WorkerError) as exc:
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
    connect = _connector(node)  # a connection file that cannot be used: said now
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
    handle = start_take(take, spec, connect, stem=node.name(), main_thread=_on_main,
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


def send_to_farm(node) -> threading.Thread | None:
    """Export this node's take as a job bundle (its inputs rendered into the bundle where
    needed) and submit it to Deadline Cloud where its CLI is set up; the export and the
    submit run on a thread of their own, the node hears of the end on the main thread."""
    try:
        return _send_to_farm(node)
    except (InputError, SpecError, farm.FarmError) as exc:
        _fail(node, f"Send to farm: {exc}")
    except Exception as exc:  # noqa: BLE001 - one line in Nuke, never a traceback dialog
        _fail(node, f"Send to farm: internal error: {type(exc).__name__}: {exc}")
    return None


def farm_root(node) -> str:
    """Where this node's bundles go: the farm bundles knob, else ``$ACTANYWHERE_FARM_FOLDER``,
    else ``actanywhere/farm`` beside the saved script."""
    folder = node["farm_folder"].evaluate().strip() or \
        os.environ.get("ACTANYWHERE_FARM_FOLDER", "").strip()
    script = nuke.root().name()
    saved = bool(script) and script != "Root"
    if folder and os.path.isabs(os.path.expanduser(folder)):
        return os.path.expanduser(folder)
    if not saved:
        raise InputError("save the script first (farm bundles go beside it), or set the "
                         "farm bundles folder")
    return os.path.join(os.path.dirname(script), folder or os.path.join("actanywhere", "farm"))


def _send_to_farm(node) -> threading.Thread:
    busy = FARM_SENDS.get(node.fullName())
    if busy is not None and busy.is_alive():
        raise InputError("the last Send to farm is still exporting; wait for it")
    engine = node["engine"].value()
    shotspec.check_model(engine, _model(node))
    python = os.environ.get("ACTANYWHERE_PYTHON", "").strip()
    if not python:
        raise InputError("set ACTANYWHERE_PYTHON to the ActAnywhere venv's python (python3 "
                         "install.py nuke does): the bundle is exported with it")
    root = take_root(node)
    first, last = frame_range(node)
    try:
        bundle = farm.bundle_folder(farm_root(node), node.name())
        os.makedirs(bundle)
    except OSError as exc:
        raise InputError(f"farm bundles folder cannot be written ({exc.strerror or exc}); "
                         "choose another") from None
    _status(node, "Send to farm: preparing the inputs")
    # the bundle names its shot after the output's file name and puts its takes in
    # <output root>/<shot>/take_NNN: named after the take folder, they join this node's
    # (the status says where they went when the exporter renamed the shot: a generic name)
    stem = os.path.basename(root.rstrip(os.sep)) or node.name()
    try:
        spec = _shot_spec(node, os.path.join(bundle, "inputs"), first, last,
                          os.path.join(root, f"{stem}.####.exr"), bundle)
    except Exception:
        _remove_empty(bundle)
        raise
    name = f"ActAnywhere {node.name()}"

    def run() -> None:
        try:
            sent, error = farm.send([spec], bundle, os.path.dirname(root), python=python,
                                    name=name), None
        except farm.FarmError as exc:
            sent, error = None, str(exc)
        except Exception as exc:  # noqa: BLE001 - said on the node, never lost on a thread
            sent, error = None, f"internal error: {type(exc).__name__}: {exc}"
        _on_main(lambda: _farm_sent(node, sent, error))

    thread = threading.Thread(target=run, name="actanywhere-farm", daemon=True)
    FARM_SENDS[node.fullName()] = thread
    thread.start()
    _status(node, f"Send to farm: exporting into {bundle}")
    return thread


def _remove_empty(folder: str) -> None:
    """``folder`` (and its ``inputs``) removed where nothing was written into them."""
    for path in (os.path.join(folder, "inputs"), folder):
        with contextlib.suppress(OSError):
            os.rmdir(path)


def _farm_sent(node, sent: farm.FarmBundle | None, error: str | None) -> None:
    """On the main thread: the queued take in the list, and what was done with the bundle
    (submitted, or the command to submit it)."""
    FARM_SENDS.pop(node.fullName(), None)
    try:
        if sent is None:
            _fail(node, f"Send to farm: {error}")
            return
        refresh(node)
        names = ", ".join(os.path.basename(t) for t in sent.takes) or "the take"
        root = take_root(node)
        where = "" if all(os.path.dirname(t) == root for t in sent.takes) else \
            f" (in {', '.join(os.path.dirname(t) for t in sent.takes)})"
        if sent.submitted:
            _status(node, f"{names} queued on the farm{where}: submitted to Deadline Cloud "
                    f"({sent.submitted})")
            return
        line = (f"{names} queued on the farm{where}: bundle {sent.folder}; submit it with: "
                f"{sent.submit} ({sent.not_submitted})")
        _status(node, line)
        nuke.message(f"ActAnywhere ({node.name()}): {line}")
    except (ValueError, NameError):  # the node was deleted meanwhile
        pass


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
    items = [menu_item(t) for t in found] or ["none"]
    node["take"].setValues(items)
    current = select or _shown_take_name(node)
    take = next((t for t in found if t.name == current), None)
    if take is not None:
        node["take"].setValue(menu_item(take))
    _show(node, take)
    return found


def menu_item(take: Take) -> str:
    """A take's line in the take menu; a take the farm has not run yet (queued, no worker
    job) says ``queued on the farm``."""
    item = take.menu_item()
    if farm_queued(take):
        item = item[: -len(take.status)] + "queued on the farm"
    return item


def farm_queued(take: Take) -> bool:
    return take.status == "queued" and not take.job and not take.files()


def on_create(node) -> None:
    """When the node is made, its script opened or its panel shown: the engine and matte
    menus from the catalog, the take list from disk."""
    try:
        refresh_engines(node)
    except Exception as exc:  # noqa: BLE001 - never stop a script from opening
        print(f"ActAnywhere: {node.name()}: engine menu not read ({exc})")
    try:
        refresh_mattes(node)
    except Exception as exc:  # noqa: BLE001 - never stop a script from opening
        print(f"ActAnywhere: {node.name()}: matte menu not read ({exc})")
    try:
        refresh(node)
    except Exception as exc:  # noqa: BLE001 - never stop a script from opening
        print(f"ActAnywhere: {node.name()}: take list not read ({exc})")


def _fill_menu(menu, items: list[str], saved: str) -> None:
    """``menu`` holds ``items``; its choice stays, or is ``saved`` again where the script's
    menu could not hold that and fell back to its first item."""
    current = menu.value()
    if menu.values() != items:
        menu.setValues(items)
    if saved in items and saved != current and current == (menu.values() or [""])[0]:
        current = saved  # the script's menu fell back to its first item
    if current in items and menu.value() != current:
        menu.setValue(current)


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
    _fill_menu(menu, names, node["engine_name"].value())
    menu.setTooltip("; ".join(f"{t.name}: {t.summary}" for t in found if t.summary))
    _show_engine_knobs(node)
    return names


def matte_label(name: str) -> str:
    """A matte source's name in the menu (``alpha`` is ``plate alpha``)."""
    return MATTE_LABELS.get(name, name)


def matte_source(label: str) -> str:
    """The catalog's name of the menu's ``label``."""
    return next((k for k, v in MATTE_LABELS.items() if v == label), label)


def refresh_mattes(node) -> list[str]:
    """The matte menu: every matte source of the catalog (a studio's too); the source saved
    in the hidden ``matte_name`` chosen again where the script's menu could not hold it; the
    knobs of the chosen source shown."""
    labels = [matte_label(name) for name in catalog.matte_sources()]
    _fill_menu(node["matte_source"], labels, matte_label(node["matte_name"].value() or ""))
    _show_matte_knobs(node)
    return labels


def _show_matte_knobs(node) -> None:
    """Points and boxes for a source tracked from key frames; the SAM model for the SAM
    sources (``matte.sam.checkpoint``)."""
    name = matte_source(node["matte_source"].value())
    traits = catalog.matte_sources().get(name)
    shown = ({"points", "boxes", "objects"} if traits is not None and traits.tracked else set()) | \
        ({"sam_checkpoint"} if _sam_family(name) else set()) | \
        ({"matte_text"} if name in TEXT_SOURCES else set())
    for knob in MATTE_KNOBS:
        if node.knob(knob) is not None:
            node[knob].setVisible(knob in shown)


def _sam_family(name: str) -> bool:
    """Sources that read a SAM model (``matte.sam``): sam, sam2 and their successors."""
    return name.startswith("sam")


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
    elif knob.name() == "matte_source":
        node["matte_name"].setValue(matte_source(knob.value()))
        _show_matte_knobs(node)
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
    # the output is a placeholder: takes.start puts it in the take's folder
    return _shot_spec(node, os.path.join(take.folder, "inputs"), first, last, "take.####.exr",
                      take.folder)


def _shot_spec(node, folder: str, first: int, last: int, output: str, base: str) -> dict:
    """The node's ShotSpec: its inputs as files (rendered into ``folder`` where needed), its
    knobs; relative paths against the saved script's folder, else ``base``."""
    plate = inputs.source(node.input(0), "plate", first, last, folder)
    bg = inputs.source(node.input(1), "bg", first, last, folder, still=True)
    engine = node["engine"].value()
    node["engine_name"].setValue(engine)  # the engine of the script's last take
    settings = shotspec.panel_settings(engine, _panel_values(node, engine))
    script = nuke.root().name()
    matte = _matte(node, first, last, folder)
    spec = build(plate.path, bg.path, output, frames=f"{first}-{last}",
                 plate_colorspace=plate.colorspace, background_colorspace=bg.colorspace,
                 matte=matte, engine=engine, model=_model(node),
                 settings=settings, color=color_section(),
                 motion={"source": node["motion"].value()},
                 base=os.path.dirname(script) if script and script != "Root" else base)
    if matte.get("objects"):  # each object's matte.<name>.A in the take's EXRs
        spec["output"]["layers"] = list(matte_objects.OUTPUT_LAYERS)
    return spec


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
    source = matte_source(node["matte_source"].value())
    node["matte_name"].setValue(source)
    if source == "alpha":
        return {"source": "alpha"}
    if source == "file":
        matte = inputs.source(node.input(2), "matte", first, last, folder)
        return {"source": "file", "path": matte.path, "channel": "A"}
    traits = catalog.matte_sources().get(source)
    if traits is None:
        raise InputError(f"matte {source!r} is not a matte source here; pick one of "
                         f"{', '.join(map(matte_label, catalog.matte_sources()))}")
    if not traits.tracked:
        return {"source": source}
    height = _plate_height(node)
    objects = _objects(node, source, height)
    keys = key_frames(node["points"].value().split(), node["boxes"].value().split(),
                      names=("points", "boxes", "key matte"))
    text = node["matte_text"].value().strip() if source in TEXT_SOURCES else ""
    if objects:
        if keys or text:
            raise InputError("objects hold the prompts: clear points, boxes and text prompt "
                             "(or clear objects for a single subject)")
        out = {"source": source, "objects": objects}
        _checkpoint(node, source, out)
        return out
    if source in TEXT_SOURCES and not text:
        raise InputError(f"matte {source}: type what to find in text prompt, e.g. person")
    if not keys and not text:
        raise InputError(f"matte {source}: add points or boxes on a key frame, e.g. "
                         "points 1001:812,440")
    _from_top(keys, height)
    out: dict = {"source": source, "keys": keys}
    if text:
        out["text"] = text
    _checkpoint(node, source, out)
    return out


def _checkpoint(node, source: str, out: dict) -> None:
    checkpoint = node["sam_checkpoint"].evaluate().strip()
    if _sam_family(source) and checkpoint:
        out["sam"] = {"checkpoint": checkpoint}


def _objects(node, source: str, height: int) -> list[dict]:
    """``matte.objects`` from the objects knob (one object per line, api/objects.py's
    syntax; never Tcl-evaluated), their prompts counted from the top; a bad line is one
    InputError naming it."""
    try:
        found = matte_objects.parse(node["objects"].value(), source)
    except SpecError as exc:
        raise InputError(str(exc)) from None
    for obj in found:
        _from_top(obj["keys"], height)
    return found


def _from_top(keys: list[dict], height: int) -> None:
    """Nuke's Viewer counts y up from the bottom; the ShotSpec from the top."""
    for key in keys:
        for point in key.get("points", []):
            point[1] = height - point[1]
        key["boxes"] = [[x0, height - y1, x1, height - y0]
                        for x0, y0, x1, y1 in key.get("boxes", [])]


def _plate_height(node) -> int:
    return int(node.input(0).format().height())


def connection_file(node) -> str:
    """The node's worker connection file (relative: to the script's folder), or ""."""
    path = os.path.expanduser(node["worker_connection"].evaluate().strip())
    if path and not os.path.isabs(path):
        script = nuke.root().name()
        path = os.path.join(os.path.dirname(script) if script and script != "Root" else
                            os.getcwd(), path)
    return path


def _connector(node):
    """How this node's job reaches its worker (read here, on the main thread; called on the
    job's thread): the shared worker of the node's connection file, else ``_connect``. A
    connection file that cannot be used is a one-line WorkerError now."""
    path = connection_file(node)
    if not path:
        return _connect
    try:
        settings = remote.from_env({remote.ENV_CONNECTION: path})
    except (remote.RemoteError, pathmap.PathMapError) as exc:
        raise WorkerError(f"worker connection: {exc}") from None
    assert settings is not None  # a file is named
    return lambda: Client.remote(settings)


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


def object_layers(take: Take | None) -> list[str]:
    """The EXR layers of ``take``'s objects (``matte.<name>``, each with an A), which the
    node's output carries beside rgba, ``bg`` and ``matte``: the internal Read reads every
    channel of the take's EXRs, so a Shuffle below the node picks them."""
    spec = (take.spec if take is not None else None) or {}
    if "objects" not in (spec.get("output") or {}).get("layers", []):
        return []
    return matte_objects.layers((spec.get("matte") or {}).get("objects") or [])


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
            shown = object_layers(take)
            _status(node, f"{take.name} done: {take.written} frames in "
                    f"{take.timings.get('total_s', 0):.1f} s" +
                    (f"; object layers {', '.join(shown)} (pick one with a Shuffle)"
                     if shown else ""))
        elif handle.status == "cancelled":
            _status(node, f"{take.name} cancelled after {take.written} frames (kept)")
        else:
            _fail(node, f"{take.name} {handle.status}: {handle.error}")
    except (ValueError, NameError):  # the node was deleted meanwhile
        pass
