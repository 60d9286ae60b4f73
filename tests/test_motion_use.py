"""The motion used: the background moved per frame (overscan, filtering, warnings), the
``metadata`` source from EXR camera matrices, ``auto``'s fallback, and ``generate`` with a
ShotSpec ``motion`` section end to end (composite engine, real EXRs on disk)."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import OpenImageIO as oiio
import pytest
from conftest import output_frames, read_exr, write_exr
from test_motion import _epe, _texture

from actanywhere import spec
from actanywhere.errors import InputError
from actanywhere.media import raster
from actanywhere.motion import Motion, choose, keys, metadata
from actanywhere.motion.backdrop import Backdrop
from actanywhere.motion.format import apply
from actanywhere.shot import job


def _dot_background(w: int, h: int, at: tuple[float, float]) -> np.ndarray:
    """A smooth grey field with one Gaussian dot (sigma 3 px) at ``at``."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dot = np.exp(-((xx - at[0]) ** 2 + (yy - at[1]) ** 2) / (2 * 3.0 ** 2))
    return np.dstack([0.1 + dot, 0.1 + dot, 0.1 + dot]).astype(np.float32)


def _centroid(img: np.ndarray) -> np.ndarray:
    w = np.clip(img[..., 0] - 0.1, 0, None)
    w = np.where(w > 0.05, w, 0)
    yy, xx = np.mgrid[0 : img.shape[0], 0 : img.shape[1]]
    return np.array([(w * xx).sum() / w.sum(), (w * yy).sum() / w.sum()])


def test_no_motion_is_the_plain_fit_pixel_for_pixel():
    bg = _texture(90, 200)
    still = Backdrop(bg, 160, 90, "cover")
    np.testing.assert_array_equal(still.still, raster.fit(bg, 160, 90, "cover"))
    ident = Motion("none", 160, 90, 1, {f: np.eye(3) for f in (1, 2, 3)})
    np.testing.assert_array_equal(Backdrop(bg, 160, 90, "cover", motion=ident).at(2),
                                  still.still)


def test_the_background_moves_exactly_as_the_motion_says_with_no_empty_edge():
    w, h = 320, 180
    # the canvas is made at this size, so the dot's reference position is known
    m = keys.estimate(keys.parse(["1:0,0", "11:-60,25,1.2,5"]), list(range(1, 12)), w, h)
    bd = Backdrop(_dot_background(w, h, (150.0, 80.0)), w, h, "stretch", motion=m)
    # the reference frame (after overscan, the canvas is larger than the frame): find the
    # dot there, then check every frame puts it where the motion does
    ref = _centroid(bd.at(1))
    for f in range(1, 12):
        img = bd.at(f)
        assert np.all(np.isfinite(img)) and img.min() > 0.05, f"empty edge on frame {f}"
        want = apply(m.frames[f], ref[None])[0]
        assert np.linalg.norm(_centroid(img) - want) < 0.05, f
    assert not bd.warnings


def test_a_slow_move_does_not_shimmer_and_highlights_do_not_ring():
    w, h = 240, 135
    bg = _texture(h * 2, w * 2, seed=3)
    frames = list(range(1, 21))
    m = keys.estimate(keys.parse(["1:0,0", "20:1.9,0.95"]), frames, w, h)  # 0.1 px a frame
    bd = Backdrop(bg, w, h, "cover", motion=m)

    def detail(img):  # high-frequency energy of the frame's centre
        c = img[20:-20, 20:-20, 1]
        return float(np.mean((c - cv2.GaussianBlur(c, (0, 0), 1.0)) ** 2))

    ours = [detail(bd.at(f)) for f in frames]
    canvas = bd._levels[0]
    bilinear = [detail(cv2.warpPerspective(canvas, bd._ref_to_canvas @ np.linalg.inv(
        m.frames[f]), (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)) for f in frames]

    def spread(x):
        return (max(x) - min(x)) / np.mean(x)

    # bilinear blurs more at half-pixel offsets than at whole ones (detail pumps as the plate
    # slides); ours keeps the detail steady
    assert spread(ours) < 0.05 and spread(bilinear) > 0.3, (spread(ours), spread(bilinear))
    bg[100:104, 200:204] = 50.0  # a sun: a cubic filter alone would undershoot next to it
    bd = Backdrop(bg, w, h, "cover", motion=m)
    for f in frames:
        img = bd.at(f)
        assert img.min() >= bg.min() - 1e-4 and img.max() <= 50.0 + 1e-3
        assert img.max() > 20.0  # the highlight itself survives the move


def test_a_background_too_small_for_the_move_is_named_with_its_frames():
    w, h = 320, 180
    m = keys.estimate(keys.parse(["1:0,0", "5:0,0", "9:0,0,2.0"]), list(range(1, 10)), w, h)
    bd = Backdrop(_texture(180, 320), w, h, "cover", motion=m, name="bg.exr")
    assert len(bd.warnings) == 1
    line = bd.warnings[0]
    assert line.startswith("bg.exr: the camera move enlarges the background more than 1.5x")
    assert "frame(s) 8-9 " in line  # 1.75x and 2x; frame 7 is 1.5x and "larger background" in line


# ----------------------------------------------------------------------------- metadata
def _rotation(yaw: float, pitch: float) -> np.ndarray:
    """World -> camera rotation (column form)."""
    cy, sy, cp, sp = math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch)
    ry = np.array([[cy, 0, -sy], [0, 1, 0], [sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, sp], [0, -sp, cp]])
    return rx @ ry


