"""The host-neutral layer (actanywhere.api) against a real worker: takes, the job handle's
callbacks on a pumped main thread, cancel from another thread, a worker killed mid-job."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading

from conftest import REPO, make_shot, read_exr, start_worker, stop_worker

from actanywhere import spec as specmod
from actanywhere.api import Client, JobHandle, MainThreadQueue, Takes, build, take_session
from actanywhere.api.patterns import frame_file, frames_on_disk, numbered


def _run_take(root, spec, state, **kw):
    """One take run to its end with callbacks pumped here; (take, handle, calls)."""
    main, calls = MainThreadQueue(), []
    on_main = threading.main_thread()

    def note(kind):
        def cb(*args):
            assert threading.current_thread() is on_main  # delivered on the main thread
            calls.append((kind, args))
        return cb

    take = Takes(root).new()
    handle = take_session.start(take, spec, lambda: Client.connect(str(state)),
                         main_thread=main.post, on_progress=note("progress"),
                         on_end=note("end"), **kw)
    main.run_until(handle)
    return take, handle, calls


def test_build_makes_a_valid_spec_with_absolute_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = build("plate/p.####.exr", "bg.exr", "out/c.####.exr", frames="1-4",
                 plate_colorspace="ACEScg", engine="diffusion", diffusion={"seed": 3},
                 composite={"shadow": 0.2}, matte={"source": "alpha", "path": None})
    assert data["version"] == specmod.SPEC_VERSION
    assert data["plate"] == {"path": str(tmp_path / "plate" / "p.####.exr"), "frames": "1-4",
                             "colorspace": "ACEScg"}
    assert "composite" not in data and data["matte"] == {"source": "alpha"}  # None left out
    shot = specmod.from_dict(data)  # what the worker checks it with
    assert shot.diffusion.seed == 3 and shot.output.path == str(tmp_path / "out" / "c.####.exr")


def test_takes_never_share_a_folder(tmp_path):
    root = Takes(str(tmp_path / "node"))
    made: list = []
    threads = [threading.Thread(target=lambda: made.append(root.new(label="x")))
               for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(t.number for t in made) == list(range(1, 13))
    assert [t.name for t in root.list()] == [f"take_{i:03d}" for i in range(1, 13)]
    (tmp_path / "node" / "take_099").mkdir()  # a folder without a record is not a take
    assert root.new().number == 100 and len(root.list()) == 13
    assert root.get("take_003: composite, done").number == 3 and root.get("take_555") is None


def test_frames_on_disk_reads_both_patterns(tmp_path):
    for name in ("c.1001.exr", "c.1003.exr", "c.0999.exr", ".c.1002.exr.tmp", "d.1001.exr"):
        (tmp_path / name).write_bytes(b"x")
    want = [999, 1001, 1003]
    assert [f for f, _ in frames_on_disk(str(tmp_path / "c.####.exr"))] == want
    assert [f for f, _ in frames_on_disk(str(tmp_path / "c.%04d.exr"))] == want
    assert frames_on_disk(str(tmp_path / "none" / "c.####.exr")) == []
    assert frame_file("/s/c.####.exr", 7) == "/s/c.0007.exr"
    assert frame_file("/s/c.%04d.exr", 1001) == frame_file("/s/c.#.exr", 1001) == "/s/c.1001.exr"


def test_numbered_turns_a_listed_file_into_its_pattern_and_frame():
    """Blender lists a strip's files; the ShotSpec wants a pattern."""
    assert numbered("plate.1001.exr") == ("plate.####.exr", 1001, 4)
    assert numbered("plate.v2.0012.png") == ("plate.v2.####.png", 12, 4)
    assert numbered("shot-10.exr") == ("shot-##.exr", 10, 2)  # a dash, not a minus
    assert numbered("neg.-005.exr") == ("neg.###.exr", -5, 3)
    assert numbered("still.exr") is None
    pattern, frame, _ = numbered("img_7.jpg")
    assert frame_file(pattern, frame) == "img_7.jpg" and frame_file(pattern, 12) == "img_12.jpg"


def test_a_take_runs_in_a_standard_library_only_python(worker, tmp_path):
    """What a host does, in a Python with no site-packages: build, take, follow, cancel."""
    plate, bg = make_shot(tmp_path, frames=range(1, 4), data_inset=2)
    code = f"""
import json, sys
sys.path.insert(0, {str(REPO / "core")!r})
from actanywhere.api import Client, MainThreadQueue, Takes, build, take_session, takes
spec = build({str(plate)!r}, {str(bg)!r}, "ignored.####.exr", frames="1-3", threads=1)
main, seen = MainThreadQueue(), []
root = Takes({str(tmp_path / "shot" / "Node1")!r})
connect = lambda: Client.connect({str(tmp_path / "state")!r}, start=False)
for _ in range(2):
    handle = take_session.start(root.new(), spec, connect, main_thread=main.post, stem="Node1",
                         on_progress=seen.append,
                         on_end=lambda t, h: seen.append((t.name, h.status)))
    main.run_until(handle)
for banned in ("numpy", "torch", "OpenImageIO", "pydantic"):
    assert banned not in sys.modules, banned
print(json.dumps([[t.name, t.status, t.written, t.files()] for t in root.list()]))
print(json.dumps([s for s in seen if isinstance(s, tuple)]), sum(isinstance(s, dict) for s in seen))
"""
    r = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True,
                       timeout=180)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    listed = json.loads(lines[0])
    assert [t[:3] for t in listed] == [["take_001", "done", 3], ["take_002", "done", 3]]
    ends, progress = lines[1].rsplit(" ", 1)
    assert json.loads(ends) == [["take_001", "done"], ["take_002", "done"]] and int(progress) > 4
    first, second = listed[0][3], listed[1][3]
    assert set(first).isdisjoint(second)  # the second take did not overwrite the first
    px, spec = read_exr(second[0])
    assert (spec.x, spec.y, spec.full_width) == (0, 0, 64)  # written frames, display window
    record = json.loads((tmp_path / "shot" / "Node1" / "take_002" / "take.json").read_text())
    assert record["job"] and record["spec"]["output"]["path"].endswith("Node1.####.exr")
    assert record["engine"] == "composite" and record["frames"] == "1-3"
    assert record["timings"]["total_s"] >= record["timings"]["submit_s"] > 0
    assert record["timings"]["run_s"] > 0


