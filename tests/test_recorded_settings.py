"""What a take records is what ran (the settings a model fills, and where each came from), and
a plate's overscan (its data window beyond the display window) is kept in the output."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import make_shot, read_exr, write_exr

from actanywhere import spec
from actanywhere.api.takes import Take
from actanywhere.shot import job

MODEL_FILLED = {"resolution": 64, "frames_per_window": 8, "overlap": 2, "guidance": 2.0,
                "init_strength": 0.5}  # the shipped model's manifest recommends these


def cli(*args):
    return subprocess.run([sys.executable, "-m", "actanywhere", *map(str, args)],
                          capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1"))


# ------------------------------------------------------------------- recorded settings
def test_print_spec_shows_the_settings_the_model_fills(tmp_path):
    plate, bg = make_shot(tmp_path)
    r = cli("generate", "--plate", plate, "--background", bg, "-o", tmp_path / "o.####.exr",
            "--engine", "diffusion", "--guidance", "3", "--print-spec")
    assert r.returncode == 0, r.stderr
    printed = json.loads(r.stdout)["diffusion"]
    assert {k: printed[k] for k in MODEL_FILLED} == {**MODEL_FILLED, "guidance": 3.0}
    assert r.stderr.strip() == "settings from the model: diffusion.resolution 64, " \
        "diffusion.frames_per_window 8, diffusion.overlap 2, diffusion.init_strength 0.5"


def test_a_run_records_what_ran_and_a_rerun_from_the_exr_is_bit_identical(tmp_path):
    """The shipped model with its settings left unset: take.json, the EXR's spec and the
    progress line (the plain bar of a log) say what the model filled; a second run from the
    spec read back from an output EXR writes the same pixels."""
    pytest.importorskip("torch")
    plate, bg = make_shot(tmp_path, frames=range(1, 5), size=(96, 54))
    r = cli("generate", "--plate", plate, "--background", bg, "-o",
            tmp_path / "a" / "comp.####.exr", "--engine", "diffusion", "--device", "cpu",
            "--steps", "2")
    assert r.returncode == 0, r.stderr[-2000:]
    line = [ln for ln in r.stderr.splitlines() if ln.startswith("settings from the model")]
    assert line == ["settings from the model: diffusion.resolution 64, diffusion."
                    "frames_per_window 8, diffusion.overlap 2, diffusion.guidance 2, "
                    "diffusion.init_strength 0.5"], r.stderr
    first, meta = read_exr(tmp_path / "a" / "comp.0003.exr")
    recorded = json.loads(meta.getattribute("actanywhere:spec"))
    assert {k: recorded["diffusion"][k] for k in MODEL_FILLED} == MODEL_FILLED
    sources = json.loads(meta.getattribute("actanywhere:settings_from"))
    assert {k for k, v in sources.items() if v == "model"} == {f"diffusion.{k}"
                                                               for k in MODEL_FILLED}
    assert sources["diffusion.steps"] == "spec" and sources["diffusion.seed"] == "default"
    take = Take.load(str(tmp_path / "a"))
    assert take.settings_from == sources and take.spec["diffusion"] == recorded["diffusion"]

    recorded["output"]["path"] = str(tmp_path / "b" / "comp.####.exr")
    (tmp_path / "again.json").write_text(json.dumps(recorded))
    r = cli("generate", "--spec", tmp_path / "again.json", "--progress", "none")
    assert r.returncode == 0, r.stderr[-2000:]
    for f in range(1, 5):
        a = read_exr(tmp_path / "a" / f"comp.{f:04d}.exr")[0]
        b, meta_b = read_exr(tmp_path / "b" / f"comp.{f:04d}.exr")
        assert np.array_equal(a, b), f
    again = json.loads(meta_b.getattribute("actanywhere:settings_from"))
    assert set(again.values()) == {"spec"}  # every setting given this time


def test_a_hosts_take_gets_the_settings_the_model_filled_beside_what_it_sent(tmp_path):
    pytest.importorskip("torch")
    from actanywhere.api.takes import Takes

    plate, bg = make_shot(tmp_path, frames=range(1, 3))
    take = Takes(str(tmp_path / "takes")).new(label="host's")
    sent = {"plate": {"path": str(plate)}, "background": {"path": str(bg)},
            "engine": {"name": "diffusion", "device": "cpu"}, "diffusion": {"steps": 1},
            "output": {"path": os.path.join(take.folder, "take.####.exr")}}
    take.update(spec=sent)
    job.run(spec.from_dict(sent))
    record = Take.load(take.folder)
    assert record.label == "host's" and record.spec["diffusion"] == {"steps": 1, **MODEL_FILLED}
    assert record.spec["engine"] == sent["engine"]  # the rest as the host sent it
    assert record.settings_from["diffusion.resolution"] == "model"
    assert record.settings_from["diffusion.steps"] == "spec"


def test_vace_records_the_resolution_the_model_folder_gives(tmp_path):
    """vace.resolution unset is the folder's native short side: the engine's hook says so,
    as the job records it."""
    pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    import vace_tiny

    from actanywhere import engines
    from actanywhere.model.vace import folder

    model = vace_tiny.build(str(tmp_path / "tiny-vace"))
    info = folder.inspect(model)
    plate, bg = make_shot(tmp_path)
    shot = spec.from_dict({"plate": {"path": str(plate)}, "background": {"path": str(bg)},
                           "engine": {"name": "vace", "model": model},
                           "output": {"path": str(tmp_path / "o" / "c.####.exr")}})
    ran, sources = engines.engine_class("vace").effective(shot)
    native = min(info.native_width, info.native_height)
    assert native and ran.vace.resolution == native and shot.vace.resolution is None
    assert sources["vace.resolution"] == "model" and sources["vace.steps"] == "default"
    given = shot.model_copy(update={"vace": shot.vace.model_copy(update={"resolution": 32})})
    given = spec.from_dict(given.model_dump(mode="json"))
    assert engines.engine_class("vace").effective(given)[0].vace.resolution == 32


# ----------------------------------------------------------------------------- overscan
W, H, MX, MY = 64, 36, 8, 5  # display window; overscan margins


def overscan_shot(root, frames=range(1, 4)):
    """A plate whose data window reaches MX, MY pixels beyond its display window, with the
    subject crossing the left edge into the overscan; a background wider than the plate (so
    there is background beyond the display window's fit)."""
    (root / "plate").mkdir(parents=True)
    for i, f in enumerate(frames):
        rgba = np.zeros((H + 2 * MY, W + 2 * MX, 4), np.float32)
        rgba[..., :3] = 0.2
        rgba[12:34, 2 + i : 22 + i, :3] = [0.9, 0.3, 2.5]
        rgba[12:34, 2 + i : 22 + i, 3] = 1.0
        write_exr(root / "plate" / f"plate.{f:04d}.exr", rgba, display=(0, 0, W, H),
                  data_origin=(-MX, -MY))
    bg = np.zeros((H * 2, W * 4, 3), np.float32)
    bg[..., 0] = np.linspace(0, 1, W * 4)[None, :]
    bg[..., 1] = 0.5
    bg[..., 2] = np.linspace(0, 1, H * 2)[:, None]
    write_exr(root / "bg.exr", bg, channels=("R", "G", "B"))
    return root / "plate" / "plate.####.exr", root / "bg.exr"


def overscan_spec(root, plate, bg, out, **sections):
    data = {"plate": {"path": str(plate)}, "background": {"path": str(bg)},
            "composite": {"harmonize": 0.0, "shadow": 0.0},
            "output": {"path": str(root / out / "c.####.exr"), "proxy": False}}
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value}
    return spec.from_dict(data)


