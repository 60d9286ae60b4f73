"""A long diffusion shot split into overlapping parts (farm tasks) and joined: the parts
equal a single pass away from the joins, and the joins show no seam (docs/farm.md)."""

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
from actanywhere.engines.diffusion import DiffusionEngine
from actanywhere.errors import SpecError
from actanywhere.farm import join
from actanywhere.shot import job

BIN = os.path.dirname(sys.executable)
OPENJD = shutil.which("openjd", path=BIN) or shutil.which("openjd")


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "actanywhere", *map(str, args)],
                          capture_output=True, text=True,
                          env=dict(os.environ, HF_HUB_OFFLINE="1"))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from actanywhere.model import checkpoint, components

    path = tmp_path_factory.mktemp("model") / "tiny"
    checkpoint.save(components.build_random("tiny", seed=0), str(path))
    return path


def _spec(root, model, frames, **diffusion):
    plate, bg = make_shot(root / "sh010", frames=frames, size=(96, 54))
    return {"plate": {"path": str(plate)}, "background": {"path": str(bg)},
            "output": {"path": str(root / "single" / "c.####.exr"), "proxy": False},
            "engine": {"name": "diffusion", "model": str(model), "device": "cpu"},
            "diffusion": {"resolution": 64, "steps": 3, "frames_per_window": 4, "overlap": 2,
                          **diffusion}}


def _frames(pattern, frames):
    return [read_exr(str(pattern).replace("####", f"{f:04d}"))[0] for f in frames]


def test_parts_cover_the_shot_and_share_only_their_overlap():
    frames = list(range(1001, 1022))
    parts = join.plan(frames, 12, 4)
    assert [(p[0], p[-1]) for p in parts] == [(1001, 1012), (1009, 1020), (1017, 1021)]
    assert sorted({f for p in parts for f in p}) == frames
    w = join.weights(parts)
    assert w[1005] == [(0, 1.0)]
    assert [round(x, 2) for _, x in w[1010]] == [0.6, 0.4]  # 2nd of 4 shared frames
    assert all(abs(sum(x for _, x in v) - 1) < 1e-9 and len(v) <= 2 for v in w.values())
    assert join.plan(frames, 48, 8) == [frames]  # fits: one part
    with pytest.raises(SpecError, match="at most half a part"):
        join.plan(frames, 8, 6)


@pytest.mark.parametrize("steady", [0.0, None])
def test_parts_equal_a_single_pass_away_from_the_join_and_join_without_a_seam(tmp_path, tiny,
                                                                              steady):
    n = 20
    base = _spec(tmp_path, tiny, range(1, n + 1),
                 **({} if steady is None else {"steady": steady}))
    # what farm export gives each part: with steady shading (the default, 3), a reach that
    # fits half the shared frames; the single pass below is the same take in one piece
    extra, note = DiffusionEngine.part_settings(spec.from_dict(base), 4)
    if steady is None:
        assert extra == {"steady": 0.67} and "--split-overlap" in note, (extra, note)
    else:
        assert extra == {} and note is None
    base["diffusion"].update(extra)
    job.run(spec.from_dict(base))
    parts = join.plan(list(range(1, n + 1)), 12, 4)  # 1-12 and 9-20: frames 9-12 shared
    for p in parts:
        d = json.loads(json.dumps(base))
        d["plate"]["frames"] = f"{p[0]}-{p[-1]}"
        d["diffusion"]["shot_frames"] = f"1-{n}"
        d["output"]["path"] = join.part_pattern(str(tmp_path / "parts"), p, "sh010")
        job.run(spec.from_dict(d))
    out = dict(base, output={"path": str(tmp_path / "take_001" / "sh010.####.exr")})
    done = join.join(spec.from_dict(out), parts, str(tmp_path / "parts"), "sh010")
    assert len(done.written) == n
    single = _frames(tmp_path / "single" / "c.####.exr", range(1, n + 1))
    joined = _frames(tmp_path / "take_001" / "sh010.####.exr", range(1, n + 1))
    diff = np.array([np.abs(a - b).mean() for a, b in zip(single, joined, strict=True)])
    steps = np.array([np.abs(b - a).mean() for a, b in zip(single, single[1:], strict=False)])
    # frames of one part: the single pass's own (same noise, windows, condition, steadying)
    assert diff[:8].max() < 1e-3 and diff[12:].max() < 1e-3, diff
    # the shared frames: within 5% of a frame-to-frame step of the single pass (a seam would
    # be a step's size); measured 0.0011 against steps of 0.09 (1.2%); with steady shading
    # within 10% (measured 7%: a part's end lacks the neighbours the single pass averages)
    shared = 0.05 if steady == 0 else 0.1
    assert diff[8:12].max() < shared * np.median(steps), (diff, np.median(steps))
    jsteps = np.array([np.abs(b - a).mean() for a, b in zip(joined, joined[1:], strict=False)])
    # no seam: the take's steps within 5% of the single pass's own (10% with steady
    # shading: measured 5.8% on this tiny model, whose frames are pure noise)
    assert np.abs(jsteps - steps).max() < shared * np.median(steps)
    # without the whole shot's noise and windows the second part is another take: a seam
    d = json.loads(json.dumps(base))
    d["plate"]["frames"] = "9-20"
    d["output"]["path"] = str(tmp_path / "alone" / "c.####.exr")
    job.run(spec.from_dict(d))
    alone = _frames(tmp_path / "alone" / "c.####.exr", [13])[0]
    assert np.abs(alone - single[12]).mean() > 0.2 * np.median(steps)
    record = Take.load(str(tmp_path / "take_001"))
    assert record.status == "done" and record.written == n
    meta = read_exr(tmp_path / "take_001" / "sh010.0010.exr")[1]
    assert meta.getattribute("actanywhere:parts") == "1-12 x 0.600, 9-20 x 0.400"


