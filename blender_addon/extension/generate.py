"""Generate: the active image strip as the plate, the panel's settings as a ShotSpec, a new
take folder, the job sent to the worker. Runs on the main thread only as long as reading the
strips and making the folder take; the job itself is followed by ``jobs``."""

from __future__ import annotations

import contextlib
import os
import re
import threading

import bpy

from . import colour, compat, jobs, plate, preferences, props
from .vendor.actanywhere.api import Client, Take, Takes, WorkerError, build, farm, shotspec
from .vendor.actanywhere.api import objects as matte_objects
from .vendor.actanywhere.api.prompts import key_frames
from .vendor.actanywhere.api.take_session import start as start_take
from .vendor.actanywhere.errors import InputError, SpecError


def plate_strip(scene):
    ed = compat.editor(scene)
    strip = ed.active_strip if ed is not None else None
    if strip is None:
        raise InputError("select the plate: an image strip (EXR, PNG or JPEG sequence)")
    return strip


def take_root(scene, plate_name: str) -> str:
    """``<output>/<plate strip>``: the output folder (``//`` = the .blend's folder)."""
    folder = scene.actanywhere.output_folder.strip() or "//actanywhere"
    if folder.startswith("//") and not bpy.data.filepath:
        raise InputError(f"output folder {folder!r} is beside the .blend: save the .blend "
                         "first, or set an absolute Output folder")
    safe = re.sub(r"[^\w.-]+", "_", plate_name).strip("._") or "plate"
    return os.path.join(os.path.abspath(bpy.path.abspath(folder)), safe)


def start(scene) -> Take:
    """The new take, running; InputError/SpecError/WorkerError as one line otherwise."""
    strip = plate_strip(scene)
    busy = jobs.running(plate=strip.name, scene=scene.name)
    if busy:
        raise InputError(f"{busy[0].take.name} of {strip.name!r} is still generating; cancel "
                         "it first")
    seq = plate.sequence(strip)
    plate_ocio = plate.ocio(seq.colorspace, f"plate strip {strip.name!r}")
    _engine(scene)  # a missing engine or model folder is said before a take folder is made
    python = preferences.worker_python()
    settings_remote = preferences.remote_settings()  # one line now when they cannot be used
    root = take_root(scene, strip.name)
    try:
        take = Takes(root).new()
    except OSError as exc:
        raise InputError(f"output folder {root} cannot be written ({exc.strerror or exc}); "
                         "choose another Output folder") from None
    try:
        spec = _spec(scene, seq, plate_ocio, take)
    except Exception as exc:
        take.status, take.error = "failed", " ".join(str(exc).split())
        take.save()
        raise
    settings = scene.actanywhere
    scene_name = scene.name
    # the job's callbacks wait in jobs.QUEUE until the timer runs them, after this returns
    handle = start_take(
        take, spec, lambda: _connect(python, settings_remote), stem=_stem(seq.pattern),
        main_thread=jobs.QUEUE.post,
        on_progress=lambda ev: jobs.on_progress(scene_name, take, ev),
        on_end=lambda t, h: jobs.on_end(scene_name, t, h), client="blender")
    entry = props.add_take(settings, take, strip.name, seq)
    entry.status, entry.message = "starting", "sent to the worker"
    entry.label, entry.engine, entry.output = take.label, take.engine, take.output
    entry.seed = int(take.seed or 0)
    settings.take_index = len(settings.takes) - 1
    jobs.RUNS[take.folder] = jobs.Run(handle, take, scene_name, strip.name)
    jobs.watch()
    settings.status = f"{take.name}: sent to the worker"
    return take