def layer(px, meta, names):
    return px[..., [list(meta.channelnames).index(n) for n in names]]


def test_the_composite_keeps_the_plates_overscan(tmp_path):
    plate, bg = overscan_shot(tmp_path)
    kept = job.run(overscan_spec(tmp_path, plate, bg, "keep"))
    job.run(overscan_spec(tmp_path, plate, bg, "crop", output={"overscan": "crop"}))
    assert kept.warnings == []
    px, meta = read_exr(tmp_path / "keep" / "c.0002.exr")
    assert (meta.x, meta.y, meta.width, meta.height) == (-MX, -MY, W + 2 * MX, H + 2 * MY)
    assert (meta.full_x, meta.full_y, meta.full_width, meta.full_height) == (0, 0, W, H)
    cropped, cmeta = read_exr(tmp_path / "crop" / "c.0002.exr")
    assert (cmeta.x, cmeta.y, cmeta.width, cmeta.height) == (0, 0, W, H)
    assert np.array_equal(px[MY : MY + H, MX : MX + W], cropped)  # the display window as before
    src = read_exr(tmp_path / "plate" / "plate.0002.exr")[0]
    subject = src[..., 3] == 1.0
    subject[MY : MY + H, MX : MX + W] = False  # the subject in the overscan
    assert subject.sum() > 50
    rgb = layer(px, meta, ["R", "G", "B"])
    assert np.array_equal(rgb[subject], src[subject][:, :3])
    assert np.array_equal(layer(px, meta, ["matte.A"])[..., 0], src[..., 3])
    # the background continues beyond the display window (not its edge repeated)
    bg_r = layer(px, meta, ["bg.R"])[MY + 2, : MX + 4, 0]
    assert np.all(np.diff(bg_r) > 0), bg_r
    assert (layer(px, meta, ["A"]) == 1.0).all()


