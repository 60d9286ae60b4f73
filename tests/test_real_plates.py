"""What a compositor meets on real EXRs (issue 12): non-finite values, HDR backgrounds,
chromaticities, luminance/chroma files, anamorphic backgrounds, harmonisation per shot."""

from __future__ import annotations

import numpy as np
import OpenImageIO as oiio
import pytest
from conftest import corpus, make_shot, read_exr, write_exr
from test_job import channel, shot_spec

from actanywhere.errors import InputError
from actanywhere.media import color, imageio, imagewrite, raster
from actanywhere.shot import job


def _all_finite(path) -> None:
    px, s = read_exr(path)
    assert np.isfinite(px).all(), f"{path}: {int((~np.isfinite(px)).sum())} non-finite values"
    return px, s


# ------------------------------------------------------------------------- NaN/Inf on write
def test_inf_in_the_plate_never_reaches_an_output_layer(tmp_path):
    plate, bg = make_shot(tmp_path)
    # poison the subject of every frame with -Inf, +Inf and NaN
    for f in range(1, 5):
        path = tmp_path / "plate" / f"plate.{f:04d}.exr"
        px, _ = read_exr(path)
        px = px.copy()
        x0 = 8 + 4 * (f - 1)
        px[12:22, x0 : x0 + 10, 0] = -np.inf
        px[12:14, x0 : x0 + 4, 1] = np.inf
        px[15, x0, 2] = np.nan
        write_exr(path, px, fmt="float")
    for n, settings in enumerate([{"harmonize": 1.0, "shadow": 0.8}, {"harmonize": 0.0},
                                  {"harmonize": 0.5, "shadow": 0.0}]):
        out = tmp_path / f"o{n}" / "c.####.exr"
        job.run(shot_spec(tmp_path, plate, bg, composite=settings,
                          output={"path": str(out)}))
        for f in range(1, 5):
            _all_finite(str(out).replace("####", f"{f:04d}"))


def test_writers_clamp_to_the_half_range(tmp_path):
    px = np.array([[[-1e6, 1e6, np.nan], [np.inf, -np.inf, 1.0]]], np.float32)
    imagewrite.write_exr(str(tmp_path / "a.exr"), ["R", "G", "B"], px, imageio.Window(0, 0, 2, 1))
    back, _ = _all_finite(tmp_path / "a.exr")
    np.testing.assert_array_equal(back.ravel(), [-65504, 65504, 0, 65504, -65504, 1])
    imagewrite.write_image(str(tmp_path / "a.png"), px)
    png = oiio.ImageBuf(str(tmp_path / "a.png")).get_pixels(oiio.FLOAT)
    assert np.isfinite(png).all() and png.min() >= 0 and png.max() <= 1


# ----------------------------------------------------------------------- HDR backgrounds
def test_nonfinite_background_pixels_are_filled_and_reported(tmp_path):
    plate, _ = make_shot(tmp_path)
    bg = np.full((72, 128, 3), 0.5, np.float32)
    bg[30:33, 60:63] = np.inf
    bg[10, 10] = np.nan
    write_exr(tmp_path / "nan_bg.exr", bg, channels=("R", "G", "B"), fmt="float")
    res = job.run(shot_spec(tmp_path, plate, tmp_path / "nan_bg.exr"))
    assert any("10 pixel(s) with NaN/Inf filled" in w for w in res.warnings), res.warnings
    px, s = _all_finite(tmp_path / "out" / "comp.0001.exr")
    # filled from neighbours: the whole enlarged background is the flat 0.5, nothing spread
    np.testing.assert_allclose(channel(px, s, "bg.G"), 0.5, atol=1e-3)


def test_enlarging_hdr_does_not_ring():
    img = np.full((40, 40, 3), 0.2, np.float32)
    img[18:22, 18:22] = 50.0  # a small sun
    up = raster.resize(img, 120, 120)
    assert up.min() >= 0.2 - 1e-4, up.min()  # no undershoot below the sky
    assert up.max() <= 50.0 + 1e-3
    assert up[60, 60, 0] == pytest.approx(50.0, rel=1e-3)  # the highlight survives


