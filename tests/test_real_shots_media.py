"""Issue 33, real shots, second pass: proxies and previews of frames with any channel count and
view, the second view of a multi-part stereo file, the contact shadow at the feet,
luminance/chroma EXRs, and the view note only when the file chose the view."""

from __future__ import annotations

import hashlib
import shutil
import struct

import numpy as np
import OpenImageIO as oiio
import pytest
from conftest import corpus, make_shot, read_exr, write_exr
from test_job import channel, shot_spec

from actanywhere.errors import InputError
from actanywhere.media import imageio, preview, raster
from actanywhere.shot import job, segment

W, H = 160, 90  # wider than the proxies (64): every proxy and preview is shrunk


def _write_parts(path, parts):
    """A multi-part EXR: parts as (name, view, channels, pixels)."""
    specs = []
    for name, view, names, px in parts:
        spec = oiio.ImageSpec(px.shape[1], px.shape[0], len(names), "half")
        spec.channelnames = tuple(names)
        spec.attribute("name", name)
        if view:
            spec.attribute("view", view)
        specs.append(spec)
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), specs), oiio.geterror()
    for i, (_, _, _, px) in enumerate(parts):
        if i:
            assert out.open(str(path), specs[i], "AppendSubimage")
        assert out.write_image(np.ascontiguousarray(px, np.float32))
    out.close()


def _eye(x0, colour, size=(W, H)):
    """RGBA of one eye: a set of 0.2 grey, a subject of ``colour`` (alpha 1) at x0."""
    w, h = size
    rgba = np.zeros((h, w, 4), np.float32)
    rgba[..., :3] = 0.2
    rgba[20:70, x0 : x0 + 30] = [*colour, 1.0]
    return rgba


LEFT, RIGHT = (0.9, 0.3, 0.1), (0.1, 0.3, 0.9)


# ------------------------------------------------------------ 1. proxies of any layout
def _frames(root, case):
    """Plate frames 1-2 of ``case`` (a channel layout, single- or multi-part, views) and a
    matte sequence; returns (plate pattern, matte pattern, plate section)."""
    (root / "plate").mkdir(parents=True)
    left, right = _eye(20, LEFT), _eye(100, RIGHT)
    y = right[..., :1]
    layouts = {"Y": (["Y"], y), "YA": (["Y", "A"], right[..., [0, 3]]),
               "RGB": (list("RGB"), right[..., :3]), "RGBA": (list("RGBA"), right),
               "RGBAZ": ([*"RGBA", "Z"], np.concatenate([right, y], -1)),
               "RGBAZN": ([*"RGBA", "Z", "N"], np.concatenate([right, y, y], -1))}
    for f in (1, 2):
        path = root / "plate" / f"p.{f:04d}.exr"
        if case in layouts:
            names, px = layouts[case]
            write_exr(path, px, names)
        elif case.startswith("mono") or case.startswith("mv"):  # single part, multiView
            names = [*"RGBA", "Z", "left.R", "left.G", "left.B", "left.A", "left.Z"]
            px = np.concatenate([right, y, left, y], -1)
            spec = oiio.ImageSpec(W, H, len(names), "half")
            spec.channelnames = tuple(names)
            spec.attribute("multiView", oiio.TypeDesc("string[2]"), ("right", "left"))
            out = oiio.ImageOutput.create(str(path))
            assert out.open(str(path), spec)
            out.write_image(np.ascontiguousarray(px))
            out.close()
        else:  # multi-part stereo, a depth part before each eye's colour
            _write_parts(path, [("depth_left", "left", ["Z"], y), ("rgba_left", "left",
                         list("RGBA"), left), ("depth_right", "right", ["Z"], y),
                         ("rgba_right", "right", list("RGBA"), right)])
        matte = np.zeros((H, W, 1), np.float32)
        matte[20:70, 20:50], matte[20:70, 100:130] = 1.0, 1.0  # both eyes' subjects
        write_exr(root / f"m.{f:04d}.exr", matte, ["A"])
    section = {"mv_left_view": {"view": "left"}, "mv_left_layer": {"layer": "left"},
               "mp_right_view": {"view": "right"}, "mp_left_part": {"layer": "rgba_left"},
               "mp_right_part": {"layer": "rgba_right"}}.get(case, {})
    return root / "plate" / "p.####.exr", root / "m.####.exr", section


CASES = ["Y", "YA", "RGB", "RGBA", "RGBAZ", "RGBAZN", "mv_hero", "mv_left_view",
         "mv_left_layer", "mp_hero", "mp_right_view", "mp_left_part", "mp_right_part"]


