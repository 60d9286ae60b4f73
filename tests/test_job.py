import json
import os
import threading

import numpy as np
import pytest
from conftest import make_shot, read_exr, write_exr

from actanywhere import spec
from actanywhere.errors import InputError, JobCancelled, OutputError
from actanywhere.shot import job


def shot_spec(root, plate_path, bg_path, **sections):
    data = {"plate": {"path": str(plate_path)}, "background": {"path": str(bg_path)},
            "output": {"path": str(root / "out" / "comp.####.exr")},
            "composite": {"harmonize": 0.0, "shadow": 0.0}}
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    return spec.from_dict(data)


def channel(px, spec_, name):
    return px[..., list(spec_.channelnames).index(name)]


def test_composite_end_to_end(shot):
    root, plate, bg = shot
    events = []
    result = job.run(shot_spec(root, plate, bg), events.append)
    assert result.frames == [1, 2, 3, 4] and len(result.written) == 4
    px, s = read_exr(root / "out" / "comp.0001.exr")
    assert (s.full_width, s.full_height, s.width, s.height) == (64, 36, 64, 36)
    assert set(s.channelnames) == {"R", "G", "B", "A", "bg.R", "bg.G", "bg.B", "matte.A"}
    assert str(s.format) == "half"
    # Metadata from the plate is carried; ours is added.
    assert s.get_string_attribute("Copyright") == "test studio"
    assert s.get_string_attribute("actanywhere:engine") == "composite"
    assert s.get_int_attribute("actanywhere:frame") == 1
    # The subject (matte 1) is the plate's own pixels, highlights above 1 included.
    np.testing.assert_allclose(channel(px, s, "B")[12, 10], 2.5, rtol=1e-3)
    np.testing.assert_allclose(channel(px, s, "matte.A")[12, 10], 1.0)
    # Outside the subject, the comp is the background, fitted (cover) to the plate.
    assert channel(px, s, "R")[30, 2] == pytest.approx(channel(px, s, "bg.R")[30, 2])
    assert channel(px, s, "R")[30, 60] > channel(px, s, "R")[30, 2]  # bg ramps left to right
    stages = {e.stage for e in events}
    assert {"prepare", "frames", "done"} <= stages
    last = [e for e in events if e.stage == "frames"][-1]
    assert (last.done, last.total) == (4, 4)


def test_harmonize_and_shadow_change_the_right_pixels(shot):
    root, plate, bg = shot
    job.run(shot_spec(root, plate, bg, composite={"harmonize": 1.0, "shadow": 0.8,
                                                        "shadow_softness": 0.1},
                      output={"path": str(root / "h" / "c.####.exr")}))
    job.run(shot_spec(root, plate, bg, output={"path": str(root / "n" / "c.####.exr")}))
    h, s = read_exr(root / "h" / "c.0001.exr")
    n, _ = read_exr(root / "n" / "c.0001.exr")
    # Harmonised subject moves toward the background mean (blue 2.5 comes down).
    assert channel(h, s, "B")[12, 10] < channel(n, s, "B")[12, 10]
    # The shadow darkens the background just under the subject, not far away from it.
    below = (27, 14)
    assert channel(h, s, "bg.G")[below] < channel(n, s, "bg.G")[below] - 0.02
    assert channel(h, s, "bg.G")[2, 60] == pytest.approx(channel(n, s, "bg.G")[2, 60], abs=1e-3)


def test_premultiplied_plate_is_detected(tmp_path):
    plate, bg = make_shot(tmp_path, premult=True)
    job.run(shot_spec(tmp_path, plate, bg))
    px, s = read_exr(tmp_path / "out" / "comp.0001.exr")
    assert channel(px, s, "R")[30, 2] == pytest.approx(channel(px, s, "bg.R")[30, 2])
    np.testing.assert_allclose(channel(px, s, "R")[12, 10], 0.9, rtol=1e-3)


