"""Runs inside a bpy venv (Blender's Python module from PyPI; numpy<2, no OpenImageIO), driven
by tests/test_blender.py:

    python blender_driver.py SCENARIO CONFIG.json RESULT.json

Installs the extension zip as Blender's "Install from Disk" does, builds a scene from the
plates the test made, presses the add-on's operators and drives its timer function (the only
difference from the UI: in background mode ``bpy.app.timers`` do not fire by themselves), then
writes what Blender shows as JSON for the test to check. A scenario that cannot go on raises:
the test sees the traceback on stderr.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time

import bpy

MODULE = "bl_ext.user_default.actanywhere"


def install(zip_path: str):
    result = bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default",
                                                      enable_on_install=True)
    assert result == {"FINISHED"}, result
    return sys.modules[MODULE]


def editor():
    return bpy.context.scene.sequence_editor_create()


def strips(ed):
    return ed.strips if hasattr(ed, "strips") else ed.sequences


def image_strip(name: str, folder: str, channel: int, frame_start: int, files=None):
    files = files or sorted(f for f in os.listdir(folder) if not f.startswith("."))
    strip = strips(editor()).new_image(name=name, filepath=os.path.join(folder, files[0]),
                                       channel=channel, frame_start=frame_start)
    for name_ in files[1:]:
        strip.elements.append(name_)
    return strip


def select(strip) -> None:
    editor().active_strip = strip


def pump(mod, until, timeout: float = 180.0) -> None:
    """Call the add-on's timer function, as Blender's timers would, until ``until()``."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        mod.jobs.tick()
        if until():
            mod.jobs.tick()
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out: {bpy.context.scene.actanywhere.status}")


def idle(mod):
    return lambda: not mod.jobs.RUNS


def take_info(t) -> dict:
    return {k: getattr(t, k) for k in ("name", "plate", "folder", "output", "strip", "status",
                                       "message", "label", "engine", "seed", "written",
                                       "created", "first", "count")}


def strip_info(strip) -> dict | None:
    if strip is None:
        return None
    return {"name": strip.name, "channel": strip.channel, "frame_start": strip.frame_start,
            "final_start": strip.frame_final_start, "final_end": strip.frame_final_end,
            "length": strip.frame_final_duration, "directory": strip.directory,
            "files": [e.filename for e in strip.elements], "mute": strip.mute,
            "colorspace": strip.colorspace_settings.name, "type": strip.type}


def shown(strip, frame: int) -> str | None:
    """The file Blender shows for ``strip`` at timeline ``frame`` (Blender's own mapping)."""
    elem = strip.strip_elem_from_frame(frame)
    return elem.filename if elem is not None else None


def scene_state() -> dict:
    s = bpy.context.scene.actanywhere
    ed = editor()
    return {"status": s.status, "take_index": s.take_index,
            "takes": [take_info(t) for t in s.takes],
            "strips": {st.name: strip_info(st) for st in strips(ed)}}


def new_take_strip(take_name: str):
    s = bpy.context.scene.actanywhere
    take = next(t for t in s.takes if t.name == take_name)
    return strips(editor()).get(take.strip) if take.strip else None


# ----------------------------------------------------------------------------- scenarios
def takes(cfg: dict, mod) -> dict:
    """Two takes of a plate strip with offsets, switching, deleting a strip, the list after
    removing an entry, saving and reopening."""
    out: dict = {"version": bpy.app.version_string}
    plate = image_strip("plate", cfg["plate_dir"], 2, 10)
    plate.animation_offset_start = 1  # hold offset: the first file is trimmed off
    plate.frame_offset_start = 1
    plate.frame_offset_end = 1
    bg = image_strip("bg", os.path.dirname(cfg["bg2"]), 6, 1,
                     files=[os.path.basename(cfg["bg2"])])
    select(plate)
    bpy.ops.wm.save_as_mainfile(filepath=cfg["blend"])
    s = bpy.context.scene.actanywhere
    s.background_file = cfg["bg"]
    t0 = time.monotonic()
    out["generate"] = list(bpy.ops.actanywhere.generate())
    out["returned_s"] = time.monotonic() - t0
    out["timer_registered"] = bpy.app.timers.is_registered(mod.jobs.tick)
    out["while_running"] = scene_state()
    pump(mod, idle(mod))
    out["first"] = scene_state()
    strip1 = new_take_strip("take_001")
    visible = range(int(plate.frame_final_start), int(plate.frame_final_end))
    out["alignment"] = [[f, shown(plate, f), shown(strip1, f)] for f in visible]

    s.background_source = "STRIP"
    s.background_strip = bg.name
    select(plate)
    bpy.ops.actanywhere.generate()
    pump(mod, idle(mod))
    out["second"] = scene_state()

    s.take_index = 0  # the artist clicks take_001 in the list
    out["switched"] = scene_state()

    strips(editor()).remove(new_take_strip("take_001"))  # the editor deletes its strip
    out["strip_deleted"] = scene_state()
    s.take_index = 0
    out["load_strip"] = list(bpy.ops.actanywhere.load_strip())
    out["reloaded"] = scene_state()

    s.take_index = 1
    out["remove"] = list(bpy.ops.actanywhere.remove_take())
    out["removed"] = scene_state()
    select(plate)
    out["refresh"] = list(bpy.ops.actanywhere.refresh())
    out["refreshed"] = scene_state()

    bpy.ops.wm.save_mainfile()
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.ops.wm.open_mainfile(filepath=cfg["blend"])
    out["reopened"] = scene_state()
    return out


