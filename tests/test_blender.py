"""The Blender extension end to end with Blender's real Python module (``bpy`` from PyPI, in
its own venvs as a real Blender's Python is separate from the worker's): the zip that
``install.py blender`` builds, installed as Preferences > Install from Disk does, its
operators pressed, its timer function driven by the test loop (background mode's one
difference from the UI), against a real worker the add-on starts from its preferences.

``python3 install.py test`` makes the bpy venvs (``.venv-bpy-5.0``, ``.venv-bpy-4.5``); the
tests skip, saying so, where none could be installed.
"""

from __future__ import annotations

import ast
import contextlib
import glob
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, make_shot, read_exr, write_exr

from actanywhere.api import Client, Takes, WorkerError

sys.path.insert(0, str(REPO / "blender_addon"))
import build as addon_build  # noqa: E402 - blender_addon/build.py

DRIVER = REPO / "tests" / "blender_driver.py"
EXTENSION = REPO / "blender_addon" / "extension"


def bpy_pythons() -> list:
    listed = os.environ.get("ACTANYWHERE_BPY_PYTHONS")
    found = listed.split(os.pathsep) if listed is not None else sorted(
        glob.glob(str(REPO / ".venv-bpy-*" / "bin" / "python")), reverse=True)
    found = [p for p in found if p and os.path.isfile(p)]
    if not found:
        return [pytest.param(None, marks=pytest.mark.skip(
            reason="no bpy venv: python3 install.py test makes .venv-bpy-5.0 (bpy==5.0.1) "
            "and .venv-bpy-4.5; bpy could not be installed here"))]
    return [pytest.param(p, id=Path(p).parent.parent.name.replace(".venv-", "")) for p in found]


