"""No traceback, no dead process: a full disk, damaged files, odd formats and channel counts
give one-line errors and leave no half-written file (issue 30, 5-8)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest
from conftest import corpus, make_shot, start_worker, stop_worker, write_exr

from actanywhere import spec
from actanywhere.api import takes as takes_mod
from actanywhere.errors import InputError
from actanywhere.media import imageio
from actanywhere.shot import job


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "actanywhere", *map(str, args)],
                          capture_output=True, text=True,
                          env=dict(os.environ, HF_HUB_OFFLINE="1"))


@contextlib.contextmanager
def _small_disk(folder: Path, size: str):
    """A tmpfs of ``size`` mounted at ``folder`` (needs root and a kernel that lets this
    process mount; the test is skipped otherwise)."""
    folder.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True, text=True) if shutil.which("mount") else None
    if made is None or made.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (not root, or no mount permission): "
                    f"{made.stderr.strip() if made else 'no mount command'}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@pytest.fixture
def full_disk(tmp_path):
    """A small tmpfs (256 KiB) for the test to fill."""
    with _small_disk(tmp_path / "small", "256k") as folder:
        yield folder


def _fill(folder: Path, leave: int) -> None:
    """Fill ``folder``'s file system, leaving about ``leave`` bytes free."""
    free = shutil.disk_usage(folder).free
    with open(folder / f"fill-{uuid.uuid4().hex}", "wb") as fh, \
            contextlib.suppress(OSError):  # full already
        fh.write(b"\0" * max(0, free - leave))


