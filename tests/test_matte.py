"""Mattes: keyer, flow tracking, GrabCut, refinement, SAM with a tiny model built here,
the segment command and mattes computed on the fly by generate. Real OpenCV, real OIIO files,
real segment-anything modules (random weights)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import read_exr
from matte_shots import iou, walking_shot, write_sequence

from actanywhere.errors import InputError, ModelError
from actanywhere.matte import keyer, refine, track
from actanywhere.media.color import ColorContext
from actanywhere.shot import segment
from actanywhere.spec import KeyerSettings, KeyFrame, MatteSpec, RefineSettings, TrackSettings

CC = ColorContext()


def display8(frames):
    return [(CC.to_model(f) * 255 + 0.5).astype(np.uint8) for f in frames]


def seg_spec(plate, out, **matte):
    return segment.SegmentSpec.model_validate(
        {"plate": {"path": str(plate)}, "matte": matte,
         "output": {"path": str(out), "preview": ""}})


# ------------------------------------------------------------------------------ keyer
def test_keyer_on_green_screen_shot(tmp_path):
    frames, truth = walking_shot(24, screen="green")
    plate = write_sequence(str(tmp_path / "plate"), frames)
    out = tmp_path / "m" / "matte.####.exr"
    spec = segment.SegmentSpec.model_validate({
        "plate": {"path": plate}, "matte": {"source": "keyer"},
        "output": {"path": str(out)}})
    result = segment.run(spec)
    assert len(result.written) == 24
    scores = []
    for i in range(24):
        px, s = read_exr(str(out).replace("####", f"{1001 + i:04d}"))
        assert list(s.channelnames) == ["A"] and px.shape == (180, 320, 1)
        scores.append(iou(px[..., 0], truth[i]))
    assert min(scores) >= 0.95, scores
    assert os.path.exists(tmp_path / "m" / "preview" / "contact_sheet.png")
    assert os.path.exists(tmp_path / "m" / "preview" / "overlay.1001.png")


def test_keyer_despill_removes_green_from_subject_edges():
    frames, truth = walking_shot(2, screen="green")
    matte, rgb = keyer.key(frames[0], KeyerSettings())
    edge = (truth[0] > 0.3) & (truth[0] < 0.9)
    limit = 0.5 * (rgb[..., 0] + rgb[..., 2])
    assert np.all(rgb[..., 1][edge] <= limit[edge] + 1e-5)
    spilled = frames[0][..., 1][edge] - 0.5 * (frames[0][..., 0] + frames[0][..., 2])[edge]
    assert spilled.max() > 0.05  # there was spill to remove
    # no despill: colour untouched
    _, same = keyer.key(frames[0], KeyerSettings(despill=0.0))
    assert np.array_equal(same, frames[0])


def test_keyer_without_a_screen_is_a_clear_error():
    warm = np.broadcast_to(np.float32([0.4, 0.3, 0.2]), (90, 160, 3))  # a set, no screen
    with pytest.raises(InputError, match="plate.1001.exr: no green screen found"):
        keyer.key(warm, KeyerSettings(), "plate.1001.exr")
    with pytest.raises(InputError, match="is not blue"):
        keyer.key(warm, KeyerSettings(screen="blue", screen_color=(0.3, 0.3, 0.1)), "p")


def test_empty_keyer_matte_names_the_frame(tmp_path):
    frames, _ = walking_shot(3, screen="green")
    frames[1] = np.broadcast_to(np.float32([0.05, 0.45, 0.08]), frames[1].shape).copy()
    plate = write_sequence(str(tmp_path / "p"), frames)
    spec = seg_spec(plate, tmp_path / "o" / "m.####.exr", source="keyer")
    with pytest.raises(InputError, match="frame 1002: the keyer matte is empty"):
        segment.run(spec)
    # allowed on request
    spec = seg_spec(plate, tmp_path / "o2" / "m.####.exr", source="keyer", allow_empty=True)
    assert len(segment.run(spec).written) == 3


# ------------------------------------------------------------------------------ tracking
@pytest.mark.parametrize("key_index", [0, 12, 23])
def test_flow_tracking_from_one_key_frame(key_index):
    """A painted key matte carried by optical flow alone through 24 frames, forward,
    backward, or both ways from the middle: IoU >= 0.9 on every frame."""
    frames, truth = walking_shot(24, speed=4)
    imgs = display8(frames)
    out = track.propagate(24, {key_index: KeyFrame(frame=key_index, matte="painted")},
                          lambda i: imgs[i], None, TrackSettings(mode="flow"),
                          key_matte=lambda i, k: truth[i])
    scores = [iou(o, t) for o, t in zip(out, truth, strict=True)]
    assert min(scores) >= 0.9, [round(s, 3) for s in scores]
    assert all(o.dtype == np.float32 and o.shape == (180, 320) for o in out)
    assert all(o.min() >= 0.0 and o.max() <= 1.0 for o in out)
    assert np.array_equal(out[key_index], truth[key_index])


def test_second_key_frame_reanchors_the_track():
    """A wrong first key (shifted 12 px) and a right last key: the blend trusts the nearer
    key, so the error falls from one end to the other, and both keys are kept exactly."""
    frames, truth = walking_shot(16, speed=3)
    imgs = display8(frames)
    wrong = np.roll(truth[0], 12, axis=1)
    keys = {0: KeyFrame(frame=0, matte="a"), 15: KeyFrame(frame=15, matte="b")}
    out = track.propagate(16, keys, lambda i: imgs[i], None, TrackSettings(mode="flow"),
                          key_matte=lambda i, k: wrong if i == 0 else truth[15])
    assert np.array_equal(out[0], wrong) and np.array_equal(out[15], truth[15])
    err = [float(np.abs(o - t).mean()) for o, t in zip(out, truth, strict=True)]
    assert err[13] < 0.5 * err[2]
    assert err[1] > err[8] > err[14]


def test_grabcut_tracks_from_a_box(tmp_path):
    frames, truth = walking_shot(24, speed=4)
    plate = write_sequence(str(tmp_path / "p"), frames)
    ys, xs = np.nonzero(truth[0] > 0.5)
    box = [float(xs.min() - 6), float(ys.min() - 6), float(xs.max() + 6), float(ys.max() + 6)]
    spec = seg_spec(plate, tmp_path / "o" / "m.####.exr", source="grabcut",
                    keys=[{"frame": 1001, "boxes": [box]}])
    segment.run(spec)
    scores = [iou(read_exr(str(tmp_path / "o" / f"m.{1001 + i:04d}.exr"))[0][..., 0], truth[i])
              for i in range(24)]
    assert min(scores) >= 0.95, scores


def test_hint_points_lie_inside_and_outside():
    _, truth = walking_shot(1)
    hint = track.hint_from(truth[0], 6, 4)
    inside = [truth[0][int(y), int(x)] for (x, y), lab in zip(hint.points, hint.labels,
                                                              strict=True) if lab == 1]
    outside = [truth[0][int(y), int(x)] for (x, y), lab in zip(hint.points, hint.labels,
                                                               strict=True) if lab == 0]
    assert len(inside) == 6 and min(inside) > 0.99
    assert len(outside) == 4 and max(outside) < 0.01
    x0, y0, x1, y1 = hint.box
    ys, xs = np.nonzero(truth[0] > 0.5)
    assert x0 <= xs.min() and xs.max() < x1 and y0 <= ys.min() and ys.max() < y1
    assert track.hint_from(np.zeros((10, 10), np.float32), 6, 4) is None


# ------------------------------------------------------------------------------ refinement
def _disc(h, w, cx, cy, r):
    yy, xx = np.mgrid[0:h, 0:w]
    return np.clip(r - np.hypot(xx - cx, yy - cy) + 0.5, 0, 1).astype(np.float32)


def test_spatial_refinement_steps():
    m = _disc(100, 100, 50, 50, 20)
    m[48:52, 48:52] = 0.0  # a 16 px hole
    m[5:8, 5:8] = 1.0  # a 9 px island
    r = refine.Refine(fill_holes=0.002, min_island=0.002)
    out = refine.spatial(m, r)
    assert out[50, 50] == 1.0 and out[6, 6] == 0.0
    assert np.array_equal(out[30:70, 30:70] > 0.5, _disc(100, 100, 50, 50, 20)[30:70, 30:70] > 0.5)
    # holes larger than the limit stay
    assert refine.spatial(m, refine.Refine(fill_holes=0.001))[50, 50] == 0.0
    base = (_disc(100, 100, 50, 50, 20) > 0.5).sum()
    grown = (refine.spatial(_disc(100, 100, 50, 50, 20), refine.Refine(grow=3)) > 0.5).sum()
    shrunk = (refine.spatial(_disc(100, 100, 50, 50, 20), refine.Refine(grow=-3)) > 0.5).sum()
    assert abs(grown - np.pi * 23**2) / base < 0.05 and abs(shrunk - np.pi * 17**2) / base < 0.05
    soft = refine.spatial(_disc(100, 100, 50, 50, 20), refine.Refine(feather=3))
    assert ((soft > 0.05) & (soft < 0.95)).sum() > 3 * ((m > 0.05) & (m < 0.95)).sum() / 2


def test_refine_defaults_depend_on_the_source():
    assert refine.Refine.resolve(RefineSettings(), "alpha") == refine.Refine()
    r = refine.Refine.resolve(RefineSettings(), "sam")
    assert r.temporal == 1 and r.fill_holes > 0 and r.min_island > 0
    assert refine.Refine.resolve(RefineSettings(temporal=0), "sam").temporal == 0


@pytest.mark.parametrize("filt", ["edge_preserving", "box"])
def test_temporal_smoothing_does_not_lag_a_moving_edge(filt):
    """A disc moving at 1..16 px/frame with a flickering matte: the edge-preserving filter
    (radius 2) cuts flicker on the still interior, and its edge error does not grow with speed
    by more than 0.01; a plain box average (the negative control) lags badly."""
    rng = np.random.default_rng(1)
    h = w = 160
    errors = {}
    for speed in (1, 4, 16):
        truth = [_disc(h, w, 30 + speed * i * 0.5, 80, 25) for i in range(9)]
        noisy = [np.clip(t + rng.normal(0, 0.05, t.shape).astype(np.float32) * (t > 0), 0, 1)
                 for t in truth]
        if filt == "edge_preserving":
            out = list(refine.temporal(noisy, 2, 0.2))
        else:
            out = [np.mean(noisy[max(0, i - 2): i + 3], axis=0) for i in range(9)]
        t, o = truth[4], out[4]
        band = (t > 0.01) & (t < 0.99) | (np.abs(o - t) > 0.3)
        errors[speed] = float(np.abs(o - t)[band].mean())
        interior = _disc(h, w, 30 + speed * 2, 80, 15) > 0.99
        flicker_in, flicker_out = noisy[4][interior].std(), o[interior].std()
    if filt == "edge_preserving":
        assert errors[16] <= errors[1] + 0.01, errors
        assert flicker_out < 0.6 * flicker_in
    else:
        assert errors[16] > errors[1] + 0.1, errors  # the control shows the test can fail


# ------------------------------------------------------------------------------ checks
def test_bad_prompts_are_clear_errors(tmp_path):
    frames, _ = walking_shot(3)
    plate = write_sequence(str(tmp_path / "p"), frames)
    out = tmp_path / "o" / "m.####.exr"
    with pytest.raises(InputError, match="key frame 900 is outside the plate frames 1001-1003"):
        segment.run(seg_spec(plate, out, source="grabcut",
                             keys=[{"frame": 900, "boxes": [[1, 1, 50, 50]]}]))
    with pytest.raises(InputError, match=r"point \(400, 20\) is outside the 320x180 frame"):
        segment.run(seg_spec(plate, out, source="grabcut",
                             keys=[{"frame": 1001, "points": [[400, 20, 1]],
                                    "boxes": [[1, 1, 50, 50]]}]))
    with pytest.raises(InputError, match="grabcut needs a box"):
        segment.run(seg_spec(plate, out, source="grabcut",
                             keys=[{"frame": 1001, "points": [[40, 20, 1]]}]))
    with pytest.raises(ValueError, match="needs at least one key frame"):
        MatteSpec(source="sam")
    with pytest.raises(ValueError, match="label 2"):
        KeyFrame(frame=1, points=[(1, 2, 2)])
    assert not any(out.parent.glob("*.exr")) if out.parent.exists() else True


def test_empty_key_matte_is_an_error(tmp_path):
    frames, _ = walking_shot(3)
    plate = write_sequence(str(tmp_path / "p"), frames)
    empty = write_sequence(str(tmp_path / "k"), [np.zeros((180, 320, 3), np.float32)],
                           first=1002, name="key")
    spec = seg_spec(plate, tmp_path / "o" / "m.####.exr", source="grabcut",
                    keys=[{"frame": 1002, "matte": empty.replace("####", "1002")}])
    with pytest.raises(InputError, match="key frame 1002: the grabcut matte is empty"):
        segment.run(spec)


# ------------------------------------------------------------------------------ SAM
TINY = dict(embed_dim=32, depth=2, num_heads=2, global_attn=(1,), window_size=4, img_size=256,
            patch_size=16, mlp_ratio=2.0, out_chans=32, mask_in_chans=8, decoder_depth=1,
            decoder_mlp=64, multimask=3, iou_depth=2, iou_hidden=32)


@pytest.fixture(scope="module")
def tiny_sam(tmp_path_factory):
    torch = pytest.importorskip("torch")
    pytest.importorskip("torchvision")
    from actanywhere.matte import sam

    torch.manual_seed(0)
    model = sam.build(sam.Arch(**TINY))
    path = tmp_path_factory.mktemp("sam") / "tiny_sam.pth"
    torch.save(model.state_dict(), path)
    return str(path)


def test_sam_architecture_is_read_from_the_checkpoint(tiny_sam):
    import torch

    from actanywhere.matte import sam

    arch = sam.infer_arch(torch.load(tiny_sam, weights_only=True), tiny_sam)
    assert arch == sam.Arch(**TINY)
    assert arch.kind.startswith("custom")
    model = sam.load(tiny_sam)
    assert model is sam.load(tiny_sam)  # warm: loaded once per process
    with pytest.raises(ModelError, match=r"is custom \(width 32, depth 2\), but .* says vit_b"):
        sam.load(tiny_sam, "vit_b")


def test_sam_prompts_match_the_official_predictor(tiny_sam):
    """Our cached, batched embedding path gives what SamPredictor.set_image + predict give."""
    import torch
    from segment_anything import SamPredictor

    from actanywhere.matte import sam

    frames, _ = walking_shot(2)
    img = display8(frames)[0]
    model = sam.load(tiny_sam)
    seg = sam.SamSegmenter(model, lambda i: img, sam.EmbeddingCache(None), count=1)
    key = KeyFrame(frame=1, points=[(80.0, 100.0, 1), (250.0, 30.0, 0)],
                   boxes=[(40.0, 20.0, 160.0, 170.0)])
    ours = seg.key(0, key)
    ref = SamPredictor(model.sam)
    ref.set_image(img)
    logits, _, _ = ref.predict(point_coords=np.float32([[80, 100], [250, 30]]),
                               point_labels=np.int32([1, 0]), box=np.float32([40, 20, 160, 170]),
                               multimask_output=False, return_logits=True)
    expected = torch.sigmoid(torch.as_tensor(logits[0])).numpy()
    assert ours.shape == (180, 320) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, expected, atol=1e-5)
    # a single click asks for three masks and keeps the best scored
    one = seg.key(0, KeyFrame(frame=1, points=[(80.0, 100.0, 1)]))
    masks, scores, _ = ref.predict(point_coords=np.float32([[80, 100]]),
                                   point_labels=np.int32([1]), multimask_output=True,
                                   return_logits=True)
    np.testing.assert_allclose(one, torch.sigmoid(torch.as_tensor(
        masks[int(np.argmax(scores))])).numpy(), atol=1e-5)
    assert seg.encoded == 1  # three predictions, one image encoding


def test_sam_tracks_both_ways_and_caches_embeddings(tiny_sam, tmp_path):
    from actanywhere.matte import sam

    frames, truth = walking_shot(9, speed=4)
    imgs = display8(frames)
    model = sam.load(tiny_sam)
    cache = sam.EmbeddingCache(str(tmp_path / "cache"))
    seg = sam.SamSegmenter(model, lambda i: imgs[i], cache, count=9)
    calls = []
    settings = TrackSettings(min_agreement=0.0)
    keys = {4: KeyFrame(frame=4, boxes=[(40.0, 30.0, 160.0, 175.0)])}
    out = track.propagate(9, keys, lambda i: imgs[i], seg, settings, advance=calls.append,
                          key_matte=lambda i, k: truth[i])
    assert sorted(calls) == list(range(9))  # key first, then both directions
    assert calls[0] == 4 and calls[1:5] == [3, 2, 1, 0] and calls[5:] == [5, 6, 7, 8]
    assert len(out) == 9 and all(o.shape == (180, 320) and o.dtype == np.float32 for o in out)
    assert all(o.min() >= 0.0 and o.max() <= 1.0 for o in out)
    assert seg.encoded == 8  # every tracked frame encoded once (the key used its painted matte)
    # a new click (a second pass) encodes nothing: memory, then disk in a fresh cache
    seg2 = sam.SamSegmenter(model, lambda i: imgs[i], cache, count=9)
    seg2.track(2, track.hint_from(truth[2], 4, 2))
    assert seg2.encoded == 0 and cache.hits >= 1
    fresh = sam.EmbeddingCache(str(tmp_path / "cache"))
    seg3 = sam.SamSegmenter(model, lambda i: imgs[i], fresh, count=9)
    a = seg3.track(2, track.hint_from(truth[2], 4, 2))
    assert seg3.encoded == 0 and fresh.disk_hits == 1
    b = sam.SamSegmenter(model, lambda i: imgs[i], sam.EmbeddingCache(None), count=9).track(
        2, track.hint_from(truth[2], 4, 2))
    np.testing.assert_allclose(a, b, atol=1e-6)  # cached == recomputed


def test_sam_segment_end_to_end_with_a_painted_key(tiny_sam, tmp_path):
    """The whole ``segment`` path on SAM: a painted key in the middle, tracked both ways,
    written as a copy of the plate with the matte in a named layer."""
    frames, truth = walking_shot(6, speed=4)
    plate = write_sequence(str(tmp_path / "p"), frames)
    key = write_sequence(str(tmp_path / "k"), [np.repeat(truth[3][..., None], 3, -1)],
                         first=1004, name="key").replace("####", "1004")
    spec = segment.SegmentSpec.model_validate({
        "plate": {"path": plate},
        "matte": {"source": "sam", "keys": [{"frame": 1004, "matte": key}],
                  "sam": {"checkpoint": tiny_sam, "cache_dir": ""},
                  "track": {"min_agreement": 0.0}, "allow_empty": True},
        "output": {"path": str(tmp_path / "o" / "shot.####.exr"), "layer": "mask"}})
    result = segment.run(spec)
    assert len(result.written) == 6
    px, s = read_exr(str(tmp_path / "o" / "shot.1004.exr"))
    assert list(s.channelnames) == ["R", "G", "B", "mask.A"]
    assert iou(px[..., 3], truth[3]) > 0.95  # the painted key is kept (then refined)
    np.testing.assert_allclose(px[..., :3], frames[3], atol=2e-3)  # the plate copy


def test_sam_checkpoint_errors(tmp_path, tiny_sam, monkeypatch):
    from actanywhere.matte import sam

    monkeypatch.delenv(sam.ENV, raising=False)
    with pytest.raises(ModelError, match="ACTANYWHERE_SAM_CHECKPOINT"):
        sam.checkpoint_path(None)
    with pytest.raises(ModelError, match="nope.pth: SAM checkpoint not found"):
        sam.load(str(tmp_path / "nope.pth"))
    with open(tiny_sam, "rb") as fh:
        data = fh.read()
    cut = tmp_path / "cut.pth"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match=r"cut.pth: cannot read the SAM checkpoint .*truncated"):
        sam.load(str(cut))
    import torch

    other = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(3, 3)}, other)
    with pytest.raises(ModelError, match="not a Segment Anything checkpoint"):
        sam.load(str(other))


@pytest.mark.skipif(not os.environ.get("ACTANYWHERE_SAM_CHECKPOINT"),
                    reason="set ACTANYWHERE_SAM_CHECKPOINT to a real SAM checkpoint")
def test_real_sam_on_the_demo_shot(tmp_path):
    """With a real checkpoint: a box on the first demo frame, tracked through 12 frames,
    IoU >= 0.85 against the demo plate's own alpha."""
    from actanywhere.cli import demo_shot as demo
    from actanywhere.media import imageio

    pattern = str(tmp_path / "demo" / "plate" / "plate.####.exr")
    demo.make_plate(pattern, nframes=12)
    truth = [imageio.read(pattern.replace("####", f"{1001 + i:04d}")).channel("A")
             for i in range(12)]
    ys, xs = np.nonzero(truth[0] > 0.5)
    spec = segment.SegmentSpec.model_validate({
        "plate": {"path": str(tmp_path / "demo" / "plate" / "plate.####.exr")},
        "matte": {"source": "sam", "keys": [{"frame": 1001, "boxes": [
            [float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())]]}]},
        "output": {"path": str(tmp_path / "m" / "m.####.exr"), "preview": ""}})
    segment.run(spec)
    for i, t in enumerate(truth):
        got = read_exr(str(tmp_path / "m" / f"m.{1001 + i:04d}.exr"))[0][..., 0]
        assert iou(got, t) >= 0.85


