"""The Nuke node end to end: the shipped gizmo built by the fake ``nuke`` (tests/fake_nuke,
the one allowed double), the plugin's real code, a real worker started from the configured
Python, real EXRs in and out."""

from __future__ import annotations

import ast
import contextlib
import os
import re
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, make_shot, read_exr, write_exr

from actanywhere.api import Client, Takes, WorkerError

PLUGIN = REPO / "nuke_plugin"
sys.path.insert(0, str(REPO / "tests" / "fake_nuke"))
import nuke  # noqa: E402 - the fake, from the path above

sys.path.insert(0, str(PLUGIN))
from actanywhere_nuke import definition  # noqa: E402


@pytest.fixture
def comp(tmp_path, monkeypatch):
    """A fresh script with the plugin loaded as Nuke loads it (init.py, menu.py), a plate
    Read (data window inside the display window), a background Read, a saved script."""
    nuke.scriptClear()
    while nuke._pump():
        pass
    nuke._messages.clear()
    nuke._tasks.clear()
    state = tmp_path / "state"
    monkeypatch.setenv("ACTANYWHERE_STATE_DIR", str(state))
    monkeypatch.setenv("ACTANYWHERE_PYTHON", sys.executable)
    for script in ("init.py", "menu.py"):
        exec(compile((PLUGIN / script).read_text(), str(PLUGIN / script), "exec"), {})
    plate, bg = make_shot(tmp_path / "shot", frames=range(1001, 1005), data_inset=3)
    with nuke.root():
        plate_read = nuke.nodes.Read(file=str(plate), first=1001, last=1004,
                                     colorspace="default (linear)")
        bg_read = nuke.nodes.Read(file=str(bg), first=1, last=1)
    (tmp_path / "comp").mkdir()
    nuke.scriptSaveAs(str(tmp_path / "comp" / "shot010.nk"))
    yield {"tmp": tmp_path, "plate": plate_read, "bg": bg_read, "state": state}
    for run in list(sys.modules["actanywhere_nuke.node"].RUNS.values()):
        run.handle.cancel()
        run.handle.wait(30)
    with contextlib.suppress(WorkerError):
        Client.from_state(str(state)).shutdown()


def _node(c):
    """What the artist does: Tab menu -> ActAnywhere (the toolbar's command), wire inputs."""
    command = nuke.menu("Nodes").findItem("ActAnywhere/ActAnywhere")
    exec(command, {"nuke": nuke})
    node = [n for n in nuke.allNodes(group=nuke.root()) if n.Class() == "ActAnywhere"][-1]
    node.setInput(0, c["plate"])
    node.setInput(1, c["bg"])
    return node


def _press(node, knob):
    node[knob].execute()


def _pump_until(done, timeout=180):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        nuke._pump(0.1)
        if done():
            nuke._pump()
            return
    raise AssertionError("timed out pumping Nuke's main thread")


def _render_downstream(node, folder):
    """A Write below ``node`` rendered for frame 1001, as a farm's ``nuke -t`` would; its
    pixels."""
    with nuke.root():
        out = nuke.nodes.Write(file=str(folder / "r.####.exr"), channels="rgba",
                               create_directories=True)
    out.setInput(0, node)
    nuke.execute(out, 1001, 1001)
    return read_exr(folder / "r.1001.exr")[0]


def _finished(node):
    return lambda: node.fullName() not in sys.modules["actanywhere_nuke.node"].RUNS


def test_the_shipped_gizmo_is_the_definition():
    assert (REPO / "gizmos" / "ActAnywhere.gizmo").read_text() == definition.gizmo_text(), \
        "run python3 nuke_plugin/actanywhere_nuke/definition.py"


