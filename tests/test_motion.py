"""The background's motion (core/actanywhere/motion): the file format, user keys, smoothing
without lag, and tracking a textured plate along a known camera path."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from actanywhere.errors import InputError, SpecError
from actanywhere.motion import Motion, keys, load, save, smooth, track
from actanywhere.motion.format import apply


def _texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A photograph-like texture: noise at several scales, linear RGB."""
    rng = np.random.default_rng(seed)
    out = np.zeros((h, w, 3), np.float32)
    for cells, amp in ((8, 0.5), (32, 0.3), (128, 0.2)):
        small = rng.random((cells * h // w + 2, cells + 2, 3)).astype(np.float32)
        out += amp * cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(out, 0.01, 1.0) ** 2.2


def _camera(i: int, w: int, h: int) -> np.ndarray:
    """Texture -> frame i: a pan right and down with a slow push-in (the truth)."""
    scale = 1.0 + 0.004 * i
    cx, cy = w / 2, h / 2
    return np.array([[scale, 0, cx - scale * (cx + 300 + 6.5 * i)],
                     [0, scale, cy - scale * (cy + 150 + 1.5 * i)], [0, 0, 1.0]])


def _shot(n: int = 12, w: int = 960, h: int = 540, screen: bool = False):
    tex = _texture(h + 600, w + 800)
    frames, truth = [], {}
    g0 = _camera(0, w, h)
    for i in range(n):
        g = _camera(i, w, h)
        rgb = cv2.warpPerspective(tex, g, (w, h), flags=cv2.INTER_LINEAR)
        if screen:
            rgb[:] = (0.05, 0.6, 0.08)
        matte = np.zeros((h, w), np.float32)
        x0 = 300 + 10 * i
        matte[150:480, x0:x0 + 160] = 1.0  # a subject walking over it
        rgb[matte > 0] = (0.8, 0.3, 0.2)
        frames.append((1001 + i, rgb, matte))
        truth[1001 + i] = g @ np.linalg.inv(g0)
    return frames, truth


def _epe(motion: Motion, truth: dict, w: int, h: int) -> float:
    """Mean end-point error (px) over a grid of reference points, at 1920 px width."""
    xs, ys = np.meshgrid(np.linspace(0, w, 9), np.linspace(0, h, 6))
    pts = np.stack([xs.ravel(), ys.ravel()], axis=1)
    errs = [np.linalg.norm(apply(motion.frames[f], pts) - apply(t, pts), axis=1).mean()
            for f, t in truth.items()]
    return float(np.mean(errs)) * 1920 / w


@pytest.mark.parametrize("model", ["similarity", "homography"])
def test_track_follows_a_textured_plate_within_half_a_pixel(model):
    frames, truth = _shot()
    motion = track.estimate(frames, 960, 540, track.TrackSettings(model=model))
    assert motion.reference_frame == 1001 and sorted(motion.frames) == sorted(truth)
    err = _epe(motion, truth, 960, 540)
    static = _epe(Motion("none", 960, 540, 1001, {f: np.eye(3) for f in truth}), truth,
                  960, 540)
    assert err < 0.5, err
    assert static > 40 * err  # the static camera is far off
    assert min(motion.confidence.values()) > 0.5


def test_track_refuses_a_green_screen_naming_the_frame():
    frames, _ = _shot(n=3, screen=True)
    with pytest.raises(InputError, match=r"frame 1001 has too little background texture"):
        track.estimate(frames, 960, 540)


def test_keys_interpolate_relative_to_the_first_frame():
    parsed = keys.parse(["1001:0,0", "1011:-50,10,1.1", "1021:-50,10,1.1,5"])
    m = keys.estimate(parsed, list(range(1001, 1022)), 200, 100)
    assert np.allclose(m.frames[1001], np.eye(3))
    centre = np.array([[99.5, 49.5]])  # pixel centres at integers: the middle of 200 x 100
    assert np.allclose(m.apply(1006, centre), [[74.5, 54.5]])  # half way: -25, +5
    assert np.allclose(m.apply(1011, [[109.5, 49.5]]), [[60.5, 59.5]])  # scaled about centre
    with pytest.raises(SpecError, match=r"--motion-key '1001:x'"):
        keys.parse(["1001:x"])


def test_smoothing_removes_jitter_without_lagging_a_move():
    rng = np.random.default_rng(1)
    path = {f: np.array([[1, 0, 2.0 * f + rng.normal(0, 0.5)], [0, 1, 0], [0, 0, 1]])
            for f in range(40)}
    out = smooth.smooth(path, 3)
    err_in = np.mean([abs(path[f][0, 2] - 2.0 * f) for f in range(40)])
    err_out = np.mean([abs(out[f][0, 2] - 2.0 * f) for f in range(40)])
    assert err_out < 0.6 * err_in
    mid = [out[f][0, 2] - 2.0 * f for f in range(5, 35)]
    assert abs(np.mean(mid)) < 0.2  # centred: no lag behind the move


def test_a_motion_file_round_trips_and_is_checked_against_the_plate(tmp_path):
    m = keys.estimate(keys.parse(["1:0,0", "3:10,0"]), [1, 2, 3], 64, 36)
    path = save(m, str(tmp_path / "motion.json"))
    back = load(path)
    assert back.source == "keys" and back.reference_frame == 1
    assert np.allclose(back.frames[3], m.frames[3])
    back.check(64, 36, [1, 2, 3])
    with pytest.raises(InputError, match=r"made for 64x36, the plate is 128x72"):
        back.check(128, 72, [1, 2, 3])
    with pytest.raises(InputError, match=r"no motion for frame\(s\) 4"):
        back.check(64, 36, [1, 2, 3, 4])
    (tmp_path / "bad.json").write_text('{"version": 1, "source": "x", "width": 4, '
                                       '"height": 4, "reference_frame": 1, '
                                       '"frames": {"1": [[0,0,0],[0,0,0],[0,0,1]]}}')
    with pytest.raises(InputError, match=r"frame 1: degenerate"):
        load(str(tmp_path / "bad.json"))


def test_the_motion_command_writes_the_file_and_a_preview(tmp_path, capsys):
    from conftest import write_exr

    from actanywhere.cli import main

    frames, truth = _shot(n=8, w=480, h=270)
    (tmp_path / "plate").mkdir()
    for f, rgb, matte in frames:
        write_exr(tmp_path / "plate" / f"plate.{f}.exr", np.dstack([rgb, matte]))
    out = tmp_path / "m" / "motion.json"
    code = main(["motion", "--plate", str(tmp_path / "plate" / "plate.####.exr"),
                 "-o", str(out)])
    assert code == 0, capsys.readouterr().err
    motion = load(str(out))
    assert motion.source == "track" and (motion.width, motion.height) == (480, 270)
    assert _epe(motion, truth, 480, 270) < 0.5
    gif = tmp_path / "m" / "motion_preview.gif"
    assert gif.is_file() and gif.stat().st_size > 1000
    # a plate without texture outside the subject: one line naming the frame, exit 3
    for f, rgb, matte in frames:
        write_exr(tmp_path / "plate" / f"plate.{f}.exr",
                  np.dstack([np.full_like(rgb, 0.3), matte]))
    code = main(["motion", "--plate", str(tmp_path / "plate" / "plate.####.exr"),
                 "-o", str(tmp_path / "x.json")])
    err = capsys.readouterr().err.strip()
    assert code == 3 and err.startswith("error: motion track: frame 1001 has too little")
    assert "\n" not in err and not (tmp_path / "x.json").exists()