def matte_and_model(cfg: dict, mod) -> dict:
    """A matte strip numbered from 1 under a plate numbered from 1001, lined up on the
    timeline; the diffusion engine (the shipped model) with a seed and steps."""
    plate = image_strip("plate", cfg["plate_dir"], 2, 20)
    matte = image_strip("roto", cfg["matte_dir"], 5, 19)  # one frame earlier on the timeline
    select(plate)
    bpy.ops.wm.save_as_mainfile(filepath=cfg["blend"])
    s = bpy.context.scene.actanywhere
    s.background_file = cfg["bg"]
    s.matte, s.matte_strip = "STRIP", matte.name
    s.engine, s.seed, s.steps = "diffusion", 7, 2
    s.init_strength, s.motion = 0.5, "subject"
    assert bpy.ops.actanywhere.generate() == {"FINISHED"}
    pump(mod, idle(mod), timeout=400)
    return {"state": scene_state(), "spec": mod.vendor.actanywhere.api.Takes(
        os.path.dirname(s.takes[0].folder)).get("take_001").spec}


def _long_take(cfg: dict, mod):
    plate = image_strip("plate", cfg["plate_dir"], 1, 1)
    select(plate)
    bpy.ops.wm.save_as_mainfile(filepath=cfg["blend"])
    bpy.context.scene.actanywhere.background_file = cfg["bg"]
    assert bpy.ops.actanywhere.generate() == {"FINISHED"}
    take = bpy.context.scene.actanywhere.takes[0]

    def frames_done() -> bool:
        msg = take.message
        return msg.startswith("frames ") and int(msg.split()[1].split("/")[0]) >= 2

    pump(mod, frames_done)
    return take


def cancel(cfg: dict, mod) -> dict:
    take = _long_take(cfg, mod)
    out = {"cancel": list(bpy.ops.actanywhere.cancel())}
    pump(mod, idle(mod))
    out["ended"] = scene_state()
    bpy.context.scene.actanywhere.take_index = 0
    out["load_strip"] = list(bpy.ops.actanywhere.load_strip())
    out["loaded"] = scene_state()
    out["take"] = take.name
    return out


def killed(cfg: dict, mod) -> dict:
    _long_take(cfg, mod)
    client = mod.vendor.actanywhere.api.Client.from_state()
    os.kill(client.pid, signal.SIGKILL)
    pump(mod, idle(mod))
    return {"ended": scene_state(), "pid": client.pid}


def make_movie(path: str) -> None:
    """A two-frame H.264 movie rendered by Blender itself (its own FFmpeg)."""
    scene = bpy.context.scene
    ed = editor()
    try:  # Blender 5: length; 4.x: frame_end
        strips(ed).new_effect(name="c", type="COLOR", channel=1, frame_start=1, length=2)
    except TypeError:
        strips(ed).new_effect(name="c", type="COLOR", channel=1, frame_start=1, frame_end=3)
    scene.frame_start, scene.frame_end = 1, 2
    scene.render.resolution_x = scene.render.resolution_y = 32
    if hasattr(scene.render.image_settings, "media_type"):  # Blender 5
        scene.render.image_settings.media_type = "VIDEO"
    scene.render.image_settings.file_format = "FFMPEG"
    scene.render.ffmpeg.format = "MPEG4"
    scene.render.ffmpeg.codec = "H264"
    scene.render.filepath = path
    bpy.ops.render.render(animation=True)


