"""Every job's proxies (OCIO view, written as frames finish) and its take record."""

from __future__ import annotations

import json
import os

import numpy as np
import OpenImageIO as oiio
import pytest
from conftest import make_shot, read_exr

from actanywhere import spec
from actanywhere.api.takes import Take, Takes, find, record_file, trash
from actanywhere.errors import ActAnywhereError, SpecError
from actanywhere.media.color import ColorContext
from actanywhere.media.raster import shrink
from actanywhere.shot import job


def _spec(root, plate, bg, out="out/comp.####.exr", **output):
    return spec.from_dict({"plate": {"path": str(plate)}, "background": {"path": str(bg)},
                           "output": {"path": str(root / out), **output},
                           "composite": {"harmonize": 0.0, "shadow": 0.0}})


def _jpeg(path) -> np.ndarray:
    return np.asarray(oiio.ImageBuf(str(path)).get_pixels(oiio.FLOAT))[..., :3]


def test_proxies_are_the_frames_through_the_ocio_view_not_a_clamp(tmp_path):
    plate, bg = make_shot(tmp_path, frames=range(1, 5), size=(320, 180))
    job.run(_spec(tmp_path, plate, bg, proxy_width=160))
    out = tmp_path / "out"
    proxies = sorted(os.listdir(out / "proxy"))
    assert proxies == ["comp.0001.jpg", "comp.0002.jpg", "comp.0003.jpg", "comp.0004.jpg",
                       "comp.contact.jpg", "comp.plate.0001.jpg", "comp.plate.0002.jpg",
                       "comp.plate.0003.jpg", "comp.plate.0004.jpg"]
    color = ColorContext()
    px, exr = read_exr(out / "comp.0002.exr")
    comp = px[..., [list(exr.channelnames).index(c) for c in "RGB"]]
    want = color.to_display(shrink(comp, 160))
    got = _jpeg(out / "proxy" / "comp.0002.jpg")
    assert got.shape == (90, 160, 3)
    assert np.abs(got - want).mean() < 0.02  # JPEG's loss only
    # the subject's blue of 2.5 is tone-mapped by the view, not clipped to 1 like a clamp
    clamp = np.clip(comp, 0, 1) ** (1 / 2.2)
    subject = shrink(px[..., list(exr.channelnames).index("matte.A")][..., None], 160)[..., 0]
    inside = subject > 0.99
    assert np.abs(got[inside] - shrink(clamp, 160)[inside]).mean() > 0.05
    plate_px, plate_spec = read_exr(plate.parent / "plate.0002.exr")
    plate_want = color.to_display(shrink(plate_px[..., :3], 160))
    assert np.abs(_jpeg(out / "proxy" / "comp.plate.0002.jpg") - plate_want).mean() < 0.02
    sheet = _jpeg(out / "proxy" / "comp.contact.jpg")
    assert sheet.shape[1] == 4 * 80 + 5 * 4  # four frames across at half the proxy width

    record = Take.load(str(out))
    assert record.status == "done" and record.engine == "composite" and record.written == 4
    assert record.motion == "none" and record.seed is None and record.error is None
    assert record.view == "sRGB - Display/ACES 1.0 - SDR Video"
    assert record.spec["plate"]["path"] == str(plate) and record.timings["job_s"] > 0
    assert [f for f, _ in record.proxies()] == [1, 2, 3, 4]
    assert [f for f, _ in record.plate_proxies()] == [1, 2, 3, 4]
    assert record.contact_sheet_file() == str(out / "proxy" / "comp.contact.jpg")


def test_the_record_says_why_a_take_failed_and_keeps_the_artists_star(tmp_path):
    plate, bg = make_shot(tmp_path, frames=range(1, 5))
    job.run(_spec(tmp_path, plate, bg))
    take = Take.load(str(tmp_path / "out"))
    take.mark(starred=True, note="the warm one")
    damaged = plate.parent / "plate.0003.exr"
    damaged.write_bytes(damaged.read_bytes()[:300])  # cut short, as a crashed render leaves it
    with pytest.raises(ActAnywhereError, match="plate.0003.exr"):
        job.run(_spec(tmp_path, plate, bg, existing="overwrite"))
    again = Take.load(str(tmp_path / "out"))
    assert again.status == "failed" and "plate.0003.exr" in again.error
    assert "\n" not in again.error  # one line, as the artist sees it
    assert again.starred and again.note == "the warm one"  # never overwritten by a job
    again.update(status="done")  # nor by another writer's save
    assert Take.load(str(tmp_path / "out")).starred


