"""The hosts offer every engine of the catalog, the model folder and the prompt (issues 31, 32):
the Nuke node (the fake ``nuke`` of tests/fake_nuke, the plugin's real code, a real worker)
and the Blender extension (real ``bpy`` in its own venvs, as tests/test_blender.py runs it).

A vace take's ShotSpec is checked as the worker receives it (``take.json`` holds it before
the job is sent): the vace model itself is not run here (tests/test_vace_engine.py does).
An engine registered in the catalog (tests/fake_engine.py) is in both hosts' menus and runs
through the worker with no host edit.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import test_nuke
from conftest import make_shot, start_worker, stop_worker
from test_blender import addon_build, bpy_pythons
from test_nuke import _finished, _node, _press, _pump_until, comp  # noqa: F401 - fixture

from actanywhere import catalog, settings, spec
from actanywhere.api import Takes, shotspec
from actanywhere.errors import SpecError

nuke = test_nuke.nuke
TESTS = Path(__file__).resolve().parent
#: the engine settings the hosts have a knob / property for
HOST_FIELDS = {"seed", "steps", "guidance", "init_strength", "prompt", "negative_prompt"}


@pytest.fixture
def flat(monkeypatch):
    """The ``flat`` engine of tests/fake_engine.py: registered here, and in the worker a host
    starts (``ACTANYWHERE_ENGINES``, as a studio sets it for every process)."""
    monkeypatch.setenv(catalog.PLUGINS_ENV, "fake_engine")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(TESTS), *filter(None, [os.environ.get("PYTHONPATH")])]))
    import fake_engine

    catalog.register_engine(fake_engine.TRAITS)
    yield fake_engine.TRAITS
    catalog.unregister_engine("flat")


# ------------------------------------------------------------------------ the host layer
def test_the_panel_table_is_the_schemas_for_every_engine_section():
    """``shotspec.PANEL`` (standard library, for the hosts) lists exactly the fields of each
    engine's settings section that the hosts have knobs for, with values the section takes;
    vace starts at its section's own defaults."""
    sections = {t.settings for t in catalog.engines().values() if t.settings}
    assert {"composite", "diffusion", "vace"} <= sections
    assert set(shotspec.PANEL) <= sections
    for section in sections:
        model = spec.ShotSpec.model_fields[section].annotation
        panel = shotspec.PANEL.get(section, {})
        assert set(panel) == HOST_FIELDS & set(model.model_fields), section
        model.model_validate({k: v for k, v in panel.items() if v != ""})
    vace = settings.VaceSettings()
    assert {k: getattr(vace, k) for k in ("seed", "steps", "guidance", "init_strength")} == \
        {k: v for k, v in shotspec.PANEL["vace"].items() if "prompt" not in k}
    assert shotspec.panel("vace")["steps"] == 30 and shotspec.panel("vace")["guidance"] == 5.0
    assert shotspec.panel("composite") == {} and shotspec.panel("nonesuch") == {}


def test_build_puts_the_settings_in_the_chosen_engines_section(tmp_path, flat):
    model = str(tmp_path / "Wan2.1-VACE-1.3B-diffusers")
    values = {"seed": 9, "steps": 30, "guidance": 5.0, "init_strength": 0.0,
              "prompt": "a rainy street", "negative_prompt": "  "}
    vace = shotspec.build("p.####.exr", "bg.exr", "o.####.exr", engine="vace", model=model,
                          settings=shotspec.panel_settings("vace", values),
                          base=str(tmp_path))
    assert vace["vace"] == {"seed": 9, "steps": 30, "guidance": 5.0, "init_strength": 0.0,
                            "prompt": "a rainy street"}  # an empty text is not sent
    assert "diffusion" not in vace and vace["engine"] == {"name": "vace", "model": model}
    assert spec.from_dict(vace).vace.prompt == "a rainy street"
    assert catalog.seed_of(vace) == 9
    diffusion = shotspec.build("p.####.exr", "bg.exr", "o.####.exr", engine="diffusion",
                               settings=shotspec.panel_settings("diffusion", values))
    assert diffusion["diffusion"] == {"seed": 9, "steps": 30, "guidance": 5.0,
                                      "init_strength": 0.0}  # no prompt: not its field
    # a section given by name still works, the chosen engine's settings go over it
    both = shotspec.build("p.####.exr", "bg.exr", "o.####.exr", engine="diffusion",
                          diffusion={"seed": 1, "resolution": 128}, settings={"seed": 2})
    assert both["diffusion"] == {"seed": 2, "resolution": 128}
    plain = shotspec.build("p.####.exr", "bg.exr", "o.####.exr", engine="flat",
                           settings={"seed": 3})
    assert not {"flat", "diffusion", "vace", "composite"} & set(plain)