def errors(cfg: dict, mod) -> dict:
    """Each case: what Generate returned and the status line; the scene is rebuilt each time."""
    out = {}
    if "movie" in cfg["cases"]:
        make_movie(cfg["movie"])
        cfg["movie"] = next(os.path.join(os.path.dirname(cfg["movie"]), f)
                            for f in os.listdir(os.path.dirname(cfg["movie"]))
                            if f.startswith(os.path.basename(cfg["movie"])))
    for case in cfg["cases"]:
        bpy.ops.wm.read_homefile(use_empty=True)
        ed = editor()
        plate = image_strip("plate", cfg["plate_dir"], 1, 1)
        select(plate)
        s = bpy.context.scene.actanywhere
        s.background_file = cfg["bg"]
        prefs = bpy.context.preferences.addons[MODULE].preferences
        prefs.worker_python = cfg["python"]
        if case != "unsaved":
            bpy.ops.wm.save_as_mainfile(filepath=cfg["blend"])
        if case == "no plate":
            ed.active_strip = None
        elif case == "movie":
            movie = strips(ed).new_movie(name="clip", filepath=cfg["movie"], channel=3,
                                         frame_start=1)
            select(movie)
        elif case == "not a sequence":
            select(image_strip("stills", cfg["stills_dir"], 4, 1))
        elif case == "missing frames":  # a file deleted after the strip was made
            select(image_strip("gappy", cfg["gappy_dir"], 2, 1,
                               files=[f"plate.{f}.exr" for f in range(1001, 1005)]))
        elif case == "no background":
            s.background_file = ""
        elif case == "unwritable":
            s.output_folder = cfg["unwritable"]
        elif case == "bad points":
            s.matte = "GRABCUT"
            s.points = "1:abc"
        elif case == "key outside":
            s.matte = "GRABCUT"
            s.boxes = "500:1,1,20,20"
        elif case == "colourspace":
            plate.colorspace_settings.name = "Filmic Log"
        elif case in ("no python", "no worker"):
            prefs.worker_python = "" if case == "no worker" else cfg["python"] + "-missing"
        try:
            result, raised = list(bpy.ops.actanywhere.generate()), None
        except RuntimeError as exc:  # how bpy.ops hands a script an operator's error report
            result, raised = ["CANCELLED"], str(exc).strip()
        if mod.jobs.RUNS:  # failures that only the job's thread can see
            pump(mod, idle(mod), timeout=60)
        out[case] = {"result": result, "raised": raised, "status": s.status,
                     "takes": [take_info(t) for t in s.takes]}
    return out


def unregister(cfg: dict, mod) -> dict:
    """A take running when the add-on is disabled: the job is cancelled, nothing is left."""
    take = _long_take(cfg, mod)
    folder = take.folder
    tick = mod.jobs.tick
    draw = mod.panel.status_bar
    result = bpy.ops.preferences.addon_disable(module=MODULE)
    header = bpy.types.STATUSBAR_HT_header
    draw_funcs = header._dyn_ui_initialize() if hasattr(header, "_dyn_ui_initialize") else []
    return {
        "result": list(result),
        "folder": folder,
        "types": [n for n in dir(bpy.types) if "ACTANYWHERE" in n.upper()],
        "operators": [n for n in dir(bpy.ops.actanywhere) if not n.startswith("_")]
        if hasattr(bpy.ops, "actanywhere") else [],
        "scene_prop": hasattr(bpy.types.Scene, "actanywhere"),
        "timer": bpy.app.timers.is_registered(tick),
        "status_bar": draw in draw_funcs,
        "threads": [t.name for t in threading.enumerate() if t is not threading.main_thread()],
        "runs": len(mod.jobs.RUNS),
        "enabled": MODULE in bpy.context.preferences.addons,
    }