def test_plugin_code_runs_on_nukes_pythons_and_imports_no_heavy_library():
    """Nuke 15 is Python 3.10: every plugin file parses as 3.10; none imports numpy, torch,
    OpenImageIO or pydantic, nor any of the core beyond the host layer."""
    # the takes browser docks in Nuke as a panel: it is held to the same rules
    files = [*PLUGIN.rglob("*.py"), *(REPO / "core" / "actanywhere" / "browser").glob("*.py")]
    assert len(files) >= 12
    for path in files:
        tree = ast.parse(path.read_text(), feature_version=(3, 10))
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                top = name.split(".")[0]
                assert top not in {"numpy", "torch", "OpenImageIO", "pydantic", "cv2"}, path
                if top == "actanywhere":
                    # the host layer, the errors and the catalog (data only)
                    assert name.startswith(("actanywhere.api", "actanywhere.browser")) or \
                        name in ("actanywhere.errors", "actanywhere.catalog") or \
                        name == "actanywhere" and isinstance(node, ast.ImportFrom) and \
                        {a.name for a in node.names} <= {"catalog", "errors"}, (path, name)
                if path.parent.name == "browser" and isinstance(node, ast.ImportFrom) and \
                        node.level:  # the browser's own relative imports: api and itself
                    assert (node.module or "").split(".")[0] in {"api", "qt", "loader",
                                                                  "viewer", "window", ""} or \
                        node.level == 1, (path, node.module)


def test_colourspace_names_map_to_the_built_in_config():
    import PyOpenColorIO as ocio
    from actanywhere_nuke.colour import NUKE_DEFAULT, ocio_name

    from actanywhere.media.color import DEFAULT_CONFIG

    config = ocio.Config.CreateFromFile(DEFAULT_CONFIG)
    for target in NUKE_DEFAULT.values():
        assert config.getColorSpace(target) is not None, target
    assert ocio_name("default (scene_linear)", "ACEScg") == "ACEScg"
    assert ocio_name("default (linear)", "ACEScg") == "Linear Rec.709 (sRGB)"
    assert ocio_name("scene_linear", "ACEScg") == "ACEScg"
    assert ocio_name("sRGB", "ACEScg") == "sRGB Encoded Rec.709 (sRGB)"
    assert ocio_name("ACES - ACEScct", "ACEScg") == "ACES - ACEScct"  # config names pass


def test_generate_makes_takes_the_node_shows_and_keeps(comp):
    tmp = comp["tmp"]
    node = _node(comp)
    assert node["take"].values() == ["none"] and not node["has_take"].value()
    _press(node, "generate")
    assert nuke._messages == [], nuke._messages
    assert "sent to the worker" in node["status"].value()  # Generate returned at once
    _pump_until(_finished(node))
    assert "take_001 done: 4 frames" in node["status"].value(), node["status"].value()
    folder = tmp / "comp" / "actanywhere" / node.name() / "take_001"
    frames = sorted(p.name for p in folder.glob("*.exr"))
    assert frames == [f"{node.name()}.{f}.exr" for f in range(1001, 1005)]
    px, spec = read_exr(folder / frames[0])
    plate_px, plate_spec = read_exr(tmp / "shot" / "plate" / "plate.1001.exr")
    assert (plate_spec.x, plate_spec.full_width) == (3, 64)  # the plate's data window < display
    assert (spec.full_width, spec.full_height) == (64, 36)
    # the subject is the plate's (recomposite), where the plate has it
    assert np.allclose(px[13, 11, :3], plate_px[10, 8, :3], atol=1e-2)
    # the node's internal Read shows the take: a Write downstream renders it, no worker needed
    assert node["take"].value().startswith("take_001") and node["has_take"].value()
    assert np.allclose(_render_downstream(node, tmp / "render"), px[..., :4], atol=1e-3)
    # a second take does not overwrite the first; the node shows the newest
    node["seed"].setValue(5)
    _press(node, "generate")
    _pump_until(_finished(node))
    assert [t.name for t in Takes(str(folder.parent)).list()] == ["take_001", "take_002"]
    assert len(list(folder.glob("*.exr"))) == 4
    assert node["take"].value().startswith("take_002")
    assert len(node["take"].values()) == 2
    # the artist picks take 1 again, makes a Read of it for downstream work
    nuke._user_sets(node, "take", node["take"].values()[0])
    assert node["take_file"].value().startswith(str(folder))
    _press(node, "read_from_take")
    read = nuke.allNodes("Read", nuke.root())[-1]
    assert read.knob("file").value() == str(folder / f"{node.name()}.####.exr")
    assert (read["first"].value(), read["last"].value()) == (1001, 1004)
    assert read in nuke.allNodes(group=nuke.root())  # at the top level, not in the gizmo
    # save, reopen: the takes and the chosen one are kept
    script = str(tmp / "comp" / "shot010.nk")
    nuke.scriptSaveAs(script)
    nuke.scriptOpen(script)
    again = nuke.toNode(node.name())
    assert [v.split(":")[0] for v in again["take"].values()] == ["take_001", "take_002"]
    assert again["take"].value().startswith("take_001") and again["has_take"].value()
    assert np.allclose(_render_downstream(again, tmp / "render2"), px[..., :4], atol=1e-3)