def test_an_engine_without_a_shipped_model_needs_a_folder_before_anything_is_sent():
    with pytest.raises(SpecError) as err:
        shotspec.build("p.####.exr", "bg.exr", "o.####.exr", engine="vace")
    text = str(err.value)
    assert text.startswith("the vace engine needs a model folder") and "docs/vace.md" in text
    assert "\n" not in text
    shotspec.check_model("vace", "/models/vace")
    shotspec.check_model("diffusion", None)  # the shipped model
    shotspec.check_model("composite", None)
    from actanywhere.model import SHIPPED

    assert os.path.isdir(SHIPPED) and catalog.engine("diffusion").model in \
        shotspec.SHIPPED_MODELS and catalog.engine("vace").model not in shotspec.SHIPPED_MODELS


def test_switching_engine_moves_only_the_starting_values():
    start = shotspec.panel("diffusion")
    assert shotspec.switched("vace", start) == {"steps": 30, "guidance": 5.0,
                                                "init_strength": 0.0}
    chosen = {**start, "steps": 12, "guidance": 3.5, "seed": 4}
    assert shotspec.switched("vace", chosen) == {"init_strength": 0.0}
    back = {**shotspec.panel("vace"), "prompt": "a beach"}
    assert shotspec.switched("diffusion", back) == {"steps": 25, "guidance": 2.0,
                                                    "init_strength": 0.5}
    assert shotspec.switched("composite", back) == {}
    # Blender's 32-bit floats
    assert shotspec.switched("vace", {"guidance": 2.0000000298}) == {"guidance": 5.0}


# ----------------------------------------------------------------------------------- Nuke
def _shown(node, knob: str) -> bool:
    return "INVISIBLE" not in node[knob].flags


