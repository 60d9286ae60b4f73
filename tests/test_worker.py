"""The local worker as real server processes on loopback, driven by the stdlib client."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from conftest import REPO, make_shot, output_frames, read_exr, start_worker, stop_worker

from actanywhere.api import Client, WorkerError


def composite_spec(plate, bg, out, **extra):
    spec = {"plate": {"path": str(plate)}, "background": {"path": str(bg)},
            "output": {"path": str(out)}, "threads": 1}
    spec.update(extra)
    return spec


def raw(client, method, path, body=None, token="default", headers=None):
    """An HTTP request with full control over token and body; returns (status, json)."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    hdrs = dict(headers or {})
    if token is not None:
        hdrs["Authorization"] = f"Bearer {client.token if token == 'default' else token}"
    req = urllib.request.Request(client.url + path, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_connection_file_is_private_and_loopback(worker, tmp_path):
    path = tmp_path / "state" / "worker.json"
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode == 0o600
    info = json.loads(path.read_text())
    assert info["host"] == "127.0.0.1" and len(info["token"]) >= 32
    health = worker.health()
    assert health["ok"] and health["versions"]["actanywhere"]
    status, spec = raw(worker, "GET", "/openapi.json")
    assert status == 200 and "/v1/jobs/{id}/events" in spec["paths"]
    # every endpoint documents its 401; a ShotSpec needs its sections ({} is not one)
    assert all("401" in op["responses"] for ops in spec["paths"].values()
               for op in ops.values())
    shot = spec["components"]["schemas"]["ShotSpec"]
    assert set(shot["required"]) == {"plate", "background", "output"}
    body = spec["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["properties"]["spec"] == {"$ref": "#/components/schemas/ShotSpec"}
    assert "path" in spec["components"]["schemas"]["PlateSpec"]["required"]


def test_non_loopback_address_is_refused(tmp_path):
    r = subprocess.run([sys.executable, "-m", "actanywhere", "serve", "--state-dir",
                        str(tmp_path), "--host", "0.0.0.0"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2 and "--allow-remote" in r.stderr


def test_token_and_bad_requests(worker, tmp_path):
    plate, bg = make_shot(tmp_path)
    good = composite_spec(plate, bg, tmp_path / "o" / "c.####.exr")
    for token in (None, "wrong", worker.token[:-1] + "x"):
        status, body = raw(worker, "POST", "/v1/jobs", {"spec": good}, token=token)
        assert status == 401 and "token" in body["error"]
        assert raw(worker, "GET", "/v1/health", token=token)[0] == 401
    assert worker.jobs() == []  # nothing ran or was queued
    status, body = raw(worker, "POST", "/v1/jobs", b"{not json")
    assert status == 400 and "JSON" in body["error"]
    status, body = raw(worker, "POST", "/v1/jobs", b"x" * (2 << 20))
    assert status == 413
    bad = dict(good, threads=0)
    status, body = raw(worker, "POST", "/v1/jobs", {"spec": bad})
    assert status == 422 and body["field"] == "threads"
    status, body = raw(worker, "POST", "/v1/jobs", {"spec": dict(good, plate={})})
    assert status == 422 and body["field"].startswith("plate")
    over = composite_spec(plate, bg, plate)  # output onto the plate itself
    status, body = raw(worker, "POST", "/v1/jobs", {"spec": over})
    assert status == 409 and "overwrite an input" in body["error"]
    assert raw(worker, "GET", "/v1/jobs/nope")[0] == 404
    assert worker.health()["ok"]  # still up
    assert worker.jobs() == []


def test_load_many_clients_every_job_once(worker, tmp_path):
    plate, bg = make_shot(tmp_path, frames=range(1, 3))
    ref_out = tmp_path / "ref" / "c.####.exr"
    from actanywhere import spec
    from actanywhere.shot import job

    job.run(spec.from_dict(composite_spec(plate, bg, ref_out)))
    reference = [read_exr(tmp_path / "ref" / f"c.000{f}.exr")[0] for f in (1, 2)]
    clients, per_client = 8, 25
    ids: dict[str, str] = {}
    lock = threading.Lock()
    errors: list[BaseException] = []

    def one_client(c: int) -> None:
        try:
            mine = Client(worker.url, worker.token, worker.pid)
            for j in range(per_client):
                out = tmp_path / f"c{c}" / f"j{j}" / "c.####.exr"
                job_id = mine.submit(composite_spec(plate, bg, out), client=f"load{c}")
                with lock:
                    ids[job_id] = str(out)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=one_client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(ids) == clients * per_client
    for job_id in ids:
        final = worker.wait(job_id, poll=2.0, timeout=600)
        assert final["status"] == "done", final
        assert final["attempts"] == 1 and len(final["outputs"]) == 2
    listed = worker.jobs()
    assert sorted(j["id"] for j in listed) == sorted(ids)  # none lost, none duplicated
    for out in ids.values():
        for i, f in enumerate((1, 2)):
            px, _ = read_exr(out.replace("####", f"000{f}"))
            assert np.array_equal(px, reference[i])
    takes = worker.takes()
    assert len(takes) == clients * per_client
    for take in takes:  # each with its record and proxies, as the job wrote them
        folder = os.path.dirname(take["output"])
        assert take["record"] == os.path.join(folder, "take.json")
        assert take["proxies"] == 2 and os.path.isfile(take["contact_sheet"])
        assert take["proxy"] == os.path.join(folder, "proxy", "c.####.jpg")


def _long_spec(tmp_path, out):
    plate, bg = make_shot(tmp_path, frames=range(1, 41), size=(480, 270))
    return composite_spec(plate, bg, out)


def test_kill_9_then_resume_matches_uninterrupted(tmp_path):
    state = tmp_path / "state"
    out = tmp_path / "out" / "c.####.exr"
    spec_dict = _long_spec(tmp_path, out)
    from actanywhere import spec
    from actanywhere.shot import job

    job.run(spec.from_dict(dict(spec_dict, output={"path": str(tmp_path / "ref" / "c.####.exr")})))
    proc, client = start_worker(state)
    try:
        job_id = client.submit(spec_dict)
        seen = []
        while not any(e.get("stage") == "frames" and e.get("done", 0) >= 3 for e in seen):
            seen += client.events(job_id, seen[-1]["seq"] if seen else 0, wait=5)["events"]
        os.kill(proc.pid, signal.SIGKILL)
        t0 = time.monotonic()
        with pytest.raises(WorkerError, match="stopped"):
            client.wait(job_id, poll=1.0)
        assert time.monotonic() - t0 < 5
        proc.wait()
    finally:
        stop_worker(proc)
    proc, client = start_worker(state)
    try:
        assert client.job(job_id)["status"] == "interrupted"
        written_before = output_frames(tmp_path / "out")
        assert 3 <= len(written_before) < 40
        client.resume(job_id)
        final = client.wait(job_id, poll=2.0, timeout=300)
        assert final["status"] == "done" and final["attempts"] == 2
        # the resumed take is all 40 frames, not only those written after the resume
        assert len(final["outputs"]) == 40 and final["outputs"][0].endswith("c.0001.exr")
    finally:
        stop_worker(proc, client)
    for f in range(1, 41):
        a, _ = read_exr(tmp_path / "out" / f"c.{f:04d}.exr")
        b, _ = read_exr(tmp_path / "ref" / f"c.{f:04d}.exr")
        assert np.array_equal(a, b), f
    assert len(output_frames(tmp_path / "out")) == 40  # and nothing else but proxies, record


def test_cancel_mid_job_leaves_only_complete_frames(worker, tmp_path):
    out = tmp_path / "out" / "c.####.exr"
    job_id = worker.submit(_long_spec(tmp_path, out))
    seen = []
    while not any(e.get("stage") == "frames" and e.get("done", 0) >= 2 for e in seen):
        seen += worker.events(job_id, seen[-1]["seq"] if seen else 0, wait=5)["events"]
    worker.cancel(job_id)
    final = worker.wait(job_id, poll=2.0, timeout=120)
    assert final["status"] == "cancelled"
    names = output_frames(tmp_path / "out")  # no partial or temporary file
    assert 2 <= len(names) < 40
    for n in names:
        px, _ = read_exr(tmp_path / "out" / n)
        assert np.isfinite(px).all()
    assert worker.health()["running"] is None


def test_client_runs_under_a_standard_library_only_python(worker, tmp_path):
    plate, bg = make_shot(tmp_path, frames=range(1, 3))
    spec = composite_spec(plate, bg, tmp_path / "o" / "c.####.exr")
    code = f"""
import sys, json
sys.path.insert(0, {str(REPO / "core")!r})
from actanywhere.api import Client
for banned in ("numpy", "torch", "OpenImageIO", "pydantic"):
    assert banned not in sys.modules, banned
c = Client.from_state({str(tmp_path / "state")!r})
events = []
job = c.submit(json.loads({json.dumps(spec)!r}))
final = c.wait(job, on_event=events.append)
for banned in ("numpy", "torch", "OpenImageIO", "pydantic"):
    assert banned not in sys.modules, banned
print(final["status"], len(final["outputs"]), len(events))
"""
    # -I: isolated (no user site, no PYTHON* env), -S: no site-packages at all
    r = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    status, frames, events = r.stdout.split()
    assert status == "done" and frames == "2" and int(events) > 2


def test_client_errors_are_actionable(tmp_path):
    with pytest.raises(WorkerError, match="no worker is running"):
        Client.from_state(str(tmp_path / "none"))
    with pytest.raises(WorkerError, match="no such Python"):
        Client.connect(str(tmp_path / "none"), python=str(tmp_path / "nope" / "python"))
    fake = tmp_path / "fakepy"
    fake.write_text("#!/bin/sh\necho 'No module named actanywhere' >&2\nexit 1\n")
    fake.chmod(0o755)
    with pytest.raises(WorkerError, match="did not start.*No module named actanywhere"):
        Client.connect(str(tmp_path / "s2"), python=str(fake), start_timeout=20)


def test_generate_with_worker_flag_starts_a_worker(tmp_path):
    plate, bg = make_shot(tmp_path, frames=range(1, 3))
    state = tmp_path / "state"
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    r = subprocess.run([sys.executable, "-m", "actanywhere", "generate", "--plate", str(plate),
                        "--background", str(bg), "-o", str(tmp_path / "o" / "c.####.exr"),
                        "--worker", "--state-dir", str(state), "--progress", "json"],
                       capture_output=True, text=True, timeout=180, env=env)
    assert r.returncode == 0, r.stderr
    events = [json.loads(line) for line in r.stdout.splitlines()]
    assert any(e["stage"] == "frames" for e in events)
    client = Client.from_state(str(state))
    try:
        jobs = client.jobs()
        assert [j["status"] for j in jobs] == ["done"]
        # only what was set travels: unset settings stay unset, so a model's recommended
        # settings can still apply in the worker
        assert jobs[0]["spec"].get("diffusion", {}) == {} and jobs[0]["spec"]["plate"]["path"]
    finally:
        client.shutdown()
    assert output_frames(tmp_path / "o") == ["c.0001.exr", "c.0002.exr"]


def test_models_stay_warm_between_jobs(worker, tmp_path):
    from actanywhere.model import checkpoint, components

    model = tmp_path / "tiny"
    checkpoint.save(components.build_random("tiny", seed=0), str(model))
    plate, bg = make_shot(tmp_path, frames=range(1, 4), size=(96, 54))
    takes = []
    for seed in (1, 2):
        spec = composite_spec(plate, bg, tmp_path / f"take{seed}" / "c.####.exr",
                              engine={"name": "diffusion", "model": str(model), "device": "cpu"},
                              diffusion={"resolution": 64, "steps": 2, "frames_per_window": 4,
                                         "overlap": 2, "seed": seed})
        final = worker.wait(worker.submit(spec), timeout=300)
        assert final["status"] == "done", final["error"]
        assert final["model_hash"] and final["seed"] == seed
        takes.append(final)
    models = worker.health()["models"]
    assert models["loads"] == 1 and models["hits"] == 1
    assert models["models"] == [os.path.realpath(model)]
    assert takes[0]["model_hash"] == takes[1]["model_hash"]
    a, _ = read_exr(tmp_path / "take1" / "c.0002.exr")
    b, _ = read_exr(tmp_path / "take2" / "c.0002.exr")
    assert not np.array_equal(a, b)  # another seed, another take
    assert np.abs(a[..., :3] - b[..., :3]).mean() > 0.01  # a visibly different background


def test_worker_exits_when_idle(tmp_path):
    proc, client = start_worker(tmp_path / "state", idle=2)
    try:
        assert proc.wait(timeout=30) == 0
    finally:
        stop_worker(proc)
    assert not (tmp_path / "state" / "worker.json").exists()
    with pytest.raises(WorkerError, match="no worker is running"):
        Client.from_state(str(tmp_path / "state"))


def test_client_reports_a_bad_token_and_a_timeout(worker, tmp_path):
    stale = Client(worker.url, "not-the-token", worker.pid)
    with pytest.raises(WorkerError, match="rejected the token"):
        stale.health()
    job_id = worker.submit(_long_spec(tmp_path, tmp_path / "out" / "c.####.exr"))
    with pytest.raises(WorkerError, match="did not finish within"):
        worker.wait(job_id, poll=0.2, timeout=0.3)
    worker.cancel(job_id)
    assert worker.wait(job_id, timeout=120)["status"] in ("cancelled", "done")


def test_model_cache_evicts_least_recently_used_within_budget():
    from actanywhere.model import cache, components
    from actanywhere.model.pipeline import ActAnywherePipeline

    def pipe(seed):
        return ActAnywherePipeline.from_components(components.build_random("tiny", seed=seed))

    one = cache.pipeline_bytes(pipe(0))
    warm = cache.PipelineCache(budget_bytes=int(one * 2.5))
    loads = []

    def loader(seed):
        loads.append(seed)
        return pipe(seed)

    a = warm.get(("a",), lambda: loader(0))
    assert warm.get(("a",), lambda: loader(0)) is a  # a hit, not a load
    warm.get(("b",), lambda: loader(1))
    warm.get(("a",), lambda: loader(0))  # a is now the most recently used
    warm.get(("c",), lambda: loader(2))  # over budget: b goes
    assert [k[0] for k in warm._items] == ["a", "c"]
    assert loads == [0, 1, 2] and warm.hits == 2


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs a FIFO to stall a model load")
def test_cancel_of_a_stuck_model_load_ends_the_worker(tmp_path):
    # A model whose manifest is a FIFO with no writer: opening it blocks, as a read from a
    # hung network share does. Cancel cannot reach it; the worker must end itself.
    model = tmp_path / "stuck"
    model.mkdir()
    os.mkfifo(model / "actanywhere.json")
    plate, bg = make_shot(tmp_path, frames=range(1, 3))
    state = tmp_path / "state"
    proc, client = start_worker(state, 120, "--hard-kill-after", "2")
    try:
        job_id = client.submit(composite_spec(plate, bg, tmp_path / "o" / "c.####.exr",
                                              engine={"name": "diffusion", "model": str(model),
                                                      "device": "cpu"}))
        while client.job(job_id)["status"] != "running":
            time.sleep(0.1)
        time.sleep(0.5)
        client.cancel(job_id)
        assert proc.wait(timeout=30) == 3
    finally:
        stop_worker(proc)
    proc, client = start_worker(state)
    try:
        final = client.job(job_id)
        assert final["status"] == "cancelled" and "restarted" in final["error"]
        assert client.health()["ok"]
    finally:
        stop_worker(proc, client)


def test_ctrl_c_of_a_worker_take_cancels_it_and_says_how_far_it_got(tmp_path):
    from test_cli import _interrupt_after_frames

    plate, bg = make_shot(tmp_path, frames=range(1, 61), size=(480, 270))
    state = tmp_path / "state"
    code, err = _interrupt_after_frames(["generate", "--plate", plate, "--background", bg,
                                         "-o", tmp_path / "o" / "c.####.exr", "--threads", "1",
                                         "--worker", "--state-dir", state])
    client = Client.from_state(str(state))
    try:
        assert code == 130, err
        assert "of 60 frames; rerun with --existing skip" in err and "Traceback" not in err
        assert [j["status"] for j in client.jobs()] == ["cancelled"]
    finally:
        client.shutdown()
    names = output_frames(tmp_path / "o")
    assert 2 <= len(names) < 60


def test_api_answers_bad_parameters_and_methods_with_4xx(worker, tmp_path):
    import http.client
    from urllib.parse import urlparse

    for limit in ("abc", "null", "99999999999999999999", "0", "-3"):
        status, body = raw(worker, "GET", f"/v1/jobs?limit={limit}")
        assert status == 400 and body["field"] == "limit", (limit, status, body)
    assert raw(worker, "GET", "/v1/takes?limit=x")[0] == 400
    url = urlparse(worker.url)
    for method, headers in (("POST", {"Content-Length": "-5"}), ("TRACE", {}),
                            ("PUT", {}), ("DELETE", {})):
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
        conn.putrequest(method, "/v1/jobs")
        conn.putheader("Authorization", f"Bearer {worker.token}")
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.endheaders()
        resp = conn.getresponse()
        expected = 400 if method == "POST" else 405
        assert resp.status == expected, (method, resp.status, resp.read())
        conn.close()
    plate, bg = make_shot(tmp_path, frames=range(1, 3))
    # a missing background is refused at submit, not found when the job runs
    status, body = raw(worker, "POST", "/v1/jobs",
                       {"spec": composite_spec(plate, tmp_path / "nope.exr",
                                               tmp_path / "m" / "c.####.exr")})
    assert 400 <= status < 500 and "nope.exr" in body["error"], (status, body)
    job_id = worker.submit(composite_spec(plate, bg, tmp_path / "o" / "c.####.exr"))
    assert worker.wait(job_id, poll=1.0, timeout=120)["status"] == "done"
    status, body = raw(worker, "POST", f"/v1/jobs/{job_id}/cancel")
    assert status == 409 and "done" in body["error"]
    assert worker.health()["ok"]


def test_generate_with_worker_exits_as_a_local_run_would(tmp_path):
    from test_cli import cli

    plate, bg = make_shot(tmp_path, frames=range(1, 3))
    state = tmp_path / "state"
    cases = [  # (flags, exit code of a local run)
        (["--background", tmp_path / "nope.exr", "-o", tmp_path / "a" / "c.####.exr"], 3),
        (["--background", bg, "-o", tmp_path / "b" / "c.####.png"], 4),
    ]
    try:
        for flags, code in cases:
            local = cli("generate", "--plate", plate, *flags)
            remote = cli("generate", "--plate", plate, *flags, "--worker", "--state-dir", state)
            assert local.returncode == code, local.stderr
            assert remote.returncode == code, remote.stderr
            assert remote.stderr.count("\n") == 1 and remote.stderr.startswith("error:")
    finally:
        Client.from_state(str(state)).shutdown()


def test_a_client_leaving_a_long_poll_leaves_no_traceback(tmp_path):
    import socket
    from urllib.parse import urlparse

    plate, bg = make_shot(tmp_path, frames=range(1, 3))
    proc, client = start_worker(tmp_path / "state")
    try:
        job_id = client.submit(composite_spec(plate, bg, tmp_path / "o" / "c.####.exr"))
        client.wait(job_id, poll=1.0, timeout=120)
        url = urlparse(client.url)
        for _ in range(3):  # ask for events after the last one, wait 2 s, hang up at once
            sock = socket.create_connection((url.hostname, url.port), timeout=5)
            sock.sendall(f"GET /v1/jobs/{job_id}/events?after=100000&wait=2 HTTP/1.1\r\n"
                         f"Host: x\r\nAuthorization: Bearer {client.token}\r\n\r\n".encode())
            linger = (1).to_bytes(4, "little") + (0).to_bytes(4, "little")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            sock.close()  # a reset, as a killed client gives
        time.sleep(3)
        assert client.health()["ok"]
    finally:
        stop_worker(proc, client)
    err = proc.stderr.read().decode()
    assert "Traceback" not in err and "BrokenPipe" not in err, err
