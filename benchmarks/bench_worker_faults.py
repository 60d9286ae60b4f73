"""The local worker under load and faults (issue 30): what was tried and what held.

    .venv/bin/python benchmarks/bench_worker_faults.py                  # every phase
    .venv/bin/python benchmarks/bench_worker_faults.py --phases load,kill --clients 8 --jobs 25
    .venv/bin/python benchmarks/bench_worker_faults.py --json figures.json

Phases, each against real worker processes (``actanywhere serve``) on loopback:

- ``load``: N clients x M jobs at once (composite engine, tiny plates), each followed through
  a ``JobHandle`` as the hosts do; every fifth job cancelled as soon as it is queued. Held if
  every client heard its own job's end with its exit code (done 0, cancelled 130), no job ran
  twice, and every done job has all its frames on disk.
- ``kill``: ``kill -9`` of the worker mid-job, a new worker, resume; held if the client saw
  the death within a poll, the job was ``interrupted``, and the resumed frames equal an
  uninterrupted run's.
- ``flood``: half-open unauthenticated connections (more than the worker's file limit of 128
  allows); held if an authenticated request still answers, and every half-open one is closed
  within the header timeout.
- ``corrupt``: a job database with a bad header, truncated, or with a page of junk; held if
  the worker starts, keeps the damaged file aside and runs a job.
- ``second``: a second worker on the same state folder (its connection file damaged); held
  if it exits with one line naming the first and the first's job is not interrupted.
- ``schema``: schemathesis against ``/openapi.json`` (loopback, bounded examples, seeded), if
  it is installed (``pip install schemathesis``); held if no check fails.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "core"))

import numpy as np  # noqa: E402

from actanywhere import spec  # noqa: E402
from actanywhere.api import Client, JobHandle, WorkerError  # noqa: E402
from actanywhere.api.handle import call_now  # noqa: E402
from actanywhere.cli import demo_shot as demo  # noqa: E402
from actanywhere.media import imageio  # noqa: E402
from actanywhere.shot import job  # noqa: E402

ENV = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")


def start(state: str, *extra: str, preexec=None) -> tuple[subprocess.Popen, Client]:
    """A worker process on ``state`` and a client to it."""
    proc = subprocess.Popen([sys.executable, "-m", "actanywhere", "serve", "--state-dir", state,
                             "--idle-timeout", "300", *extra], env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, preexec_fn=preexec)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited: {proc.stderr.read().decode()}")
        try:
            client = Client.from_state(state)
            if client.pid == proc.pid:
                return proc, client
        except WorkerError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("worker did not start")


def stop(proc: subprocess.Popen, client: Client | None = None) -> str:
    """Stop the worker; its stderr."""
    if client is not None and proc.poll() is None:
        try:
            client.shutdown()
            proc.wait(timeout=30)
        except (WorkerError, subprocess.TimeoutExpired):
            pass
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    return proc.stderr.read().decode(errors="replace")


def shot(root: str, frames: int, width: int, height: int) -> tuple[str, str]:
    plate = os.path.join(root, "plate", "plate.####.exr")
    demo.make_plate(plate, frames, width, height)
    bg = os.path.join(root, "bg.exr")
    demo.make_background(bg, width * 2, height * 2)
    return plate, bg


def composite(plate: str, bg: str, out: str, **extra: Any) -> dict:
    return {"plate": {"path": plate}, "background": {"path": bg}, "output": {"path": out},
            "threads": 1, **extra}


# ------------------------------------------------------------------------------- phases
def phase_load(root: str, ns: argparse.Namespace) -> dict:
    plate, bg = shot(os.path.join(root, "load"), 2, 128, 72)
    proc, worker = start(os.path.join(root, "load", "state"))
    results: list[tuple[str, str | None, int | None, int, list[str]]] = []
    lock = threading.Lock()
    errors: list[str] = []

    def one_client(c: int) -> None:
        for j in range(ns.jobs):
            frames: list[int] = []
            out = os.path.join(root, "load", f"c{c}", f"j{j}", "c.####.exr")
            handle = JobHandle(composite(plate, bg, out),
                               lambda: Client(worker.url, worker.token, worker.pid),
                               main_thread=call_now, client=f"load{c}", poll=2.0,
                               on_progress=lambda ev, f=frames: f.append(ev.get("done", 0))
                               if ev.get("stage") == "frames" else None)
            if j % 5 == 4:
                handle.on_submitted = lambda _id, h=handle: h.cancel()
            handle.start()
            if not handle.wait(300):
                errors.append(f"client {c} job {j}: no end within 300 s")
                continue
            outputs = (handle.job or {}).get("outputs", [])
            with lock:
                results.append((handle.status, handle.job_id, handle.exit_code,
                                max(frames, default=0), outputs))

    t0 = time.perf_counter()
    threads = [threading.Thread(target=one_client, args=(c,)) for c in range(ns.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    listed = worker.jobs()
    stop(proc, worker)
    codes = {"done": 0, "cancelled": 130}
    wrong = [r[:3] for r in results if codes.get(r[0], -1) != r[2]]
    done = [r for r in results if r[0] == "done"]
    lost = [r[1] for r in done if r[3] != 2 or len(r[4]) != 2
            or not all(os.path.isfile(p) for p in r[4])]
    ids = [r[1] for r in results]
    return {"clients": ns.clients, "jobs_each": ns.jobs, "wall_s": round(wall, 1),
            "jobs_per_s": round(len(results) / wall, 2), "done": len(done),
            "cancelled": sum(r[0] == "cancelled" for r in results),
            "wrong_exit_codes": len(wrong), "wrong_done": sum(w[0] == "done" for w in wrong),
            "lost_frames_jobs": len(lost),
            "ran_twice": len(ids) - len(set(ids)), "listed": len(listed), "errors": errors,
            "held": not (wrong or lost or errors) and len(set(ids)) == len(ids)
            == ns.clients * ns.jobs}


def phase_kill(root: str, ns: argparse.Namespace) -> dict:
    base = os.path.join(root, "kill")
    plate, bg = shot(base, 40, 480, 270)
    out = os.path.join(base, "out", "c.####.exr")
    ref = os.path.join(base, "ref", "c.####.exr")
    job.run(spec.from_dict(composite(plate, bg, ref)))
    state = os.path.join(base, "state")
    proc, client = start(state)
    job_id = client.submit(composite(plate, bg, out))
    seen: list[dict] = []
    while not any(e.get("stage") == "frames" and e.get("done", 0) >= 3 for e in seen):
        seen += client.events(job_id, seen[-1]["seq"] if seen else 0, wait=5)["events"]
    os.kill(proc.pid, signal.SIGKILL)
    t0 = time.perf_counter()
    try:
        client.wait(job_id, poll=1.0)
        noticed = None
    except WorkerError:
        noticed = time.perf_counter() - t0
    stop(proc)
    kept = len(glob.glob(os.path.join(base, "out", "c.*.exr")))
    proc, client = start(state)
    status = client.job(job_id)["status"]
    t0 = time.perf_counter()
    client.resume(job_id)
    final = client.wait(job_id, poll=1.0, timeout=300)
    resume_s = time.perf_counter() - t0
    stop(proc, client)
    frames = sorted(glob.glob(os.path.join(base, "out", "c.*.exr")))
    equal = len(frames) == 40 and all(
        np.array_equal(imageio.read(f).pixels, imageio.read(f.replace(
            os.sep + "out" + os.sep, os.sep + "ref" + os.sep)).pixels) for f in frames)
    return {"noticed_death_s": None if noticed is None else round(noticed, 2),
            "status_after_restart": status, "frames_kept_before_resume": kept,
            "resume_s": round(resume_s, 2), "final": final["status"],
            "attempts": final["attempts"], "frames_equal_uninterrupted": equal,
            "held": noticed is not None and noticed < 5 and status == "interrupted"
            and final["status"] == "done" and equal}


def phase_flood(root: str, ns: argparse.Namespace) -> dict:
    from urllib.parse import urlparse

    from actanywhere.worker.server import HEADER_TIMEOUT_S

    def lower() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_NOFILE,
                           (128, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))

    proc, client = start(os.path.join(root, "flood", "state"), preexec=lower)
    url = urlparse(client.url)
    held: list[socket.socket] = []
    for _ in range(ns.half_open):
        try:
            s = socket.create_connection((url.hostname, url.port), timeout=2)
            s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")
            held.append(s)
        except OSError:
            break
    t0 = time.perf_counter()
    try:
        ok = bool(client.health()["ok"])
    except WorkerError:
        ok = False
    health_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    closed = 0
    for s in held:
        s.settimeout(max(0.1, HEADER_TIMEOUT_S + 5 - (time.perf_counter() - t0)))
        try:
            closed += s.recv(64) == b""
        except (ConnectionResetError, BrokenPipeError):
            closed += 1
        except TimeoutError:
            pass
    all_closed_s = time.perf_counter() - t0
    for s in held:
        s.close()
    err = stop(proc, client)
    return {"half_open": len(held), "file_limit": 128, "authenticated_health_s":
            round(health_s, 3), "answered": ok, "closed_by_worker": closed,
            "all_closed_within_s": round(all_closed_s, 2), "header_timeout_s": HEADER_TIMEOUT_S,
            "held": ok and health_s < 8 and closed == len(held) and "Traceback" not in err}


def phase_corrupt(root: str, ns: argparse.Namespace) -> dict:
    from actanywhere.worker.store import JobStore

    plate, bg = shot(os.path.join(root, "corrupt"), 2, 128, 72)
    out: dict[str, Any] = {"held": True}
    for how in ("header", "truncated", "junk page"):
        state = os.path.join(root, "corrupt", how.replace(" ", "_"))
        os.makedirs(state)
        db = os.path.join(state, "jobs.sqlite")
        store = JobStore(db)
        for i in range(60):
            job_id = store.submit({"output": {"path": f"/nowhere/{i}/c.####.exr"},
                                   "note": "x" * 500})
            store.claim_next()
            store.finish(job_id, "done", exit_code=0)
        store.close()
        with open(db, "r+b") as fh:
            if how == "header":
                fh.write(b"not a database!!")
            elif how == "truncated":
                fh.truncate(os.path.getsize(db) // 3)
            else:
                fh.seek(2 * 4096)
                fh.write(os.urandom(4096))
        t0 = time.perf_counter()
        proc, client = start(state)
        start_s = time.perf_counter() - t0
        final = client.wait(client.submit(composite(plate, bg, os.path.join(
            state, "o", "c.####.exr"))), poll=1.0, timeout=120)
        err = stop(proc, client)
        kept = [k for k in glob.glob(db + ".corrupt-*") if not k.endswith(("-wal", "-shm"))]
        held = final["status"] == "done" and len(kept) == 1 and "Traceback" not in err
        out[how] = {"start_s": round(start_s, 2), "kept": os.path.basename(kept[0])
                    if kept else None, "job": final["status"], "held": held}
        out["held"] = out["held"] and held
    return out


def phase_second(root: str, ns: argparse.Namespace) -> dict:
    base = os.path.join(root, "second")
    plate, bg = shot(base, 40, 480, 270)
    state = os.path.join(base, "state")
    proc, client = start(state)
    job_id = client.submit(composite(plate, bg, os.path.join(base, "o", "c.####.exr")))
    while client.job(job_id)["status"] != "running":
        time.sleep(0.05)
    with open(os.path.join(state, "worker.json"), "w") as fh:
        fh.write("{damaged")
    t0 = time.perf_counter()
    second = subprocess.run([sys.executable, "-m", "actanywhere", "serve", "--state-dir", state,
                             "--idle-timeout", "5"], env=ENV, capture_output=True, text=True,
                            timeout=120)
    second_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    while True:
        try:
            repaired = Client.from_state(state).pid == proc.pid
            break
        except WorkerError:
            if time.perf_counter() - t0 > 10:
                repaired = False
                break
            time.sleep(0.1)
    repaired_s = time.perf_counter() - t0
    final = client.wait(job_id, poll=1.0, timeout=300)
    stop(proc, client)
    return {"second_exit": second.returncode, "second_said": second.stderr.strip(),
            "second_exit_s": round(second_s, 2), "connection_file_repaired_s":
            round(repaired_s, 2), "first_job": final["status"], "attempts": final["attempts"],
            "held": second.returncode != 0 and "already serves" in second.stderr and repaired
            and final["status"] == "done" and final["attempts"] == 1}


def phase_schema(root: str, ns: argparse.Namespace) -> dict:
    exe = shutil.which("schemathesis", path=os.path.dirname(sys.executable))
    if exe is None:
        return {"skipped": "schemathesis is not installed (pip install schemathesis)",
                "held": None}
    base = os.path.join(root, "schema")
    plate, bg = shot(base, 2, 128, 72)
    proc, client = start(os.path.join(base, "state"))
    job_id = client.wait(client.submit(composite(plate, bg, os.path.join(
        base, "o", "c.####.exr"))), timeout=120)["id"]
    schema = os.path.join(base, "openapi.json")
    req = urllib.request.Request(client.url + "/openapi.json",
                                 headers={"Authorization": f"Bearer {client.token}"})
    with urllib.request.urlopen(req, timeout=30) as resp, open(schema, "wb") as fh:
        fh.write(resp.read())  # the worker's own description
    config = os.path.join(base, "schemathesis.toml")
    with open(config, "w") as fh:  # a real job for the /v1/jobs/{id} operations
        fh.write(f'[parameters]\n"path.id" = "{job_id}"\n')
    # positive_data_acceptance left out: a schema-valid ShotSpec naming files that do not
    # exist is rightly refused (422, the field named); /v1/shutdown would end the run
    cmd = [exe, "--config-file", config, "run", schema, "--url", client.url, "-H",
           f"Authorization: Bearer {client.token}", "--exclude-path", "/v1/shutdown",
           "--checks", "all", "--exclude-checks", "positive_data_acceptance",
           "-n", str(ns.examples), "--seed", "1", "-w", "1", "--no-shrink",
           "--request-timeout", "40", "--max-time", str(ns.schema_time)]
    t0 = time.perf_counter()
    r = subprocess.run([cmd[0], "--no-color", *cmd[1:]], capture_output=True, text=True,
                       timeout=ns.schema_time + 120)
    wall = time.perf_counter() - t0
    alive = client.health()["ok"]
    err = stop(proc, client)
    tail = [line for line in r.stdout.splitlines() if line.strip()][-12:]
    cases = next((line.strip() for line in tail if "generated," in line), "")
    summary = next((line.strip("= ") for line in reversed(tail) if " in " in line), "")
    return {"command": " ".join(cmd).replace(client.token, "<token>"), "exit": r.returncode,
            "wall_s": round(wall, 1), "cases": cases, "summary": summary,
            "worker_alive_after": alive,
            "worker_traceback": "Traceback" in err,
            "held": r.returncode == 0 and alive and "Traceback" not in err,
            **({} if r.returncode == 0 else {"output_tail": tail})}


PHASES = {"load": phase_load, "kill": phase_kill, "flood": phase_flood,
          "corrupt": phase_corrupt, "second": phase_second, "schema": phase_schema}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--phases", default=",".join(PHASES), help="comma-separated, of: "
                    + ", ".join(PHASES))
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--jobs", type=int, default=25, help="jobs per client")
    ap.add_argument("--half-open", type=int, default=150)
    ap.add_argument("--examples", type=int, default=30, help="schemathesis cases per operation")
    ap.add_argument("--schema-time", type=int, default=240, help="schemathesis time budget, s")
    ap.add_argument("--json", default=None, help="also write the figures here")
    ns = ap.parse_args()
    root = tempfile.mkdtemp(prefix="aa-bench-faults-")
    figures: dict[str, Any] = {"python": sys.version.split()[0], "cpus": os.cpu_count()}
    try:
        for name in ns.phases.split(","):
            t0 = time.perf_counter()
            figures[name] = PHASES[name](root, ns)
            figures[name]["phase_s"] = round(time.perf_counter() - t0, 1)
            held = {True: "held", False: "FAILED", None: "skipped"}[figures[name]["held"]]
            print(f"{name:8s} {held}: {json.dumps(figures[name])}", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if ns.json:
        with open(ns.json, "w") as fh:
            json.dump(figures, fh, indent=2)
    sys.exit(0 if all(f.get("held") is not False for f in figures.values()
                      if isinstance(f, dict)) else 1)


if __name__ == "__main__":
    main()