@pytest.mark.parametrize("ext", ["jpg", "png", "gif", "exr", "tif"])
def test_every_writer_reports_a_full_disk_in_one_line(full_disk, ext):
    _fill(full_disk, 0)
    target = full_disk / f"frame.{ext}"
    code = ("import numpy as np, sys\n"
            "from actanywhere.media import imageio, imagewrite, preview\n"
            "from actanywhere.errors import OutputError\n"
            "px = np.random.default_rng(0).random((300, 400, 3)).astype('float32')\n"
            "try:\n"
            f"    if {ext!r} == 'gif':\n"
            f"        preview.animated_gif({str(target)!r}, [px, px])\n"
            f"    elif {ext!r} == 'exr':\n"
            f"        imagewrite.write_exr({str(target)!r}, 'RGB', px,\n"
            "                          imageio.Window(0, 0, 400, 300))\n"
            "    else:\n"
            f"        imagewrite.write_image({str(target)!r}, px, 'uint8', "
            "{'Compression': 'jpeg:88'})\n"
            "except OutputError as exc:\n"
            "    print(exc)\n"
            "    sys.exit(4)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 4, (r.returncode, r.stdout, r.stderr)  # the process lived on
    assert r.stdout.strip().startswith(f"{target}: cannot write") and \
        "disk is full" in r.stdout, r.stdout
    assert [n for n in os.listdir(full_disk) if not n.startswith("fill-")] == []


def test_a_job_on_a_full_disk_fails_in_one_line_and_says_so_in_its_record(tmp_path, full_disk):
    plate, bg = make_shot(tmp_path / "sh010", frames=range(1, 7), size=(256, 144))
    out = full_disk / "take" / "comp.####.exr"
    data = {"plate": {"path": str(plate)}, "background": {"path": str(bg)},
            "output": {"path": str(out), "proxy_width": 128}, "threads": 1}
    spec_file = tmp_path / "s.json"
    spec_file.write_text(json.dumps(data))
    (full_disk / "take").mkdir()
    _fill(full_disk, 48 << 10)  # room for the record and a frame or two, not six
    r = _cli("generate", "--spec", spec_file, "--progress", "none")
    assert r.returncode == 4, r.stderr
    lines = [ln for ln in r.stderr.strip().splitlines() if not ln.startswith("warning")]
    assert len(lines) == 1 and "disk is full" in lines[0], r.stderr
    record = takes_mod.for_output(str(out))
    assert record is not None and record.status == "failed" and "disk is full" in record.error
    left = [n for n in os.listdir(full_disk / "take") if n.startswith(".")]
    left += [n for n in os.listdir(full_disk / "take" / "proxy") if n.startswith(".")] \
        if (full_disk / "take" / "proxy").is_dir() else []
    assert left == []  # no hidden temporary file stays


def test_the_worker_survives_a_full_disk_and_runs_the_next_job(tmp_path, full_disk):
    plate, bg = make_shot(tmp_path / "sh010", frames=range(1, 5), size=(256, 144))
    proc, client = start_worker(tmp_path / "state")
    try:
        (full_disk / "take").mkdir()
        _fill(full_disk, 24 << 10)
        spec_ = {"plate": {"path": str(plate)}, "background": {"path": str(bg)},
                 "output": {"path": str(full_disk / "take" / "c.####.exr"),
                            "proxy_width": 128}, "threads": 1}
        first = client.wait(client.submit(spec_), timeout=120)
        assert first["status"] == "failed" and "disk is full" in first["error"], first
        assert proc.poll() is None  # the worker is alive
        spec_["output"]["path"] = str(tmp_path / "good" / "c.####.exr")
        second = client.wait(client.submit(spec_), timeout=120)
        assert second["status"] == "done", second
        assert len([n for n in os.listdir(tmp_path / "good") if n.endswith(".exr")]) == 4
    finally:
        stop_worker(proc, client)


def test_damaged_exrs_named_exr_give_one_line_errors(tmp_path):
    """OpenEXR's damaged-file corpus under .exr names: OpenImageIO's error text then holds
    bytes of the file (not UTF-8); every file gives one line naming it, in info too."""
    folder = corpus("Damaged")
    files = sorted(p for p in folder.iterdir() if p.is_file())
    for i, src in enumerate(files):
        path = tmp_path / f"damaged_{i:03d}.exr"
        shutil.copyfile(src, path)
        for call in (imageio.probe, imageio.read):
            try:
                call(str(path))
            except InputError as exc:
                assert str(path) in str(exc) and "\n" not in str(exc), str(exc)
    # the CLI's info and a plate of such a file: one line, no traceback
    bad = [tmp_path / f"damaged_{i:03d}.exr" for i in range(len(files))]
    r = _cli("info", *bad[:40])
    assert "Traceback" not in r.stderr and "UnicodeDecodeError" not in r.stderr, r.stderr


@pytest.mark.parametrize("fmt,pages", [("uint8", 1), ("uint16", 1), ("float", 1),
                                       ("uint16", 3)])
def test_tiff_backgrounds_are_read(tmp_path, fmt, pages):
    path = tmp_path / f"bg_{fmt}_{pages}.tif"
    px = np.random.default_rng(1).random((36, 64, 3)).astype(np.float32)
    out = oiio.ImageOutput.create(str(path))
    specs = [oiio.ImageSpec(64, 36, 3, fmt) for _ in range(pages)]
    assert out.open(str(path), specs)
    for i in range(pages):
        if i:
            assert out.open(str(path), specs[i], "AppendSubimage")
        assert out.write_image(px * (i + 1) / pages)
    out.close()
    img = imageio.read(str(path))
    tol = {"uint8": 1 / 255, "uint16": 1 / 65535, "float": 0}[fmt]
    assert np.abs(img.pixels - px / pages).max() <= tol + 1e-6
    plate, _ = make_shot(tmp_path / "sh", frames=range(1, 3))
    job.run(spec.from_dict({"plate": {"path": str(plate)}, "background": {"path": str(path)},
                            "output": {"path": str(tmp_path / "o" / "c.####.exr")}}))
    assert len(list((tmp_path / "o").glob("c.*.exr"))) == 2


@pytest.mark.parametrize("channels", [("Y",), ("Y", "A"), ("R", "G", "B"),
                                      ("R", "G", "B", "A"),
                                      ("R", "G", "B", "A", "Z"),
                                      ("R", "G", "B", "A", "Z", "N.x", "N.y", "N.z")])
def test_plates_of_any_channel_count_make_proxies(tmp_path, channels):
    h, w = 54, 96
    px = np.random.default_rng(2).random((h, w, len(channels))).astype(np.float32)
    if "A" in channels:
        px[..., channels.index("A")] = 1.0
    (tmp_path / "plate").mkdir()
    for f in (1, 2):
        write_exr(tmp_path / "plate" / f"p.{f:04d}.exr", px, channels=channels)
    _, bg = make_shot(tmp_path / "src", frames=range(1, 2))
    out = tmp_path / "o" / "c.####.exr"
    data = {"plate": {"path": str(tmp_path / "plate" / "p.####.exr")},
            "background": {"path": str(bg)}, "output": {"path": str(out), "proxy_width": 64}}
    if "A" not in channels:  # a matte sequence beside the plate
        matte = np.zeros((h, w, 1), np.float32)
        matte[10:40, 20:60] = 1.0
        for f in (1, 2):
            write_exr(tmp_path / "plate" / f"m.{f:04d}.exr", matte, channels=("A",))
        data["matte"] = {"source": "file", "path": str(tmp_path / "plate" / "m.####.exr")}
    spec_file = tmp_path / "s.json"
    spec_file.write_text(json.dumps(data))
    r = _cli("generate", "--spec", spec_file, "--progress", "none")
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == 0, r.stderr
    assert len(os.listdir(tmp_path / "o" / "proxy")) == 5  # 2 comp, 2 plate, contact sheet


def test_a_take_record_with_a_wrong_type_is_skipped_and_named(tmp_path, qtbot):
    pytest.importorskip("PySide6")
    from actanywhere.browser.window import TakesBrowser

    plate, bg = make_shot(tmp_path / "src", frames=range(1, 3), size=(96, 54))
    root = tmp_path / "shots"
    for n in (1, 2, 3):
        job.run(spec.from_dict({"plate": {"path": str(plate)}, "background": {"path": str(bg)},
                                "output": {"path": str(root / f"take_{n:03d}" / "c.####.exr"),
                                           "proxy_width": 64}}))
    bad = root / "take_002" / "take.json"
    bad.write_text(json.dumps(dict(json.loads(bad.read_text()), proxy=5)))
    with pytest.raises(ValueError, match="take_002/take.json: field 'proxy' is int '5', not str"):
        takes_mod.Take.load(str(root / "take_002"))
    assert [t.name for t in takes_mod.Takes(str(root)).list()] == ["take_001", "take_003"]
    found = {f.folder.rsplit(os.sep, 1)[-1]: f for f in takes_mod.find(str(root))}
    assert found["take_002"].take is None and "field 'proxy'" in found["take_002"].error
    browser = TakesBrowser(str(root))
    qtbot.addWidget(browser)
    browser.show()
    assert browser.wait_settled()  # no hang: the two good takes show, the bad one is named
    texts = [browser.grid.item(i).text() for i in range(browser.grid.count())]
    assert sum("take_001" in t or "take_003" in t for t in texts) == 2, texts


def _spec_file(tmp_path, data) -> Path:
    path = tmp_path / f"spec_{uuid.uuid4().hex[:6]}.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_hostile_specs_give_one_line_errors(shot):
    root, plate, bg = shot
    base = {"plate": {"path": str(plate)}, "background": {"path": str(bg)},
            "output": {"path": str(root / "o" / "c.####.exr")}}
    cases = [
        (dict(base, plate="x"), ["--plate", plate], 2, 'plate: is "x" in the ShotSpec'),
        ('{"plate":' * 200_000 + "1" + "}" * 200_000, [], 2, "not valid JSON (nested too "
                                                             "deeply)"),
        (dict(base, plate={"path": "/x/" + "a" * 10_000_000 + ".####.exr"}), [], 2,
         "plate.path: 10000012 characters, at most 4096"),
        (dict(base, output={"path": "/o/" + "b" * 3000 + ".####.exr"}), [], 4, "characters)"),
    ]
    for data, extra, code, text in cases:
        r = subprocess.run([sys.executable, "-m", "actanywhere", "generate", "--spec",
                            _spec_file(root, data), *map(str, extra), "--progress", "none"],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == code and text in r.stderr, (code, r.returncode, r.stderr[:300])
        assert len(r.stderr) < 1000 and len(r.stderr.strip().splitlines()) == 1, r.stderr[:300]


def test_huge_frame_ranges_are_checked_against_the_files_at_once(shot):
    root, plate, bg = shot  # frames 1-4 on disk
    args = ["generate", "--plate", plate, "--background", bg, "-o", root / "o" / "c.####.exr",
            "--progress", "none", "--frames"]
    r = subprocess.run([sys.executable, "-m", "actanywhere", *map(str, args), "1-9999999"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "9999999 frames, at most 1000000" in r.stderr, r.stderr
    r = subprocess.run([sys.executable, "-m", "actanywhere", *map(str, args), "1-200000"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 3 and "199996 missing plate frame(s) 5-200000" in r.stderr, r.stderr


def test_a_killed_runs_temporary_files_are_removed_by_the_next_run(shot):
    root, plate, bg = shot
    out = root / "o" / "c.####.exr"
    (root / "o" / "proxy").mkdir(parents=True)
    ours = [root / "o" / ".c.0002.k1ll3d_x.tmp.exr", root / "o" / "proxy" /
            ".c.0003.k1ll3d_y.tmp.jpg", root / "o" / ".take.abcdefgh.tmp.json"]
    other = root / "o" / ".other.0002.r4nn1ng_.tmp.exr"  # another output's, being written
    for path in [*ours, other]:
        path.write_bytes(b"half a frame")
    r = _cli("generate", "--plate", plate, "--background", bg, "-o", out)
    assert r.returncode == 0, r.stderr
    assert "removed 3 temporary file(s) a stopped run left" in r.stderr
    assert not any(p.exists() for p in ours) and other.exists()


def test_a_full_state_disk_is_a_507_and_the_worker_lives_on(tmp_path, shot):
    """The job store (SQLite) on a full disk: submit answers 507 naming the store, the worker
    stays up, and once there is room again the next job runs."""

    root, plate, bg = shot
    with _small_disk(tmp_path / "disk", "4m") as disk:
        _state_disk_fills_and_frees(disk, plate, bg, root)


def _state_disk_fills_and_frees(full_disk: Path, plate, bg, root: Path) -> None:
    from actanywhere.api import WorkerError

    proc, client = start_worker(full_disk / "state")
    try:
        data = {"plate": {"path": str(plate)}, "background": {"path": str(bg)},
                "output": {"path": str(root / "o1" / "c.####.exr")}, "threads": 1}
        assert client.wait(client.submit(data), timeout=120)["status"] == "done"
        _fill(full_disk, 0)
        data["output"]["path"] = str(root / "o2" / "c.####.exr")
        with pytest.raises(WorkerError) as err:
            client.submit(data)
        assert "jobs.sqlite: the disk holding the worker's job store is full" in str(err.value)
        assert "(HTTP 507)" in str(err.value) and proc.poll() is None
        for fill in full_disk.glob("fill-*"):
            fill.unlink()
        data["output"]["path"] = str(root / "o3" / "c.####.exr")
        assert client.wait(client.submit(data), timeout=120)["status"] == "done"
    finally:
        stop_worker(proc, client)