def test_the_nuke_node_offers_vace_and_its_take_carries_vace_settings(comp, tmp_path):  # noqa: F811
    node = _node(comp)
    assert node["engine"].values() == list(catalog.engine_names())
    assert {"composite", "diffusion", "vace"} <= set(node["engine"].values())
    assert "vace: Wan VACE" in node["engine"].tooltip_text
    assert "vace" in node["model"].tooltip_text and "diffusion" in node["model"].tooltip_text
    # composite uses no model and no settings: none shown
    assert not any(_shown(node, k) for k in ("model", "seed", "steps", "prompt",
                                              "negative_prompt"))
    nuke._user_sets(node, "engine", "diffusion")
    assert _shown(node, "model") and _shown(node, "steps") and not _shown(node, "prompt")
    nuke._user_sets(node, "engine", "vace")
    assert all(_shown(node, k) for k in ("model", "seed", "steps", "guidance",
                                         "init_strength", "prompt", "negative_prompt"))
    assert type(node["prompt"]).__name__ == "Multiline_Eval_String_Knob"  # a text box
    assert (node["steps"].value(), node["guidance"].value(), node["init_strength"].value()) \
        == (30, 5.0, 0.0)  # vace's own starting values, as the artist changed nothing

    # no model folder: one line, before any take folder is made or anything is sent
    _press(node, "generate")
    assert len(nuke._messages) == 1 and "the vace engine needs a model folder" in \
        nuke._messages[0] and "\n" not in nuke._messages[0]
    assert node["status"].value().startswith("error: the vace engine needs a model folder")
    root = comp["tmp"] / "comp" / "actanywhere" / node.name()
    assert not root.exists() and node.fullName() not in test_nuke.sys.modules[
        "actanywhere_nuke.node"].RUNS
    nuke._messages.clear()

    model = tmp_path / "Wan2.1-VACE-1.3B-diffusers"
    model.mkdir()
    prompt = "a rainy city street at [night]\nwet asphalt, $neon"  # never Tcl-evaluated
    node["model"].setValue(str(model))
    node["prompt"].setValue(prompt)
    node["seed"].setValue(9)
    _press(node, "generate")
    take = Takes(str(root)).get("take_001")
    sent = take.spec  # written before the job goes to the worker
    assert sent["engine"] == {"name": "vace", "model": str(model)}
    assert sent["vace"] == {"seed": 9, "steps": 30, "guidance": 5.0, "init_strength": 0.0,
                            "prompt": prompt}  # the empty negative prompt: the engine's own
    assert "diffusion" not in sent and "composite" not in sent
    assert take.engine == "vace" and take.seed == 9
    checked = spec.from_dict(sent)  # what the worker checks it with
    assert checked.vace.seed == 9 and checked.vace.prompt == prompt
    _pump_until(_finished(node))  # the folder is empty: the worker's vace engine says so
    status = node["status"].value()
    assert str(model) in status and "\n" not in status and "Traceback" not in status, status
    nuke._messages.clear()

    # the artist's own steps stay through engine switches; starting values follow the engine
    node["steps"].setValue(12)
    nuke._user_sets(node, "engine", "diffusion")
    assert (node["steps"].value(), node["guidance"].value(), node["init_strength"].value()) \
        == (12, 2.0, 0.5)
    assert not _shown(node, "prompt") and node["prompt"].value() == prompt  # kept, hidden
    nuke._user_sets(node, "engine", "vace")
    assert (node["steps"].value(), node["guidance"].value()) == (12, 5.0)


def test_a_registered_engine_is_in_the_nuke_menu_and_runs_with_no_host_edit(comp, flat):  # noqa: F811
    node = _node(comp)
    assert "flat" in node["engine"].values()
    assert "flat" not in (TESTS.parent / "gizmos" / "ActAnywhere.gizmo").read_text()
    assert f"flat: {flat.summary}" in node["engine"].tooltip_text
    nuke._user_sets(node, "engine", "flat")
    # no model, no seed, no settings section: nothing of the kind shown
    assert not any(_shown(node, k) for k in ("model", "seed", "steps", "prompt"))
    _press(node, "generate")
    _pump_until(_finished(node))
    assert nuke._messages == [], nuke._messages
    assert "take_001 done: 4 frames" in node["status"].value(), node["status"].value()
    take = Takes(str(comp["tmp"] / "comp" / "actanywhere" / node.name())).get("take_001")
    assert take.engine == "flat" and take.seed is None
    assert take.spec["engine"] == {"name": "flat"}
    assert not {"diffusion", "composite", "vace"} & set(take.spec)
    # saved and opened again: the gizmo's menu has no 'flat', the node chooses it again
    script = str(comp["tmp"] / "comp" / "shot010.nk")
    nuke._load_warnings.clear()
    nuke.scriptSaveAs(script)
    nuke.scriptOpen(script)
    again = nuke.toNode(node.name())
    assert any("flat" in w for w in nuke._load_warnings), nuke._load_warnings
    assert again["engine"].value() == "flat" and "flat" in again["engine"].values()
    assert again["take"].value().startswith("take_001")