def bench(cfg: dict, mod) -> dict:
    """benchmarks/bench_blender.py: press Generate -> the take's strip in the sequencer, with
    the timer driven at the interval it asks for (as Blender's timers run it), on a worker
    warmed by a first take."""
    plate = image_strip("plate", cfg["plate_dir"], 1, 1)
    select(plate)
    bpy.ops.wm.save_as_mainfile(filepath=cfg["blend"])
    bpy.context.scene.actanywhere.background_file = cfg["bg"]
    out = []
    for _ in range(2):
        t0 = time.monotonic()
        assert bpy.ops.actanywhere.generate() == {"FINISHED"}
        pressed = time.monotonic() - t0
        take = bpy.context.scene.actanywhere.takes[-1]
        handle = mod.jobs.RUNS[take.folder].handle
        while not take.strip:
            wait = mod.jobs.tick()
            if handle.finished.is_set() and handle.status != "done":
                raise AssertionError(f"{handle.status}: {handle.error}")
            time.sleep(wait or mod.jobs.INTERVAL)
        shown = time.monotonic() - t0
        out.append({"pressed_s": pressed, "strip_s": shown,
                    "running_s": handle.times["running"] - handle.times["start"],
                    "run_s": handle.job["timings"]["run_s"], "frames": take.written})
        select(plate)
    if cfg.get("picture"):
        _render_pair(plate, bpy.context.scene.actanywhere.takes[-1], cfg["picture"])
    return {"version": bpy.app.version_string, "takes": out, "interval": mod.jobs.INTERVAL}