def test_data_window_plate(tmp_path):
    plate, bg = make_shot(tmp_path, data_inset=3)
    job.run(shot_spec(tmp_path, plate, bg))
    px, s = read_exr(tmp_path / "out" / "comp.0002.exr")
    assert (s.full_width, s.full_height, s.x, s.y, s.width, s.height) == (64, 36, 0, 0, 64, 36)


def test_missing_frames_error_hold_black(tmp_path):
    plate, bg = make_shot(tmp_path, frames=[1, 2, 4])
    with pytest.raises(InputError, match=r"1 missing plate frame\(s\) 3"):
        job.run(shot_spec(tmp_path, plate, bg))
    r = job.run(shot_spec(tmp_path, plate, bg, plate={"missing": "hold"}))
    assert r.frames == [1, 2, 3, 4] and any("holding frame 2" in w for w in r.warnings)
    held, s = read_exr(tmp_path / "out" / "comp.0003.exr")
    two, _ = read_exr(tmp_path / "out" / "comp.0002.exr")
    np.testing.assert_array_equal(held, two)
    job.run(shot_spec(tmp_path, plate, bg, plate={"missing": "black"},
                      output={"existing": "overwrite"}))
    black, s = read_exr(tmp_path / "out" / "comp.0003.exr")
    assert channel(black, s, "matte.A").max() == 0  # nothing but background


def test_frames_of_different_sizes(tmp_path):
    plate, bg = make_shot(tmp_path)
    write_exr(tmp_path / "plate" / "plate.0003.exr", np.zeros((20, 30, 4)))
    with pytest.raises(InputError) as err:
        job.run(shot_spec(tmp_path, plate, bg))
    assert "plate.0003.exr" in str(err.value) and "30x20" in str(err.value)
    assert "64x36" in str(err.value)


def test_matte_file_checks_size_and_range(tmp_path):
    plate, bg = make_shot(tmp_path)
    (tmp_path / "m").mkdir()
    for f in (1, 2, 3, 4):
        write_exr(tmp_path / "m" / f"m.{f:04d}.exr", np.ones((36, 64, 1)), ("Y",))
    r = job.run(shot_spec(tmp_path, plate, bg, matte={"source": "file",
                "path": str(tmp_path / "m" / "m.####.exr")}))
    px, s = read_exr(tmp_path / "out" / "comp.0001.exr")
    assert channel(px, s, "matte.A").min() == 1.0 and len(r.written) == 4
    os.remove(tmp_path / "m" / "m.0004.exr")
    with pytest.raises(InputError, match=r"matte lacks plate frame\(s\) 4"):
        job.run(shot_spec(tmp_path, plate, bg, matte={"source": "file",
                "path": str(tmp_path / "m" / "m.####.exr")}, output={"existing": "overwrite"}))
    for f in (1, 2, 3, 4):
        write_exr(tmp_path / "m" / f"m.{f:04d}.exr", np.ones((18, 32, 1)), ("Y",))
    with pytest.raises(InputError, match="matte display window 32x18 differs"):
        job.run(shot_spec(tmp_path, plate, bg, matte={"source": "file",
                "path": str(tmp_path / "m" / "m.####.exr")}, output={"existing": "overwrite"}))


def test_nan_inf_never_reach_the_output(tmp_path):
    plate, bg = make_shot(tmp_path)
    px = np.full((36, 64, 4), 0.5, np.float32)
    px[5, 5] = [np.nan, np.inf, -np.inf, np.nan]
    write_exr(tmp_path / "plate" / "plate.0002.exr", px, fmt="float")
    r = job.run(shot_spec(tmp_path, plate, bg))
    assert any("NaN/Inf" in w for w in r.warnings)
    for f in (1, 2, 3, 4):
        out, _ = read_exr(tmp_path / "out" / f"comp.{f:04d}.exr")
        assert np.isfinite(out).all()


def test_no_rgb_channels(tmp_path):
    plate, bg = make_shot(tmp_path, frames=[1])
    write_exr(tmp_path / "plate" / "plate.0001.exr", np.zeros((36, 64, 2)), ("G", "A"))
    with pytest.raises(InputError, match=r"plate.0001.exr: no colour channels.*has G, A"):
        job.run(shot_spec(tmp_path, plate, bg))


