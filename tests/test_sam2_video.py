"""The sam2 matte source: transformers' SAM 2 video models (tiny random ones built by
tests/sam2_tiny.py, saved as real model folders) through the project's loader, the tracker and
the ``segment`` / ``generate`` commands. Real transformers sessions, real EXR plates; the
model's masks are meaningless (random weights), so the tests check what the plumbing must
guarantee: which frames are tracked from which key in which direction, coverage, resume,
cancel, memory, refusals. ACTANYWHERE_SAM2_MODEL (a downloaded folder) adds a quality test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from conftest import read_exr, write_exr
from matte_shots import iou, walking_shot, write_sequence

from actanywhere.errors import JobCancelled, ModelError
from actanywhere.matte.sam2 import folder as sam2_folder
from actanywhere.matte.sam2 import plan
from actanywhere.media.color import ColorContext
from actanywhere.shot import segment
from actanywhere.shot.plate import Plate
from actanywhere.spec import KeyFrame, PlateSpec, SamSettings

pytest.importorskip("torch")
pytest.importorskip("transformers")

W, H, N = 160, 96, 10
FIRST = 1001
#: two keys: frames 1003 and 1008 (indices 2 and 7)
KEYS = {2: KeyFrame(frame=1003, boxes=[(40, 20, 100, 90)]),
        7: KeyFrame(frame=1008, boxes=[(60, 20, 120, 90)], points=[(90, 50, 1)])}
NO_REFINE = {"matte": {"refine": {"fill_holes": 0, "min_island": 0, "temporal": 0},
                       "allow_empty": True}}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    import sam2_tiny

    return sam2_tiny.save(str(tmp_path_factory.mktemp("sam2") / "tiny"))


@pytest.fixture(scope="module")
def shot(tmp_path_factory):
    frames, _ = walking_shot(N, width=W, height=H, speed=3)
    return write_sequence(str(tmp_path_factory.mktemp("plate")), frames, first=FIRST)


def cli(*args, env=None):
    env = dict(os.environ, HF_HUB_OFFLINE="1", **(env or {}))
    return subprocess.run([sys.executable, "-m", "actanywhere", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=600)


def box_flags():
    out = []
    for k in KEYS.values():
        out += ["--box", f"{k.frame}:" + ",".join(f"{v:g}" for v in k.boxes[0])]
        out += [a for x, y, lab in k.points for a in ("--point", f"{k.frame}:{x:g},{y:g},{lab}")]
    return out


def images(pattern):
    """The plate frames as ShotMattes gives them to a segmenter (display-referred uint8)."""
    cc = ColorContext()
    plate = Plate.open(PlateSpec(path=pattern), cc)
    rgb8 = [(cc.to_model(plate.read(f)[1]) * 255.0 + 0.5).astype(np.uint8)
            for f in plate.frames]
    return plate, rgb8


def segmenter(folder, rgb8, ref, **settings):
    from actanywhere.matte.sam2 import loader
    from actanywhere.matte.sam2.segmenter import Sam2Segmenter

    vm = loader.load(folder, device="cpu")
    return Sam2Segmenter(vm, lambda i: rgb8[i], ref=ref, settings=SamSettings(**settings))


def tracked(seg, keys=KEYS):
    """(mattes, [(frame index, reverse)] of every model call) of a whole-shot propagate."""
    calls: list[tuple[int, bool]] = []
    hook = seg.vm.model.register_forward_pre_hook(
        lambda mod, args, kw: calls.append((kw["frame_idx"], kw.get("reverse", False))),
        with_kwargs=True)
    try:
        out = seg.propagate(list(range(FIRST, FIRST + N)), keys,
                            key_matte=lambda i, k: seg.key(i, k))
    finally:
        hook.remove()
    return out, calls


def json_events(stdout):
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


# ------------------------------------------------------------------------------ plan
def test_plan_covers_every_frame_from_the_nearer_key_both_ways():
    p = plan.make(20, [4, 13])
    assert p.anchors == (4, 13) and p.read == ()
    runs = {(r.anchor, r.step): r.frames for r in p.runs}
    assert runs[(4, -1)] == (3, 2, 1, 0)  # before the first key: backward
    assert runs[(13, 1)] == tuple(range(14, 20))  # after the last: forward
    # between: 8 frames, 5-8 nearer 4, 9-12 nearer 13; two either side of the middle crossfade
    assert runs[(4, 1)] == tuple(range(5, 11)) and runs[(13, -1)] == tuple(range(12, 6, -1))
    assert p.blend == {7: 0.2, 8: 0.4, 9: 0.6, 10: 0.8}
    tracked_frames = {i for r in p.runs for i in r.frames}
    assert tracked_frames | set(p.anchors) == set(range(20))
    assert p.steps == 2 + 20 - 2 + 4  # anchors, every other frame once, 4 frames twice


def test_plan_of_a_resumed_shot_starts_beside_the_written_frames():
    # a stopped run wrote frames 0-8 of 20 (key at 4): frame 8 seeds the rest, 0-7 are read
    p = plan.make(20, [4], done=range(9))
    assert p.anchors == (8,) and p.read == (0, 1, 2, 3, 4, 5, 6, 7)
    assert [(r.anchor, r.step, r.frames) for r in p.runs] == [(8, 1, tuple(range(9, 20)))]
    # written at both ends, keys among them: the frames beside the gap seed it, the rest
    # (keys too) are read
    p = plan.make(12, [0, 11], done=[0, 1, 2, 9, 10, 11])
    assert p.anchors == (2, 9) and p.read == (0, 1, 10, 11)
    assert {(r.anchor, r.step) for r in p.runs} == {(2, 1), (9, -1)}
    assert plan.make(5, [2], done=range(5)).runs == ()  # all written: nothing to track


# ------------------------------------------------------------------------------ tracking
def test_two_keys_are_tracked_forward_and_backward_with_the_models_memory(tiny, shot):
    p, rgb8 = images(shot)
    seg = segmenter(tiny, rgb8, p.ref)
    out, calls = tracked(seg)
    assert len(out) == N and all(m.shape == (H, W) and m.dtype == np.float16 for m in out)
    assert all(float(m.min()) >= 0.0 and float(m.max()) <= 1.0 for m in out)
    # keys first (conditioning frames), then each run in its direction, as the plan says
    expected = [(2, False), (7, False)] + [
        (i, r.step < 0) for r in plan.make(N, list(KEYS)).runs for i in r.frames]
    assert calls == expected
    assert {i for i, rev in calls if rev} == {0, 1, 3, 4, 5, 6}
    assert {i for i, rev in calls if not rev} == {2, 7, 3, 4, 5, 6, 8, 9}
    # the session kept the two keys' prompts as its conditioning frames throughout
    cond = seg.last.s.output_dict_per_obj[0]["cond_frame_outputs"]
    assert sorted(cond) == [2, 7]
    assert seg.last.s.processed_frames == {}  # no frame's pixels held after use


def test_several_boxes_on_a_key_are_united(tiny, shot):
    p, rgb8 = images(shot)
    seg = segmenter(tiny, rgb8, p.ref)
    a, b = (20, 10, 70, 80), (80, 20, 150, 90)
    both = seg.key(3, KeyFrame(frame=FIRST + 3, boxes=[a, b]))
    one = [seg.key(3, KeyFrame(frame=FIRST + 3, boxes=[x])) for x in (a, b)]
    np.testing.assert_allclose(both, np.maximum(*one), atol=1e-5)


def test_objects_keyed_on_the_same_frames_share_one_session(tiny, shot):
    """Two objects with keys on the same two frames: one session, every frame through the image
    encoder once for both, and each object's mattes those of tracking it alone; a third keyed
    elsewhere gets a session of its own. Progress counts every step."""
    from actanywhere.spec import MatteObject

    p, rgb8 = images(shot)
    frames = list(range(FIRST, FIRST + N))
    left = MatteObject(name="left", keys=[KEYS[2], KEYS[7]])
    right = MatteObject(name="right", keys=[  # two boxes; a painted matte
        KeyFrame(frame=1003, boxes=[(10, 30, 60, 90), (100, 30, 150, 90)]),
        KeyFrame(frame=1008, matte="paint.exr")])
    apart = MatteObject(name="apart", keys=[KeyFrame(frame=1005, boxes=[(30, 20, 90, 80)])])
    yy, xx = np.mgrid[:H, :W]
    paint = (np.hypot(xx - 120, yy - 50) < 20).astype(np.float32)
    seg = segmenter(tiny, rgb8, p.ref)
    steps = plan.make(N, [2, 7]).steps
    assert seg.steps_objects(frames, [left, right, apart]) == steps + plan.make(N, [4]).steps
    ticks: list[int] = []
    both = seg.propagate_objects(frames, [left, right], painted=lambda k: paint,
                                 advance=ticks.append)
    assert list(both) == ["left", "right"] and len(ticks) == steps
    assert seg.last.encoded == steps  # once a step for both objects (the crossfaded twice)
    np.testing.assert_array_equal(both["right"][7], paint)  # the painted key, as painted
    assert not np.allclose(both["left"][7], paint, atol=0.05)
    for obj in (left, right):
        alone = segmenter(tiny, rgb8, p.ref)
        ref = alone.propagate(frames, {frames.index(k.frame): k for k in obj.keys},
                              key_matte=lambda i, k, a=alone: paint if k.matte else a.key(i, k))
        assert alone.last.encoded == steps
        for a, b in zip(both[obj.name], ref, strict=True):
            np.testing.assert_allclose(a.astype(np.float32), b.astype(np.float32), atol=2e-3)
    three = seg.propagate_objects(frames, [apart, left], painted=lambda k: None)
    assert list(three) == ["apart", "left"]
    np.testing.assert_allclose(three["left"][5].astype(np.float32),
                               both["left"][5].astype(np.float32), atol=2e-3)


def test_segment_cli_writes_every_frame_of_the_video_track(tiny, shot, tmp_path):
    spec = tmp_path / "refine.json"
    spec.write_text(json.dumps(NO_REFINE))
    out = tmp_path / "m" / "m.####.exr"
    r = cli("segment", "--spec", spec, "--plate", shot, "--source", "sam2",
            "--sam-checkpoint", tiny, *box_flags(), "-o", out, "--preview", "",
            "--progress", "json")
    assert r.returncode == 0, r.stderr
    matte = [e for e in json_events(r.stdout) if e["stage"] == "matte"]
    total = plan.make(N, list(KEYS)).steps
    assert any("SAM 2.1" in e.get("message", "") for e in matte)
    counted = [e for e in matte if e.get("total")]
    assert counted[-1]["done"] == counted[-1]["total"] == total
    p, rgb8 = images(shot)
    direct, _ = tracked(segmenter(tiny, rgb8, p.ref))
    for i in range(N):
        px, s = read_exr(str(out).replace("####", f"{FIRST + i}"))
        assert list(s.channelnames) == ["A"] and px.shape == (H, W, 1)
        np.testing.assert_allclose(px[..., 0], direct[i], atol=1e-3)  # half-float files


def test_resume_tracks_only_the_frames_left_from_the_nearest_written_one(tiny, shot, tmp_path):
    spec = tmp_path / "refine.json"
    spec.write_text(json.dumps(NO_REFINE))
    out = tmp_path / "m" / "m.####.exr"
    args = ["segment", "--spec", spec, "--plate", shot, "--source", "sam2", "--sam-checkpoint",
            tiny, *box_flags(), "-o", out, "--preview", "", "--progress", "json"]
    # a stopped run: frames 1001-1005 written (here: a whole run, then the rest removed)
    assert cli(*args).returncode == 0
    kept = {f: os.stat(str(out).replace("####", str(f))).st_mtime_ns for f in range(1001, 1006)}
    for f in range(1006, FIRST + N):
        os.remove(str(out).replace("####", str(f)))
    import shutil

    stopped = shutil.copytree(out.parent, tmp_path / "stopped")  # as the stopped run left it
    r = cli(*args, "--existing", "skip")
    assert r.returncode == 0, r.stderr
    events = json_events(r.stdout)
    assert any("resuming: 5 matte frame(s) kept" in e.get("message", "") for e in events)
    counted = [e for e in events if e["stage"] == "matte" and e.get("total")]
    resumed = plan.make(N, list(KEYS), done=range(5))
    # frame 1005 (index 4) seeds the rest; 1001-1004 are read; key 1008 is prompted again
    assert resumed.anchors == (4, 7) and counted[-1]["total"] == resumed.steps
    assert {f: os.stat(str(out).replace("####", str(f))).st_mtime_ns for f in kept} == kept
    frames_done = [e for e in events if e["stage"] == "frames" and e.get("total")]
    assert frames_done[-1]["done"] == frames_done[-1]["total"] == N - 5
    # the same as tracking in-process from the written frames, with frame 1005 a mask prompt
    p, rgb8 = images(shot)
    seg = segmenter(tiny, rgb8, p.ref, resume_from=str(stopped / "m.####.exr"))
    direct, calls = tracked(seg)
    assert seg.last.s.mask_inputs_per_obj[0].keys() == {4}
    assert sorted(i for i, _ in calls) == sorted([4, 7, *[i for r in resumed.runs
                                                          for i in r.frames]])
    for i in range(5, N):
        px, _ = read_exr(str(out).replace("####", f"{FIRST + i}"))
        np.testing.assert_allclose(px[..., 0], direct[i], atol=1e-3)


def test_cancel_stops_the_matte_stage_within_a_frame(tiny, shot, tmp_path):
    cancel = threading.Event()
    seen: list[int] = []

    def report(ev):
        if ev.stage == "matte" and ev.frame is not None:
            seen.append(ev.frame)
            if len(seen) == 3:
                cancel.set()

    spec = segment.SegmentSpec.model_validate({
        "plate": {"path": shot},
        "matte": {"source": "sam2", "keys": [k.model_dump() for k in KEYS.values()],
                  "sam": {"checkpoint": tiny}, **NO_REFINE["matte"]},
        "output": {"path": str(tmp_path / "m" / "m.####.exr"), "preview": ""}})
    with pytest.raises(JobCancelled):
        segment.run(spec, report, cancel)
    assert len(seen) == 3  # the frame in hand finished, no other started
    assert not (tmp_path / "m").exists()


def test_memory_stays_flat_however_long_the_shot(tiny, tmp_path):
    frames, _ = walking_shot(40, width=W, height=H, speed=1)
    plate = write_sequence(str(tmp_path / "p"), frames, first=FIRST)
    p, rgb8 = images(plate)
    peaks = {}
    for count in (16, 40):
        seg = segmenter(tiny, rgb8[:count], p.ref, max_memory_frames=4)
        seg.propagate(list(range(FIRST, FIRST + count)), {0: KEYS[2]},
                      key_matte=lambda i, k, s=seg: s.key(i, k))
        sess = seg.last
        held = sess.s.output_dict_per_obj[0]
        peaks[count] = sess.peak
        assert len(held["non_cond_frame_outputs"]) <= 4 and sess.s.processed_frames == {}
        assert all("high_res_masks" not in o for o in held["non_cond_frame_outputs"].values())
        assert sess.encoded == count  # every frame through the image encoder once
    assert peaks[16] == peaks[40] == 4
    seg = segmenter(tiny, rgb8, p.ref)
    assert seg.keep == 15  # SAM 2.1 reads back 6 mask memories and 15 object pointers


def test_batched_encoding_gives_the_same_mattes(tiny, shot):
    """The GPU path encodes frames ahead in batches (matte.sam.batch); on the CPU it is off
    by default but must give the same mattes."""
    p, rgb8 = images(shot)
    one = segmenter(tiny, rgb8, p.ref)
    batched = segmenter(tiny, rgb8, p.ref)
    batched.batch = 3
    a, _ = tracked(one)
    b, _ = tracked(batched)
    # each tracked frame encoded once per run (the crossfaded ones twice), batched or not
    assert batched.last.encoded == one.last.encoded == plan.make(N, list(KEYS)).steps
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x.astype(np.float32), y.astype(np.float32), atol=2e-3)


def test_generate_takes_the_sam2_matte(tiny, shot, tmp_path):
    spec = tmp_path / "refine.json"
    spec.write_text(json.dumps(NO_REFINE))
    bg = tmp_path / "bg.exr"
    write_exr(bg, np.full((H, W, 3), 0.3, np.float32), ("R", "G", "B"))
    r = cli("generate", "--spec", spec, "--plate", shot, "--matte-source", "sam2",
            "--sam-checkpoint", tiny, *box_flags(), "--background", bg,
            "-o", tmp_path / "g" / "c.####.exr", "--progress", "none")
    assert r.returncode == 0, r.stderr
    p, rgb8 = images(shot)
    direct, _ = tracked(segmenter(tiny, rgb8, p.ref))
    for i in (0, 4, 9):
        px, s = read_exr(tmp_path / "g" / f"c.{FIRST + i}.exr")
        np.testing.assert_allclose(px[..., list(s.channelnames).index("matte.A")], direct[i],
                                   atol=1e-3)


# ------------------------------------------------------------------------------ refusals
def _refused(given, **kw) -> str:
    with pytest.raises(ModelError) as err:
        sam2_folder.inspect(str(given), **kw)
    msg = str(err.value)
    assert "\n" not in msg and "Traceback" not in msg
    return msg


def _copy(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_bad_model_folders_are_one_line_naming_the_file_and_the_fix(tiny, tmp_path):
    assert "SAM 2.1" in sam2_folder.inspect(tiny).name
    msg = _refused(tmp_path / "nowhere")
    assert "nowhere: SAM 2 model folder not found" in msg and "hf download" in msg
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "empty/config.json: not found" in _refused(empty)
    pth = tmp_path / "sam_vit_b.pth"
    pth.write_bytes(b"\0")
    assert "a file, not a model folder" in _refused(pth) and "matte.source sam" in _refused(pth)

    other = _copy(tiny, tmp_path / "other")
    cfg = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**cfg, "model_type": "bert"}))
    msg = _refused(other)
    assert "other/config.json: model_type 'bert' is not a SAM 2 video model" in msg

    cut = _copy(tiny, tmp_path / "cut")
    data = (cut / "model.safetensors").read_bytes()
    (cut / "model.safetensors").write_bytes(data[: len(data) // 2])
    msg = _refused(cut)
    assert "cut/model.safetensors: truncated" in msg and "re-download" in msg

    mixed = _copy(tiny, tmp_path / "mixed")
    cfg = json.loads((mixed / "config.json").read_text())
    cfg["mask_decoder_config"]["iou_head_hidden_dim"] = 48
    (mixed / "config.json").write_text(json.dumps(cfg))
    msg = _refused(mixed)
    assert "mixed/model.safetensors: tensor mask_decoder.iou_prediction_head" in msg
    assert "config.json expects" in msg and "different models" in msg

    import torch
    from safetensors.torch import load_file

    pickled = _copy(tiny, tmp_path / "pickled")
    torch.save(load_file(str(pickled / "model.safetensors")), pickled / "pytorch_model.bin")
    os.remove(pickled / "model.safetensors")
    msg = _refused(pickled)
    assert "pickled/pytorch_model.bin: pickle weights" in msg and "allow_pickle" in msg
    assert sam2_folder.inspect(str(pickled), allow_pickle=True).format == "pickle"


def test_edgetam_without_timm_is_one_line_naming_timm(tmp_path):
    import importlib.util

    if importlib.util.find_spec("timm") is not None:
        pytest.skip("timm is installed: test_edgetam_tiny_model_tracks covers EdgeTAM")
    import sam2_tiny

    folder = tmp_path / "edgetam"
    sam2_tiny.edgetam_config().save_pretrained(folder)
    msg = _refused(folder)
    assert "edgetam/config.json: EdgeTAM's image encoder (RepViT) comes from the timm" in msg


def test_edgetam_tiny_model_tracks(tmp_path, shot):
    pytest.importorskip("timm", reason="EdgeTAM's image encoder is a timm RepViT and timm is "
                        "not installed here; no tiny EdgeTAM can be built without it")
    import sam2_tiny

    folder = sam2_tiny.save(str(tmp_path / "edgetam"), "edgetam")
    p, rgb8 = images(shot)
    out, calls = tracked(segmenter(folder, rgb8, p.ref))
    assert len(out) == N and len(calls) == plan.make(N, list(KEYS)).steps


def test_segment_cli_refuses_a_bad_folder_before_reading_a_pixel(tiny, shot, tmp_path):
    cut = _copy(tiny, tmp_path / "cut")
    data = (cut / "model.safetensors").read_bytes()
    (cut / "model.safetensors").write_bytes(data[:1000])
    r = cli("segment", "--plate", shot, "--source", "sam2", "--sam-checkpoint", cut,
            *box_flags(), "-o", tmp_path / "m" / "m.####.exr", "--progress", "json")
    assert r.returncode == 5, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "cut/model.safetensors" in lines[0], r.stderr
    assert not any(e["stage"] == "matte" for e in json_events(r.stdout))
    assert not (tmp_path / "m").exists()


# ------------------------------------------------------------------------------ real model
@pytest.mark.skipif(not os.environ.get(sam2_folder.ENV),
                    reason="set ACTANYWHERE_SAM2_MODEL to a downloaded SAM 2.1 or EdgeTAM "
                    "folder (e.g. hf download facebook/sam2.1-hiera-tiny --local-dir DIR)")
def test_real_model_on_the_demo_shot(tmp_path):
    """With a real folder: a box on the first and last demo frames, tracked through 12 frames
    by the same code path (segment), IoU >= 0.85 against the demo plate's own alpha."""
    from actanywhere.cli import demo_shot as demo
    from actanywhere.media import imageio

    pattern = str(tmp_path / "demo" / "plate" / "plate.####.exr")
    demo.make_plate(pattern, nframes=12)
    truth = [imageio.read(pattern.replace("####", f"{1001 + i:04d}")).channel("A")
             for i in range(12)]

    def box(t):
        ys, xs = np.nonzero(t > 0.5)
        return [float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())]

    spec = segment.SegmentSpec.model_validate({
        "plate": {"path": pattern},
        "matte": {"source": "sam2", "keys": [{"frame": 1001, "boxes": [box(truth[0])]},
                                              {"frame": 1012, "boxes": [box(truth[11])]}]},
        "output": {"path": str(tmp_path / "m" / "m.####.exr"), "preview": ""}})
    segment.run(spec)
    for i, t in enumerate(truth):
        got = read_exr(str(tmp_path / "m" / f"m.{1001 + i}.exr"))[0][..., 0]
        assert iou(got, t) >= 0.85