def send_to_farm(scene) -> tuple[str, str]:
    """Send to farm, its main-thread part: the panel's take as a ShotSpec whose inputs go
    into a new bundle folder under the preferences' farm folder; the export and the submit
    then run on a thread (``jobs.FARM``), the take list hears of them through ``jobs.QUEUE``.
    (the bundle folder, the plate strip's name); InputError/SpecError as one line."""
    strip = plate_strip(scene)
    if any(t.is_alive() for t in jobs.FARM.values()):
        raise InputError("the last Send to farm is still exporting; wait for it")
    seq = plate.sequence(strip)
    plate_ocio = plate.ocio(seq.colorspace, f"plate strip {strip.name!r}")
    _engine(scene)
    python = preferences.worker_python()
    if not python:
        raise InputError("set the Worker Python in the ActAnywhere add-on's preferences "
                         "(python3 install.py blender does): the bundle is exported with it")
    root = take_root(scene, strip.name)
    farm_root = preferences.farm_folder()
    if not farm_root:
        if not bpy.data.filepath:
            raise InputError("save the .blend first (farm bundles go beside it), or set the "
                             "Farm Folder in the add-on's preferences")
        farm_root = os.path.join(os.path.dirname(bpy.data.filepath), "actanywhere", "farm")
    try:
        bundle = farm.bundle_folder(farm_root, os.path.basename(root))
        os.makedirs(os.path.join(bundle, "inputs"))
    except OSError as exc:
        raise InputError(f"farm folder {farm_root} cannot be written ({exc.strerror or exc}); "
                         "choose another in the add-on's preferences") from None
    # the take's frames go to <root>/take_NNN/<shot>.####.exr: the bundle names the shot
    # after the output's file name and puts its takes in <output root>/<shot>/
    holder = Take(folder=bundle, number=0)
    try:
        spec = _spec(scene, seq, plate_ocio, holder, inputs=os.path.join(bundle, "inputs"),
                     output=os.path.join(root, f"{os.path.basename(root)}.####.exr"))
    except Exception:
        for path in (os.path.join(bundle, "inputs"), bundle):  # only where nothing was written
            with contextlib.suppress(OSError):
                os.rmdir(path)
        raise
    scene_name, plate_name = scene.name, strip.name

    def run() -> None:
        try:
            sent, error = farm.send([spec], bundle, os.path.dirname(root), python=python,
                                    name=f"ActAnywhere {plate_name}"), None
        except farm.FarmError as exc:
            sent, error = None, str(exc)
        except Exception as exc:  # noqa: BLE001 - said in the panel, never lost on a thread
            sent, error = None, f"internal error: {type(exc).__name__}: {exc}"
        jobs.QUEUE.post(lambda: jobs.on_farm_sent(scene_name, plate_name, seq, sent, error))

    thread = threading.Thread(target=run, name="actanywhere-farm", daemon=True)
    jobs.FARM[bundle] = thread
    thread.start()
    jobs.watch()
    scene.actanywhere.status = f"Send to farm: exporting into {bundle}"
    return bundle, strip.name


def _stem(pattern: str) -> str:
    return re.sub(r"[._-]*#+.*$", "", pattern) or "take"


def _connect(python: str, settings=None) -> Client:
    """The shared worker of the preferences' connection (``settings``), else the running
    worker, or one started with the preferences' Python (on the job's thread: both were read
    from the preferences before)."""
    if settings is not None:
        return Client.remote(settings)
    if not python:
        try:
            return Client.connect(start=False)
        except WorkerError as exc:
            raise WorkerError(f"{exc}; or set the Worker Python in the ActAnywhere add-on's "
                              "preferences (python3 install.py blender does)") from None
    return Client.connect(python=python, start=True)


def _engine(scene) -> tuple[str, str | None]:
    """The chosen engine and its model folder (absolute), or a one-line InputError/SpecError:
    no engine (the .blend chose one no longer registered), no model folder where it needs
    one."""
    s = scene.actanywhere
    engine = s.engine
    if not engine:
        raise InputError("pick an Engine: the one this .blend chose is not registered here")
    model = bpy.path.abspath(s.model.strip()) if s.model.strip() else None
    shotspec.check_model(engine, model)
    return engine, model