# ------------------------------------------------------------------------------ CLI + generate
def cli(*args):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "actanywhere", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=600)


def test_segment_cli_and_generate_on_the_fly_agree(tmp_path):
    frames, truth = walking_shot(4, screen="green")
    plate = write_sequence(str(tmp_path / "p"), frames)
    r = cli("segment", "--plate", plate, "--source", "keyer", "--feather", "1",
            "-o", tmp_path / "m" / "m.####.exr", "--progress", "none")
    assert r.returncode == 0, r.stderr
    assert "contact_sheet.png" in r.stderr
    bg = tmp_path / "bg.exr"
    from conftest import write_exr

    write_exr(bg, np.full((180, 320, 3), 0.3, np.float32), ("R", "G", "B"))
    r = cli("generate", "--plate", plate, "--matte-source", "keyer", "--background", bg,
            "-o", tmp_path / "g" / "c.####.exr", "--progress", "none")
    assert r.returncode == 0, r.stderr
    spec_file = tmp_path / "feather.json"
    spec_file.write_text('{"matte": {"refine": {"feather": 1}}}')
    r = cli("generate", "--spec", spec_file, "--plate", plate, "--matte-source", "keyer",
            "--background", bg, "-o", tmp_path / "g2" / "c.####.exr", "--progress", "none")
    assert r.returncode == 0, r.stderr
    for f in range(1001, 1005):
        seg_m = read_exr(tmp_path / "m" / f"m.{f}.exr")[0][..., 0]
        px, s = read_exr(tmp_path / "g2" / f"c.{f}.exr")
        gen_m = px[..., list(s.channelnames).index("matte.A")]
        np.testing.assert_allclose(gen_m, seg_m, atol=1e-3)  # half-float files
        assert iou(gen_m, truth[f - 1001]) >= 0.95