def test_modified_inputs_are_rendered_and_a_matte_input_is_used(comp):
    tmp = comp["tmp"]
    # a matte sequence with the subject's left half only
    (tmp / "matte").mkdir()
    for i, f in enumerate(range(1001, 1005)):
        a = np.zeros((36, 64, 1), np.float32)
        a[10:26, 8 + 4 * i : 14 + 4 * i] = 1.0
        write_exr(tmp / "matte" / f"m.{f}.exr", a, channels=("A",))
    with nuke.root():
        matte = nuke.nodes.Read(file=str(tmp / "matte" / "m.####.exr"), first=1001, last=1004)
        graded = nuke.nodes.Grade(white=2.0)
    graded.setInput(0, comp["plate"])
    node = _node(comp)
    node.setInput(0, graded)  # not a Read: rendered by a temporary Write
    node.setInput(2, matte)
    node["matte_source"].setValue("matte input")
    node["range_mode"].setValue("custom")
    node["frames"].setValue("1002-1003")
    node["motion"].setValue("subject")  # the background follows the matte's subject
    _press(node, "generate")
    _pump_until(_finished(node))
    assert "take_001 done: 2 frames" in node["status"].value(), node["status"].value()
    take = Takes(str(tmp / "comp" / "actanywhere" / node.name())).get("take_001")
    rendered = sorted(os.listdir(Path(take.folder) / "inputs"))
    assert rendered == ["plate.1002.exr", "plate.1003.exr"]  # the matte Read went direct
    assert take.spec["matte"] == {"source": "file", "path": str(tmp / "matte" / "m.####.exr"),
                                  "channel": "A"}
    assert take.spec["plate"]["path"] == os.path.join(take.folder, "inputs", "plate.####.exr")
    _, in_spec = read_exr(Path(take.folder) / "inputs" / "plate.1002.exr")
    assert (in_spec.x, in_spec.y, in_spec.full_width) == (3, 3, 64)  # windows kept
    assert take.spec["motion"] == {"source": "subject"}
    px, out_spec = read_exr(Path(take.folder) / f"{node.name()}.1002.exr")
    assert out_spec.get_string_attribute("actanywhere:motion") == "subject"
    plate_px, _ = read_exr(tmp / "shot" / "plate" / "plate.1002.exr")
    # graded subject inside the matte; outside the matte the subject is gone (background)
    assert np.allclose(px[13, 13, :3], 2 * plate_px[10, 10, :3], atol=2e-2)
    assert not np.allclose(px[13, 20, :3], 2 * plate_px[10, 17, :3], atol=0.2)
    assert nuke.allNodes("Write", nuke.root()) == []  # the temporary Write is gone


def _long_job_running(comp):
    """A 40-frame take generating, at least two frames written; the node."""
    plate, _ = make_shot(comp["tmp"] / "long", frames=range(1, 41), size=(480, 270))
    comp["plate"]["file"].setValue(str(plate))
    comp["plate"]["first"].setValue(1)
    comp["plate"]["last"].setValue(40)
    node = _node(comp)
    _press(node, "generate")

    def two_frames():
        match = re.search(r"frames (\d+)/", node["status"].value())
        return match is not None and int(match.group(1)) >= 2

    _pump_until(two_frames)
    return node


def test_cancel_keeps_complete_frames_and_marks_the_take(comp):
    tmp = comp["tmp"]
    node = _long_job_running(comp)
    nuke._press_cancel()  # the Cancel of Nuke's progress bar
    _pump_until(_finished(node))
    status = node["status"].value()
    assert "take_001 cancelled after" in status, status
    take = Takes(str(tmp / "comp" / "actanywhere" / node.name())).get("take_001")
    assert take.status == "cancelled" and 2 <= take.written < 40
    for path in take.files():
        assert read_exr(path)[0].shape == (270, 480, 8)
    assert node["has_take"].value()  # what was written can be looked at


