"""The worker under faults (issue 30): damaged state files, a second worker on one folder,
floods of idle connections, many clients at once. Real worker processes, real SQLite files,
real HTTP."""

from __future__ import annotations

import glob
import json
import os
import socket
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import make_shot, output_frames, start_worker, stop_worker
from test_cli import cli
from test_worker import composite_spec, raw

from actanywhere.api import Client, JobHandle, WorkerError
from actanywhere.api import connection as conn_file
from actanywhere.api.handle import call_now


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _run_one(client: Client, spec: dict, timeout: float = 120) -> dict:
    final = client.wait(client.submit(spec), poll=1.0, timeout=timeout)
    assert final["status"] == "done", final
    return final


def _warnings(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("warning:")]


# --------------------------------------------------------------------- 4. private state
def test_store_and_state_folder_are_private_whatever_existed_before(tmp_path):
    plate, bg = make_shot(tmp_path, frames=range(1, 3))
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    os.chmod(state, 0o755)  # as a shared or older folder is
    for attempt in range(2):
        proc, client = start_worker(state)
        try:
            _run_one(client, composite_spec(plate, bg, tmp_path / f"o{attempt}" / "c.####.exr"))
            assert _mode(state) == 0o700
            for name in ("jobs.sqlite", "jobs.sqlite-wal", "jobs.sqlite-shm", "worker.json",
                         "worker.lock"):
                assert _mode(state / name) == 0o600, (attempt, name, oct(_mode(state / name)))
        finally:
            stop_worker(proc, client)
        # what an older version left: a readable folder and job database
        os.chmod(state, 0o755)
        os.chmod(state / "jobs.sqlite", 0o644)


# ------------------------------------------------------------------- 9. a corrupt store
def _filled_store(path) -> None:
    """A real job database with enough rows to span several pages, checkpointed."""
    from actanywhere.worker.store import JobStore

    store = JobStore(str(path))
    for i in range(60):
        job = store.submit({"output": {"path": f"/nowhere/{i}/c.####.exr"}, "note": "x" * 500})
        store.claim_next()
        for k in range(3):
            store.event(job, {"stage": "frames", "done": k, "total": 3})
        store.finish(job, "done", outputs=[f"/nowhere/{i}/c.0001.exr"], exit_code=0)
    store.close()