@pytest.mark.parametrize("case", CASES)
def test_proxies_of_any_channel_count_and_view(tmp_path, case):
    plate, matte, section = _frames(tmp_path, case)
    _, bg = make_shot(tmp_path / "b")
    res = job.run(shot_spec(tmp_path, plate, bg, plate=section,
                            matte={"source": "file", "path": str(matte)},
                            output={"proxy": True, "proxy_width": 64},
                            composite={"shadow": 0.5}))
    assert res.frames == [1, 2]
    proxy = tmp_path / "out" / "proxy"
    for name in ("comp.0001.jpg", "comp.0002.jpg", "comp.plate.0001.jpg", "comp.contact.jpg"):
        buf = oiio.ImageBuf(str(proxy / name))
        assert not buf.has_error and buf.spec().nchannels == 3, name
    assert oiio.ImageBuf(str(proxy / "comp.0001.jpg")).spec().width == 64
    if case.startswith("mp") or case.startswith("mv"):  # the eye asked for, or the hero
        eye = "left" if "left" in case or case == "mp_hero" else "right"
        px, s = read_exr(tmp_path / "out" / "comp.0001.exr")
        assert s.get_string_attribute("view") == eye
        x = 30 if eye == "left" else 110
        np.testing.assert_allclose([channel(px, s, c)[40, x] for c in "RGB"],
                                   LEFT if eye == "left" else RIGHT, rtol=2e-3)


@pytest.mark.parametrize("case", ["Y", "RGBAZN", "mv_left_view", "mp_right_part"])
def test_segment_previews_of_any_channel_count_and_view(tmp_path, case):
    plate, matte, section = _frames(tmp_path, case)
    res = segment.run(segment.SegmentSpec.model_validate({
        "plate": {"path": str(plate), **section},
        "matte": {"source": "file", "path": str(matte)},
        "output": {"path": str(tmp_path / "seg" / "m.####.exr"), "preview_width": 64}}))
    sheet = oiio.ImageBuf(str(tmp_path / "seg" / "preview" / "contact_sheet.png"))
    assert res.preview and not sheet.has_error


def test_every_shrink_takes_any_channel_layout():
    from actanywhere.media.color import ColorContext
    from actanywhere.shot.proxy import TakeProxies
    from actanywhere.spec import from_dict

    rng = np.random.default_rng(0)
    cc = ColorContext()
    arrays = []
    for c in range(1, 7):
        base = rng.random((H, W, c)).astype(np.float32)
        arrays += [base, base[..., :1], base[..., c - 1 :], base[..., ::-1], base[::2, ::2],
                   base.astype(np.float16), np.asfortranarray(base), base[..., [0] * 3]]
    arrays.append(rng.random((H, W)).astype(np.float32))
    for a in arrays:
        small = raster.shrink(a, 64)
        assert small.shape[:2] == (round(a.shape[0] * 64 / a.shape[1]), 64), a.shape
        assert preview.thumbnail(a, cc, 64).shape[-1] == 3, a.shape
    spec = from_dict({"plate": {"path": "/nowhere/p.####.exr"}, "background": {"path": "b"},
                      "output": {"path": "/nowhere/o/c.####.exr", "proxy_width": 64}})
    proxies = TakeProxies(spec, cc)
    for a in arrays:  # the proxy writer's own path, straight to JPEG bytes
        assert proxies.display(a).shape == (round(a.shape[0] * 64 / a.shape[1]), 64, 3)


# --------------------------------------------------- 2. the views of multi-part stereo
@pytest.mark.parametrize("how", [{"view": "right"}, {"layer": "rgba_right"},
                                 {"layer": "right"}, {"view": "left"}, {"layer": "rgba_left"}])
def test_each_view_of_a_multipart_file_takes_its_own_parts(tmp_path, how):
    """Parts depth_left, rgba_left, depth_right, rgba_right: a view's colour, alpha and
    matte come from that view's parts, whichever comes first."""
    plate, _, _ = _frames(tmp_path, "mp_hero")
    _, bg = make_shot(tmp_path / "b")
    job.run(shot_spec(tmp_path, plate, bg, plate=how))
    eye = "right" if "right" in str(how) else "left"
    px, s = read_exr(tmp_path / "out" / "comp.0001.exr")
    assert s.get_string_attribute("view") == eye
    x, other = (110, 30) if eye == "right" else (30, 110)
    matte = channel(px, s, "matte.A")
    assert matte[40, x] == 1.0 and matte[40, other] == 0.0  # its own alpha
    np.testing.assert_allclose([channel(px, s, c)[40, x] for c in "RGB"],
                               RIGHT if eye == "right" else LEFT, rtol=2e-3)
    img = imageio.read(str(plate).replace("####", "0001"), view=eye)
    assert img.info.channels == ("R", "G", "B", "A", "Z")