def test_a_worker_killed_mid_job_shows_an_error(comp):
    node = _long_job_running(comp)
    os.kill(Client.from_state(str(comp["state"])).pid, signal.SIGKILL)
    _pump_until(_finished(node))
    assert len(nuke._messages) == 1 and "take_001 interrupted" in nuke._messages[0]
    assert "has stopped" in nuke._messages[0] and "\n" not in nuke._messages[0]
    assert node["status"].value().startswith("error: take_001 interrupted")


@pytest.mark.parametrize("case", ["unsaved", "no bg", "bad range", "unwritable", "no points",
                                  "bad points", "missing plate files"])
def test_errors_are_one_line_in_the_status_and_a_message(comp, case):
    tmp = comp["tmp"]
    node = _node(comp)
    want = {"unsaved": "save the script first", "no bg": "connect the bg input",
            "bad range": "frame range 'x-y'", "unwritable": "cannot be written",
            "no points": "add points or boxes", "bad points": "points '1001:abc'",
            "missing plate files": "missing plate frame(s) 1005-1006"}[case]
    if case == "unsaved":
        nuke.root().script = ""
    elif case == "no bg":
        node.setInput(1, None)
    elif case == "bad range":
        node["range_mode"].setValue("custom")
        node["frames"].setValue("x-y")
    elif case == "unwritable":
        (tmp / "a_file").write_text("")  # a folder inside a file: no one can make it
        node["output_folder"].setValue(str(tmp / "a_file" / "takes"))
    elif case in ("no points", "bad points"):
        node["matte_source"].setValue("grabcut")
        node["points"].setValue("1001:abc" if case == "bad points" else "")
    elif case == "missing plate files":
        node["range_mode"].setValue("custom")
        node["frames"].setValue("1001-1006")
    _press(node, "generate")
    _pump_until(_finished(node), timeout=120)
    assert len(nuke._messages) == 1 and want in nuke._messages[0], nuke._messages
    assert "\n" not in nuke._messages[0] and "Traceback" not in nuke._messages[0]
    assert node["status"].value().startswith("error:")


def test_sam_points_are_flipped_from_viewer_pixels(comp):
    from actanywhere_nuke import node as plugin

    node = _node(comp)
    node["matte_source"].setValue("sam")
    node["points"].setValue("1001:10,30 1001:50,5,0")
    node["boxes"].setValue("1001:8,6,20,26")
    matte = plugin._matte(node, 1001, 1004, str(comp["tmp"] / "x"))
    assert matte["keys"] == [{"frame": 1001, "points": [[10.0, 6.0, 1], [50.0, 31.0, 0]],
                              "boxes": [[8.0, 10.0, 20.0, 30.0]]}]


def test_startup_failure_prints_one_line(monkeypatch, capsys):
    monkeypatch.setenv("ACTANYWHERE_CORE", "/nowhere")
    exec(compile((PLUGIN / "init.py").read_text(), "init.py", "exec"), {})
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "ActAnywhere: not loaded" in out and "/nowhere" in out


def test_the_takes_panel_docks_and_choosing_a_take_switches_the_node(comp, qtbot):
    """Registered at start (menu.py) as Foundry documents; opened as Nuke opens it; a take
    chosen (starred) in it becomes the node's take."""
    import nukescripts
    from actanywhere_nuke import panel

    from actanywhere import spec
    from actanywhere.shot import job

    assert nukescripts.panels.registered[panel.PANEL_ID] == (
        "actanywhere_nuke.panel.TakesPanel", "ActAnywhere Takes")
    tmp = comp["tmp"]
    node = _node(comp)
    root = tmp / "comp" / "actanywhere" / node.name()
    for n in (1, 2):  # two takes in the node's folder, made by real jobs
        job.run(spec.from_dict({
            "plate": {"path": str(tmp / "shot" / "plate" / "plate.####.exr")},
            "background": {"path": str(tmp / "shot" / "bg.exr")},
            "output": {"path": str(root / f"take_{n:03d}" / f"{node.name()}.####.exr")}}))
    from actanywhere_nuke import node as node_mod

    node_mod.refresh(node, select="take_001")
    assert node["take"].value().startswith("take_001")
    node.setSelected(True)
    widget = nukescripts.panels.restorePanel(panel.PANEL_ID).widget
    qtbot.addWidget(widget)
    assert widget.wait_settled() and widget.root == str(root)
    assert sorted(f.name for f in widget.found) == ["take_001", "take_002"]
    widget.select("take_002")
    widget.star.setChecked(True)
    assert node["take"].value().startswith("take_002")
    assert node["take_file"].value().startswith(str(root / "take_002"))
    assert Takes(str(root)).chosen().name == "take_002"