def test_bright_rings_enlarged_3x_has_no_negative_ringing():
    path = corpus("TestImages") / "BrightRings.exr"
    src = imageio.read(str(path)).channels(["R", "G", "B"])
    h, w = src.shape[:2]
    up = raster.resize(src, w * 3, h * 3)
    assert src.min() >= 0
    assert up.min() >= src.min() - 1e-4, up.min()
    assert up.max() <= src.max() + 1e-3


def test_bright_rings_nan_inf_background_is_cleaned():
    path = corpus("TestImages") / "BrightRingsNanInf.exr"
    img = imageio.read(str(path), clean=False)
    assert img.nonfinite > 0
    rgb, bad = raster.fill_nonfinite(img.channels(["R", "G", "B"]))
    assert bad > 0 and np.isfinite(rgb).all()
    up = raster.resize(rgb, rgb.shape[1] * 2, rgb.shape[0] * 2)
    assert np.isfinite(up).all() and up.max() <= rgb.max() + 1e-3


# ----------------------------------------------------------------------------- pixel aspect
def test_anamorphic_background_is_unsqueezed(tmp_path):
    plate, _ = make_shot(tmp_path)  # 64x36 square pixels
    # a 2:1 anamorphic background: a disc stored 32 px wide and 64 px high
    yy, xx = np.mgrid[0:64, 0:64].astype(np.float32)
    disc = (((xx + 0.5 - 32) / 16) ** 2 + ((yy + 0.5 - 32) / 32) ** 2 <= 1).astype(np.float32)
    bg = np.repeat(disc[..., None], 3, axis=2)
    write_exr(tmp_path / "ana.exr", bg, channels=("R", "G", "B"),
              attrs={"PixelAspectRatio": 2.0})
    job.run(shot_spec(tmp_path, plate, tmp_path / "ana.exr", background={"fit": "contain"}))
    px, s = read_exr(tmp_path / "out" / "comp.0001.exr")
    g = channel(px, s, "bg.G") > 0.5
    ys, xs = np.nonzero(g)
    width, height = xs.max() - xs.min() + 1, ys.max() - ys.min() + 1
    assert abs(width - height) <= 2, (width, height)  # round, not squeezed 2:1


# --------------------------------------------------------------------------- chromaticities
def test_known_primaries_choose_the_colourspace(tmp_path):
    plate, bg = make_shot(tmp_path)
    # write an AP0 plate explicitly: the same pixels, AP0 primaries in the header
    ap0 = color.PRIMARIES["ACES2065-1"]
    for f in range(1, 5):
        path = tmp_path / "plate" / f"plate.{f:04d}.exr"
        px, _ = read_exr(path)
        spec = oiio.ImageSpec(px.shape[1], px.shape[0], 4, "half")
        spec.channelnames = ("R", "G", "B", "A")
        spec.attribute("chromaticities", oiio.TypeDesc("float[8]"), ap0)
        out = oiio.ImageOutput.create(str(path))
        out.open(str(path), spec)
        out.write_image(np.ascontiguousarray(px))
        out.close()
    res = job.run(shot_spec(tmp_path, plate, bg))
    assert any("ACES2065-1" in w and "plate.colorspace" in w for w in res.warnings), res.warnings
    px, s = read_exr(tmp_path / "out" / "comp.0001.exr")
    expect = color.ColorContext().convert(np.array([[0.9, 0.3, 2.5]], np.float32),
                                          "ACES2065-1", color.WORKING_SPACE)[0]
    np.testing.assert_allclose([channel(px, s, c)[12, 10] for c in "RGB"], expect, rtol=3e-3)
    # the output is Rec.709 and says so, not AP0
    written = s.getattribute("chromaticities")
    np.testing.assert_allclose(written, color.PRIMARIES[color.WORKING_SPACE], atol=1e-4)


