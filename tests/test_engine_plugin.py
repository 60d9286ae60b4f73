"""A third engine, registered from a test module (fake_engine.py), runs through the CLI, the
worker, takes, farm export (openjd run) and the takes browser with no change anywhere else:
everything asks the catalog's traits, nothing branches on an engine's name."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import make_shot, read_exr, start_worker, stop_worker

from actanywhere import catalog, spec
from actanywhere.api import shotspec, takes

TESTS = Path(__file__).resolve().parent
BIN = os.path.dirname(sys.executable)


@pytest.fixture
def flat(monkeypatch):
    """The ``flat`` engine, here and in every process this test starts."""
    monkeypatch.setenv(catalog.PLUGINS_ENV, "fake_engine")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(TESTS), *filter(None, [os.environ.get("PYTHONPATH")])]))
    import fake_engine

    catalog.register_engine(fake_engine.TRAITS)
    yield fake_engine.TRAITS
    catalog.unregister_engine("flat")


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "actanywhere", *map(str, args)],
                          capture_output=True, text=True, env=env or os.environ.copy())


def _check_flat_frames(folder: Path, frames=range(1, 5)) -> None:
    for f in frames:
        px, the = read_exr(folder / f"c.{f:04d}.exr")
        names = list(the.channelnames)
        bg = px[..., [names.index(c) for c in ("bg.R", "bg.G", "bg.B")]]
        assert np.ptp(bg.reshape(-1, 3), axis=0).max() < 2e-3  # one flat colour
        assert the.get_string_attribute("actanywhere:engine") == "flat"


def test_an_unregistered_engine_is_refused_in_one_line(shot):
    root, plate, bg = shot
    env = {k: v for k, v in os.environ.items() if k != catalog.PLUGINS_ENV}
    r = _cli("generate", "--plate", plate, "--background", bg, "-o", root / "o" / "c.####.exr",
             "--engine", "flat", env=env)
    assert r.returncode == 2, r.stderr
    assert "engine.name: Input should be one of 'composite', 'diffusion'" in r.stderr


def test_the_cli_and_takes_run_a_registered_engine(flat, shot):
    root, plate, bg = shot
    out = root / "o" / "c.####.exr"
    r = _cli("generate", "--plate", plate, "--background", bg, "-o", out, "--engine", "flat",
             "--layers", "rgba,bg,matte", "--progress", "none")
    assert r.returncode == 0, r.stderr
    _check_flat_frames(root / "o")
    record = takes.for_output(str(out))
    assert (record.engine, record.label, record.seed, record.model_hash) == \
        ("flat", "flat", None, None)
    assert len(record.proxies()) == 4 and record.status == "done"
    # a host's builder leaves out the other engines' settings sections
    built = shotspec.build(str(plate), str(bg), str(out), engine="flat",
                           diffusion={"seed": 3}, composite={"shadow": 0.2})
    assert "diffusion" not in built and "composite" not in built
    assert spec.from_dict(built).engine.name == "flat"


def test_the_worker_runs_a_registered_engine(flat, shot, tmp_path):
    root, plate, bg = shot
    proc, client = start_worker(tmp_path / "state")
    try:
        data = {"plate": {"path": str(plate)}, "background": {"path": str(bg)},
                "engine": {"name": "flat"}, "threads": 1,
                "output": {"path": str(root / "w" / "c.####.exr"), "layers": ["rgba", "bg"]}}
        job = client.wait(client.submit(data), timeout=120)
        assert job["status"] == "done", job
        _check_flat_frames(root / "w")
        listed = [t for t in client.takes() if t.get("engine") == "flat"]
        assert listed and listed[0]["seed"] is None, client.takes()
    finally:
        stop_worker(proc, client)


@pytest.mark.skipif(shutil.which("openjd", path=BIN) is None and shutil.which("openjd") is None,
                    reason="openjd-cli is not installed")
def test_farm_export_plans_a_registered_engine_by_its_traits(flat, tmp_path):
    plate, bg = make_shot(tmp_path / "sh010", frames=range(1, 8), size=(96, 54))
    spec_path = tmp_path / "sh010.json"
    spec_path.write_text(json.dumps({
        "plate": {"path": str(plate)}, "background": {"path": str(bg)},
        "engine": {"name": "flat"}, "output": {"path": str(tmp_path / "u" / "c.####.exr")}}))
    r = _cli("farm", "export", spec_path, "--out", tmp_path / "bundle", "--output-root",
             tmp_path / "renders", "--chunk", "3", "--command",
             os.path.join(BIN, "actanywhere"))
    assert r.returncode == 0, r.stderr
    template = yaml.safe_load((tmp_path / "bundle" / "template.yaml").read_text())
    (step,) = template["steps"]
    params = {p["name"]: p for p in step["parameterSpace"]["taskParameterDefinitions"]}
    assert params["Frames"]["range"] == ["1-3", "4-6", "7-7"]  # not whole-shot: chunked
    amounts = {a["name"] for a in step["hostRequirements"]["amounts"]}
    assert "amount.worker.gpu" in amounts  # needs_gpu
    assert "stepEnvironments" not in step  # no model: no warm worker
    openjd = shutil.which("openjd", path=BIN) or shutil.which("openjd")
    run = subprocess.run([openjd, "run", tmp_path / "bundle" / "template.yaml", "-p",
                          f"file://{tmp_path / 'bundle' / 'openjd_parameters.json'}"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-1000:]
    record = takes.Take.load(str(tmp_path / "renders" / "sh010" / "take_001"))
    assert record.status == "done" and record.written == 7 and record.engine == "flat"
    assert record.label == "flat (farm)"


def test_the_browser_shows_a_registered_engines_take(flat, shot, qtbot):
    pytest.importorskip("PySide6")
    from actanywhere.browser.window import ResendDialog, TakesBrowser
    from actanywhere.shot import job

    root, plate, bg = shot
    job.run(spec.from_dict({"plate": {"path": str(plate)}, "background": {"path": str(bg)},
                            "engine": {"name": "flat"},
                            "output": {"path": str(root / "takes" / "take_001" / "c.####.exr"),
                                       "proxy_width": 64}}))
    browser = TakesBrowser(str(root / "takes"))
    qtbot.addWidget(browser)
    browser.show()
    assert browser.wait_settled()
    assert [browser.grid.item(i).text() for i in range(browser.grid.count())] == \
        ["take_001\nflat, done"]
    take = takes.Takes(str(root / "takes")).get("take_001")
    dialog = ResendDialog(take, browser)
    qtbot.addWidget(dialog)
    assert not dialog.seed.isEnabled()  # the flat engine takes no seed