def _pixels(rot: np.ndarray, fov: float, w: int, h: int, dirs: np.ndarray) -> np.ndarray:
    """World directions seen by a camera looking down -z (x right, y up) -> pixels."""
    cam = dirs @ rot.T
    f = w / 2 / math.tan(math.radians(fov) / 2)
    return np.stack([(w - 1) / 2 + f * cam[:, 0] / -cam[:, 2],
                     (h - 1) / 2 - f * cam[:, 1] / -cam[:, 2]], axis=1)


def _cg_plate(folder, n: int, w: int, h: int, kind: str):
    """EXRs of a CG camera panning, tilting and zooming: headers carry its matrices; the
    truth is where far points project."""
    folder.mkdir()
    cams = [(_rotation(0.02 * i, -0.01 * i), 40.0 - 0.8 * i) for i in range(n)]
    for i, (rot, fov) in enumerate(cams):
        spec_ = oiio.ImageSpec(w, h, 4, "half")
        spec_.channelnames = ("R", "G", "B", "A")
        to_cam = np.eye(4)
        to_cam[:3, :3] = rot.T  # Imath row vectors: p_cam = p_world @ M
        to_cam[3, :3] = (1.0, -2.0, 5.0)  # the camera moves too: nothing at infinity shifts
        if kind == "camera":
            spec_.attribute("worldToCamera", oiio.TypeDesc("matrix"),
                            to_cam.astype(np.float32).ravel())
            spec_.attribute("fov", float(fov))
        else:
            t = math.tan(math.radians(fov) / 2)
            tv = t * h / w
            proj = np.array([[0.5 / t, 0, 0, 0], [0, -0.5 / tv, 0, 0],
                             [-0.5, -0.5, -1, -1], [0, 0, -0.1, 0]])
            spec_.attribute("worldToNDC", oiio.TypeDesc("matrix"),
                            (to_cam @ proj).astype(np.float32).ravel())
        out = oiio.ImageOutput.create(str(folder / f"cg.{1001 + i}.exr"))
        out.open(str(folder / f"cg.{1001 + i}.exr"), spec_)
        out.write_image(np.zeros((h, w, 4), np.float32))
        out.close()
    return cams


@pytest.mark.parametrize("kind", ["camera", "ndc"])
def test_metadata_gives_the_exact_motion_of_a_cg_camera(tmp_path, kind):
    w, h, n = 480, 270, 6
    cams = _cg_plate(tmp_path / "cg", n, w, h, kind)
    from actanywhere.motion import shot

    settings = spec.MotionSpec(source="metadata")
    motion, _ = shot.estimate(str(tmp_path / "cg" / "cg.####.exr"), None, settings)
    assert motion.source == "metadata" and motion.reference_frame == 1001
    # far points spread over the reference view
    rng = np.random.default_rng(0)
    dirs = np.c_[rng.uniform(-0.3, 0.3, (40, 2)), -np.ones(40)] @ cams[0][0]
    ref = _pixels(*cams[0], w, h, dirs)
    for i in range(n):
        want = _pixels(*cams[i], w, h, dirs)
        got = apply(motion.frames[1001 + i], ref)
        assert np.abs(got - want).max() < 1e-3, (i, np.abs(got - want).max())


