import os

import numpy as np
import pytest
from conftest import corpus, read_exr, write_exr

from actanywhere.errors import InputError, OutputError
from actanywhere.media import imageio, imagewrite
from actanywhere.media.imageio import Window


def test_data_window_is_placed_in_display_window(tmp_path):
    data = np.random.default_rng(0).random((10, 20, 3)).astype(np.float32)
    p = tmp_path / "dw.exr"
    write_exr(p, data, ("R", "G", "B"), display=(0, 0, 40, 30), data_origin=(5, 7), fmt="float")
    img = imageio.read(str(p))
    assert img.pixels.shape == (30, 40, 3)
    assert img.info.display == Window(0, 0, 40, 30) and img.info.data == Window(5, 7, 20, 10)
    np.testing.assert_array_equal(img.pixels[7:17, 5:25], data)
    assert img.pixels[:7].max() == 0 and img.pixels[:, 25:].max() == 0


def test_data_outside_display_is_cropped(tmp_path):
    data = np.arange(10 * 10, dtype=np.float32).reshape(10, 10, 1)
    p = tmp_path / "out.exr"
    write_exr(p, data, ("Y",), display=(2, 3, 6, 5), data_origin=(0, 0), fmt="float")
    img = imageio.read(str(p))
    assert img.pixels.shape == (5, 6, 1)
    np.testing.assert_array_equal(img.pixels[..., 0], data[3:8, 2:8, 0])


