"""The vace engine end to end on the CPU: a tiny Wan VACE folder built here (tests/vace_tiny.py),
run through the real WanVACEPipeline by ``actanywhere generate --engine vace`` on EXR plates."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("ftfy")

import vace_tiny  # noqa: E402
from conftest import make_shot, read_exr  # noqa: E402

from actanywhere import spec  # noqa: E402
from actanywhere.api.takes import Take  # noqa: E402
from actanywhere.errors import JobCancelled  # noqa: E402
from actanywhere.farm import join  # noqa: E402
from actanywhere.shot import job  # noqa: E402

FAST = {"resolution": 32, "steps": 2, "frames_per_window": 5, "overlap": 2}


@pytest.fixture(scope="module")
def vace_dir(tmp_path_factory):
    return vace_tiny.build(str(tmp_path_factory.mktemp("vace") / "tiny-vace"))


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "actanywhere", *map(str, args)],
                          capture_output=True, text=True,
                          env=dict(os.environ, HF_HUB_OFFLINE="1"))


def _spec(root, model, frames=range(1, 7), out="out/comp.####.exr", proxy=False, **vace):
    plate, bg = make_shot(root, frames=frames, size=(96, 54))
    return {"plate": {"path": str(plate)}, "background": {"path": str(bg)},
            "engine": {"name": "vace", "model": str(model), "device": "cpu"},
            "vace": {**FAST, **vace},
            "output": {"path": str(root / out), "proxy": proxy}}


def _frames(pattern, frames):
    return [read_exr(str(pattern).replace("####", f"{f:04d}"))[0] for f in frames]


def test_generate_vace_from_the_cli_writes_a_take_with_the_subject_exact(tmp_path, vace_dir):
    data = _spec(tmp_path, vace_dir, proxy=True)
    path = tmp_path / "sh.json"
    path.write_text(json.dumps(data))
    r = _cli("generate", "--spec", path, "--prompt", "a city street at night",
             "--progress", "json")
    assert r.returncode == 0, r.stderr[-2000:]
    events = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    denoise = [e for e in events if e["stage"] == "denoise"]
    assert denoise[-1]["done"] == denoise[-1]["total"] == 2 * 2  # 6 frames: 2 windows of 5
    assert "2 window(s) of 5" in denoise[0]["message"]
    px, meta = read_exr(tmp_path / "out" / "comp.0003.exr")
    assert list(meta.channelnames) == ["R", "G", "B", "A", "bg.R", "bg.G", "bg.B", "matte.A"]
    assert meta.getattribute("actanywhere:engine") == "vace"
    assert json.loads(meta.getattribute("actanywhere:spec"))["vace"]["prompt"] == \
        "a city street at night"
    plate = read_exr(tmp_path / "plate" / "plate.0003.exr")[0]
    inside = plate[..., 3] == 1.0
    assert inside.sum() > 100
    assert np.array_equal(px[inside][:, :3], plate[inside][:, :3])  # the subject, exact
    assert np.isfinite(px).all() and px[~inside][:, :3].std() > 0  # a generated background
    take = Take.load(str(tmp_path / "out"))
    assert take.status == "done" and take.engine == "vace" and take.seed == 0
    assert take.model_hash and len(take.proxies()) == 6
    assert meta.getattribute("actanywhere:model").endswith(take.model_hash)  # name + hash
    assert take.engine_info["frames_per_window"] == 5 and take.engine_info["offload"] == "none"


def test_same_seed_same_frames_and_another_seed_another_take(tmp_path, vace_dir):
    a = job.run(spec.from_dict(_spec(tmp_path, vace_dir, out="a/c.####.exr")))
    job.run(spec.from_dict(_spec(tmp_path, vace_dir, out="b/c.####.exr")))
    job.run(spec.from_dict(_spec(tmp_path, vace_dir, out="c/c.####.exr", seed=7)))
    assert len(a.written) == 6
    fa, fb, fc = (_frames(tmp_path / d / "c.####.exr", range(1, 7)) for d in "abc")
    assert all(np.array_equal(x, y) for x, y in zip(fa, fb, strict=True))
    assert np.abs(fa[2] - fc[2]).mean() > 1e-3


def test_a_long_shot_is_windows_that_continue_and_a_short_one_is_padded(tmp_path, vace_dir):
    events = []
    job.run(spec.from_dict(_spec(tmp_path, vace_dir, frames=range(1, 12))), events.append)
    first = next(e for e in events if e.stage == "denoise")
    assert "3 window(s) of 5" in first.message  # 11 frames: 0-4, 3-7 and 6-10
    events.clear()
    job.run(spec.from_dict(_spec(tmp_path / "short", vace_dir, frames=range(1, 4),
                                 frames_per_window=9, overlap=2)), events.append)
    first = next(e for e in events if e.stage == "denoise")
    assert "1 window(s) of 5" in first.message  # 3 frames: the fewest 4k+1 that hold them


def test_init_strength_one_keeps_the_moved_background_whatever_the_seed(tmp_path, vace_dir):
    outs = []
    for seed in (0, 5):
        d = _spec(tmp_path, vace_dir, out=f"s{seed}/c.####.exr", init_strength=1.0,
                  seed=seed, color_match=False)
        events = []
        job.run(spec.from_dict(d), events.append)
        assert next(e for e in events if e.stage == "denoise").total == 0  # no step to run
        outs.append(_frames(tmp_path / f"s{seed}" / "c.####.exr", [4])[0])
    assert np.array_equal(outs[0], outs[1])  # no noise left: the VAE's moved background
    events = []
    job.run(spec.from_dict(_spec(tmp_path, vace_dir, out="h/c.####.exr", init_strength=0.5,
                                 steps=4)), events.append)
    assert [e for e in events if e.stage == "denoise"][-1].total == 2 * 2


def test_cancel_between_steps_ends_the_job_with_no_half_frame(tmp_path, vace_dir):
    import threading

    cancel = threading.Event()

    def report(event):
        if event.stage == "denoise" and event.done >= 1:
            cancel.set()

    with pytest.raises(JobCancelled):
        job.run(spec.from_dict(_spec(tmp_path, vace_dir)), report, cancel=cancel)
    assert not list((tmp_path / "out").glob("*.exr"))


def test_missing_and_wrong_model_folders_are_one_line(tmp_path, vace_dir):
    data = _spec(tmp_path, vace_dir)
    data["engine"].pop("model")
    path = tmp_path / "sh.json"
    path.write_text(json.dumps(data))
    r = _cli("generate", "--spec", path)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "engine.model: the vace engine needs a Wan VACE diffusers folder" in r.stderr
    r = _cli("generate", "--spec", path, "--model", tmp_path / "plate")
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert str(tmp_path / "plate") in r.stderr and not (tmp_path / "out").exists()


def test_a_split_vace_shot_joins_parts_that_agree_with_one_pass(tmp_path, vace_dir):
    n = 14
    base = _spec(tmp_path, vace_dir, frames=range(1, n + 1), out="single/c.####.exr")
    job.run(spec.from_dict(base))
    parts = join.plan(list(range(1, n + 1)), 9, 3)  # 1-9 and 7-14
    for p in parts:
        d = json.loads(json.dumps(base))
        d["plate"]["frames"] = f"{p[0]}-{p[-1]}"
        d["vace"]["shot_frames"] = f"1-{n}"
        d["output"]["path"] = join.part_pattern(str(tmp_path / "parts"), p, "sh")
        job.run(spec.from_dict(d))
    out = dict(base, output={"path": str(tmp_path / "take" / "sh.####.exr")})
    done = join.join(spec.from_dict(out), parts, str(tmp_path / "parts"), "sh")
    assert len(done.written) == n
    single = _frames(tmp_path / "single" / "c.####.exr", range(1, n + 1))
    joined = _frames(tmp_path / "take" / "sh.####.exr", range(1, n + 1))
    diff = [float(np.abs(a - b).mean()) for a, b in zip(single, joined, strict=True)]
    # windows 1-5 and 4-8 lie inside the first part: its frames there are the single pass's
    assert max(diff[:6]) < 1e-6, diff
    assert all(np.isfinite(f).all() for f in joined)


def test_the_worker_keeps_the_vace_model_warm_between_takes(tmp_path, vace_dir):
    from conftest import start_worker, stop_worker

    proc, client = start_worker(tmp_path / "state")
    try:
        for take in ("t1", "t2"):
            data = _spec(tmp_path, vace_dir, out=f"{take}/c.####.exr", proxy=True,
                         seed=3 if take == "t2" else 0)
            job = client.wait(client.submit(data), timeout=300)
            assert job["status"] == "done", job
        models = client.health()["models"]
        assert models["loads"] == 1 and models["hits"] == 1, models
        assert os.path.realpath(vace_dir) in models["models"][0]
        takes = {t["seed"]: t for t in client.takes() if t.get("engine") == "vace"}
        assert set(takes) == {0, 3}
        record = Take.load(str(tmp_path / "t2"))
        assert record.engine_info["model"]
        assert record.engine_info["frames_per_window"] == 5
    finally:
        stop_worker(proc, client)


def test_farm_export_asks_for_the_gpu_memory_the_model_needs(tmp_path, vace_dir):
    import yaml

    data = _spec(tmp_path, vace_dir, frames=range(1, 13))
    path = tmp_path / "sh.json"
    path.write_text(json.dumps(data))
    r = _cli("farm", "export", path, "--out", tmp_path / "b", "--output-root",
             tmp_path / "r", "--split", "8", "--split-overlap", "3")
    assert r.returncode == 0, r.stderr
    step = yaml.safe_load((tmp_path / "b" / "template.yaml").read_text())["steps"][0]
    amounts = {a["name"]: a for a in step["hostRequirements"]["amounts"]}
    from actanywhere.engines.vace import VaceEngine

    need = VaceEngine.gpu_memory_gib(spec.from_dict(data))
    assert need and amounts["amount.worker.gpu.memory"]["min"] == int(need * 1024)
    parts = {p["name"]: p["range"] for p in
             step["parameterSpace"]["taskParameterDefinitions"]}["Part"]
    assert parts == ["1-8", "6-12"]  # a vace take splits as a diffusion one does
    r = _cli("farm", "export", path, "--out", tmp_path / "b2", "--output-root",
             tmp_path / "r2", "--gpu-memory", "40")
    step = yaml.safe_load((tmp_path / "b2" / "template.yaml").read_text())["steps"][0]
    amounts = {a["name"]: a for a in step["hostRequirements"]["amounts"]}
    assert amounts["amount.worker.gpu.memory"]["min"] == 40 * 1024


def test_openjd_runs_a_split_vace_take_in_one_warm_worker(tmp_path, vace_dir):
    import shutil

    import yaml

    bindir = os.path.dirname(sys.executable)
    openjd = shutil.which("openjd", path=bindir) or shutil.which("openjd")
    if openjd is None:
        pytest.skip("openjd-cli is not installed")
    data = _spec(tmp_path, vace_dir, frames=range(1, 13), proxy=True)
    path = tmp_path / "sh010.json"
    path.write_text(json.dumps(data))
    r = _cli("farm", "export", path, "--out", tmp_path / "bundle", "--output-root",
             tmp_path / "renders", "--command", os.path.join(bindir, "actanywhere"),
             "--split", "8", "--split-overlap", "3")
    assert r.returncode == 0, r.stderr
    bundle = tmp_path / "bundle"
    tmpl = yaml.safe_load((bundle / "template.yaml").read_text())
    assert [s["name"] for s in tmpl["steps"]][1:] == [f"{tmpl['steps'][0]['name']}_join"]
    run = subprocess.run([openjd, "run", bundle / "template.yaml", "-p",
                          f"file://{bundle / 'openjd_parameters.json'}"],
                         capture_output=True, text=True, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-3000:]
    assert "models: 1 load(s), 1 warm hit(s)" in log  # 2 part tasks, one warm worker
    takes = sorted((tmp_path / "renders").glob("*/take_001"))
    assert len(takes) == 1
    record = Take.load(str(takes[0]))
    assert record.status == "done" and record.written == 12 and record.engine == "vace"
    frames = sorted(takes[0].glob("*.exr"))
    assert len(frames) == 12
    meta = read_exr(frames[6])[1]  # frame 7: shared by both parts
    assert meta.getattribute("actanywhere:parts") == "1-8 x 0.500, 6-12 x 0.500"


def test_settings_the_model_cannot_take_are_one_line(tmp_path, vace_dir):
    data = _spec(tmp_path, vace_dir)
    data["vace"]["resolution"] = 480  # the tiny model's positions reach 32 patches (512 px)
    path = tmp_path / "sh.json"
    path.write_text(json.dumps(data))
    r = _cli("generate", "--spec", path)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "vace.resolution 480: a 864x480 model frame needs 54 positions across, the model " \
        "has 32; lower vace.resolution to at most 272" in r.stderr
    r = _cli("generate", "--spec", path, "--scheduler", "ddim")
    assert r.returncode == 2 and "--scheduler is a setting of another engine than vace" in \
        r.stderr