def test_metadata_and_auto_say_what_is_missing(tmp_path):
    frames_ = tmp_path / "p"
    frames_.mkdir()
    tex = _texture(90, 160)
    for f in (1, 2, 3):
        write_exr(frames_ / f"p.{f}.exr", np.dstack([tex, np.zeros((90, 160))]))
    headers = {f: {} for f in (1, 2, 3)}
    with pytest.raises(InputError, match=r"^p\.1\.exr: no camera matrix in the header"):
        metadata.estimate(headers, 160, 90, names={1: "p.1.exr"})
    cam = {"worldToCamera": np.eye(4).ravel()}
    with pytest.raises(InputError, match=r"worldToCamera has no field of view.*motion\.fov"):
        metadata.estimate({1: cam}, 160, 90)
    # auto: no matrices -> track; a flat plate cannot be tracked, and with no subject the
    # subject source cannot follow one -> a static camera, said
    notes: list[str] = []

    def flat():
        for f in (1, 2, 3):
            yield f, np.full((90, 160, 3), 0.3, np.float32), np.zeros((90, 160), np.float32)

    m = choose.estimate(spec.MotionSpec(source="auto"), frames=[1, 2, 3], width=160, height=90,
                        pixel_aspect=1.0, headers=lambda f: {}, pictures=flat, note=notes.append)
    assert m.source == "none" and len(notes) == 1
    assert notes[0].startswith("motion: auto found no camera matrices and could not track")
    assert "nor follow the subject (motion subject: no subject on any frame" in notes[0]


# ------------------------------------------------------------------------------ generate
def _textured_shot(root, n=10, w=320, h=180):
    """A plate panning over a texture (true motion known) with a subject in alpha; the
    background plate has one bright dot."""
    from test_motion import _camera

    tex = _texture(h + 600, w + 800, seed=5)
    (root / "plate").mkdir(parents=True)
    truth = {}
    g0 = _camera(0, w, h)
    for i in range(n):
        g = _camera(i, w, h)
        rgb = cv2.warpPerspective(tex, g, (w, h), flags=cv2.INTER_LINEAR)
        a = np.zeros((h, w), np.float32)
        a[60:150, 100 + 8 * i : 150 + 8 * i] = 1.0
        rgb[a > 0] = (0.9, 0.3, 0.2)
        write_exr(root / "plate" / f"plate.{1001 + i}.exr", np.dstack([rgb, a]))
        truth[1001 + i] = g @ np.linalg.inv(g0)
    write_exr(root / "bg.exr", _dot_background(w, h, (60.0, 40.0)), channels=("R", "G", "B"))
    return root / "plate" / "plate.####.exr", root / "bg.exr", truth


def _spec(root, plate, bg, motion, out="out"):
    return spec.from_dict({"plate": {"path": str(plate)}, "background": {"path": str(bg)},
                           "motion": motion, "composite": {"shadow": 0.0},
                           "output": {"path": str(root / out / "c.####.exr"),
                                      "compression": "none"}})


def test_generate_moves_the_background_with_the_tracked_camera(tmp_path):
    plate, bg, truth = _textured_shot(tmp_path)
    events = []
    result = job.run(_spec(tmp_path, plate, bg, {"source": "track"}), events.append)
    assert len(result.written) == 10
    dots = {}
    for f in truth:
        px, s = read_exr(tmp_path / "out" / f"c.{f}.exr")
        assert s.get_string_attribute("actanywhere:motion") == "track"
        names = list(s.channelnames)
        bg_layer = px[..., [names.index(c) for c in ("bg.R", "bg.G", "bg.B")]]
        dots[f] = _centroid(bg_layer)
    # the dot of the background plate moves as the plate's own set does (the true camera)
    for f, t in truth.items():
        want = apply(t, dots[1001][None])[0]
        assert np.linalg.norm(dots[f] - want) < 0.3, (f, dots[f], want)
    assert any("motion: track, lowest confidence" in (e.message or "") for e in events)
    # the same shot without motion keeps the background still (today's behaviour)
    job.run(_spec(tmp_path, plate, bg, {"source": "none"}, out="still"))
    first, s = read_exr(tmp_path / "still" / "c.1001.exr")
    last, _ = read_exr(tmp_path / "still" / "c.1010.exr")
    bgc = [list(s.channelnames).index(c) for c in ("bg.R", "bg.G", "bg.B")]
    np.testing.assert_array_equal(first[..., bgc], last[..., bgc])
    assert s.get_string_attribute("actanywhere:motion") == "none"


def test_generate_with_a_motion_file_checks_it_fits(tmp_path):
    from actanywhere.motion import save

    plate, bg, truth = _textured_shot(tmp_path, n=4)
    m = Motion("track", 320, 180, 1001, dict(truth))
    assert _epe(m, truth, 320, 180) == 0.0
    save(m, str(tmp_path / "m.json"))
    job.run(_spec(tmp_path, plate, bg, {"source": "file", "path": str(tmp_path / "m.json")}))
    save(Motion("track", 640, 360, 1001, dict(truth)), str(tmp_path / "big.json"))
    with pytest.raises(InputError, match=r"big\.json: made for 640x360, the plate is 320x180"):
        job.run(_spec(tmp_path, plate, bg, {"source": "file",
                                            "path": str(tmp_path / "big.json")}, out="o2"))
    assert output_frames(tmp_path / "o2") == []  # no frame; the take's record says why
    with open(tmp_path / "o2" / "take.json") as fh:
        record = json.load(fh)
    assert record["status"] == "failed" and "big.json" in record["error"]
    with pytest.raises(Exception, match=r"motion\.keys: .*FRAME:TX,TY"):
        _spec(tmp_path, plate, bg, {"source": "keys", "keys": ["1001:oops"]})