def test_xyz_file_is_converted_by_its_primaries():
    path = corpus("Chromaticities")
    xyz = imageio.read(str(path / "XYZ.exr"))
    rec = imageio.read(str(path / "Rec709.exr"))
    cc = color.ColorContext()
    space, note = cc.file_space(None, xyz.info.file_format, xyz.info.metadata,
                                "plate.colorspace")
    assert "match no colourspace" in note and "plate.colorspace" in note
    linear = cc.to_working(xyz.channels(["R", "G", "B"]), space)
    ref = rec.channels(["R", "G", "B"])
    # the same picture once its primaries are honoured (read as Rec.709 it is far off)
    err = np.abs(linear - ref).mean()
    assert err < 0.01 * np.abs(xyz.channels(["R", "G", "B"]) - ref).mean(), err


def test_output_in_another_space_gets_its_chromaticities(shot):
    root, plate, bg = shot
    job.run(shot_spec(root, plate, bg, color={"output_space": "ACEScg"}))
    _, s = read_exr(root / "out" / "comp.0001.exr")
    np.testing.assert_allclose(s.getattribute("chromaticities"), color.PRIMARIES["ACEScg"],
                               atol=1e-4)


# ------------------------------------------------------------------------ luminance/chroma
@pytest.mark.parametrize("name", ["LuminanceChroma/Flowers.exr", "Chromaticities/XYZ_YC.exr"])
def test_luminance_chroma_files_are_read_as_rgb(name):
    # were refused as luminance/chroma (not damaged) before issue 33: now rebuilt as RGB
    path = corpus(name.split("/")[0]) / name.split("/")[1]
    assert imageio.read(str(path)).info.channels == ("R", "G", "B")


# ----------------------------------------------------------------------------- harmonisation
def test_harmonisation_gain_is_one_per_shot(tmp_path):
    """A white panel whose visible part changes colour mix must not change colour itself."""
    w, h = 64, 36
    root = tmp_path
    (root / "plate").mkdir()
    for i, f in enumerate(range(1, 9)):
        rgba = np.zeros((h, w, 4), np.float32)
        rgba[..., :3] = 0.2
        rgba[8:28, 8:24, :3] = 1.0  # white panel
        rgba[8:28, 8:24, 3] = 1.0
        # a green part of the subject shrinks frame by frame (the visible mix changes)
        rgba[8:28, 24 : 24 + 16 - 2 * i, :3] = [0.1, 0.9, 0.1]
        rgba[8:28, 24 : 24 + 16 - 2 * i, 3] = 1.0
        write_exr(root / "plate" / f"plate.{f:04d}.exr", rgba)
    _, bg = make_shot(root / "b")
    job.run(shot_spec(root, root / "plate" / "plate.####.exr", bg,
                      composite={"harmonize": 1.0}))
    panel = []
    for f in range(1, 9):
        px, s = read_exr(root / "out" / f"comp.{f:04d}.exr")
        panel.append([channel(px, s, c)[15, 12] for c in "RGB"])
    panel = np.array(panel)
    np.testing.assert_allclose(panel, panel[0][None].repeat(8, 0), rtol=2e-3)
    assert not np.allclose(panel[0], 1.0, atol=0.01)  # harmonised, not untouched


def test_harmonisation_is_off_by_default(shot):
    root, plate, bg = shot
    from actanywhere import spec as spec_mod

    assert spec_mod.CompositeSettings().harmonize == 0.0
    data = {"plate": {"path": str(plate)}, "background": {"path": str(bg)},
            "output": {"path": str(root / "d" / "c.####.exr")}}
    job.run(spec_mod.from_dict(data))
    px, s = read_exr(root / "d" / "c.0001.exr")
    np.testing.assert_allclose([channel(px, s, c)[12, 10] for c in "RGB"], [0.9, 0.3, 2.5],
                               rtol=1e-3)


