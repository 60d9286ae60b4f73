"""Farm export: Open Job Description bundles checked and run for real (``openjd check`` /
``openjd run``), against direct ``generate`` runs of the same specs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml
from conftest import make_shot, read_exr

from actanywhere import spec
from actanywhere.api.takes import Take
from actanywhere.shot import job

BIN = os.path.dirname(sys.executable)
OPENJD = shutil.which("openjd", path=BIN) or shutil.which("openjd")
pytestmark = pytest.mark.skipif(OPENJD is None, reason="openjd-cli is not installed")


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "actanywhere", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd,
                          env=dict(os.environ, HF_HUB_OFFLINE="1"))


def _openjd(*args):
    return subprocess.run([OPENJD, *map(str, args)], capture_output=True, text=True,
                          env=dict(os.environ, HF_HUB_OFFLINE="1"))


def _shot(tmp_path, frames=range(1, 8), **extra):
    plate, bg = make_shot(tmp_path / "sh010", frames=frames, size=(96, 54))
    data = {"plate": {"path": str(plate)}, "background": {"path": str(bg)},
            "output": {"path": str(tmp_path / "unused" / "c.####.exr")},
            "composite": {"harmonize": 0.0}, **extra}
    path = tmp_path / "sh010.json"
    path.write_text(json.dumps(data))
    return path, plate, bg


def _export(tmp_path, spec_path, *args):
    r = _cli("farm", "export", spec_path, "--out", tmp_path / "bundle", "--output-root",
             tmp_path / "renders", "--command", os.path.join(BIN, "actanywhere"), *args)
    assert r.returncode == 0, r.stderr
    return tmp_path / "bundle"


def _run(bundle):
    return _openjd("run", bundle / "template.yaml", "-p",
                   f"file://{bundle / 'openjd_parameters.json'}")


def _direct(bundle, shot, take, out):
    """The take's spec run here, as a host would without the farm."""
    data = json.loads((bundle / "specs" / shot / f"{take}.json").read_text())
    data["output"]["path"] = str(out / "c.####.exr")
    job.run(spec.from_dict(data))
    return out


def test_exported_templates_pass_openjd_check(tmp_path):
    spec_path, _, bg = _shot(tmp_path)
    bundle = _export(tmp_path, spec_path, "--wedge", f"background.path={bg},{bg}",
                     "--wedge", "composite.shadow=0,0.5", "--chunk", "3")
    r = _openjd("check", bundle / "template.yaml")
    assert r.returncode == 0, r.stdout + r.stderr
    tmpl = yaml.safe_load((bundle / "template.yaml").read_text())
    assert tmpl["specificationVersion"] == "jobtemplate-2023-09"
    params = {p["name"]: p for p in tmpl["parameterDefinitions"]}
    assert params["OutputRoot"]["type"] == "PATH" and params["OutputRoot"]["dataFlow"] == "OUT"
    assert params["Plate_sh010"]["dataFlow"] == "IN"
    (step,) = tmpl["steps"]
    space = step["parameterSpace"]
    assert space["combination"] == "(Take, Background) * Frames"
    ranges = {p["name"]: p["range"] for p in space["taskParameterDefinitions"]}
    assert ranges["Take"] == ["take_001", "take_002", "take_003", "take_004"]  # 2 x 2 wedge
    assert ranges["Frames"] == ["1-3", "4-6", "7-7"]
    assert "stepEnvironments" not in step  # composite: no model to keep warm
    values = yaml.safe_load((bundle / "parameter_values.yaml").read_text())
    assert {v["name"] for v in values["parameterValues"]} == set(params)
    # the take folders are reserved at export: a second export never collides
    _export(tmp_path, spec_path)
    assert sorted(os.listdir(tmp_path / "renders" / "sh010")) == [
        "take_001", "take_002", "take_003", "take_004", "take_005"]
    assert Take.load(str(tmp_path / "renders" / "sh010" / "take_005")).status == "queued"