def _render_pair(plate, take, stem: str) -> None:
    """The sequencer rendered (Standard view) at the plate's middle frame with the take's
    strip muted and shown: ``<stem>_plate.png``, ``<stem>_take.png``."""
    scene = bpy.context.scene
    elem = plate.elements[0]
    scene.render.resolution_x, scene.render.resolution_y = elem.orig_width, elem.orig_height
    scene.render.resolution_percentage = 25
    scene.view_settings.view_transform = "Standard"
    scene.render.image_settings.file_format = "PNG"
    scene.frame_set(int(plate.frame_final_start + plate.frame_final_duration // 2))
    strip = strips(editor()).get(take.strip)
    for muted, name in ((True, "plate"), (False, "take")):
        strip.mute = muted
        scene.render.filepath = f"{stem}_{name}.png"
        bpy.ops.render.render(write_still=True)


def icons(cfg: dict, mod) -> dict:
    """The icon names the panel uses that this Blender does not have (a draw would fail)."""
    known = {i.identifier for i in
             bpy.types.UILayout.bl_rna.functions["label"].parameters["icon"].enum_items}
    return {"unknown": sorted(set(cfg["icons"]) - known)}


def motion(cfg: dict, mod) -> dict:
    """Apply Motion on a background strip: its transform keyed from a motion.json."""
    strip = image_strip("bg", cfg["plate_dir"], 2, 11)
    select(strip)
    result = bpy.ops.actanywhere.apply_motion(filepath=cfg["motion"])
    tr = strip.transform
    keyed = {}
    scene = bpy.context.scene
    for frame in cfg["frames"]:
        scene.frame_set(frame)
        keyed[frame] = [tr.offset_x, tr.offset_y, tr.scale_x, tr.scale_y, tr.rotation]
    try:  # an operator that reports an error raises in background mode
        bad = list(bpy.ops.actanywhere.apply_motion(filepath=cfg["bad"]))
    except RuntimeError as exc:
        bad = ["CANCELLED", str(exc).strip()]
    return {"result": list(result), "keyed": keyed, "bad": bad,
            "status": scene.actanywhere.status, "start": int(strip.frame_final_start)}


def remote(cfg: dict, mod) -> dict:
    """A take run on the shared worker of the preferences' connection file (the plate, the
    background and the output folder on this machine's mount of a share); before it, a
    preference that names no worker."""
    plate = image_strip("plate", cfg["plate_dir"], 2, 1)
    select(plate)
    bpy.ops.wm.save_as_mainfile(filepath=cfg["blend"])
    s = bpy.context.scene.actanywhere
    s.background_file, s.output_folder = cfg["bg"], cfg["output"]
    prefs = mod.preferences.get()
    prefs.worker_token = "aa_no_worker"
    try:
        result, raised = list(bpy.ops.actanywhere.generate()), None
    except RuntimeError as exc:  # how bpy.ops hands a script an operator's error report
        result, raised = ["CANCELLED"], str(exc).strip()
    out: dict = {"no_worker": result, "no_worker_raised": raised,
                 "no_worker_status": s.status, "no_worker_takes": len(s.takes)}
    prefs.worker_token = ""
    prefs.worker_connection = cfg["connection"]
    out["generate"] = list(bpy.ops.actanywhere.generate())
    pump(mod, idle(mod))
    out["state"] = scene_state()
    return out


def farm(cfg: dict, mod) -> dict:
    """Send to Farm with the preferences' farm folder; the take queued on the farm in the
    list; the .blend saved."""
    plate = image_strip("plate", cfg["plate_dir"], 2, 1)
    select(plate)
    bpy.ops.wm.save_as_mainfile(filepath=cfg["blend"])
    s = bpy.context.scene.actanywhere
    s.background_file = cfg["bg"]
    mod.preferences.get().farm_folder = cfg["farm"]
    out: dict = {"send": list(bpy.ops.actanywhere.send_to_farm())}
    out["while_exporting"] = s.status
    out["timer_registered"] = bpy.app.timers.is_registered(mod.jobs.tick)
    pump(mod, lambda: not mod.jobs.FARM)
    out["state"] = scene_state()
    bpy.ops.wm.save_mainfile()
    return out


def farm_back(cfg: dict, mod) -> dict:
    """The .blend reopened once the farm has run the take: Refresh Takes shows it."""
    bpy.ops.wm.open_mainfile(filepath=cfg["blend"])
    select(strips(editor())["plate"])
    out: dict = {"before": scene_state(), "refresh": list(bpy.ops.actanywhere.refresh())}
    out["after"] = scene_state()
    return out


def matte_menu(cfg: dict, mod) -> dict:
    """The Matte menu Blender is given, and the matte section Generate sends for SAM 2 (a
    model folder) and SAM 3 (a text prompt)."""
    plate = image_strip("plate", cfg["plate_dir"], 2, 1)
    select(plate)
    s = bpy.context.scene.actanywhere
    out: dict = {"items": [i[0] for i in mod.props.matte_items(s, bpy.context)],
                 "default": s.matte, "text_sources": list(mod.props.TEXT_SOURCES)}
    seq = mod.plate.sequence(plate)
    s.matte, s.sam_checkpoint, s.boxes = "SAM2", cfg["model"], "1:8,6,20,26"
    out["sam2"] = mod.generate._matte(bpy.context.scene, seq, cfg["inputs"])
    s.matte, s.boxes, s.matte_text = "SAM3", "", "person"
    out["sam3"] = mod.generate._matte(bpy.context.scene, seq, cfg["inputs"])
    s.matte_text = ""
    try:
        mod.generate._matte(bpy.context.scene, seq, cfg["inputs"])
    except mod.vendor.actanywhere.errors.InputError as exc:
        out["no_text"] = str(exc)
    return out


def objects(cfg: dict, mod) -> dict:
    """The Objects field: a bad entry refused before any job (Generate's return, the status
    line), then two GrabCut objects typed on the timeline sent as one take."""
    plate = image_strip("plate", cfg["plate_dir"], 2, 1)
    select(plate)
    bpy.ops.wm.save_as_mainfile(filepath=cfg["blend"])
    s = bpy.context.scene.actanywhere
    prefs = bpy.context.preferences.addons[MODULE].preferences
    prefs.worker_python = cfg["python"]
    s.background_file = cfg["bg"]
    s.matte = "GRABCUT"
    prop = s.bl_rna.properties["objects"]
    out: dict = {"prop": {"name": prop.name, "type": prop.type}}
    for case, text in cfg["bad"].items():
        s.objects = text
        try:
            result, raised = list(bpy.ops.actanywhere.generate()), None
        except RuntimeError as exc:  # how bpy.ops hands a script an operator's error report
            result, raised = ["CANCELLED"], str(exc).strip()
        out[case] = {"result": result, "raised": raised, "status": s.status,
                     "takes": len(s.takes)}
    s.objects = cfg["objects"]
    out["generate"] = list(bpy.ops.actanywhere.generate())
    pump(mod, idle(mod), timeout=400)
    out["state"] = scene_state()
    out["spec"] = mod.vendor.actanywhere.api.Takes(
        os.path.dirname(s.takes[0].folder)).get(s.takes[0].name).spec
    return out


def main() -> None:
    scenario, cfg_path, result_path = sys.argv[1:4]
    with open(cfg_path) as fh:
        cfg = json.load(fh)
    mod = install(cfg["zip"])
    out = globals()[scenario](cfg, mod)
    with open(result_path, "w") as fh:
        json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