def test_luminance_background_is_grey(tmp_path):
    plate, _ = make_shot(tmp_path, frames=[1])
    write_exr(tmp_path / "y.exr", np.full((10, 10, 1), 0.3), ("Y",))
    job.run(shot_spec(tmp_path, plate, tmp_path / "y.exr"))
    px, s = read_exr(tmp_path / "out" / "comp.0001.exr")
    assert channel(px, s, "bg.R")[0, 0] == channel(px, s, "bg.B")[0, 0] == pytest.approx(0.3,
                                                                                          rel=1e-3)


def test_output_safety(tmp_path):
    plate, bg = make_shot(tmp_path)
    with pytest.raises(OutputError, match="overwrite an input"):
        job.run(shot_spec(tmp_path, plate, bg, output={"path": str(plate)}))
    with pytest.raises(OutputError, match="overwrite an input"):
        job.run(shot_spec(tmp_path, plate, bg,
                          output={"path": str(tmp_path / "plate" / "plate.%04d.exr")}))
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="not writable"):
        job.run(shot_spec(tmp_path, plate, bg, output={"path": str(blocker / "c.####.exr")}))
    before = {p.name: p.read_bytes() for p in (tmp_path / "plate").iterdir()}
    assert before == {p.name: p.read_bytes() for p in (tmp_path / "plate").iterdir()}


def test_existing_policy(tmp_path):
    plate, bg = make_shot(tmp_path)
    job.run(shot_spec(tmp_path, plate, bg))
    with pytest.raises(OutputError, match=r"4 output frame\(s\) exist.*--existing skip"):
        job.run(shot_spec(tmp_path, plate, bg))
    os.remove(tmp_path / "out" / "comp.0003.exr")
    stamp = os.path.getmtime(tmp_path / "out" / "comp.0001.exr")
    r = job.run(shot_spec(tmp_path, plate, bg, output={"existing": "skip"}))
    assert r.skipped == [1, 2, 4] and [os.path.basename(p) for p in r.written] == ["comp.0003.exr"]
    assert os.path.getmtime(tmp_path / "out" / "comp.0001.exr") == stamp
    r = job.run(shot_spec(tmp_path, plate, bg, output={"existing": "overwrite"}))
    assert len(r.written) == 4


def test_cancel_leaves_only_complete_frames(tmp_path):
    plate, bg = make_shot(tmp_path, frames=range(1, 13))
    cancel = threading.Event()

    def report(ev):
        if ev.stage == "frames" and ev.done >= 2:
            cancel.set()

    s = shot_spec(tmp_path, plate, bg, threads=1)
    with pytest.raises(JobCancelled, match="existing=skip to resume"):
        job.run(s, report, cancel)
    entries = set(os.listdir(tmp_path / "out"))
    assert {"proxy", "take.json"} <= entries  # the take's proxies and record
    names = sorted(entries - {"proxy", "take.json"})
    assert 2 <= len(names) < 12 and all(n.startswith("comp.") and "tmp" not in n for n in names)
    with open(tmp_path / "out" / "take.json") as fh:
        record = json.load(fh)
    assert record["status"] == "cancelled" and record["written"] == len(names)
    proxies = sorted(os.listdir(tmp_path / "out" / "proxy"))
    assert [n for n in proxies if n[5:9].isdigit()] == [n.replace(".exr", ".jpg") for n in
                                                          names]  # one per frame on disk
    assert "comp.contact.jpg" in proxies  # the frames so far
    for n in names:
        px, _ = read_exr(tmp_path / "out" / n)  # every frame left behind reads whole
        assert px.shape == (36, 64, 8)
    r = job.run(shot_spec(tmp_path, plate, bg, output={"existing": "skip"}))
    assert len(r.skipped) == len(names) and len(r.written) == 12 - len(names)