def test_cancel_from_another_thread_keeps_only_complete_frames(worker, tmp_path):
    plate, bg = make_shot(tmp_path, frames=range(1, 41), size=(480, 270))
    spec = build(str(plate), str(bg), "x.####.exr", threads=1)
    holder: dict = {}

    def on_progress(ev):
        if ev.get("stage") == "frames" and ev.get("done", 0) >= 2 and "t" not in holder:
            holder["t"] = threading.Thread(target=holder["handle"].cancel)  # not main thread
            holder["t"].start()

    main = MainThreadQueue()
    ended = []
    take = Takes(str(tmp_path / "n")).new()
    handle = take_session.start(take, spec,
                         lambda: Client.connect(str(tmp_path / "state"), start=False),
                         main_thread=main.post, on_progress=on_progress,
                         on_end=lambda t, h: ended.append(h.status))
    holder["handle"] = handle
    main.run_until(handle)
    assert ended == ["cancelled"] and handle.status == "cancelled"
    again = Takes(str(tmp_path / "n")).get(take.name)
    assert again.status == "cancelled" and 2 <= again.written < 40
    files = again.files()
    assert len(files) == again.written
    assert sorted(set(os.listdir(again.folder)) - {os.path.basename(f) for f in files}) == [
        "proxy", "take.json"]  # nothing else: no partial frame
    proxies = [f for f, _ in again.proxies()]  # a proxy for every frame on disk, no other
    assert len(proxies) == len(files) and again.motion == "none"
    for path in files:  # every frame on disk is whole
        px, _ = read_exr(path)
        assert px.shape == (270, 480, 8)  # rgba, bg.rgb, matte.A


def test_a_worker_killed_mid_job_ends_the_take_with_a_message(tmp_path):
    plate, bg = make_shot(tmp_path, frames=range(1, 41), size=(480, 270))
    proc, client = start_worker(tmp_path / "state")
    spec = build(str(plate), str(bg), "x.####.exr", threads=1)
    killed = []

    def on_progress(ev):
        if ev.get("stage") == "frames" and ev.get("done", 0) >= 2 and not killed:
            os.kill(proc.pid, signal.SIGKILL)
            killed.append(True)

    try:
        main, ended = MainThreadQueue(), []
        take = Takes(str(tmp_path / "n")).new()
        handle = take_session.start(take, spec,
                             lambda: Client.connect(str(tmp_path / "state"), start=False),
                             main_thread=main.post, on_progress=on_progress,
                             on_end=lambda t, h: ended.append((h.status, h.error)))
        main.run_until(handle)
    finally:
        stop_worker(proc, client)
    assert killed and ended and ended[0][0] == "interrupted"
    assert "has stopped" in ended[0][1] and "\n" not in ended[0][1]
    again = Takes(str(tmp_path / "n")).get(take.name)
    assert again.status == "interrupted" and again.error == ended[0][1]


def test_failures_end_in_one_callback_with_one_line(tmp_path):
    plate, bg = make_shot(tmp_path, frames=range(1, 3))
    # no worker and a Python that is not there: the connect fails on the handle's thread
    bad = build(str(plate), str(bg), "x.####.exr")
    main, ended = MainThreadQueue(), []
    handle = JobHandle(bad, lambda: Client.connect(str(tmp_path / "none"),
                                                   python=str(tmp_path / "no" / "python")),
                       main_thread=main.post, on_failed=ended.append,
                       on_done=lambda j: ended.append("done?")).start()
    main.run_until(handle)
    assert handle.status == "failed" and len(ended) == 1 and "no such Python" in ended[0]


def test_a_refused_spec_names_the_file(worker, tmp_path):
    plate, _ = make_shot(tmp_path, frames=range(1, 3))
    spec = build(str(plate), str(tmp_path / "missing_bg.exr"), "x.####.exr")
    take, handle, calls = _run_take(str(tmp_path / "n"), spec, tmp_path / "state")
    assert handle.status == "failed" and handle.job_id is None and handle.exit_code == 3
    assert "missing_bg.exr" in handle.error
    assert [k for k, _ in calls] == ["end"]
    assert Takes(str(tmp_path / "n")).get("take_001").status == "failed"


def test_cancel_before_submit_submits_nothing(worker, tmp_path):
    plate, bg = make_shot(tmp_path, frames=range(1, 3))
    asked, release = threading.Event(), threading.Event()

    def slow_connect():  # a host's connect that takes its time (a worker starting)
        asked.set()
        release.wait(10)
        return Client.connect(str(tmp_path / "state"), start=False)

    main, ended = MainThreadQueue(), []
    handle = JobHandle(build(str(plate), str(bg), str(tmp_path / "o" / "c.####.exr")),
                       slow_connect, main_thread=main.post, on_cancelled=ended.append,
                       on_failed=ended.append).start()
    assert asked.wait(10)
    handle.cancel()
    release.set()
    main.run_until(handle)
    assert handle.status == "cancelled" and ended == ["cancelled before it was submitted"]
    assert worker.jobs() == [] and not (tmp_path / "o").exists()