def test_part_names_info_prints_are_accepted_as_layers(tmp_path):
    from test_cli import cli

    plate, _, _ = _frames(tmp_path, "mp_hero")
    _, bg = make_shot(tmp_path / "b")
    r = cli("info", str(plate).replace("####", "0001"))
    line = next(ln for ln in r.stdout.splitlines() if ln.lstrip().startswith("parts"))
    printed = [p.split(":", 1)[1].split(" view ")[0].strip() for p in line.split(";")]
    assert printed == ["depth_left", "rgba_left", "depth_right", "rgba_right"], line
    for name in ("rgba_left", "rgba_right"):
        out = tmp_path / name / "c.####.exr"
        r = cli("generate", "--plate", plate, "--background", bg, "--plate-layer", name,
                "-o", out, "--shadow", "0")
        assert r.returncode == 0, r.stderr
        _, s = read_exr(str(out).replace("####", "0001"))
        assert s.get_string_attribute("view") == name.split("_")[1]
    r = cli("generate", "--plate", plate, "--background", bg, "--plate-layer", "depth_right",
            "-o", tmp_path / "d" / "c.####.exr")
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "depth_right" in r.stderr and "without colour" in r.stderr


def test_a_stereo_matte_file_gives_the_plates_view(tmp_path):
    plate, _, _ = _frames(tmp_path, "mp_hero")
    _, bg = make_shot(tmp_path / "b")
    for f in (1, 2):
        ml, mr = np.zeros((H, W, 1), np.float32), np.zeros((H, W, 1), np.float32)
        ml[20:70, 20:50], mr[20:70, 100:130] = 1.0, 1.0
        _write_parts(tmp_path / f"sm.{f:04d}.exr", [("left", "left", ["A"], ml),
                                                    ("right", "right", ["A"], mr)])
    job.run(shot_spec(tmp_path, plate, bg, plate={"view": "right"},
                      matte={"source": "file", "path": str(tmp_path / "sm.####.exr")}))
    px, s = read_exr(tmp_path / "out" / "comp.0001.exr")
    assert channel(px, s, "matte.A")[40, 110] == 1.0 and channel(px, s, "matte.A")[40, 30] == 0


@pytest.mark.parametrize("view", ["left", "right", "center"])
def test_corpus_stereo_file_gives_each_view(tmp_path, view):
    src = corpus("MultiView") / "Adjuster.exr"
    (tmp_path / "plate").mkdir()
    shutil.copyfile(src, tmp_path / "plate" / "p.0001.exr")
    ref = imageio.read(str(src), view=view)
    w, h = ref.info.display.width, ref.info.display.height
    write_exr(tmp_path / "m.0001.exr", np.ones((h, w, 1), np.float32), ["A"])
    res = job.run(shot_spec(tmp_path, tmp_path / "plate" / "p.####.exr",
                            corpus("Backgrounds") / "Desk.exr", plate={"view": view},
                            matte={"source": "file", "path": str(tmp_path / "m.####.exr")},
                            output={"proxy": True, "proxy_width": 64}))
    assert not any("using view" in w for w in res.warnings), res.warnings
    px, s = read_exr(tmp_path / "out" / "comp.0001.exr")
    assert s.get_string_attribute("view") == view
    np.testing.assert_allclose(np.stack([channel(px, s, c) for c in "RGB"], -1),
                               ref.channels(["R", "G", "B"]), atol=2e-3, rtol=2e-3)


# ----------------------------------------------------------------- 7. contact shadow
def _standing(root, size=(1280, 720)):
    """A subject standing on the floor line (row 600): body, a left foot down to row 599,
    a right foot (further back) down to row 584; a flat 0.5 grey background."""
    w, h = size
    (root / "plate").mkdir(parents=True)
    rgba = np.zeros((h, w, 4), np.float32)
    rgba[..., :3] = 0.3
    for y0, y1, x0, x1 in ((200, 450, 560, 720), (450, 600, 570, 610), (450, 585, 670, 710)):
        rgba[y0:y1, x0:x1] = [0.8, 0.6, 0.5, 1.0]
    write_exr(root / "plate" / "p.0001.exr", rgba)
    write_exr(root / "bg.exr", np.full((h, w, 3), 0.5, np.float32), ["R", "G", "B"])
    return root / "plate" / "p.####.exr", root / "bg.exr"