# ------------------------------------------------------------------ checks before any pixel
@pytest.mark.parametrize("damage", ["empty", "truncated", "unfinished"])
def test_broken_plate_frames_are_found_before_the_first_frame(tmp_path, damage):
    plate, bg = make_shot(tmp_path)
    path = tmp_path / "plate" / "plate.0003.exr"
    data = path.read_bytes()
    if damage == "empty":
        path.write_bytes(b"")
    elif damage == "truncated":
        path.write_bytes(data[: len(data) * 2 // 3])
    else:  # an interrupted writer leaves a zero in the chunk table
        import struct

        # 64x36 half RGBA, zip: a table of 3 chunk offsets after the header, the first
        # pointing just past the table; zero the last one
        table = next(p for p in range(8, len(data) - 8)
                     if struct.unpack("<Q", data[p : p + 8])[0] == p + 24)
        path.write_bytes(data[: table + 16] + bytes(8) + data[table + 24 :])
    sp = shot_spec(tmp_path, plate, bg, output={"path": str(tmp_path / "new" / "c.####.exr")})
    with pytest.raises(InputError) as exc:
        job.check(sp)
    assert str(path) in str(exc.value) and "re-render" in str(exc.value)
    with pytest.raises(InputError):
        job.run(sp)
    assert not (tmp_path / "new").exists()  # no empty output folder left behind


def test_output_that_is_not_exr_is_refused_up_front(shot):
    from actanywhere.errors import OutputError

    root, plate, bg = shot
    with pytest.raises(OutputError, match=r"\.exr extension"):
        job.check(shot_spec(root, plate, bg, output={"path": str(root / "o" / "c.####.png")}))
    assert not (root / "o").exists()


def test_missing_background_and_impossible_engine_settings_fail_the_check(shot):
    from actanywhere.errors import ModelError

    root, plate, bg = shot
    with pytest.raises(InputError, match="nope.exr: file not found"):
        job.check(shot_spec(root, plate, root / "nope.exr"))
    with pytest.raises(ModelError, match="condition_frame 99 is not in the shot's frames"):
        job.check(shot_spec(root, plate, bg, engine={"name": "diffusion"},
                            diffusion={"condition": "composite", "condition_frame": 99}))
    assert not (root / "out").exists()


def test_corpus_files_are_not_flagged_incomplete():
    flagged = [p.name for p in corpus("TestImages").glob("*.exr") if imageio.incomplete(str(p))]
    flagged += [p.name for p in corpus("DisplayWindow").glob("*.exr")
                if imageio.incomplete(str(p))]
    assert not flagged


def test_info_flags_truncated_frames_and_windows(tmp_path):
    from test_cli import cli

    make_shot(tmp_path)
    frame = tmp_path / "plate" / "plate.0002.exr"
    frame.write_bytes(frame.read_bytes()[:-40])
    r = cli("info", tmp_path / "plate" / "plate.####.exr", "--json")
    assert r.returncode == 3, r.stderr
    import json

    doc = json.loads(r.stdout)
    assert list(doc["flags"]) == ["2"] and "truncated" in doc["flags"]["2"]
    outside = corpus("DisplayWindow") / "t09.exr"
    r = cli("info", outside)
    assert "entirely outside the display window" in r.stdout


# -------------------------------------------------------------------------- stereo / views
def _stereo_plate(root, multipart: bool):
    """Frames 1-2, 64x36: left eye subject at x 8-20 (alpha there), right eye at x 30-42."""
    (root / "plate").mkdir(parents=True, exist_ok=True)
    eyes = {}
    for eye, x0 in (("left", 8), ("right", 30)):
        rgba = np.zeros((36, 64, 4), np.float32)
        rgba[..., :3] = 0.2
        rgba[10:26, x0 : x0 + 12] = [0.9, 0.3, 0.1, 1.0] if eye == "left" else [0.1, 0.3, 0.9, 1]
        eyes[eye] = rgba
    for f in (1, 2):
        path = str(root / "plate" / f"plate.{f:04d}.exr")
        if multipart:
            specs = []
            for eye in ("left", "right"):
                spec = oiio.ImageSpec(64, 36, 4, "half")
                spec.channelnames = ("R", "G", "B", "A")
                spec.attribute("view", eye)
                spec.attribute("name", eye)
                specs.append(spec)
            out = oiio.ImageOutput.create(path)
            assert out.open(path, specs)
            for i, eye in enumerate(("left", "right")):
                if i:
                    assert out.open(path, specs[i], "AppendSubimage")
                out.write_image(eyes[eye])
            out.close()
        else:  # single part: the hero (right) unprefixed, left.* for the other eye
            px = np.concatenate([eyes["right"], eyes["left"]], axis=2)
            spec = oiio.ImageSpec(64, 36, 8, "half")
            spec.channelnames = ("R", "G", "B", "A", "left.R", "left.G", "left.B", "left.A")
            spec.attribute("multiView", oiio.TypeDesc("string[2]"), ("right", "left"))
            out = oiio.ImageOutput.create(path)
            assert out.open(path, spec)
            out.write_image(px)
            out.close()
    return root / "plate" / "plate.####.exr"


@pytest.mark.parametrize("multipart", [False, True])
@pytest.mark.parametrize("how", ["view", "layer"])
def test_the_chosen_view_gives_colour_and_matte_of_the_same_eye(tmp_path, multipart, how):
    plate = _stereo_plate(tmp_path, multipart)
    _, bg = make_shot(tmp_path / "b")
    sel = {"view": "left"} if how == "view" else {"layer": "left"}
    res = job.run(shot_spec(tmp_path, plate, bg, plate=sel))
    if how == "layer":  # a layer taken to mean a view is said; a view asked for is not
        assert any("using view 'left'" in w for w in res.warnings), res.warnings
    else:
        assert not any("using view" in w for w in res.warnings), res.warnings
    px, s = read_exr(tmp_path / "out" / "comp.0001.exr")
    matte = channel(px, s, "matte.A")
    assert matte[15, 12] == 1.0 and matte[15, 35] == 0.0  # the left eye's alpha, not the right's
    np.testing.assert_allclose([channel(px, s, c)[15, 12] for c in "RGB"], [0.9, 0.3, 0.1],
                               rtol=2e-3)
    assert s.get_string_attribute("view") == "left"


@pytest.mark.parametrize("multipart", [False, True])
def test_default_view_is_the_hero_and_a_wrong_view_is_named(tmp_path, multipart):
    plate = _stereo_plate(tmp_path, multipart)
    _, bg = make_shot(tmp_path / "b")
    job.run(shot_spec(tmp_path, plate, bg))
    px, s = read_exr(tmp_path / "out" / "comp.0001.exr")
    hero = "left" if multipart else "right"
    assert s.get_string_attribute("view") == hero
    with pytest.raises(InputError, match="no view 'centre'; it has views"):
        job.check(shot_spec(tmp_path, plate, bg, plate={"view": "centre"},
                            output={"path": str(tmp_path / "x" / "c.####.exr")}))


def test_info_lists_views_and_parts(tmp_path):
    from test_cli import cli

    plate = _stereo_plate(tmp_path, multipart=True)
    r = cli("info", str(plate).replace("####", "0001"))
    assert "views  left, right (hero: left)" in r.stdout
    assert "1: right view right (R,G,B,A)" in r.stdout
    adjuster = corpus("MultiView") / "Adjuster.exr"
    left = imageio.read(str(adjuster), view="left")
    assert left.info.channels == ("R", "G", "B")
    assert [left.info.file_channels[c] for c in "RGB"] == ["left.R", "left.G", "left.B"]
    fog = imageio.read(str(corpus("MultiView") / "Fog.exr"), view="right")
    assert fog.info.file_channels == {"Y": "right.Y"}


def test_segment_checks_plate_frames_before_its_first_matte(tmp_path):
    from actanywhere.shot import segment

    plate, _ = make_shot(tmp_path)
    (tmp_path / "plate" / "plate.0002.exr").write_bytes(b"")
    spec = segment.SegmentSpec.model_validate({
        "plate": {"path": str(plate)}, "matte": {"source": "alpha"},
        "output": {"path": str(tmp_path / "m" / "m.####.exr")}})
    with pytest.raises(InputError, match=r"plate\.0002\.exr: 0-byte file"):
        segment.run(spec)
    assert not (tmp_path / "m").exists()