def test_a_nuke_script_keeps_the_shipped_engine_it_chose(comp):  # noqa: F811
    node = _node(comp)
    nuke._user_sets(node, "engine", "vace")
    node["prompt"].setValue("a beach at sunset")
    script = str(comp["tmp"] / "comp" / "shot010.nk")
    nuke.scriptSaveAs(script)
    nuke.scriptOpen(script)
    again = nuke.toNode(node.name())
    assert again["engine"].value() == "vace" and again["prompt"].value() == "a beach at sunset"
    assert _shown(again, "prompt") and _shown(again, "model")


# ---------------------------------------------------------------------------------- Blender
def _bpy_scenario(cfg, mod, bpy, d):
    """Runs inside a bpy venv (see ``_blender``): the engine menu, a vace take's spec, an
    engine registered in the add-on's catalog, save and reopen."""
    out = {"version": bpy.app.version_string}
    s = bpy.context.scene.actanywhere
    cat = mod.vendor.actanywhere.catalog
    out["default"] = s.engine
    out["items"] = [i[0] for i in mod.props._engine_items(s, bpy.context)]
    plate = d.image_strip("plate", cfg["plate_dir"], 2, 1)
    d.select(plate)
    bpy.ops.wm.save_as_mainfile(filepath=cfg["blend"])
    s.background_file = cfg["bg"]

    def values():
        return {k: round(getattr(s, k), 4) for k in ("seed", "steps", "guidance",
                                                      "init_strength")}

    s.engine = "vace"
    out["vace_start"] = values()
    try:  # no model folder: refused at once, nothing made
        out["no_model"] = list(bpy.ops.actanywhere.generate())
    except RuntimeError as exc:  # how bpy.ops hands a script an operator's error report
        out["no_model"] = ["CANCELLED", str(exc).strip()]
    out["no_model_status"], out["no_model_takes"] = s.status, len(s.takes)

    s.model, s.prompt, s.seed = cfg["model"], cfg["prompt"], 9
    out["vace_generate"] = list(bpy.ops.actanywhere.generate())
    d.pump(mod, d.idle(mod), timeout=120)
    out["vace_take"] = d.take_info(s.takes[0])

    s.steps = 12
    s.engine = "diffusion"
    out["diffusion_after"] = values()
    s.engine = "vace"
    out["vace_after"] = values()

    # an engine registered in the add-on's catalog: in the menu, sent, run by the worker
    cat.register_engine(cat.EngineTraits(name="flat", entry="fake_engine:FlatEngine",
                                         summary="The background's mean colour",
                                         needs_gpu=True))
    out["items_flat"] = [i[0] for i in mod.props._engine_items(s, bpy.context)]
    s.engine = "flat"
    out["flat"] = s.engine
    d.select(plate)
    out["flat_generate"] = list(bpy.ops.actanywhere.generate())
    d.pump(mod, d.idle(mod), timeout=120)
    out["flat_take"] = d.take_info(s.takes[-1])

    s.engine = "vace"
    bpy.ops.wm.save_mainfile()
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.ops.wm.open_mainfile(filepath=cfg["blend"])
    s = bpy.context.scene.actanywhere
    out["reopened"] = {"engine": s.engine, "prompt": s.prompt, "model": s.model,
                       "steps": s.steps}
    return out


BOOT = """import json, sys
sys.path.insert(0, {tests!r})
import bpy
import blender_driver as d
{source}
cfg = json.load(open(sys.argv[1]))
mod = d.install(cfg["zip"])
out = _bpy_scenario(cfg, mod, bpy, d)
json.dump(out, open(sys.argv[2], "w"), indent=1)
"""