def test_segment_cli_errors(tmp_path):
    frames, _ = walking_shot(2)
    plate = write_sequence(str(tmp_path / "p"), frames)
    r = cli("segment", "--plate", plate, "--source", "grabcut", "--point", "1001-40,50",
            "-o", tmp_path / "m.####.exr")
    assert r.returncode == 2 and "--point '1001-40,50': write FRAME:VALUES" in r.stderr
    r = cli("segment", "--plate", plate, "--source", "grabcut", "--box", "1001:1,2,3",
            "-o", tmp_path / "m.####.exr")
    assert r.returncode == 2 and "expected 4 comma-separated numbers" in r.stderr
    r = cli("segment", "--plate", plate, "--source", "sam", "--point", "1001:40,50",
            "--sam-checkpoint", tmp_path / "missing.pth", "-o", tmp_path / "m.####.exr")
    assert r.returncode == 5 and "missing.pth: SAM checkpoint not found" in r.stderr
    r = cli("segment", "--plate", plate, "--source", "sam", "-o", tmp_path / "m.####.exr")
    assert r.returncode == 2 and "needs at least one key frame" in r.stderr


def test_keyer_does_not_take_a_green_object_for_a_screen():
    """A set with no screen and a green prop in it (3% of the frame): before, the prop's
    colour became the screen colour and the key kept 97% of the frame as subject, exit 0."""
    frame = np.broadcast_to(np.float32([0.4, 0.3, 0.2]), (90, 160, 3)).copy()
    frame[40:55, 70:85] = [0.05, 0.6, 0.08]  # a green prop
    with pytest.raises(InputError, match=r"no green screen found.*only 1.\d% of it is green"):
        keyer.key(frame, KeyerSettings(), "plate.1001.exr")
    # with the prop's colour given as the screen colour, the coverage check catches it
    with pytest.raises(InputError, match=r"keeps 9\d% of the frame as subject"):
        keyer.key(frame, KeyerSettings(screen_color=(0.05, 0.6, 0.08)), "plate.1001.exr")