def shadow_gaps(root) -> dict[str, int]:
    """Rows between each foot's lowest matte row and the darkest row of the shadow in the
    foot's columns (the background layer against the flat 0.5 it was)."""
    px, s = read_exr(root / "out" / "comp.0001.exr")
    shade = 1.0 - channel(px, s, "bg.G") / 0.5
    matte = channel(px, s, "matte.A")
    gaps = {}
    for foot, cols in (("left", slice(575, 605)), ("right", slice(675, 705))):
        lowest = int(np.nonzero(matte[:, cols].max(axis=1) > 0.5)[0].max())
        darkest = int(np.argmax(shade[:, cols].mean(axis=1)))
        gaps[foot] = darkest - lowest
        assert shade[lowest + 1, cols].mean() > 0.3, foot  # visible right under the foot
    return gaps


def test_the_contact_shadow_touches_both_feet(tmp_path):
    plate, bg = _standing(tmp_path)
    job.run(shot_spec(tmp_path, plate, bg, composite={"shadow": 0.8}))
    gaps = shadow_gaps(tmp_path)
    assert all(abs(g) <= 1 for g in gaps.values()), gaps  # was 14 and 29 rows below


# ----------------------------------------------------------- 8. luminance/chroma EXRs
#: sha256 (first 16 hex digits) of the float16 RGB OpenEXR 3.1's RgbaInputFile reads
OPENEXR_RGB = {"Chromaticities/Rec709_YC.exr": "f86d07529f33a3a0",
               "Chromaticities/XYZ_YC.exr": "dd54f422d71a68c1",
               "LuminanceChroma/Flowers.exr": "efde7e9f08ad8842",
               "LuminanceChroma/StarField.exr": "473a3cc0200f999a"}


@pytest.mark.parametrize("name", sorted(OPENEXR_RGB))
def test_luminance_chroma_reads_as_openexr_does(name):
    folder, file = name.split("/")
    img = imageio.read(str(corpus(folder) / file))
    assert img.info.channels == ("R", "G", "B")
    rgb = np.ascontiguousarray(img.pixels.astype(np.float16))
    assert hashlib.sha256(rgb.tobytes()).hexdigest()[:16] == OPENEXR_RGB[name]


@pytest.mark.parametrize("yc,rgb,limit", [("Rec709_YC", "Rec709", 0.03),
                                          ("XYZ_YC", "XYZ", 0.015)])
def test_luminance_chroma_matches_the_rgb_version(yc, rgb, limit):
    folder = corpus("Chromaticities")
    got = imageio.read(str(folder / f"{yc}.exr"))
    ref = imageio.read(str(folder / f"{rgb}.exr")).channels(["R", "G", "B"])
    err = float(np.abs(got.pixels - ref).mean() / np.abs(ref).mean())
    assert err < limit, err  # chroma at a quarter of the pixels: 2.4% and 1.2% measured
    assert got.info.metadata.get("chromaticities") == imageio.probe(
        str(folder / f"{rgb}.exr")).metadata.get("chromaticities")


#: scan lines per chunk by compression (none, rle, zips, zip, piz, pxr24, b44, b44a, dwaa, dwab)
LINES_PER_CHUNK = (1, 1, 1, 16, 32, 16, 32, 32, 32, 256)