def test_the_matte_menu_is_the_catalogs_and_the_sam2_model_folder_reaches_the_spec(comp):
    """sam2 (and a source a studio registers) in the matte menu; the SAM model knob shown for
    the SAM sources only; the model folder reaches a ShotSpec the real schema takes."""
    from actanywhere_nuke import node as plugin

    from actanywhere import catalog, spec

    node = _node(comp)
    menu = node["matte_source"].values()
    assert menu[:2] == ["plate alpha", "matte input"] and "sam2" in menu
    assert menu == [plugin.matte_label(n) for n in catalog.matte_sources()]
    hidden = {k: "INVISIBLE" in node[k].flags for k in ("points", "boxes", "sam_checkpoint")}
    assert hidden == {"points": True, "boxes": True, "sam_checkpoint": True}  # plate alpha
    nuke._user_sets(node, "matte_source", "grabcut")
    assert "INVISIBLE" not in node["points"].flags and "INVISIBLE" in node["sam_checkpoint"].flags
    nuke._user_sets(node, "matte_source", "sam2")
    assert not any("INVISIBLE" in node[k].flags for k in ("points", "boxes", "sam_checkpoint"))
    model = comp["tmp"] / "models" / "sam2.1-hiera-tiny"
    model.mkdir(parents=True)
    node["sam_checkpoint"].setValue(str(model))
    node["boxes"].setValue("1001:8,6,20,26")
    folder = comp["tmp"] / "inputs"
    data = plugin._shot_spec(node, str(folder), 1001, 1004, str(folder / "o.####.exr"),
                             str(folder))
    assert data["matte"]["source"] == "sam2" and data["matte"]["sam"] == {
        "checkpoint": str(model)}
    shot = spec.from_dict(data)  # the worker's own schema takes it
    assert shot.matte.source == "sam2" and shot.matte.sam.checkpoint == str(model)
    # sam3: a text prompt (matte.text), key frames optional
    assert definition.TEXT_SOURCES == spec.TEXT_SOURCES
    nuke._user_sets(node, "matte_source", "sam3")
    assert "INVISIBLE" not in node["matte_text"].flags
    node["boxes"].setValue("")
    with pytest.raises(plugin.InputError, match="type what to find in text prompt"):
        plugin._matte(node, 1001, 1004, str(folder))
    node["matte_text"].setValue("person")
    data = plugin._shot_spec(node, str(folder), 1001, 1004, str(folder / "o.####.exr"),
                             str(folder))
    assert data["matte"] == {"source": "sam3", "keys": [], "text": "person",
                             "sam": {"checkpoint": str(model)}}
    assert spec.from_dict(data).matte.text == "person"
    nuke._user_sets(node, "matte_source", "sam2")
    assert "INVISIBLE" in node["matte_text"].flags
    # a source a studio registers is listed when the node is made, and kept on reopening
    catalog.register_matte(catalog.MatteTraits("studio_roto", "studio.roto:Roto",
                                               computed=True))
    try:
        again = _node(comp)
        assert again["matte_source"].values()[-1] == "studio_roto"
        nuke._user_sets(again, "matte_source", "studio_roto")
        assert plugin._matte(again, 1001, 1004, str(folder)) == {"source": "studio_roto"}
        assert all("INVISIBLE" in again[k].flags for k in ("points", "sam_checkpoint"))
        script = str(comp["tmp"] / "comp" / "shot010.nk")
        nuke.scriptSaveAs(script)
        nuke.scriptOpen(script)
        assert nuke.toNode(again.name())["matte_source"].value() == "studio_roto"
    finally:
        catalog._MATTES.pop("studio_roto", None)