def test_a_moving_background_continues_into_the_overscan(tmp_path):
    plate, bg = overscan_shot(tmp_path)
    job.run(overscan_spec(tmp_path, plate, bg, "keep", motion={
        "source": "keys", "keys": ["1:0,0", "3:-6,0"]}, output={"layers": ["bg"]}))
    first, meta = read_exr(tmp_path / "keep" / "c.0001.exr")
    last = read_exr(tmp_path / "keep" / "c.0003.exr")[0]
    assert first.shape == last.shape == (H + 2 * MY, W + 2 * MX, 3)
    # frame 3 is frame 1 moved 6 px left, overscan and all
    assert np.allclose(last[:, : W + 2 * MX - 6], first[:, 6:], atol=3e-3)
    # frame 1's right overscan shows what frame 3 shows inside its display window (the
    # background the frames show; beyond that, its edge repeats: docs/shotspec.md)
    assert np.all(np.diff(first[MY, MX + W - 4 : MX + W + 5, 0]) > 0)


def test_a_model_engine_fills_the_overscan_from_the_moved_background_and_says_so(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    from actanywhere.model import checkpoint, components

    model = str(tmp_path / "tiny")
    checkpoint.save(components.build_random("tiny", seed=0), model)
    plate, bg = overscan_shot(tmp_path)
    events = []
    result = job.run(overscan_spec(tmp_path, plate, bg, "model", engine={
        "name": "diffusion", "model": model, "device": "cpu"}, diffusion={
        "resolution": 64, "steps": 2, "frames_per_window": 4, "overlap": 2}), events.append)
    job.run(overscan_spec(tmp_path, plate, bg, "keep"))
    lines = [w for w in result.warnings if "overscan" in w]
    assert len(lines) == 1 and "frame(s) 1-3" in lines[0] and "output.overscan crop" in \
        lines[0] and "diffusion engine generates the display window only" in lines[0]
    px, meta = read_exr(tmp_path / "model" / "c.0002.exr")
    comp, cmeta = read_exr(tmp_path / "keep" / "c.0002.exr")
    assert (meta.x, meta.y, meta.width, meta.height) == (-MX, -MY, W + 2 * MX, H + 2 * MY)
    ring = np.ones((H + 2 * MY, W + 2 * MX), bool)
    ring[MY : MY + H, MX : MX + W] = False
    names = ["R", "G", "B", "bg.R", "bg.G", "bg.B", "matte.A"]
    # around the display window: the composite's subject over the moved background
    assert np.array_equal(layer(px, meta, names)[ring], layer(comp, cmeta, names)[ring])
