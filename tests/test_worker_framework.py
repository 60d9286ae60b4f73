"""The worker's protocol declared once (issue 31): FastAPI routes and pydantic models give the
request checks and /openapi.json; errors name their field from the validation error's
location; long polls run on a thread pool large enough for every connection."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from urllib.parse import urlparse

import pytest
from conftest import make_shot, start_worker, stop_worker
from test_worker import composite_spec, raw


def test_openapi_is_the_apps_own_and_lists_every_route():
    from fastapi.routing import APIRoute

    from actanywhere.worker import app
    from actanywhere.worker.openapi import OPENAPI

    doc = app.build().openapi()
    assert doc == OPENAPI and doc["openapi"].startswith("3.1")
    declared = {(m, r.path) for r in app.router.routes if isinstance(r, APIRoute)
                for m in r.methods}
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    assert declared == documented and ("GET", "/openapi.json") in declared
    for ops in doc["paths"].values():
        for op in ops.values():
            errors = {code: r for code, r in op["responses"].items() if code >= "400"}
            assert "401" in errors
            for r in errors.values():  # every error is the one Error body
                assert r["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/Error"}
    assert "HTTPValidationError" not in json.dumps(doc)  # FastAPI's 422s: answered as 400
    assert doc["security"] == [{"token": []}]
    events = doc["paths"]["/v1/jobs/{id}/events"]["get"]
    assert {p["name"] for p in events["parameters"]} == {"id", "after", "wait"}


def test_errors_name_their_field_from_the_validation_error(worker, tmp_path):
    from actanywhere import spec
    from actanywhere.errors import SpecError

    plate, bg = make_shot(tmp_path, frames=range(1, 3))
    bad = composite_spec(plate, bg, tmp_path / "o" / "c.####.exr", threads=0)
    status, body = raw(worker, "POST", "/v1/jobs", {"spec": bad, "client": 7})
    with pytest.raises(SpecError) as local:
        spec.from_dict(bad)
    # the message a local run gives, the field and exit code as data
    assert (status, body) == (422, {"error": str(local.value), "status": 422,
                                    "field": "threads", "exit_code": 2})
    status, body = raw(worker, "POST", "/v1/jobs", {"client": "x"})
    assert (status, body["field"]) == (422, "spec")
    status, body = raw(worker, "POST", "/v1/jobs", b"[1, 2]")
    assert status == 400 and "JSON object" in body["error"] and "field" not in body
    for path, field in (("/v1/jobs?limit=many", "limit"), ("/v1/takes?limit=0", "limit"),
                        ("/v1/jobs?status=lost", "status")):
        status, body = raw(worker, "GET", path)
        assert status == 400 and body["field"] == field and field in body["error"], body
    status, body = raw(worker, "GET", "/v1/nowhere")
    assert status == 404 and body["status"] == 404
    assert worker.health()["ok"]


def _chunked(url, token: str, size: int) -> bytes:
    """A POST with a chunked body of ``size`` bytes; the raw answer."""
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        sock.sendall(f"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n".encode())
        chunk = b"x" * (1 << 16)
        for _ in range(size // len(chunk)):
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        sock.sendall(b"0\r\n\r\n")
        return sock.makefile("rb").readline()


def test_answers_are_not_cached_and_chunked_bodies_are_bounded(worker):
    import urllib.request

    req = urllib.request.Request(worker.url + "/v1/health",
                                 headers={"Authorization": f"Bearer {worker.token}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.headers["Cache-Control"] == "no-store"
        assert resp.headers["Content-Type"] == "application/json"
        assert resp.headers["Server"].startswith("ActAnywhere/")
    url = urlparse(worker.url)
    assert _chunked(url, worker.token, 2 << 20).startswith(b"HTTP/1.1 413")
    assert _chunked(url, worker.token, 1 << 16).startswith(b"HTTP/1.1 400")  # not JSON
    assert worker.health()["ok"]


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs a FIFO to keep a job silent")
def test_more_long_polls_than_the_default_thread_pool_wait_side_by_side(tmp_path):
    from test_worker_faults import _long_poll_silent_job

    proc, client = start_worker(tmp_path / "state", 120, "--hard-kill-after", "1")
    try:
        _long_poll_silent_job(client, tmp_path, 0.1)  # its job is stuck now, and silent
        job = client.jobs()[0]["id"]
        polls, times = 48, []  # anyio's default pool has 40 threads

        def poll() -> None:
            t0 = time.monotonic()
            client.events(job, 10**6, wait=3)
            times.append(time.monotonic() - t0)

        threads = [threading.Thread(target=poll) for _ in range(polls)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        time.sleep(1)
        h0 = time.monotonic()
        assert client.health()["ok"] and time.monotonic() - h0 < 1.5  # not queued behind
        for t in threads:
            t.join()
        assert len(times) == polls and all(2.5 < t < 6 for t in times), times
        assert time.monotonic() - t0 < 7  # side by side, not 40 then 8 more
    finally:
        stop_worker(proc)
    err = proc.stderr.read().decode()
    assert "Traceback" not in err, err