def _damage(path, how: str) -> None:
    with open(path, "r+b") as fh:
        if how == "header":
            fh.write(b"not a database!!")
        elif how == "truncated":
            fh.truncate(os.path.getsize(path) // 3)
        else:  # a page of junk in the middle of a table
            fh.seek(2 * 4096)
            fh.write(os.urandom(4096))


@pytest.mark.parametrize("how", ["header", "truncated", "junk page"])
def test_a_corrupt_store_is_kept_aside_and_a_fresh_one_serves(tmp_path, how):
    state = tmp_path / "state"
    state.mkdir()
    db = state / "jobs.sqlite"
    _filled_store(db)
    assert not os.path.exists(str(db) + "-wal") or os.path.getsize(str(db) + "-wal") == 0
    _damage(db, how)
    damaged = db.read_bytes()
    plate, bg = make_shot(tmp_path, frames=range(1, 3))
    proc, client = start_worker(state)
    try:
        assert client.jobs() == []  # a fresh store
        _run_one(client, composite_spec(plate, bg, tmp_path / "o" / "c.####.exr"))
        assert len(client.jobs()) == 1
    finally:
        stop_worker(proc, client)
    kept = glob.glob(str(state / "jobs.sqlite.corrupt-*"))
    kept = [k for k in kept if not k.endswith(("-wal", "-shm"))]
    assert len(kept) == 1 and Path(kept[0]).read_bytes() == damaged  # never deleted
    assert _mode(kept[0]) == 0o600
    err = proc.stderr.read().decode()
    assert "Traceback" not in err, err
    warned = _warnings(err)
    assert len(warned) == 1 and kept[0] in warned[0], err
    check = sqlite3.connect(db).execute("PRAGMA quick_check").fetchall()
    assert check == [("ok",)]


def test_generate_with_worker_on_a_corrupt_store_works(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    _filled_store(state / "jobs.sqlite")
    _damage(state / "jobs.sqlite", "header")
    plate, bg = make_shot(tmp_path, frames=range(1, 3))
    r = cli("generate", "--plate", plate, "--background", bg, "-o", tmp_path / "o" / "c.####.exr",
            "--worker", "--state-dir", state, "--progress", "none")
    try:
        assert r.returncode == 0, r.stderr
        assert output_frames(tmp_path / "o") == ["c.0001.exr", "c.0002.exr"]
        log = (state / "worker.log").read_text()
        kept = glob.glob(str(state / "jobs.sqlite.corrupt-*"))
        assert len(kept) == 1 and any(kept[0] in w for w in _warnings(log)), log
        assert _mode(state / "worker.log") == 0o600 and _mode(state) == 0o700
    finally:
        Client.from_state(str(state)).shutdown()


def test_a_worker_that_cannot_open_its_store_says_why_in_one_line(tmp_path):
    state = tmp_path / "state"
    (state / "jobs.sqlite").mkdir(parents=True)  # not a file: nothing can open it
    plate, bg = make_shot(tmp_path, frames=range(1, 3))
    r = cli("serve", "--state-dir", state)
    assert r.returncode == 4 and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith("error:") and "jobs.sqlite" in r.stderr
    r = cli("generate", "--plate", plate, "--background", bg, "-o", tmp_path / "o" / "c.####.exr",
            "--worker", "--state-dir", state, "--progress", "none")
    assert r.returncode == 4, r.stderr
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error:"), r.stderr
    assert "jobs.sqlite" in r.stderr and "installed" not in r.stderr, r.stderr
    assert (state / "jobs.sqlite").is_dir()  # left as it was: it is not a damaged database


def test_damaged_rows_are_skipped_and_named(tmp_path):
    from actanywhere.worker.store import JobStore

    plate, bg = make_shot(tmp_path, frames=range(1, 3))
    state = tmp_path / "state"
    proc, client = start_worker(state)
    try:
        ids = [_run_one(client, composite_spec(plate, bg, tmp_path / f"o{i}" / "c.####.exr"))["id"]
               for i in range(4)]
    finally:
        stop_worker(proc, client)
    bad_spec, bad_outputs, bad_event, bad_take = ids
    db = sqlite3.connect(state / "jobs.sqlite", isolation_level=None)
    db.execute("UPDATE jobs SET spec='{not json' WHERE id=?", (bad_spec,))
    db.execute("UPDATE jobs SET outputs='[1,' WHERE id=?", (bad_outputs,))
    db.execute("UPDATE events SET event='{{' WHERE job=? AND seq=1", (bad_event,))
    db.close()
    record = tmp_path / "o3" / "take.json"
    take = json.loads(record.read_text())
    record.write_text(json.dumps(dict(take, proxy=5)))  # a field of the wrong type
    store = JobStore(str(state / "jobs.sqlite"))  # queued: a damaged job, then a good one
    queued_bad = store.submit(composite_spec(plate, bg, tmp_path / "qb" / "c.####.exr"))
    queued_good = store.submit(composite_spec(plate, bg, tmp_path / "qg" / "c.####.exr"))
    store.close()
    db = sqlite3.connect(state / "jobs.sqlite", isolation_level=None)
    db.execute("UPDATE jobs SET spec='[' WHERE id=?", (queued_bad,))
    db.close()

    proc, client = start_worker(state)
    try:
        final = client.wait(queued_good, poll=1.0, timeout=120)  # the runner lives on
        assert final["status"] == "done", final
        status, body = raw(client, "GET", "/v1/jobs")
        assert status == 200
        listed = {j["id"] for j in body["jobs"]}
        assert listed == {bad_event, bad_take, queued_good}, body
        for job_id in (bad_spec, bad_outputs, queued_bad):
            status, body = raw(client, "GET", f"/v1/jobs/{job_id}")
            assert 400 <= status < 600 and job_id in body["error"], (status, body)
            assert "Traceback" not in body["error"]
        status, body = raw(client, "GET", f"/v1/jobs/{bad_event}/events")
        assert status == 200 and [e["seq"] for e in body["events"]][:1] == [2], body
        status, body = raw(client, "GET", "/v1/takes")
        assert status == 200, body
        takes = {t["id"]: t for t in body["takes"]}
        assert {bad_event, queued_good} <= set(takes) <= {bad_event, bad_take, queued_good}
        if bad_take in takes:  # listed without the record it cannot read
            assert takes[bad_take]["record"] is None
        assert client.health()["ok"]
    finally:
        stop_worker(proc, client)
    err = proc.stderr.read().decode()
    assert "Traceback" not in err, err
    warned = "\n".join(_warnings(err))
    for job_id in (bad_spec, bad_outputs, bad_event, queued_bad):
        assert job_id in warned, (job_id, err)
    assert len(_warnings(err)) == len(set(_warnings(err)))  # each said once, not per request


# --------------------------------------------------------- 11. one worker per state folder
def test_one_worker_per_state_folder(tmp_path):
    from test_worker import _long_spec

    state = tmp_path / "state"
    proc, client = start_worker(state)
    try:
        long_job = client.submit(_long_spec(tmp_path, tmp_path / "long" / "c.####.exr"))
        while client.job(long_job)["status"] != "running":
            time.sleep(0.05)
        (state / "worker.json").write_text("{damaged")
        try:
            second = cli("serve", "--state-dir", state, "--idle-timeout", "5")
        except subprocess.TimeoutExpired:
            pytest.fail("a second worker served the same state folder")
        assert second.returncode != 0 and second.stderr.count("\n") == 1, second.stderr
        assert "already serves" in second.stderr and f"pid {proc.pid}" in second.stderr
        # the worker that holds the folder puts its connection file back
        deadline = time.monotonic() + 5
        while True:
            try:
                assert Client.from_state(str(state)).pid == proc.pid
                break
            except WorkerError:
                assert time.monotonic() < deadline, "the connection file was not repaired"
                time.sleep(0.1)
        # generate --worker with a damaged connection file runs in the one worker
        (state / "worker.json").write_text("{damaged")
        plate, bg = make_shot(tmp_path / "small", frames=range(1, 3))
        r = cli("generate", "--plate", plate, "--background", bg, "-o",
                tmp_path / "o" / "c.####.exr", "--worker", "--state-dir", state,
                "--progress", "none")
        assert r.returncode == 0, r.stderr
        final = client.wait(long_job, poll=1.0, timeout=300)
        assert final["status"] == "done" and final["attempts"] == 1, final
        jobs = client.jobs()
        assert len(jobs) == 2 and all(j["status"] == "done" for j in jobs)
        assert client.health()["pid"] == proc.pid
    finally:
        stop_worker(proc, client)
    err = proc.stderr.read().decode()
    assert "interrupted" not in err and "Traceback" not in err, err


def test_a_client_that_finds_the_folder_served_leaves_no_second_worker_behind(tmp_path):
    state = tmp_path / "state"
    proc, client = start_worker(state)
    try:
        (state / "worker.json").write_text("{damaged")
        found = Client.connect(str(state), start_timeout=60)  # starts one; finds the first
        assert found.pid == proc.pid
    finally:
        stop_worker(proc, client)
    time.sleep(4)  # the one it started would have had the lock by now
    try:
        second = Client.from_state(str(state))
    except WorkerError as exc:
        assert "no worker is running" in str(exc)
    else:
        second.shutdown()
        pytest.fail(f"the worker the client started (pid {second.pid}) was left to serve")


# ------------------------------------------------------- 15. a dead worker's connection file
def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _connection_pid(state) -> int | None:
    try:
        return json.loads((state / "worker.json").read_text()).get("pid")
    except (OSError, ValueError):
        return None


def _stale(state, pid: int) -> None:
    port = _closed_port()
    conn_file.write(str(state), {"url": f"http://127.0.0.1:{port}", "port": port, "pid": pid,
                                 "token": "t" * 43, "host": "127.0.0.1"})


def test_connection_file_of_a_dead_worker_is_removed_or_replaced(tmp_path):
    state = tmp_path / "state"
    dead = _dead_pid()
    for pid in (dead, os.getpid()):  # a dead pid; a live one whose port does not answer
        _stale(state, pid)
        with pytest.raises(WorkerError, match=f"removed .*worker.json.*pid {pid}"):
            Client.from_state(str(state))
        assert not (state / "worker.json").exists()
    # a client that starts a worker says what it removed
    _stale(state, dead)
    client = Client.connect(str(state), idle_s=60)
    try:
        assert client.health()["ok"] and f"pid {dead}" in (client.notice or "")
    finally:
        client.shutdown()
    # a new worker replaces a stale file and says so
    _stale(state, dead)
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    proc = subprocess.Popen([sys.executable, "-m", "actanywhere", "serve", "--state-dir",
                             str(state)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while _connection_pid(state) != proc.pid:  # not a client: it would remove the file
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.1)
        client = Client.from_state(str(state))
    finally:
        stop_worker(proc, client)
    warned = _warnings(proc.stderr.read().decode())
    assert len(warned) == 1 and f"pid {dead}" in warned[0] and "worker.json" in warned[0]


# ------------------------------------------------------------ 13. idle and slow connections
def _serve_with_file_limit(state, limit: int):
    import resource

    def lower() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, resource.getrlimit(
            resource.RLIMIT_NOFILE)[1]))

    return start_worker(state, preexec_fn=lower)


def _closed_by_peer(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        return sock.recv(1024) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="needs setrlimit and a FIFO")
def test_idle_and_slow_connections_time_out_before_authentication(tmp_path):
    from urllib.parse import urlparse

    from actanywhere.worker.server import HEADER_TIMEOUT_S, MAX_WAIT_S

    state = tmp_path / "state"
    proc, client = _serve_with_file_limit(state, 128)
    url = urlparse(client.url)
    held: list[socket.socket] = []
    try:
        for _ in range(150):  # more half-open requests than the worker has files for
            try:
                s = socket.create_connection((url.hostname, url.port), timeout=2)
                s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")  # no blank line: waits
                held.append(s)
            except OSError:
                break
        t0 = time.monotonic()
        assert client.health()["ok"]  # an authenticated request still gets through
        assert time.monotonic() - t0 < 8
        # every half-open connection is closed within the header timeout
        t0 = time.monotonic()
        assert all(_closed_by_peer(s, HEADER_TIMEOUT_S + 5) for s in held[-20:])
        assert time.monotonic() - t0 < HEADER_TIMEOUT_S + 5
        # one that sends its headers a byte at a time is closed too
        slow = socket.create_connection((url.hostname, url.port), timeout=2)
        held.append(slow)
        t0, closed = time.monotonic(), False
        for byte in b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 40:
            try:
                slow.sendall(bytes([byte]))
            except OSError:
                closed = True
                break
            if _closed_by_peer(slow, 0.5):
                closed = True
                break
        assert closed and time.monotonic() - t0 < HEADER_TIMEOUT_S + 3
        # an authenticated long poll still waits as long as it asked (past the header timeout)
        wait = min(MAX_WAIT_S, HEADER_TIMEOUT_S + 3)
        page, waited = _long_poll_silent_job(client, tmp_path, wait)
        assert page["status"] == "running" and page["events"] == [] and waited >= wait - 0.5
        assert client.health()["ok"]
    finally:
        for s in held:
            s.close()
        proc.kill()
        proc.wait()
    err = proc.stderr.read().decode()
    assert "Traceback" not in err and "Too many open files" not in err, err


def _long_poll_silent_job(client: Client, tmp_path, wait: float) -> tuple[dict, float]:
    """Long-poll a job that stays silent: one stuck opening a model manifest that is a FIFO
    with no writer (as a read from a hung share is); (the answer, seconds it took)."""
    model = tmp_path / "stuck"
    model.mkdir()
    os.mkfifo(model / "actanywhere.json")
    plate, bg = make_shot(tmp_path / "stuck_shot", frames=range(1, 3))
    job = client.submit(composite_spec(plate, bg, tmp_path / "s" / "c.####.exr",
                                       engine={"name": "diffusion", "model": str(model),
                                               "device": "cpu"}))
    while client.job(job)["status"] != "running":
        time.sleep(0.05)
    time.sleep(0.5)
    last = client.events(job)["last"]
    t0 = time.monotonic()
    page = client.events(job, last, wait=wait)
    return page, time.monotonic() - t0


# -------------------------------------------------- 12. many clients, each its own exit code
@pytest.mark.slow
def test_many_clients_each_get_their_jobs_own_exit_code(worker, tmp_path):
    plate, bg = make_shot(tmp_path, frames=range(1, 3))
    clients, per_client = 8, 25
    results: list[tuple[str, str | None, int | None, list[dict], dict | None]] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def one_client(c: int) -> None:
        try:
            for j in range(per_client):
                events: list[dict] = []
                out = tmp_path / f"c{c}" / f"j{j}" / "c.####.exr"
                handle = JobHandle(composite_spec(plate, bg, out),
                                   lambda: Client(worker.url, worker.token, worker.pid),
                                   main_thread=call_now, on_progress=events.append,
                                   client=f"load{c}", poll=2.0)
                if j % 5 == 4:  # cancelled as soon as it is queued
                    handle.on_submitted = lambda _id, h=handle: h.cancel()
                handle.start()
                assert handle.wait(120)
                with lock:
                    results.append((handle.status, handle.job_id, handle.exit_code, events,
                                    handle.job))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=one_client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(results) == clients * per_client
    codes = {"done": 0, "cancelled": 130}
    wrong = [(s, i, code) for s, i, code, _, _ in results if codes.get(s, -1) != code]
    assert not wrong, wrong  # every client heard its own job's end, with its exit code
    done = [r for r in results if r[0] == "done"]
    assert len(done) >= clients * per_client * 3 // 5
    for _, _, _, events, job in done:  # no frame lost: every frame reported and on disk
        frames = [e for e in events if e.get("stage") == "frames"]
        assert frames[-1]["done"] == frames[-1]["total"] == 2
        assert len(job["outputs"]) == 2 and all(os.path.isfile(p) for p in job["outputs"])
    assert len({r[1] for r in results}) == clients * per_client  # one job each, none twice


# ------------------------------------------------- what a schema fuzz run found (schemathesis)
def test_bad_parameters_methods_and_request_lines_get_json_4xx(worker, tmp_path):
    import http.client
    from urllib.parse import urlparse

    plate, bg = make_shot(tmp_path, frames=range(1, 3))
    job_id = _run_one(worker, composite_spec(plate, bg, tmp_path / "o" / "c.####.exr"))["id"]
    for path, field in ((f"/v1/jobs/{job_id}/events?wait=nan", "wait"),
                        (f"/v1/jobs/{job_id}/events?wait=inf", "wait"),
                        (f"/v1/jobs/{job_id}/events?after={10**30}", "after"),
                        (f"/v1/jobs/{job_id}/events?after=-1", "after"),
                        ("/v1/jobs?limit=", "limit"), ("/v1/takes?limit=", "limit"),
                        ("/v1/jobs?status=bogus", "status")):
        status, body = raw(worker, "GET", path)
        assert status == 400 and body.get("field") == field, (path, status, body)
    url = urlparse(worker.url)
    for method, path, allow in (("QUERY", "/v1/jobs", "GET, POST"),
                                ("POST", "/openapi.json", "GET"),
                                ("GET", "/v1/shutdown", "POST"),
                                ("GET", f"/v1/jobs/{job_id}/cancel", "POST")):
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
        conn.request(method, path, headers={"Authorization": f"Bearer {worker.token}"})
        resp = conn.getresponse()
        body = json.loads(resp.read())
        assert resp.status == 405 and resp.getheader("Allow") == allow, (method, path, body)
        assert method in body["error"]
        conn.close()
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(b"GARBAGE\r\n\r\n")  # an HTTP/0.9 answer: the body alone
        assert json.loads(sock.makefile("rb").read())["status"] == 400
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(b"GET /v1/health HTTP/1.1\r\nX-Long: " + b"a" * 70000 + b"\r\n\r\n")
        answer = sock.makefile("rb").read()
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431") and json.loads(payload)["status"] == 431, answer
    assert worker.health()["ok"]


@pytest.mark.slow
def test_schema_fuzzing_finds_nothing(worker, tmp_path):
    """schemathesis against /openapi.json: loopback, seeded, 30 s at most; every check."""
    pytest.importorskip("schemathesis")
    exe = os.path.join(os.path.dirname(sys.executable), "schemathesis")
    plate, bg = make_shot(tmp_path, frames=range(1, 3))
    job_id = _run_one(worker, composite_spec(plate, bg, tmp_path / "o" / "c.####.exr"))["id"]
    from actanywhere.worker.openapi import OPENAPI

    schema = tmp_path / "openapi.json"
    schema.write_text(json.dumps(OPENAPI))
    config = tmp_path / "schemathesis.toml"
    config.write_text(f'[parameters]\n"path.id" = "{job_id}"\n')  # a real job's endpoints
    # positive_data_acceptance is left out: a schema-valid ShotSpec naming files that do not
    # exist is rightly refused (422, naming the field); /v1/shutdown would end the run
    r = subprocess.run([exe, "--no-color", "--config-file", str(config), "run", str(schema),
                        "--url", worker.url, "-H", f"Authorization: Bearer {worker.token}",
                        "--exclude-path", "/v1/shutdown", "--checks", "all",
                        "--exclude-checks", "positive_data_acceptance", "--phases",
                        "coverage,fuzzing", "-n", "10", "--seed", "1", "-w", "1",
                        "--max-time", "30", "--request-timeout", "40"],
                       capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-6000:]
    assert " passed" in r.stdout and worker.health()["ok"]