def _yc_exr(path, y, ry, by, compression=0):
    """A luminance/chroma scan-line EXR written byte by byte (neither OpenImageIO nor OpenEXR's
    Python binding writes subsampled channels): Y full size, RY and BY 2x2-subsampled, half;
    every chunk stored as it is, as OpenEXR stores a chunk its compression does not shrink."""
    h, w = y.shape

    def attr(name, kind, data):
        return name.encode() + b"\0" + kind.encode() + b"\0" + struct.pack("<i", len(data)) + data

    chans = b"".join(n.encode() + b"\0" + struct.pack("<iB3xii", 1, 0, s, s)
                     for n, s in (("BY", 2), ("RY", 2), ("Y", 1))) + b"\0"
    box = struct.pack("<4i", 0, 0, w - 1, h - 1)
    head = (b"\x76\x2f\x31\x01" + struct.pack("<i", 2) + attr("channels", "chlist", chans)
            + attr("compression", "compression", bytes([compression]))
            + attr("dataWindow", "box2i", box) + attr("displayWindow", "box2i", box)
            + attr("lineOrder", "lineOrder", b"\0")
            + attr("pixelAspectRatio", "float", struct.pack("<f", 1.0))
            + attr("screenWindowCenter", "v2f", struct.pack("<2f", 0, 0))
            + attr("screenWindowWidth", "float", struct.pack("<f", 1.0)) + b"\0")
    chunks, lines = [], LINES_PER_CHUNK[compression]
    for start in range(0, h, lines):
        data = b""
        for row in range(start, min(start + lines, h)):
            data += b"".join(a[row // 2].astype("<f2").tobytes() for a in (by, ry)
                             if row % 2 == 0)
            data += y[row].astype("<f2").tobytes()
        chunks.append(struct.pack("<ii", start, len(data)) + data)
    offsets, pos = [], len(head) + 8 * len(chunks)
    for c in chunks:
        offsets.append(pos)
        pos += len(c)
    path.write_bytes(head + struct.pack(f"<{len(chunks)}Q", *offsets) + b"".join(chunks))


def test_luminance_chroma_plate_and_background_run_a_job(tmp_path):
    plate, _ = make_shot(tmp_path, frames=range(1, 3))  # its alpha becomes the matte file
    w, h = 64, 36
    yw = np.array([0.2126, 0.7152, 0.0722], np.float32)
    colour = np.array([0.6, 0.3, 0.15], np.float32)  # flat: subsampling loses nothing
    lum = float(colour @ yw)
    y = np.full((h, w), lum, np.float32)
    ry = np.full((h // 2, w // 2), colour[0] / lum - 1, np.float32)
    by = np.full((h // 2, w // 2), colour[2] / lum - 1, np.float32)
    (tmp_path / "yc").mkdir()
    for f in (1, 2):
        _yc_exr(tmp_path / "yc" / f"p.{f:04d}.exr", y, ry, by)
    _yc_exr(tmp_path / "bg_yc.exr", y, ry, by)
    res = job.run(shot_spec(tmp_path, tmp_path / "yc" / "p.####.exr", tmp_path / "bg_yc.exr",
                            matte={"source": "file", "path": str(plate)}))
    assert res.frames == [1, 2]
    px, s = read_exr(tmp_path / "out" / "comp.0001.exr")
    for layer in ("", "bg."):  # the plate's colour under the subject, the background's
        got = [channel(px, s, layer + c)[15, 12 if not layer else 2] for c in "RGB"]
        np.testing.assert_allclose(got, colour, rtol=5e-3)


def test_unreadable_luminance_chroma_files_are_one_line(tmp_path, capsys):
    y = np.full((8, 8), 0.5, np.float32)
    c = np.zeros((4, 4), np.float32)
    for name, compression in (("dwaa", 8), ("dwab", 9)):  # DWA is read (chunks stored as is)
        _yc_exr(tmp_path / f"{name}.exr", y, c, c, compression=compression)
        img = imageio.read(str(tmp_path / f"{name}.exr"))
        assert img.info.channels == ("R", "G", "B")
        assert img.pixels.shape == (8, 8, 3) and (img.pixels == 0.5).all()
    _yc_exr(tmp_path / "cut.exr", y, c, c)
    data = (tmp_path / "cut.exr").read_bytes()
    (tmp_path / "cut.exr").write_bytes(data[:-30])
    _yc_exr(tmp_path / "zip.exr", y, c, c, compression=3)  # one chunk of 192 bytes, last
    data = (tmp_path / "zip.exr").read_bytes()
    (tmp_path / "zip.exr").write_bytes(data[:-200] + struct.pack("<ii", 0, 100) + data[-192:])
    for name, why in (("cut.exr", "truncated"), ("zip.exr", "cannot read pixels")):
        with pytest.raises(InputError) as err:  # cut short; ZIP data that is not zlib
            imageio.read(str(tmp_path / name))
        assert name in str(err.value) and "\n" not in str(err.value)
        assert why in str(err.value) and "re-render or replace" in str(err.value)
    assert capsys.readouterr().out == ""  # the binding's note of the failed part is caught
    info = imageio.probe(str(tmp_path / "dwaa.exr"))
    assert info.channels == ("R", "G", "B") and info.display.width == 8


# ---------------------------------------------------------------- 10a. the view note
@pytest.mark.parametrize("multipart", [False, True])
def test_the_view_is_said_only_when_the_file_chose_it(tmp_path, multipart):
    plate, _, _ = _frames(tmp_path, "mp_hero" if multipart else "mv_hero")
    _, bg = make_shot(tmp_path / "b")
    hero = "left" if multipart else "right"
    chosen = job.run(shot_spec(tmp_path, plate, bg))
    assert any(f"using view '{hero}'" in w and "hero" in w for w in chosen.warnings)
    for view in ("left", "right"):
        asked = job.run(shot_spec(tmp_path, plate, bg, plate={"view": view},
                                  output={"path": str(tmp_path / view / "c.####.exr")}))
        assert not any("using view" in w for w in asked.warnings), asked.warnings