def test_corpus_display_windows_match_direct_reads():
    folder = corpus("DisplayWindow")
    for path in sorted(folder.glob("*.exr")):
        img = imageio.read(str(path))
        raw, spec = read_exr(path)
        assert img.pixels.shape == (spec.full_height, spec.full_width, spec.nchannels), path
        # Every data pixel that lies inside the display window lands at the right place.
        corners = ((0, 0), (spec.height // 2, spec.width // 2), (spec.height - 1, spec.width - 1))
        for y, x in corners:
            dy, dx = spec.y + y - spec.full_y, spec.x + x - spec.full_x
            if 0 <= dy < spec.full_height and 0 <= dx < spec.full_width:
                np.testing.assert_allclose(img.pixels[dy, dx], raw[y, x], err_msg=str(path))


def test_select_channels_by_name_in_any_order(tmp_path):
    px = np.stack([np.full((4, 4), v, np.float32) for v in (1, 2, 3, 4, 5)], -1)
    p = tmp_path / "layers.exr"
    write_exr(p, px, ("R", "G", "B", "A", "matte.A"))
    img = imageio.read(str(p), ["matte.A", "R"])
    assert img.info.channels == ("matte.A", "R")
    assert img.pixels[0, 0].tolist() == [5.0, 1.0]
    with pytest.raises(InputError, match=r"no channel\(s\) depth.Z.*R, G, B, A, matte.A"):
        imageio.read(str(p), ["depth.Z"])


def test_rgb_names_luminance_and_bad_channels():
    assert imageio.rgb_names(("A", "B", "G", "R"), "f") == ["R", "G", "B"]
    assert imageio.rgb_names(("Y",), "f") == ["Y", "Y", "Y"]
    assert imageio.rgb_names(("bg.R", "bg.G", "bg.B"), "f", "bg") == ["bg.R", "bg.G", "bg.B"]
    with pytest.raises(InputError) as err:
        imageio.rgb_names(("G",), "/x/only_g.exr")
    assert "/x/only_g.exr" in str(err.value) and "has G" in str(err.value)


def test_nan_and_inf_are_replaced(tmp_path):
    px = np.ones((4, 4, 3), np.float32)
    px[0, 0] = [np.nan, np.inf, -np.inf]
    p = tmp_path / "nan.exr"
    write_exr(p, px, ("R", "G", "B"), fmt="float")
    img = imageio.read(str(p))
    assert np.isfinite(img.pixels).all() and img.nonfinite == 3
    assert img.pixels[0, 0].tolist() == [0.0, 65504.0, -65504.0]


def test_corpus_nan_inf_file():
    path = corpus("TestImages") / "BrightRingsNanInf.exr"
    img = imageio.read(str(path))
    assert img.nonfinite > 0 and np.isfinite(img.pixels).all()


def test_every_damaged_corpus_file_gives_one_line_error():
    folder = corpus("Damaged")
    files = sorted(p for p in folder.iterdir() if p.is_file())
    assert files
    for path in files:
        with pytest.raises(InputError) as err:
            imageio.read(str(path))
        msg = str(err.value)
        assert str(path) in msg and "\n" not in msg, msg
        assert "re-render or replace" in msg


def test_missing_and_non_image_files(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        imageio.read(str(tmp_path / "none.exr"))
    junk = tmp_path / "junk.exr"
    junk.write_bytes(b"\x76\x2f\x31\x01" + b"\0" * 10)
    with pytest.raises(InputError, match="junk.exr: cannot read"):
        imageio.read(str(junk))


def test_truncated_exr_is_an_error(tmp_path):
    px = np.random.default_rng(1).random((64, 64, 3)).astype(np.float32)
    p = tmp_path / "full.exr"
    write_exr(p, px, ("R", "G", "B"))
    t = tmp_path / "trunc.exr"
    t.write_bytes(p.read_bytes()[: os.path.getsize(p) // 2])
    with pytest.raises(InputError, match="trunc.exr"):
        imageio.read(str(t))


@pytest.mark.parametrize("compression", ["zip", "piz", "dwaa"])
def test_write_exr_layers_windows_metadata(tmp_path, compression):
    h, w = 12, 16
    layers = {"R": np.full((h, w), 2.5), "G": np.zeros((h, w)), "B": np.ones((h, w)),
              "A": np.ones((h, w)), "bg.R": np.full((h, w), 0.25), "matte.A": np.eye(h, w)}
    p = tmp_path / "o.exr"
    imagewrite.write_exr(str(p), list(layers), np.stack(list(layers.values()), -1),
                      Window(-4, 2, w, h), {"Copyright": "me",
                      "actanywhere:frame": 7}, compression, pixel_aspect=2.0)
    raw, spec = read_exr(p)
    assert set(spec.channelnames) == set(layers)
    assert str(spec.format) == "half"
    assert (spec.full_x, spec.full_y, spec.full_width, spec.full_height) == (-4, 2, w, h)
    assert (spec.x, spec.y, spec.width, spec.height) == (-4, 2, w, h)
    assert spec.get_string_attribute("compression").startswith(compression)
    assert spec.get_string_attribute("Copyright") == "me"
    assert spec.get_int_attribute("actanywhere:frame") == 7
    assert spec.get_float_attribute("PixelAspectRatio") == 2.0
    r = raw[..., list(spec.channelnames).index("R")]
    assert np.allclose(r, 2.5, rtol=2e-3 if compression == "dwaa" else 0)  # > 1 survives
    assert not [f for f in os.listdir(tmp_path) if "tmp" in f]


def test_metadata_round_trip_keeps_types(tmp_path):
    p = tmp_path / "in.exr"
    write_exr(p, np.zeros((2, 2, 3)), ("R", "G", "B"), attrs={"owner": "studio"})
    info = imageio.probe(str(p))
    q = tmp_path / "out.exr"
    imagewrite.write_exr(str(q), ["R"], np.zeros((2, 2)), info.display, info.metadata)
    _, spec = read_exr(q)
    assert spec.getattribute("screenWindowCenter") == (0.0, 0.0)
    assert "owner" in info.metadata or "Copyright" in info.metadata


def test_write_to_unwritable_place_is_an_error_and_leaves_nothing(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot write"):
        imagewrite.write_exr(str(blocker / "o.exr"), ["R"], np.zeros((2, 2)), Window(0, 0, 2, 2))
    with pytest.raises(OutputError, match="compression"):
        imagewrite.write_exr(str(tmp_path / "o.exr"), ["R"], np.zeros((2, 2)), Window(0, 0, 2, 2),
                          compression="lzma")
    assert sorted(os.listdir(tmp_path)) == ["file"]