def _spec(scene, seq: plate.Sequence, plate_ocio: str, take: Take, *,
          inputs: str | None = None, output: str = "take.####.exr") -> dict:
    s = scene.actanywhere
    inputs = inputs or os.path.join(take.folder, "inputs")
    if s.background_source == "STRIP":
        bg_strip = compat.strips_all(compat.editor(scene)).get(s.background_strip)
        if bg_strip is None:
            raise InputError(f"background strip {s.background_strip!r} is not in the scene; "
                             "pick one, or use a background File")
        bg_path, bg_cs = plate.still(bg_strip, seq.timeline_start)
        bg_ocio = plate.ocio(bg_cs, f"background strip {bg_strip.name!r}")
    else:
        if not s.background_file.strip():
            raise InputError("pick a background: an image File or a Strip")
        bg_path, bg_ocio = bpy.path.abspath(s.background_file.strip()), None
        if not os.path.isfile(bg_path):
            raise InputError(f"background file {bg_path} does not exist")
    engine, model = _engine(scene)
    # the chosen engine's settings, into its own section; Blender's 32-bit floats rounded
    settings = {k: round(v, 4) if isinstance(v, float) else v
                for k, v in shotspec.panel_settings(
                    engine, props.panel_values(s, engine)).items()}
    matte = _matte(scene, seq, inputs)
    spec = build(seq.path, bg_path, output, frames=seq.frames,
                 plate_colorspace=plate_ocio, background_colorspace=bg_ocio,
                 matte=matte, engine=engine, model=model,
                 settings=settings, motion={"source": s.motion},
                 color={"working_space": colour.working_space(plate_ocio)},
                 base=os.path.dirname(bpy.data.filepath) or take.folder)
    if matte.get("objects"):  # each object's matte.<name>.A in the take's EXRs
        spec["output"]["layers"] = list(matte_objects.OUTPUT_LAYERS)
    return spec


def _matte(scene, seq: plate.Sequence, inputs: str) -> dict:
    s = scene.actanywhere
    if s.matte == "ALPHA":
        return {"source": "alpha"}
    if s.matte == "STRIP":
        strip = compat.strips_all(compat.editor(scene)).get(s.matte_strip)
        if strip is None:
            raise InputError(f"matte strip {s.matte_strip!r} is not in the scene; pick one")
        return {"source": "file", "path": plate.lined_up(strip, seq, inputs, "matte"),
                "channel": "A"}
    if s.matte == "KEYER":
        return {"source": "keyer", "keyer": {"screen": s.screen}}
    source = props.matte_source(s.matte)
    if not props.matte_tracked(s.matte):  # a source that needs nothing more (a studio's)
        return {"source": source}
    try:
        objects = matte_objects.parse(s.objects, source, field="Objects")
    except SpecError as exc:
        raise InputError(str(exc)) from None
    keys = key_frames(s.points.split(), s.boxes.split(), names=("points", "boxes", "matte"))
    text = s.matte_text.strip() if props.matte_texted(s.matte) else ""
    if objects:
        if keys or text:
            raise InputError("Objects hold the prompts: clear Points, Boxes and Text Prompt "
                             "(or clear Objects for a single subject)")
        for obj in objects:
            _to_file_frames(obj["keys"], seq, f"Objects ({obj['name']}): ")
        out: dict = {"source": source, "objects": objects}
        _checkpoint(s, out)
        return out
    if props.matte_texted(s.matte) and not text:
        raise InputError(f"matte {source}: type what to find in Text Prompt, e.g. person")
    if not keys and not text:
        raise InputError(f"matte {source}: add points or boxes on a key frame, e.g. "
                         f"points {seq.timeline_start}:812,440")
    _to_file_frames(keys, seq)
    out = {"source": source, "keys": keys}
    if text:
        out["text"] = text
    _checkpoint(s, out)
    return out


def _to_file_frames(keys: list[dict], seq: plate.Sequence, where: str = "") -> None:
    """Key frames typed on the timeline, to the plate's file frames (the worker's)."""
    for key in keys:
        timeline = key["frame"]
        if not seq.timeline_start <= timeline <= seq.timeline_frame(seq.last):
            raise InputError(f"{where}key frame {timeline} is outside the plate strip's "
                             f"visible frames {seq.timeline_start}-"
                             f"{seq.timeline_frame(seq.last)}")
        key["frame"] = seq.file_frame(timeline)


def _checkpoint(s, out: dict) -> None:
    if props.matte_sam(s.matte) and s.sam_checkpoint.strip():
        out["sam"] = {"checkpoint": bpy.path.abspath(s.sam_checkpoint.strip())}