@pytest.fixture(params=bpy_pythons())
def blender(request, tmp_path_factory):
    """Run a driver scenario in one bpy venv: (scenario, config) -> (result, console)."""
    python = request.param
    tmp = tmp_path_factory.mktemp("blender")
    zip_path = addon_build.build(str(tmp / "dist"), python=sys.executable)
    state = tmp / "state"
    (tmp / "edit").mkdir()

    def run(scenario: str, cfg: dict, timeout: float = 400) -> tuple[dict, str]:
        cfg = {"zip": zip_path, "blend": str(tmp / "edit" / "edit.blend"), **cfg}
        cfg_path, result_path = tmp / f"{scenario}.json", tmp / f"{scenario}.result.json"
        cfg_path.write_text(json.dumps(cfg))
        env = dict(os.environ, BLENDER_USER_RESOURCES=str(tmp / "blender-user"),
                   ACTANYWHERE_STATE_DIR=str(state), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
        env.pop("ACTANYWHERE_PYTHON", None)  # the add-on's preferences say which Python
        proc = subprocess.run([python, str(DRIVER), scenario, str(cfg_path), str(result_path)],
                              env=env, capture_output=True, text=True, timeout=timeout)
        console = proc.stdout + proc.stderr
        assert proc.returncode == 0, console[-6000:]
        return json.loads(result_path.read_text()), console

    run.tmp = tmp
    yield run
    with contextlib.suppress(WorkerError):
        Client.from_state(str(state)).shutdown()


def _number(name: str | None) -> int | None:
    return None if name is None else int(name.split(".")[-2])


def test_takes_become_strips_above_the_plate_frame_for_frame(blender):
    tmp = blender.tmp
    plate, bg = make_shot(tmp / "shot", frames=range(1001, 1007), data_inset=3)
    bg2 = tmp / "bg2" / "sky.exr"
    bg2.parent.mkdir()
    write_exr(bg2, read_exr(bg)[0] * 0.5, channels=("R", "G", "B"))
    out, console = blender("takes", {"plate_dir": str(plate.parent), "bg": str(bg),
                                     "bg2": str(bg2)})
    assert "Traceback" not in console, console
    assert out["generate"] == ["FINISHED"] and out["timer_registered"]
    running = out["while_running"]["takes"][0]
    assert running["status"] == "starting" and running["message"] == "sent to the worker"

    first = out["first"]
    take = first["takes"][0]
    assert take["status"] == "done" and take["engine"] == "composite", take
    folder = tmp / "edit" / "actanywhere" / "plate" / "take_001"
    assert take["folder"] == str(folder) and take["strip"] == "plate take_001"
    strip = first["strips"]["plate take_001"]
    # hold offset 1 and strip offsets 1/1 on 6 files at frame 10: files 1003-1005 show at
    # timeline 11-13; the take is exactly those, one channel above the plate
    assert strip["channel"] == 3 and strip["frame_start"] == 11 and strip["length"] == 3
    assert strip["files"] == ["plate.1003.exr", "plate.1004.exr", "plate.1005.exr"]
    assert Path(strip["directory"]) == folder and strip["colorspace"] == "Linear Rec.709"
    assert strip["type"] == "IMAGE" and not strip["mute"]
    # Blender's own frame mapping: at every visible frame the take shows the frame made
    # from the plate frame shown there
    assert [(f, _number(p), _number(t)) for f, p, t in out["alignment"]] == \
        [(11, 1003, 1003), (12, 1004, 1004), (13, 1005, 1005)]
    assert sorted(p.name for p in folder.glob("*.exr")) == strip["files"]
    pixels, spec = read_exr(folder / "plate.1004.exr")
    assert pixels.shape[:2] == (36, 64)  # the display window, as the plate's
    assert Takes(str(folder.parent)).get("take_001").frames == "1003-1005"
    assert "done: 3 frames" in first["status"]

    second = out["second"]
    strip2 = second["strips"]["plate take_002"]
    assert strip2["channel"] == 4 and strip2["frame_start"] == 11 and not strip2["mute"]
    assert second["strips"]["plate take_001"]["mute"]  # one take shows at a time
    assert [t["name"] for t in second["takes"]] == ["take_001", "take_002"]
    a = read_exr(folder / "plate.1004.exr")[0]
    b = read_exr(folder.parent / "take_002" / "plate.1004.exr")[0]
    assert abs(float(a[..., :3].mean()) - float(b[..., :3].mean())) > 0.02  # its own background

    switched = out["switched"]["strips"]
    assert not switched["plate take_001"]["mute"] and switched["plate take_002"]["mute"]
    assert "plate take_001" not in out["strip_deleted"]["strips"]
    assert len(list(folder.glob("*.exr"))) == 3  # deleting the strip deleted no file
    assert out["load_strip"] == ["FINISHED"]
    again = out["reloaded"]["strips"]["plate take_001"]
    assert again["channel"] == 3 and again["frame_start"] == 11 and again["length"] == 3

    assert out["remove"] == ["FINISHED"]
    assert [t["name"] for t in out["removed"]["takes"]] == ["take_001"]
    assert (folder.parent / "take_002" / "take.json").is_file()
    assert "files stay in" in out["removed"]["status"]
    assert out["refresh"] == ["FINISHED"]
    back = {t["name"]: t for t in out["refreshed"]["takes"]}
    assert back["take_002"]["status"] == "done" and back["take_002"]["written"] == 3
    assert back["take_002"]["first"] == 1003 and back["take_002"]["count"] == 3

    reopened = out["reopened"]
    assert [(t["name"], t["status"], t["strip"]) for t in reopened["takes"]] == \
        [(t["name"], t["status"], t["strip"]) for t in out["refreshed"]["takes"]]
    assert set(reopened["strips"]) >= {"plate", "plate take_001", "plate take_002"}


def test_a_matte_strip_lines_up_on_the_timeline_and_diffusion_settings_reach_the_take(
        blender):
    tmp = blender.tmp
    plate, bg = make_shot(tmp / "shot", frames=range(1001, 1004))
    roto = tmp / "roto"
    roto.mkdir()
    mattes = []
    for i in range(4):  # roto.0001-0004, a box of its own per frame (not the plate's alpha)
        rgba = np.zeros((36, 64, 4), np.float32)
        rgba[4 + i:20 + i, 30:50] = 1.0
        write_exr(roto / f"roto.{i + 1:04d}.exr", rgba)
        mattes.append(rgba[..., 3])
    out, console = blender("matte_and_model", {"plate_dir": str(plate.parent),
                                               "matte_dir": str(roto), "bg": str(bg)})
    take = out["state"]["takes"][0]
    assert take["status"] == "done", (take, console[-3000:])
    assert take["engine"] == "diffusion" and take["seed"] == 7
    assert take["label"] == "diffusion seed 7 2 steps"
    spec = out["spec"]
    # what the panel sent, and (issue 33: a take records what ran) what the model filled in
    assert spec["diffusion"] == {"seed": 7, "steps": 2, "guidance": 2.0, "init_strength": 0.5,
                                 "resolution": 64, "frames_per_window": 8, "overlap": 2}
    recorded = json.loads((Path(take["folder"]) / "take.json").read_text())["settings_from"]
    assert {k for k, v in recorded.items() if v == "model"} >= {
        "diffusion.resolution", "diffusion.frames_per_window", "diffusion.overlap"}
    assert spec["motion"] == {"source": "subject"}
    assert spec["matte"]["source"] == "file" and spec["matte"]["channel"] == "A"
    # the plate's 1001 shows at timeline 20, where the roto strip (from 19) shows roto.0002
    for f in range(1001, 1004):
        pixels, spec_ = read_exr(Path(take["folder"]) / f"plate.{f}.exr")
        matte = pixels[..., list(spec_.channelnames).index("matte.A")]
        assert spec_.get_string_attribute("actanywhere:motion") == "subject"
        assert np.allclose(matte, mattes[f - 1000], atol=1e-3), f
    strip = out["state"]["strips"]["plate take_001"]
    assert strip["frame_start"] == 20 and strip["length"] == 3


def _long_plate(tmp: Path) -> tuple[Path, Path]:
    return make_shot(tmp / "long", frames=range(1, 41), size=(480, 270))


def test_cancel_stops_the_take_and_keeps_its_frames(blender):
    plate, bg = _long_plate(blender.tmp)
    out, console = blender("cancel", {"plate_dir": str(plate.parent), "bg": str(bg)})
    assert out["cancel"] == ["FINISHED"]
    take = out["ended"]["takes"][0]
    assert take["status"] == "cancelled" and 2 <= take["written"] < 40, take
    assert take["strip"] == ""  # a stopped take is not put in the edit by itself
    assert out["ended"]["status"].startswith("take_001 cancelled after")
    assert "Warning: ActAnywhere: take_001 cancelled after" in console
    files = sorted(Path(take["folder"]).glob("*.exr"))
    assert len(files) == take["written"]
    assert read_exr(files[-1])[0].shape == (270, 480, 8)  # complete frames only
    assert out["load_strip"] == ["FINISHED"]
    strip = out["loaded"]["strips"]["plate take_001"]
    # two frames run at once, so a cancel can leave a gap: the strip runs to the first one
    numbers = [int(p.name.split(".")[-2]) for p in files]
    run = next((i for i, n in enumerate(numbers) if n != numbers[0] + i), len(numbers))
    assert strip["length"] == run >= 1 and strip["frame_start"] == numbers[0]
    assert strip["files"] == [p.name for p in files[:run]]


def test_a_worker_killed_mid_take_is_one_line_in_the_panel_and_the_reports(blender):
    plate, bg = _long_plate(blender.tmp)
    out, console = blender("killed", {"plate_dir": str(plate.parent), "bg": str(bg)})
    take = out["ended"]["takes"][0]
    assert take["status"] == "interrupted" and "has stopped" in take["message"], take
    status = out["ended"]["status"]
    assert status.startswith("error: take_001 interrupted:") and "\n" not in status
    reports = [line for line in console.splitlines() if line.startswith("Error: ActAnywhere")]
    assert reports == [f"Error: ActAnywhere: {status[len('error: '):]}"], console[-3000:]
    assert "Traceback" not in console


ERRORS = {
    "no plate": "select the plate",
    "movie": "is a movie: the worker reads image sequences",
    "not a sequence": "does not continue one numbered sequence",
    "missing frames": "missing frame(s) 1003 of",
    "no background": "pick a background",
    "unsaved": "save the .blend first",
    "unwritable": "cannot be written",
    "bad points": "points '1:abc'",
    "key outside": "key frame 500 is outside the plate strip's visible frames 1-4",
    "colourspace": "colourspace 'Filmic Log' has no match",
    "no worker": "set the Worker Python in the ActAnywhere add-on's preferences",
    "no python": "no such Python",
}


def test_errors_are_one_line_in_the_panel_and_the_reports(blender):
    tmp = blender.tmp
    plate, bg = make_shot(tmp / "shot", frames=range(1001, 1005))
    stills = tmp / "stills"
    stills.mkdir()
    for name in ("front.exr", "side.exr"):
        write_exr(stills / name, read_exr(bg)[0], channels=("R", "G", "B"))
    gappy, _ = make_shot(tmp / "gappy", frames=range(1001, 1005))
    (gappy.parent / "plate.1003.exr").unlink()
    (tmp / "a_file").write_text("")  # a folder inside a file: nobody can make it
    cfg = {"plate_dir": str(plate.parent), "bg": str(bg), "cases": list(ERRORS),
           "python": sys.executable, "stills_dir": str(stills), "gappy_dir": str(gappy.parent),
           "movie": str(tmp / "clip"),
           "unwritable": str(tmp / "a_file" / "takes")}
    out, console = blender("errors", cfg)
    assert "Traceback" not in console, console[-4000:]
    for case, want in ERRORS.items():
        got = out[case]
        status = got["status"]
        assert status.startswith("error: ") and want in status, (case, status)
        assert "\n" not in status
        if case in ("no worker", "no python"):  # seen by the job's thread: the take failed
            assert got["result"] == ["FINISHED"]
            assert got["takes"][0]["status"] == "failed", got
        else:  # seen at once: Generate refused, nothing sent, an error report
            assert got["result"] == ["CANCELLED"] and got["takes"] == [], (case, got)
            assert got["raised"] == f"Error: ActAnywhere: {status[len('error: '):]}"
        reports = [line for line in console.splitlines()
                   if line == f"Error: ActAnywhere: {status[len('error: '):]}"]
        assert len(reports) == 1, (case, console[-3000:])


def test_disabling_the_add_on_cancels_its_take_and_leaves_nothing_behind(blender):
    plate, bg = _long_plate(blender.tmp)
    out, _ = blender("unregister", {"plate_dir": str(plate.parent), "bg": str(bg)})
    assert out["result"] == ["FINISHED"] and not out["enabled"]
    assert out["types"] == [] and out["operators"] == []
    assert not out["scene_prop"] and not out["timer"] and not out["status_bar"]
    assert out["runs"] == 0
    assert not [t for t in out["threads"] if t.startswith("actanywhere")], out["threads"]
    take = Takes(str(Path(out["folder"]).parent)).get("take_001")
    assert take.status == "cancelled" and take.written >= 2


@pytest.mark.parametrize("bpy_python", bpy_pythons())
def test_the_zip_is_a_valid_extension_with_the_host_layer_inside(bpy_python, tmp_path):
    """Blender's own validator accepts the zip; the manifest says what the issue asks."""
    zip_path = addon_build.build(str(tmp_path))
    info = addon_build.manifest()
    assert info["schema_version"] == "1.0.0" and info["blender_version_min"] == "4.2.0"
    assert set(info["permissions"]) == {"files", "network"}
    names = [n for _, n in addon_build.contents()]
    assert "vendor/actanywhere/api/handle.py".replace("/", os.sep) in names
    assert "vendor/actanywhere/api/objects.py".replace("/", os.sep) in names  # the Objects field
    assert not any("__pycache__" in n for n in names)
    cli = glob.glob(str(Path(bpy_python).parent.parent / "lib" / "python*" / "site-packages" /
                        "bpy" / "*" / "scripts" / "addons_core" / "bl_pkg" / "cli" /
                        "blender_ext.py"))
    proc = subprocess.run([bpy_python, cli[0], "validate", zip_path], capture_output=True,
                          text=True)
    assert proc.returncode == 0 and "Success" in proc.stdout, proc.stdout + proc.stderr


STDLIB = set(sys.stdlib_module_names)


def test_the_add_on_imports_only_the_standard_library_and_bpy():
    for path in sorted(EXTENSION.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top in STDLIB or top in ("bpy", "__future__"), f"{path.name}: {name}"


def test_every_colourspace_target_is_in_the_workers_config():
    import PyOpenColorIO as ocio

    from actanywhere.media.color import DEFAULT_CONFIG

    spec = importlib.util.spec_from_file_location("aa_colour", EXTENSION / "colour.py")
    colour = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(colour)
    config = ocio.Config.CreateFromFile(DEFAULT_CONFIG)
    names = {cs.getName() for cs in config.getColorSpaces()}
    assert set(colour.TO_OCIO.values()) <= names
    assert set(colour.LINEAR) <= names
    for blender_name in colour.LINEAR.values():  # a take's strip gets a Blender name back
        assert colour.TO_OCIO[blender_name] in colour.LINEAR


def test_every_icon_the_panel_draws_exists_in_blender(blender):
    """No test can draw the panel (the bpy module has no window): its icon names, the one
    thing a draw takes that Python does not check, are checked against Blender's list."""
    panel = (EXTENSION / "panel.py").read_text()
    used = set()
    for a, b in re.findall(r'icon="([A-Z0-9_]+)"(?: if [^\n]*? else "([A-Z0-9_]+)")?', panel):
        used |= {a, b} - {""}
    used |= set(re.findall(r'"([A-Z][A-Z0-9_]+)"', panel.split("ICONS = {")[1].split("}")[0]))
    used |= set(re.findall(r'ICONS.get\([^,]+, "([A-Z0-9_]+)"\)', panel))
    assert {"INFO", "BLANK1", "DOT", "SORTTIME"} <= used and len(used) >= 13, used
    out, _ = blender("icons", {"icons": sorted(used)})
    assert out["unknown"] == []


def test_apply_motion_keys_a_background_strip_from_a_motion_file(blender, tmp_path):
    """Keys of the similarity part, frame for frame, the motion's first frame on the strip's
    first frame; a broken file is one line in the panel."""
    from actanywhere.api import motion as motion_file
    from actanywhere.motion import keys, save

    plate, _ = make_shot(tmp_path, frames=range(1, 6), size=(64, 36))
    m = keys.estimate(keys.parse(["1001:0,0", "1005:-20,6,1.25,10"]),
                      list(range(1001, 1006)), 64, 36)
    save(m, str(tmp_path / "motion.json"))
    (tmp_path / "bad.json").write_text("{")
    out, _ = blender("motion", {"plate_dir": str(plate.parent), "motion": str(tmp_path /
                                                                             "motion.json"),
                                "bad": str(tmp_path / "bad.json"),
                                "frames": list(range(11, 16))})
    assert out["result"] == ["FINISHED"] and out["start"] == 11
    want = motion_file.blender_keys(motion_file.read(str(tmp_path / "motion.json")))
    assert [k[0] for k in want] == list(range(1001, 1006))
    for (_, x, y, scale, angle), frame in zip(want, range(11, 16), strict=True):
        got = out["keyed"][str(frame)]
        assert got == pytest.approx([x, y, scale, scale, angle], abs=1e-4), frame
    # the keys' own meaning: -20 px right is -20 in x; 6 px down (ours) is -6 up (Blender);
    # 10 degrees counter-clockwise on screen, 1.25x
    assert out["keyed"]["15"] == pytest.approx([-20, -6, 1.25, 1.25, np.radians(10)], abs=1e-3)
    assert out["bad"][0] == "CANCELLED" and "\n" not in out["bad"][-1]
    assert out["status"].startswith("error: ") and "bad.json: not a motion file" in \
        out["status"]


def test_the_matte_menu_is_the_catalogs_and_sam_models_and_text_reach_the_spec(blender):
    """SAM 2 (a model folder) and SAM 3 (a text prompt) in the Matte menu; what the panel
    sends is a matte section the worker's schema takes."""
    from actanywhere import catalog
    from actanywhere.spec import TEXT_SOURCES, MatteSpec

    tmp = blender.tmp
    plate, _ = make_shot(tmp / "shot", frames=range(1001, 1005))
    model = tmp / "models" / "sam2.1-hiera-tiny"
    model.mkdir(parents=True)
    out, console = blender("matte_menu", {"plate_dir": str(plate.parent), "model": str(model),
                                          "inputs": str(tmp / "inputs")})
    assert "Traceback" not in console, console[-3000:]
    assert out["items"] == [{"alpha": "ALPHA", "file": "STRIP"}.get(n, n.upper())
                            for n in catalog.matte_sources()]
    assert {"SAM2", "SAM3"} <= set(out["items"]) and out["default"] == "ALPHA"
    assert out["sam2"] == {"source": "sam2", "keys": [{"frame": 1001, "boxes": [
        [8.0, 6.0, 20.0, 26.0]]}], "sam": {"checkpoint": str(model)}}
    assert out["sam3"] == {"source": "sam3", "keys": [], "text": "person",
                           "sam": {"checkpoint": str(model)}}
    for matte in (out["sam2"], out["sam3"]):
        MatteSpec.model_validate(matte)
    assert out["no_text"] == "matte sam3: type what to find in Text Prompt, e.g. person"
    assert out["text_sources"] == list(TEXT_SOURCES)  # the add-on's copy is the schema's


def test_two_objects_typed_in_the_panel_become_layers_of_the_take(blender):
    """The Objects field (under the matte settings): a bad entry is one line before any job;
    two GrabCut objects (each tracked on its own; frames typed on the timeline) make a take
    whose EXRs carry matte.<name>.A for both, their union matte.A."""
    from matte_shots import walking_shot, write_sequence

    from actanywhere import spec

    tmp = blender.tmp
    w, h = 160, 96
    frames, _ = walking_shot(4, width=w, height=h, speed=3)
    others, mattes = walking_shot(4, width=w, height=h, speed=3, seed=1)
    flip = [(o[:, ::-1], m[:, ::-1, None]) for o, m in zip(others, mattes, strict=True)]
    both = [f * (1 - m) + o * m for f, (o, m) in zip(frames, flip, strict=True)]
    pattern = write_sequence(str(tmp / "two"), both, first=1001)
    _, bg = make_shot(tmp / "shot", frames=range(1001, 1002))
    bad = {"no name": "box 1:6,26,80,95",
           "bad box": "hero: box 1:6,26,80,95 | dog: box 1:80,26,154",
           "outside": "hero: box 9:6,26,80,95"}
    out, console = blender("objects", {
        "plate_dir": os.path.dirname(pattern), "bg": str(bg), "python": sys.executable,
        "bad": bad, "objects": "hero: box 1:6,26,80,95 | dog: box 1:80,26,154,95"})
    assert "Traceback" not in console, console[-4000:]
    assert out["prop"] == {"name": "Objects", "type": "STRING"}
    want = {"no name": "error: Objects line 1: 'box 1:6,26,80,95' does not start with a "
                          "name and ':'; write NAME: ",
            "bad box": "error: Objects line 2 (dog): box '1:80,26,154': expected 4 "
                       "comma-separated numbers after FRAME:",
            "outside": "error: Objects (hero): key frame 9 is outside the plate strip's "
                       "visible frames 1-4"}
    for case, start in want.items():
        got = out[case]
        assert got["status"].startswith(start) and "\n" not in got["status"], (case, got)
        assert got["result"] == ["CANCELLED"] and got["takes"] == 0, (case, got)
        assert got["raised"] == f"Error: ActAnywhere: {got['status'][len('error: '):]}"
    take = out["state"]["takes"][0]
    assert out["generate"] == ["FINISHED"] and take["status"] == "done", (take, console[-3000:])
    sent = out["spec"]
    assert [(o["name"], o["keys"]) for o in sent["matte"]["objects"]] == [
        ("hero", [{"frame": 1001, "boxes": [[6.0, 26.0, 80.0, 95.0]]}]),
        ("dog", [{"frame": 1001, "boxes": [[80.0, 26.0, 154.0, 95.0]]}])]
    assert "objects" in spec.from_dict(sent).output.layers
    for f in (1001, 1004):
        px, s = read_exr(Path(take["folder"]) / f"plate.{f}.exr")
        ch = {c: px[..., i] for i, c in enumerate(s.channelnames)}
        assert {"R", "G", "B", "A", "matte.A", "matte.hero.A", "matte.dog.A"} <= set(ch), f
        hero, dog = ch["matte.hero.A"] > 0.5, ch["matte.dog.A"] > 0.5
        assert hero[:, :80].mean() > hero[:, 80:].mean() and dog.any()
        assert dog[:, 100:].mean() > dog[:, :100].mean()
        assert np.allclose(ch["matte.A"], np.maximum(ch["matte.hero.A"], ch["matte.dog.A"]),
                           atol=1e-3)