@pytest.mark.parametrize("python", bpy_pythons())
def test_the_blender_panel_offers_every_engine_the_model_folder_and_the_prompt(
        python, tmp_path, flat):
    """Through real ``bpy``: the engine property lists the catalog's engines (one registered
    in the add-on's catalog too), vace takes steps 30 and guidance 5 unless the artist set
    them, a vace take without a model folder is refused at once, with one its spec has
    vace.* and no diffusion.*; a registered engine runs through the worker (the studio's,
    running with its engine package importable: a worker the add-on starts gets no host
    PYTHONPATH)."""
    plate, bg = make_shot(tmp_path / "shot", frames=range(1001, 1005))
    model = tmp_path / "Wan2.1-VACE-1.3B-diffusers"
    model.mkdir()
    (tmp_path / "edit").mkdir()
    prompt = "a rainy city street at night, wet asphalt"
    cfg = {"zip": addon_build.build(str(tmp_path / "dist"), python=sys.executable),
           "blend": str(tmp_path / "edit" / "edit.blend"), "plate_dir": str(plate.parent),
           "bg": str(bg), "model": str(model), "prompt": prompt}
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    script = tmp_path / "driver.py"
    script.write_text(BOOT.format(tests=str(TESTS), source=inspect.getsource(_bpy_scenario)))
    state = tmp_path / "state"
    worker, client = start_worker(state)  # knows 'flat' (ACTANYWHERE_ENGINES, PYTHONPATH)
    # Blender runs with the studio's ACTANYWHERE_ENGINES too
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(tmp_path / "blender-user"),
               ACTANYWHERE_STATE_DIR=str(state), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    env.pop("ACTANYWHERE_PYTHON", None)  # the add-on's preferences say which Python
    try:
        proc = subprocess.run([python, str(script), str(tmp_path / "cfg.json"),
                               str(tmp_path / "out.json")], env=env, capture_output=True,
                              text=True, timeout=400)
    finally:
        stop_worker(worker, client)
    console = proc.stdout + proc.stderr
    assert proc.returncode == 0, console[-6000:]
    out = json.loads((tmp_path / "out.json").read_text())

    assert out["default"] == "composite"
    assert out["items"][:3] == ["composite", "diffusion", "vace"]
    # Blender's Python cannot import fake_engine (it needs the core): one line, not a failure
    assert console.count("ActAnywhere: ACTANYWHERE_ENGINES: cannot import engine module "
                         "'fake_engine'") == 1, console[-3000:]
    assert out["vace_start"] == {"seed": 0, "steps": 30, "guidance": 5.0, "init_strength": 0.0}
    assert out["no_model"][0] == "CANCELLED" and out["no_model_takes"] == 0
    assert "the vace engine needs a model folder" in out["no_model_status"]
    assert "\n" not in out["no_model_status"]

    assert out["vace_generate"] == ["FINISHED"]
    folder = tmp_path / "edit" / "actanywhere" / "plate"
    take = Takes(str(folder)).get("take_001")
    assert take.spec["engine"] == {"name": "vace", "model": str(model)}
    assert take.spec["vace"] == {"seed": 9, "steps": 30, "guidance": 5.0,
                                 "init_strength": 0.0, "prompt": prompt}
    assert "diffusion" not in take.spec and take.engine == "vace" and take.seed == 9
    assert spec.from_dict(take.spec).vace.prompt == prompt
    assert out["vace_take"]["engine"] == "vace" and out["vace_take"]["seed"] == 9
    # the folder is empty: the worker's vace engine says so, naming it, in one line
    assert str(model) in out["vace_take"]["message"], out["vace_take"]
    assert "\n" not in out["vace_take"]["message"] and "Traceback" not in console

    assert out["diffusion_after"] == {"seed": 9, "steps": 12, "guidance": 2.0,
                                      "init_strength": 0.5}
    assert out["vace_after"] == {"seed": 9, "steps": 12, "guidance": 5.0, "init_strength": 0.0}

    assert "flat" in out["items_flat"] and out["flat"] == "flat"
    assert out["flat_generate"] == ["FINISHED"]
    assert out["flat_take"]["status"] == "done", (out["flat_take"], console[-3000:])
    flat_take = Takes(str(folder)).get(out["flat_take"]["name"])
    assert flat_take.spec["engine"] == {"name": "flat"} and flat_take.engine == "flat"
    assert not {"diffusion", "composite", "vace"} & set(flat_take.spec)

    assert out["reopened"] == {"engine": "vace", "prompt": prompt, "model": str(model),
                               "steps": 12}