def test_split_refuses_what_a_part_cannot_reproduce(tmp_path, tiny):
    data = _spec(tmp_path, tiny, range(1, 13))
    data["motion"] = {"source": "track"}
    path = tmp_path / "sh010.json"
    path.write_text(json.dumps(data))
    r = _cli("farm", "export", path, "--out", tmp_path / "b", "--output-root", tmp_path / "r",
             "--split", "8", "--split-overlap", "2")
    assert r.returncode == 2, r.stderr
    assert "motion.source track needs the whole shot's pictures" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.skipif(OPENJD is None, reason="openjd-cli is not installed")
def test_openjd_runs_a_split_shot_and_its_join_step(tmp_path, tiny):
    data = _spec(tmp_path, tiny, range(1, 13), steps=2)
    data["output"]["proxy"] = True  # the join writes the take's proxies and record
    path = tmp_path / "sh010.json"
    path.write_text(json.dumps(data))
    r = _cli("farm", "export", path, "--out", tmp_path / "bundle", "--output-root",
             tmp_path / "renders", "--command", os.path.join(BIN, "actanywhere"),
             "--wedge", "diffusion.seed=1,2", "--split", "8", "--split-overlap", "3")
    assert r.returncode == 0, r.stderr
    bundle = tmp_path / "bundle"
    check = subprocess.run([OPENJD, "check", bundle / "template.yaml"], capture_output=True,
                           text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    tmpl = yaml.safe_load((bundle / "template.yaml").read_text())
    parts_step, join_step = tmpl["steps"]
    ranges = {p["name"]: p["range"]
              for p in parts_step["parameterSpace"]["taskParameterDefinitions"]}
    assert ranges["Part"] == ["1-8", "6-12"]
    assert parts_step["parameterSpace"]["combination"] == "(Take, Background) * Part"
    assert join_step["dependencies"] == [{"dependsOn": "sh010"}]
    run = subprocess.run([OPENJD, "run", bundle / "template.yaml", "-p",
                          f"file://{bundle / 'openjd_parameters.json'}"],
                         capture_output=True, text=True, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-3000:]
    assert "models: 1 load(s), 3 warm hit(s)" in log  # 4 part tasks, one warm worker
    for take in ("take_001", "take_002"):
        spec_data = json.loads((bundle / "specs" / "sh010" / f"{take}.json").read_text())
        assert spec_data["diffusion"]["shot_frames"] == "1-12"
        spec_data["output"]["path"] = str(tmp_path / "direct" / take / "c.####.exr")
        job.run(spec.from_dict(spec_data))  # the whole take in one pass
        folder = tmp_path / "renders" / "sh010" / take
        got = _frames(folder / "sh010.####.exr", range(1, 13))
        ref = _frames(tmp_path / "direct" / take / "c.####.exr", range(1, 13))
        diff = np.array([np.abs(a - b).mean() for a, b in zip(got, ref, strict=True)])
        assert diff[:5].max() < 1e-3 and diff[8:].max() < 1e-3, diff
        assert diff[5:8].max() < 0.01, diff
        record = Take.load(str(folder))
        assert record.status == "done" and len(record.proxies()) == 12
        meta = read_exr(folder / "sh010.0007.exr")[1]
        assert meta.getattribute("actanywhere:parts") == "1-8 x 0.500, 6-12 x 0.500"


def test_a_missing_part_frame_stops_the_join_naming_it(tmp_path, tiny):
    data = _spec(tmp_path, tiny, range(1, 13))
    path = tmp_path / "take.json"
    path.write_text(json.dumps(data))
    part = tmp_path / "parts" / "1-8"
    part.mkdir(parents=True)
    r = _cli("farm", "join", "--spec", path, "--parts-dir", tmp_path / "parts", "--stem",
             "sh010", "--part", "1-8", "--part", "6-12", "-o", tmp_path / "out" / "s.####.exr")
    assert r.returncode == 3, r.stderr
    assert f"{part / 'sh010.0001.exr'}: missing part frame (15 in all); rerun" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "out").exists()


def test_a_part_outside_its_shot_is_refused_before_any_frame(tmp_path, tiny):
    data = _spec(tmp_path, tiny, range(1, 9))
    data["plate"]["frames"] = "3-8"
    data["diffusion"]["shot_frames"] = "10-20"
    with pytest.raises(SpecError, match=r"shot_frames 10-20: this job's frames 3-8 are not"):
        job.check(spec.from_dict(data))
