"""The takes browser (PySide6, offscreen) on take folders made by real composite jobs."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from conftest import make_shot, write_exr

pytest.importorskip("PySide6")

from actanywhere import spec  # noqa: E402
from actanywhere.api import Client  # noqa: E402
from actanywhere.api.takes import Take, Takes  # noqa: E402
from actanywhere.browser.qt import QtCore, QtGui  # noqa: E402
from actanywhere.browser.window import TakesBrowser  # noqa: E402
from actanywhere.shot import job  # noqa: E402

TINTS = [(1.0, 1.0, 1.0), (0.3, 0.6, 1.6), (1.6, 0.8, 0.3), (0.5, 1.5, 0.5)]


def _backgrounds(root, bg):
    import OpenImageIO as oiio

    px = np.asarray(oiio.ImageBuf(str(bg)).get_pixels(oiio.FLOAT))[..., :3]
    paths = []
    for i, tint in enumerate(TINTS):
        path = root / f"bg{i}.exr"
        write_exr(path, px * np.array(tint, np.float32), channels=("R", "G", "B"))
        paths.append(path)
    return paths


def _spec(plate, bg, out, **extra):
    return spec.from_dict({"plate": {"path": str(plate)}, "background": {"path": str(bg)},
                           "output": {"path": str(out), "proxy_width": 160},
                           "composite": {"harmonize": 0.0, "shadow": 0.0}, **extra})


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    """Two shots: sh010 with three takes, sh020 with one; each take a different background."""
    root = tmp_path_factory.mktemp("takes")
    plate, bg = make_shot(root / "src", frames=range(1, 7), size=(192, 108))
    bgs = _backgrounds(root / "src", bg)
    for shot, count in (("sh010", 3), ("sh020", 1)):
        for n in range(1, count + 1):
            out = root / "shots" / shot / f"take_{n:03d}" / f"{shot}.####.exr"
            job.run(_spec(plate, bgs[n - 1], out))
    return root, plate, bgs


def _browser(qtbot, root) -> TakesBrowser:
    browser = TakesBrowser(str(root))
    qtbot.addWidget(browser)
    browser.resize(1100, 700)
    browser.show()
    assert browser.wait_settled()
    return browser


def _region(image: QtGui.QImage, rect: QtCore.QRect) -> np.ndarray:
    """A QImage region as floats (h, w, 3), sampled on a 24x24 grid."""
    out = np.zeros((24, 24, 3))
    for j in range(24):
        for i in range(24):
            c = image.pixelColor(rect.x() + (2 * i + 1) * rect.width() // 48,
                                 rect.y() + (2 * j + 1) * rect.height() // 48)
            out[j, i] = (c.redF(), c.greenF(), c.blueF())
    return out


def _proxy(path) -> np.ndarray:
    image = QtGui.QImage(str(path))
    return _region(image, image.rect())


def test_the_grid_shows_every_take_filters_by_shot_and_sorts(qtbot, shots):
    root, _, _ = shots
    browser = _browser(qtbot, root / "shots")
    names = [browser.grid.item(i).data(QtCore.Qt.UserRole).name
             for i in range(browser.grid.count())]
    assert sorted(names) == ["take_001", "take_001", "take_002", "take_003"]
    assert [f.take.created for f in browser.visible()] == sorted(
        (f.take.created for f in browser.visible()), reverse=True)  # newest first
    browser.shots.setCurrentText("sh010")
    assert [f.name for f in browser.visible()] == ["take_003", "take_002", "take_001"]
    browser.sort.setCurrentText("oldest first")
    assert [browser.grid.item(i).text().split("\n")[0] for i in range(3)] == [
        "take_001", "take_002", "take_003"]
    # every tile shows its take's picture (not the blank placeholder)
    icon = browser.grid.item(0).icon().pixmap(192, 108).toImage()
    assert icon.pixelColor(96, 20) != QtGui.QColor(40, 40, 40)


def test_side_by_side_and_wipe_show_the_right_frames(qtbot, shots):
    root, _, _ = shots
    browser = _browser(qtbot, root / "shots")
    browser.shots.setCurrentText("sh010")
    browser.select("take_002", "take_003")
    browser.mode.setCurrentIndex(1)  # side by side
    browser.slider.setValue(4)
    assert browser.wait_settled()
    a, b = (Take.load(str(root / "shots" / "sh010" / n)) for n in ("take_002", "take_003"))
    shot = browser.viewer.grab().toImage()
    w, h = shot.width(), shot.height()
    half = w // 2
    box_h = round((half - 2) * 108 / 192)
    left = QtCore.QRect(0, (h - box_h) // 2, half - 2, box_h)
    right = QtCore.QRect(half + 2, (h - box_h) // 2, w - half - 2, box_h)
    frames_a, frames_b = dict(a.proxies()), dict(b.proxies())

    def err(rect, path):
        return np.abs(_region(shot, rect) - _proxy(path)).mean()

    assert err(left, frames_a[4]) < 0.03 and err(right, frames_b[4]) < 0.03
    assert err(left, frames_a[1]) > 2 * err(left, frames_a[4])  # that frame, not another
    assert err(left, frames_b[4]) > 0.1  # that take, not the other

    browser.mode.setCurrentIndex(2)  # wipe: A left of the line, B right of it
    browser.viewer.wipe = 0.5
    assert browser.wait_settled()
    shot = browser.viewer.grab().toImage()
    box_h = round(w * 108 / 192)
    box = QtCore.QRect(0, (h - box_h) // 2, w, box_h) if box_h <= h else None
    if box is None:
        box_w = round(h * 192 / 108)
        box = QtCore.QRect((w - box_w) // 2, 0, box_w, h)
    pa, pb = _proxy(frames_a[4]), _proxy(frames_b[4])
    got = _region(shot, box)
    assert np.abs(got[:, :10] - pa[:, :10]).mean() < 0.03
    assert np.abs(got[:, 14:] - pb[:, 14:]).mean() < 0.03

    browser.against.setCurrentIndex(1)  # against the plate
    assert browser.viewer.labels == ("take_002", "plate")
    assert browser.viewer.b == dict(a.plate_proxies())


def test_star_and_note_persist_and_choose_one_take(qtbot, shots):
    root, _, _ = shots
    browser = _browser(qtbot, root / "shots")
    browser.shots.setCurrentText("sh010")
    browser.select("take_001")
    with qtbot.waitSignal(browser.chosen) as chosen:
        browser.star.setChecked(True)
    assert chosen.args[0].name == "take_001"
    browser.select("take_002")
    browser.star.setChecked(True)
    browser.note.setText("warmer sky, keep")
    browser.note.editingFinished.emit()
    node = Takes(str(root / "shots" / "sh010"))
    assert node.chosen().name == "take_002"
    assert [t.starred for t in node.list()] == [False, True, False]
    assert node.get("take_002").note == "warmer sky, keep"
    again = _browser(qtbot, root / "shots")  # a new window reads them back
    again.shots.setCurrentText("sh010")
    texts = [again.grid.item(i).text() for i in range(again.grid.count())]
    assert [t for t in texts if t.startswith("\u2605")] == ["\u2605 take_002\ncomposite, done"]
    again.select("take_002")
    assert again.star.isChecked() and again.note.text() == "warmer sky, keep"


def test_delete_moves_only_that_take_to_the_trash(qtbot, tmp_path):
    plate, bg = make_shot(tmp_path / "src", frames=range(1, 4), size=(96, 54))
    for n in (1, 2):
        job.run(_spec(plate, bg, tmp_path / "shots" / f"take_{n:03d}" / "s.####.exr"))
    (tmp_path / "shots" / "readme.txt").write_text("not a take")
    browser = _browser(qtbot, tmp_path / "shots")
    browser.select("take_001")
    browser.delete_selected()
    qtbot.waitUntil(lambda: browser.grid.count() == 1, timeout=5000)
    assert sorted(os.listdir(tmp_path / "shots")) == [".trash", "readme.txt", "take_002"]
    (gone,) = os.listdir(tmp_path / "shots" / ".trash")
    assert gone.startswith("take_001-")
    assert "take.json" in os.listdir(tmp_path / "shots" / ".trash" / gone)
    assert "moved take_001" in browser.status.text()


def test_a_running_takes_frames_appear_as_they_are_written(qtbot, tmp_path):
    plate, bg = make_shot(tmp_path / "src", frames=range(1, 7), size=(96, 54))
    out = tmp_path / "shots" / "take_001" / "s.####.exr"
    paused, resume = threading.Event(), threading.Event()

    def report(ev):  # the job pauses after its second frame until the test lets it go
        if ev.stage == "frames" and ev.done == 2:
            paused.set()
            resume.wait(30)

    runner = threading.Thread(target=job.run, args=(_spec(plate, bg, out, threads=1), report))
    runner.start()
    try:
        assert paused.wait(30)
        browser = _browser(qtbot, tmp_path / "shots")
        browser.select("take_001")
        assert browser.current().status == "running"
        assert sorted(browser.viewer.a) == [1, 2]
        assert browser.slider.maximum() == 2
    finally:
        resume.set()
        runner.join(30)
    qtbot.waitUntil(lambda: browser.current().status == "done", timeout=5000)  # the poll
    assert sorted(browser.viewer.a) == [1, 2, 3, 4, 5, 6] and browser.slider.maximum() == 6
    assert "composite, done" in browser.grid.item(0).text()


def test_a_damaged_take_is_an_error_tile_and_the_window_still_works(qtbot, shots, tmp_path):
    root, plate, bgs = shots
    job.run(_spec(plate, bgs[0], tmp_path / "shots" / "take_001" / "s.####.exr"))
    bad = tmp_path / "shots" / "take_002"
    bad.mkdir()
    (bad / "take.json").write_text('{"status": "runn')  # cut short mid-write
    half = tmp_path / "shots" / "take_003"
    half.mkdir()
    (half / "take.json").write_text('{"folder": "x", "number": 3, "status": "running", '
                                    '"output": "x/s.####.exr", "proxy": "proxy/s.####.jpg"}')
    browser = _browser(qtbot, tmp_path / "shots")
    assert browser.grid.count() == 3
    tiles = {browser.grid.item(i).data(QtCore.Qt.UserRole).name: browser.grid.item(i)
             for i in range(3)}
    assert tiles["take_002"].text() == "take_002\ncannot read take.json"
    assert "cannot read the record" in tiles["take_002"].toolTip()
    assert "1 cannot be read" in browser.status.text()
    browser.select("take_002")
    assert "take_002" in browser.status.text() and "cannot read" in browser.status.text()
    browser.select("take_003")  # a record but no frames yet: an empty viewer, no error
    assert browser.viewer.a == {} and browser.wait_settled()
    browser.select("take_001")
    assert browser.wait_settled() and len(browser.viewer.a) == 6


def test_send_again_with_changes_makes_a_new_take_through_the_worker(qtbot, shots, worker,
                                                                     tmp_path):
    _, plate, bgs = shots
    job.run(_spec(plate, bgs[0], tmp_path / "shots" / "take_001" / "s.####.exr"))
    browser = TakesBrowser(str(tmp_path / "shots"),
                           connect=lambda: Client.from_state(worker.state))
    qtbot.addWidget(browser)
    assert browser.wait_settled()
    browser.select("take_001")
    new = browser.send_again(browser.current(), background=str(bgs[2]), label="orange sky")
    assert new is not None and new.name == "take_002"
    # the job's record says done, then the host's end (the job id, timings) is added
    qtbot.waitUntil(lambda: Take.load(new.folder).job is not None, timeout=60000)
    record = Take.load(new.folder)
    assert record.status == "done" and record.timings["total_s"] > 0
    assert record.spec["background"]["path"] == str(bgs[2]) and record.label == "orange sky"
    assert len(record.files()) == 6 and len(record.proxies()) == 6 and record.job
    qtbot.waitUntil(lambda: browser.grid.count() == 2, timeout=5000)


def test_the_browser_loads_no_numpy(tmp_path):
    """It docks inside Nuke, which gets only the standard-library layer of the core."""
    code = ("import sys; import actanywhere.browser.window; "
            "bad = [m for m in ('numpy', 'torch', 'OpenImageIO') if m in sys.modules]; "
            "assert not bad, bad")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=dict(os.environ, QT_QPA_PLATFORM="offscreen"))
    assert r.returncode == 0, r.stderr


def test_the_command_writes_a_screenshot(shots, tmp_path):
    root, _, _ = shots
    shot = tmp_path / "takes.png"
    r = subprocess.run([sys.executable, "-m", "actanywhere", "takes", str(root / "shots"),
                        "--select", "take_002,take_003", "--mode", "wipe",
                        "--screenshot", str(shot), "--size", "1100x640"],
                       capture_output=True, text=True,
                       env=dict(os.environ, QT_QPA_PLATFORM="offscreen"))
    assert r.returncode == 0, r.stderr
    image = QtGui.QImage(str(shot))
    assert (image.width(), image.height()) == (1100, 640)
    r = subprocess.run([sys.executable, "-m", "actanywhere", "takes", str(tmp_path / "nope")],
                       capture_output=True, text=True)
    assert r.returncode == 3 and "no such folder" in r.stderr