def test_a_view_not_in_the_config_is_refused_before_any_frame(tmp_path):
    plate, bg = make_shot(tmp_path)
    with pytest.raises(SpecError, match="output.proxy_view 'Cinema': not a display/view"):
        job.run(_spec(tmp_path, plate, bg, proxy_view="Cinema"))
    assert not (tmp_path / "out").exists()
    job.run(_spec(tmp_path, plate, bg, out="raw/c.####.exr",
                  proxy_view="sRGB - Display/Un-tone-mapped"))
    assert Take.load(str(tmp_path / "raw")).view == "sRGB - Display/Un-tone-mapped"


def test_proxy_off_writes_only_the_frames(tmp_path):
    plate, bg = make_shot(tmp_path)
    job.run(_spec(tmp_path, plate, bg, proxy=False))
    assert sorted(os.listdir(tmp_path / "out")) == [f"comp.{f:04d}.exr" for f in range(1, 5)]


def test_two_outputs_in_one_folder_keep_two_records(tmp_path):
    plate, bg = make_shot(tmp_path)
    job.run(_spec(tmp_path, plate, bg, out="out/a.####.exr"))
    assert record_file(str(tmp_path / "out" / "b.####.exr")) == "b.take.json"
    job.run(_spec(tmp_path, plate, bg, out="out/b.####.exr"))
    with open(tmp_path / "out" / "take.json") as fh:
        assert os.path.basename(json.load(fh)["output"]) == "a.####.exr"
    found = find(str(tmp_path))
    assert sorted((f.record, f.take.name) for f in found) == [("b.take.json", "b"),
                                                             ("take.json", "out")]


def test_trash_moves_only_that_take(tmp_path):
    plate, bg = make_shot(tmp_path)
    for n in (1, 2):
        job.run(_spec(tmp_path, plate, bg, out=f"shots/take_{n:03d}/sh.####.exr"))
    (tmp_path / "shots" / "notes.txt").write_text("keep me")
    job.run(_spec(tmp_path, plate, bg, out="shots/loose/a.####.exr"))
    job.run(_spec(tmp_path, plate, bg, out="shots/loose/b.####.exr"))
    root = str(tmp_path / "shots")
    takes = {f.take.name: f.take for f in find(root)}
    assert sorted(takes) == ["b", "loose", "take_001", "take_002"]
    target = trash(takes["take_001"], root)
    assert os.path.dirname(target) == os.path.join(root, ".trash")
    assert sorted(os.listdir(target)) == ["proxy", "sh.0001.exr", "sh.0002.exr", "sh.0003.exr",
                                          "sh.0004.exr", "take.json"]
    assert not (tmp_path / "shots" / "take_001").exists()
    assert len(os.listdir(tmp_path / "shots" / "take_002")) == 6
    assert (tmp_path / "shots" / "notes.txt").read_text() == "keep me"
    trash(takes["b"], root)  # a record that shares its folder: only its own files move
    left = sorted(os.listdir(tmp_path / "shots" / "loose"))
    assert left == ["a.0001.exr", "a.0002.exr", "a.0003.exr", "a.0004.exr", "proxy",
                    "take.json"]
    assert not [n for n in os.listdir(tmp_path / "shots" / "loose" / "proxy")
                if n.startswith("b.")]
    assert sorted(t.name for t in (f.take for f in find(root))) == ["loose", "take_002"]


def test_choosing_a_take_unstars_the_others(tmp_path):
    plate, bg = make_shot(tmp_path)
    for n in (1, 2, 3):
        job.run(_spec(tmp_path, plate, bg, out=f"node/take_{n:03d}/n.####.exr"))
    takes = Takes(str(tmp_path / "node"))
    takes.choose("take_002")
    assert takes.chosen().name == "take_002"
    takes.choose("take_003")
    assert [t.starred for t in takes.list()] == [False, False, True]