# ------------------------------------------------------------------------ several objects
OBJ_W, OBJ_H = 160, 96
#: boxes around the two subjects of ``_two_subjects``, top-left pixels (as the ShotSpec)
OBJ_LEFT, OBJ_RIGHT = [6.0, 26.0, 80.0, 95.0], [80.0, 26.0, 154.0, 95.0]


def _viewer_box(frame, box):
    """A top-left box as the artist types it from Nuke's Viewer (y up from the bottom)."""
    x0, y0, x1, y1 = box
    return f"{frame}:{x0:g},{OBJ_H - y1:g},{x1:g},{OBJ_H - y0:g}"


def _two_subjects(folder):
    """A plate with two subjects: a disc walking right and another walking left."""
    from matte_shots import walking_shot, write_sequence

    frames, _ = walking_shot(4, width=OBJ_W, height=OBJ_H, speed=3)
    others, mattes = walking_shot(4, width=OBJ_W, height=OBJ_H, speed=3, seed=1)
    flip = [(o[:, ::-1], m[:, ::-1, None]) for o, m in zip(others, mattes, strict=True)]
    both = [f * (1 - m) + o * m for f, (o, m) in zip(frames, flip, strict=True)]
    return write_sequence(str(folder), both, first=1001)


def test_the_objects_knob_is_shown_for_tracked_sources_and_its_lines_reach_the_spec(comp):
    """Two objects typed in the objects knob (Viewer pixels): ``matte.objects`` with their
    boxes counted from the top, ``output.layers`` with objects, a spec the worker's schema
    takes; a bad line or prompts given twice is one InputError naming the fix."""
    from actanywhere_nuke import node as plugin

    from actanywhere import spec

    node = _node(comp)
    assert "INVISIBLE" in node["objects"].flags  # plate alpha takes no prompts
    nuke._user_sets(node, "matte_source", "grabcut")
    assert "INVISIBLE" not in node["objects"].flags
    node["objects"].setValue("# the two of them\nhero: box 1001:8,6,20,26; point 1001:10,30\n"
                             "\ndog: box 1002:30,2,50,20 1003:31,2,51,20")
    folder = comp["tmp"] / "inputs"
    data = plugin._shot_spec(node, str(folder), 1001, 1004, str(folder / "o.####.exr"),
                             str(folder))
    assert data["matte"] == {"source": "grabcut", "objects": [
        {"name": "hero", "keys": [{"frame": 1001, "points": [[10.0, 6.0, 1]],
                                   "boxes": [[8.0, 10.0, 20.0, 30.0]]}]},
        {"name": "dog", "keys": [{"frame": 1002, "boxes": [[30.0, 16.0, 50.0, 34.0]]},
                                 {"frame": 1003, "boxes": [[31.0, 16.0, 51.0, 34.0]]}]}]}
    assert data["output"]["layers"] == ["rgba", "bg", "matte", "objects"]
    shot = spec.from_dict(data)
    assert [o.name for o in shot.matte.objects] == ["hero", "dog"]
    assert "objects" in shot.output.layers
    # sam3: each object's text
    nuke._user_sets(node, "matte_source", "sam3")
    node["objects"].setValue("hero: text man in a red coat\ndog: text dog; box 1001:30,2,50,20")
    data = plugin._shot_spec(node, str(folder), 1001, 1004, str(folder / "o.####.exr"),
                             str(folder))
    assert [(o["name"], o.get("text")) for o in data["matte"]["objects"]] == [
        ("hero", "man in a red coat"), ("dog", "dog")]
    assert spec.from_dict(data).matte.objects[1].keys[0].boxes == [(30.0, 16.0, 50.0, 34.0)]
    with pytest.raises(plugin.InputError, match=r"^objects line 1 \(hero\): matte sam3 finds "):
        node["objects"].setValue("hero: box 1001:8,6,20,26")
        plugin._matte(node, 1001, 1004, str(folder))
    nuke._user_sets(node, "matte_source", "grabcut")
    node["objects"].setValue("hero: box 1001:8,6,20,26")
    node["points"].setValue("1001:10,30")
    with pytest.raises(plugin.InputError, match="objects hold the prompts: clear points"):
        plugin._matte(node, 1001, 1004, str(folder))
    # no objects: the single subject as before, no objects layer
    node["objects"].setValue("  \n")
    data = plugin._shot_spec(node, str(folder), 1001, 1004, str(folder / "o.####.exr"),
                             str(folder))
    assert "objects" not in data["matte"] and "layers" not in data["output"]