def test_keys_whose_tracks_disagree_are_not_blended_into_a_ghost():
    """A good GrabCut key on the first frame and a box in the wrong place on the last: the
    blend used to lay a faint copy of the wrong shape over the good frames, silently."""
    from actanywhere.matte.grabcut import GrabCut

    frames, truth = walking_shot(24, speed=4)
    cc = ColorContext()
    imgs = [(cc.to_model(f) * 255 + 0.5).astype(np.uint8) for f in frames]
    ys, xs = np.nonzero(truth[0] > 0.5)
    good = (float(xs.min() - 6), float(ys.min() - 6), float(xs.max() + 6), float(ys.max() + 6))
    keys = {0: KeyFrame(frame=0, boxes=[good]),
            23: KeyFrame(frame=23, boxes=[(10.0, 10.0, 120.0, 170.0)])}  # on the set, not him
    warns = []
    out = track.propagate(24, keys, lambda i: imgs[i], GrabCut(lambda i: imgs[i]),
                          TrackSettings(), warn=warns.append)
    assert len(warns) == 1 and "from key 0 and from key 23 disagree" in warns[0], warns
    assert "frame indices 1-22" in warns[0]
    wrong = out[23] > 0.5
    for i in range(1, 12):  # nearer the good key: the good track, and no ghost of the wrong one
        assert iou(out[i], truth[i]) >= 0.95, i
        assert float(out[i][wrong & (truth[i] < 0.5)].max(initial=0.0)) < 0.05, i


def test_segment_layer_copy_keeps_plate_metadata_and_says_what_made_the_matte(tmp_path):
    """A plate that an earlier segment run wrote (its own actanywhere:* keys) copied with a
    new matte layer: its other metadata stays, the new run's keys win."""
    from conftest import make_shot

    from actanywhere.spec import ColorSpec, PlateSpec

    plate, _ = make_shot(tmp_path, attrs={"Copyright": "test studio",
                                          "actanywhere:matte_source": "file",
                                          "actanywhere:frame": 77})
    spec = segment.SegmentSpec(
        plate=PlateSpec(path=str(plate)), matte=MatteSpec(source="alpha"), color=ColorSpec(),
        output=segment.MatteOutputSpec(path=str(tmp_path / "m" / "p.####.exr"), layer="seg",
                                       preview=""))
    segment.run(spec)
    _, s = read_exr(tmp_path / "m" / "p.0002.exr")
    assert "seg.A" in s.channelnames and "R" in s.channelnames
    assert s.get_string_attribute("Copyright") == "test studio"
    assert s.get_string_attribute("actanywhere:matte_source") == "alpha"
    assert s.get_int_attribute("actanywhere:frame") == 2