def test_the_nuke_corner_pin_moves_the_plate_as_the_motion_does(tmp_path, capsys):
    """The .nk snippet: CornerPin2D corners keyed per frame in Nuke's convention (origin
    bottom left, y up, pixel edges): a move right and down in motion.json is right and down
    on screen in Nuke; a push-in spreads the corners about the centre."""
    import re

    from actanywhere.api import motion as motion_file
    from actanywhere.cli import main
    from actanywhere.motion import save

    w, h = 200, 100
    m = keys.estimate(keys.parse(["1:0,0", "3:10,5", "5:10,5,2.0"]), [1, 2, 3, 4, 5], w, h)
    save(m, str(tmp_path / "m.json"))
    text = motion_file.nuke_snippet(motion_file.read(str(tmp_path / "m.json")))
    assert text.startswith("set cut_paste_input [stack 0]") and "CornerPin2D {" in text
    corners = {}
    for i in range(1, 5):
        xs, ys = re.search(rf" to{i} {{{{curve x1 ([^}}]+)}} {{curve x1 ([^}}]+)}}}}", text
                           ).groups()
        corners[i] = np.array([[float(v) for v in xs.split()], [float(v) for v in ys.split()]])
        assert re.search(rf" from{i} {{[0-9.]+ [0-9.]+}}", text)
    # frame 1: the corners are the frame's own (no motion)
    assert corners[1][:, 0] == pytest.approx([0, 0]) and corners[3][:, 0] == \
        pytest.approx([w, h])
    # frame 3: 10 right and 5 down on screen: Nuke's y goes up, so y - 5
    assert corners[1][:, 2] == pytest.approx([10, -5]) and corners[3][:, 2] == \
        pytest.approx([w + 10, h - 5])
    # frame 5: 2x about the centre (then the same move): the frame's width doubles
    assert corners[2][0, 4] - corners[1][0, 4] == pytest.approx(2 * w)
    assert (corners[1][:, 4] + corners[3][:, 4]) / 2 == pytest.approx([w / 2 + 10, h / 2 - 5])
    # the CLI writes it beside the motion
    (tmp_path / "p").mkdir()
    tex = _texture(100, 200)
    for f in (1, 2):
        write_exr(tmp_path / "p" / f"p.{f}.exr", np.dstack([tex, np.zeros((100, 200))]))
    code = main(["motion", "--plate", str(tmp_path / "p" / "p.#.exr"), "--source", "keys",
                 "--motion-key", "1:0,0", "--motion-key", "2:4,0", "-o",
                 str(tmp_path / "k.json"), "--nuke", str(tmp_path / "k.nk"), "--preview", ""])
    assert code == 0, capsys.readouterr().err
    assert "CornerPin2D" in (tmp_path / "k.nk").read_text()


def test_the_demo_background_follows_the_demo_camera(tmp_path):
    """The built-in shot pans (``demo.PAN``): ``motion auto`` finds it on the plate's own set
    and the new background in the ``bg`` layer slides by the same amount."""
    from actanywhere.cli import demo_shot as demo
    from actanywhere.media import imageio

    width, height, n = 1024, 540, 8  # at 512 px the wall shows too few corners to track
    p = demo.run_demo(str(tmp_path / "d"), n, width, height, engine="composite")
    with open(p.spec) as fh:
        shot = json.load(fh)
    assert shot["motion"]["source"] == "auto"

    def bg(frame: int) -> np.ndarray:
        px = imageio.read(p.output.replace("####", str(frame)), ["bg.R", "bg.G", "bg.B"]).pixels
        return np.log1p(np.maximum(px, 0)).mean(axis=2).astype(np.float64)

    (dx, dy), _ = cv2.phaseCorrelate(bg(demo.FIRST_FRAME), bg(demo.FIRST_FRAME + n - 1))
    expected = -demo.PAN * width / 2048 * (n - 1) / n  # the camera pans right: the set slides left
    assert abs(dx - expected) < 0.1 * abs(expected), (dx, expected)
    assert abs(dy) < 2.0