def test_a_bad_objects_line_is_one_line_before_any_job(comp):
    node = _node(comp)
    node["matte_source"].setValue("grabcut")
    node["objects"].setValue("hero: box 1001:8,6,20,26\ndog: box 1001:8,6,20")
    _press(node, "generate")
    _pump_until(_finished(node), timeout=60)
    assert nuke._messages == [
        "ActAnywhere (ActAnywhere1): objects line 2 (dog): box '1001:8,6,20': expected 4 "
        "comma-separated numbers after FRAME:"], nuke._messages
    assert node["status"].value().startswith("error: objects line 2 (dog)")
    take = Takes(str(comp["tmp"] / "comp" / "actanywhere" / node.name())).get("take_001")
    assert take.status == "failed" and not take.job  # no job was sent


def test_two_grabcut_objects_become_layers_the_nodes_output_carries(comp):
    """A take with two objects (grabcut: each tracked on its own): every EXR has
    ``matte.hero.A`` and ``matte.dog.A`` beside the comp, each in its own part of the frame
    and their union ``matte.A``; the status names the layers; the node's output carries them
    (a Write of all channels below the node writes them: what a Shuffle picks)."""
    from actanywhere_nuke import node as plugin

    tmp = comp["tmp"]
    pattern = _two_subjects(tmp / "two")
    with nuke.root():
        plate = nuke.nodes.Read(file=pattern, first=1001, last=1004,
                                colorspace="default (linear)")
    node = _node(comp)
    node.setInput(0, plate)
    node["matte_source"].setValue("grabcut")
    node["objects"].setValue(f"hero: box {_viewer_box(1001, OBJ_LEFT)}\n"
                             f"dog: box {_viewer_box(1001, OBJ_RIGHT)}")
    _press(node, "generate")
    assert nuke._messages == [], nuke._messages
    _pump_until(_finished(node), timeout=400)
    status = node["status"].value()
    assert "take_001 done: 4 frames" in status, (status, nuke._messages)
    assert status.endswith("; object layers matte.hero, matte.dog (pick one with a Shuffle)")
    folder = tmp / "comp" / "actanywhere" / node.name() / "take_001"
    assert plugin.object_layers(plugin.chosen_take(node)) == ["matte.hero", "matte.dog"]
    for f in (1001, 1004):
        px, s = read_exr(folder / f"{node.name()}.{f}.exr")
        ch = {c: px[..., i] for i, c in enumerate(s.channelnames)}
        assert {"R", "G", "B", "A", "matte.A", "matte.hero.A", "matte.dog.A"} <= set(ch), f
        hero, dog = ch["matte.hero.A"] > 0.5, ch["matte.dog.A"] > 0.5
        assert hero.any() and dog.any() and not np.array_equal(hero, dog)
        assert hero[:, :80].mean() > hero[:, 80:].mean()
        assert dog[:, 100:].mean() > dog[:, :100].mean()
        assert np.allclose(ch["matte.A"], np.maximum(ch["matte.hero.A"], ch["matte.dog.A"]),
                           atol=1e-3)
    with nuke.root():
        out = nuke.nodes.Write(file=str(tmp / "all" / "r.####.exr"), channels="all",
                               create_directories=True)
    out.setInput(0, node)
    nuke.execute(out, 1002, 1002)
    px, s = read_exr(tmp / "all" / "r.1002.exr")
    written = list(s.channelnames)
    assert {"matte.hero.A", "matte.dog.A"} <= set(written)
    take_px, take_s = read_exr(folder / f"{node.name()}.1002.exr")
    assert np.allclose(px[..., written.index("matte.dog.A")],
                       take_px[..., list(take_s.channelnames).index("matte.dog.A")])