def test_openjd_run_composite_chunks_equal_direct_generate(tmp_path):
    spec_path, _, bg = _shot(tmp_path)
    bundle = _export(tmp_path, spec_path, "--wedge", "composite.shadow=0,0.6", "--chunk", "3")
    r = _run(bundle)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "Chunks run: 6" in r.stdout or "Tasks run: 6" in r.stdout, r.stdout[-800:]
    assert "openjd_progress: 100.0" in r.stdout
    for take in ("take_001", "take_002"):
        ref = _direct(bundle, "sh010", take, tmp_path / "direct" / take)
        got = tmp_path / "renders" / "sh010" / take
        for f in range(1, 8):
            a, _ = read_exr(got / f"sh010.{f:04d}.exr")
            b, _ = read_exr(ref / f"c.{f:04d}.exr")
            assert np.array_equal(a, b), (take, f)
        record = Take.load(str(got))
        assert len(record.proxies()) == 7
        assert record.written == 7  # the take's frames, not the last chunk's 1
    a, _ = read_exr(tmp_path / "renders" / "sh010" / "take_001" / "sh010.0004.exr")
    b, _ = read_exr(tmp_path / "renders" / "sh010" / "take_002" / "sh010.0004.exr")
    assert not np.array_equal(a, b)  # the wedge made two different takes


def test_openjd_run_diffusion_takes_share_one_warm_worker(tmp_path):
    from actanywhere.model import checkpoint, components

    model = tmp_path / "tiny"
    checkpoint.save(components.build_random("tiny", seed=0), str(model))
    spec_path, _, _ = _shot(tmp_path, frames=range(1, 5),
                            engine={"name": "diffusion", "model": str(model), "device": "cpu"},
                            diffusion={"resolution": 64, "steps": 2, "frames_per_window": 4,
                                       "overlap": 2})
    bundle = _export(tmp_path, spec_path, "--wedge", "diffusion.seed=1,2")
    tmpl = yaml.safe_load((bundle / "template.yaml").read_text())
    (step,) = tmpl["steps"]
    amounts = {a["name"]: a["min"] for a in step["hostRequirements"]["amounts"]}
    assert amounts["amount.worker.gpu"] == 1 and amounts["amount.worker.gpu.memory"] == 8192
    assert step["stepEnvironments"][0]["script"]["actions"]["onEnter"]["args"][:2] == [
        "serve", "--detach"]
    r = _run(bundle)
    log = r.stdout + r.stderr
    assert r.returncode == 0, log[-3000:]
    assert "models: 1 load(s), 1 warm hit(s)" in log  # two takes, the model loaded once
    for take, seed in (("take_001", 1), ("take_002", 2)):
        got = tmp_path / "renders" / "sh010" / take
        record = Take.load(str(got))
        assert record.status == "done" and record.seed == seed
        ref = _direct(bundle, "sh010", take, tmp_path / "direct" / take)
        for f in range(1, 5):
            a, _ = read_exr(got / f"sh010.{f:04d}.exr")
            b, _ = read_exr(ref / f"c.{f:04d}.exr")
            assert np.allclose(a, b, atol=1e-5), (take, f)


def test_a_failing_task_ends_with_the_documented_exit_code(tmp_path):
    spec_path, plate, _ = _shot(tmp_path, frames=range(1, 4))
    bundle = _export(tmp_path, spec_path, "--chunk", "10")
    os.remove(str(plate).replace("####", "0002"))
    r = _run(bundle)
    assert r.returncode != 0
    assert "exited with code: 3" in r.stdout, r.stdout[-2000:]  # errors.EXIT_CODES: input
    assert "plate.####.exr: 1 missing plate frame(s) 2" in r.stdout
    assert "Traceback" not in r.stdout


def test_hosts_send_takes_to_the_farm_through_the_stdlib_layer(tmp_path):
    from actanywhere.api.farm import FarmError, send_to_farm

    spec_path, plate, bg = _shot(tmp_path)
    data = json.loads(spec_path.read_text())
    done = send_to_farm([data], str(tmp_path / "b"), str(tmp_path / "r"),
                        wedge={"composite.shadow": [0, 0.4]}, chunk=4)
    assert done.submit == f"deadline bundle submit {tmp_path / 'b'}"
    assert done.run_locally.startswith("openjd run ") and "2 take(s)" in done.message
    assert _openjd("check", tmp_path / "b" / "template.yaml").returncode == 0
    cue = send_to_farm([data], str(tmp_path / "b3"), str(tmp_path / "r"), fmt="opencue")
    assert "launchSpec" in cue.submit and cue.run_locally == ""
    assert (tmp_path / "b3" / "job.xml").is_file()
    data["plate"]["path"] = str(tmp_path / "nowhere" / "p.####.exr")
    with pytest.raises(FarmError, match="nowhere"):
        send_to_farm([data], str(tmp_path / "b2"), str(tmp_path / "r"))
