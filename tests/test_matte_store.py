"""The shot's mattes kept in memory up to matte.memory_mb and in a temporary file beyond it:
values round-trip exactly, the whole matte stage gives the same files either way, and a disk
that fills while mattes are filed is a one-line error (a real file-size limit, not a mock)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import read_exr
from matte_shots import walking_shot, write_sequence

from actanywhere.matte import store
from actanywhere.matte.store import MatteStore
from actanywhere.shot import plan, segment


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_a_store_keeps_what_fits_and_files_the_rest(dtype):
    rng = np.random.default_rng(0)
    mattes = [rng.random((90, 160)).astype(dtype) for _ in range(10)]
    one = mattes[0].nbytes
    with store.limit(3.5 * one / 2**20) as budget:
        s = MatteStore(10, dtype)
        assert s.missing() == list(range(10))
        for i in (3, 0, 9, 1, 2, 4, 5, 6, 7, 8):
            s[i] = mattes[i]
        assert s.missing() == []
        assert budget.used == 3 * one and s.spilled == 7  # three fit: 3, 0, 9
        for i in range(10):
            got = s[i]
            assert got.dtype == dtype and got.shape == (90, 160)
            np.testing.assert_array_equal(got, mattes[i])
        np.testing.assert_array_equal(s[-1], mattes[9])
        got = s[5]
        got[:] = 7  # a copy: the store's frame stays as it was
        np.testing.assert_array_equal(s[5], mattes[5])
        s[5] = np.zeros((90, 160), dtype)  # a filed frame written again stays in its slot
        assert s.spilled == 7 and not s[5].any()
        with pytest.raises(ValueError, match="shape"):
            s[2] = np.zeros((90, 161), dtype)
        s.close()
        assert budget.used == 0 and s.missing() == list(range(10))
        with pytest.raises(IndexError, match="never set"):
            s[0]
    with pytest.raises(IndexError):
        MatteStore(2)[2]


def test_the_matte_stage_gives_the_same_files_with_every_matte_on_disk(tmp_path):
    """GrabCut tracked from a box with temporal smoothing: memory_mb 0 files every matte of
    every stage, and the written mattes are the same bytes as with all of them in memory."""
    frames, truth = walking_shot(8, speed=4)
    plate = write_sequence(str(tmp_path / "p"), frames)
    ys, xs = np.nonzero(truth[0] > 0.5)
    box = [float(xs.min() - 6), float(ys.min() - 6), float(xs.max() + 6), float(ys.max() + 6)]
    written = {}
    for mb in (1024, 0):
        spec = segment.SegmentSpec.model_validate({
            "plate": {"path": plate},
            "matte": {"source": "grabcut", "keys": [{"frame": 1001, "boxes": [box]}],
                      "refine": {"temporal": 2}, "memory_mb": mb},
            "output": {"path": str(tmp_path / f"o{mb}" / "m.####.exr"), "preview": ""}})
        inputs = plan.inputs(spec.plate, spec.matte, spec.color)
        inputs.mattes.prepare(inputs.plate.read)
        assert inputs.mattes.spilled == (8 if mb == 0 else 0)
        events = []
        segment.run(spec, report=events.append)
        filed = [e.message for e in events if "temporary file" in (e.message or "")]
        assert bool(filed) == (mb == 0), filed
        written[mb] = [read_exr(str(tmp_path / f"o{mb}" / f"m.{1001 + i}.exr"))[0]
                       for i in range(8)]
    for a, b in zip(written[1024], written[0], strict=True):
        np.testing.assert_array_equal(a, b)


def _limit_files(size: int):
    def pre() -> None:
        import resource
        import signal

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    return pre


def test_a_full_disk_while_filing_mattes_is_one_line(tmp_path):
    frames, truth = walking_shot(12, speed=4)
    plate = write_sequence(str(tmp_path / "p"), frames)
    ys, xs = np.nonzero(truth[0] > 0.5)
    box = [float(xs.min() - 6), float(ys.min() - 6), float(xs.max() + 6), float(ys.max() + 6)]
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"matte": {"memory_mb": 0, "keys": [
        {"frame": 1001, "boxes": [box]}]}}))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    env = dict(os.environ, HF_HUB_OFFLINE="1", TMPDIR=str(scratch))
    r = subprocess.run(
        [sys.executable, "-m", "actanywhere", "segment", "--spec", str(spec), "--plate", plate,
         "--source", "grabcut", "-o", str(tmp_path / "o" / "m.####.exr"), "--progress", "none"],
        capture_output=True, text=True, env=env, timeout=600,
        preexec_fn=_limit_files(3 * 160 * 90 * 4))  # three small frames' worth
    assert r.returncode == 4, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert "Traceback" not in r.stderr
    assert str(scratch) in last and "matte.memory_mb" in last and "TMPDIR" in last, last
    assert not list(scratch.iterdir())  # the unnamed file is gone with the process
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").glob("m.*.exr"))
