"""`actanywhere serve`: the local worker. HTTP + JSON on loopback, one job at a time.

- Binds 127.0.0.1 (or ::1) on a free port; any other address needs ``allow_remote``.
- A random token is written with the port to the connection file (0600, the user's state
  folder); every request must send ``Authorization: Bearer <token>`` (compared in constant
  time), or gets 401 and nothing runs.
- Jobs are ShotSpecs, checked when submitted (4xx naming the field or file), queued in SQLite
  (``store.py``) and run one at a time by a runner thread; HTTP requests are served by other
  threads meanwhile. Progress events are stored and long-polled.
- Models stay loaded between jobs (``model/cache.py``) within a memory budget.
- Cancel is cooperative (between diffusion steps and frames; frames are written atomically);
  a job stuck loading a model is ended by exiting the worker after ``hard_kill_s``.
- On start, jobs left running by a dead worker are marked interrupted; ``resume`` re-queues a
  job with ``existing=skip`` so it finishes only the missing frames.
- The worker exits after ``idle_s`` without jobs or requests.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
import platform
import secrets
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from .. import __version__
from ..api import takes as takes_mod
from ..api.status import END, FINAL
from ..errors import ActAnywhereError, InputError, JobCancelled, OutputError, SpecError
from ..model import model_hash
from ..progress import ProgressEvent
from . import paths
from .openapi import OPENAPI
from .store import JobStore

MAX_BODY = 1 << 20  # a ShotSpec is a few KB
DRAIN_LIMIT = 64 << 20  # bodies up to this are read and dropped before an error answer
MAX_WAIT_S = 30.0


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class HttpError(Exception):
    def __init__(self, status: int, message: str, field: str | None = None,
                 exit_code: int | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field
        self.exit_code = exit_code  # the CLI's exit code for the same error in a local run


class Worker:
    def __init__(self, state: str | None = None, host: str = "127.0.0.1", port: int = 0,
                 idle_s: float = 1800.0, allow_remote: bool = False,
                 model_budget_gb: float = 16.0, hard_kill_s: float = 30.0) -> None:
        if not _loopback(host) and not allow_remote:
            raise SpecError(f"--host {host}: the worker only listens on loopback (127.0.0.1 or "
                            "::1); pass --allow-remote to expose it (anyone with the token can "
                            "then run jobs)")
        self.state = paths.state_dir(state)
        os.makedirs(self.state, mode=0o700, exist_ok=True)
        self.store = JobStore(os.path.join(self.state, paths.DATABASE))
        self.interrupted = self.store.mark_interrupted()
        self.token = secrets.token_urlsafe(32)
        self.idle_s, self.hard_kill_s = idle_s, hard_kill_s
        self.model_budget = int(model_budget_gb * 2**30)
        self.changed = threading.Condition()
        self.stopping = threading.Event()
        self.current: tuple[str, threading.Event] | None = None
        self.current_stage = ""
        self.last_activity = time.monotonic()
        self.started = time.time()
        server_cls = _server_class(host)
        self.httpd = server_cls((host, port), _handler(self))
        self.host, self.port = host, int(self.httpd.server_address[1])
        self.url = f"http://{'[' + host + ']' if ':' in host else host}:{self.port}"

    # -------------------------------------------------------------------------- lifecycle
    def serve(self) -> None:
        """Run until shutdown or idle; the connection file exists while requests are served."""
        info = {"url": self.url, "host": self.host, "port": self.port, "token": self.token,
                "pid": os.getpid(), "version": __version__, "started": self.started,
                "python": sys.executable}
        paths.write_connection(self.state, info)
        runner = threading.Thread(target=self._runner, name="aa-runner", daemon=True)
        runner.start()
        watcher = threading.Thread(target=self._idle_watch, name="aa-idle", daemon=True)
        watcher.start()
        try:
            self.httpd.serve_forever(poll_interval=0.2)
        finally:
            self.stopping.set()
            paths.remove_connection(self.state, os.getpid())
            self.httpd.server_close()
            if self.current is not None:
                self.current[1].set()
            runner.join(timeout=60)

    def shutdown(self) -> None:
        self.stopping.set()
        if self.current is not None:
            self.current[1].set()
        threading.Thread(target=self.httpd.shutdown, daemon=True).start()

    def _idle_watch(self) -> None:
        while not self.stopping.wait(1.0):
            busy = self.current is not None or self.store.queued() > 0
            if busy:
                self.last_activity = time.monotonic()
            elif time.monotonic() - self.last_activity > self.idle_s:
                self.shutdown()
                return

    def notify(self) -> None:
        with self.changed:
            self.changed.notify_all()

    # ----------------------------------------------------------------------------- runner
    def _runner(self) -> None:
        self._enable_cache()
        while not self.stopping.is_set():
            job = self.store.claim_next()
            if job is None:
                with self.changed:
                    self.changed.wait(0.5)
                continue
            self._run(job)

    def _enable_cache(self) -> None:
        from ..model import cache  # no torch import: a worker starts in a moment

        cache.enable(self.model_budget)

    def _run(self, job: dict[str, Any]) -> None:
        from .. import job as job_mod
        from .. import spec as spec_mod

        job_id = job["id"]
        cancel = threading.Event()
        self.current = (job_id, cancel)
        self.notify()
        t0 = time.monotonic()

        def report(ev: ProgressEvent) -> None:
            self.current_stage = ev.stage
            self.store.event(job_id, {k: v for k, v in ev.__dict__.items()
                                      if v not in (None, "")})
            self.notify()

        try:
            shot = spec_mod.from_dict(job["spec"])
            if shot.engine.name == "diffusion":
                self.store.set_model_hash(job_id, model_hash(shot.engine.model))
            result = job_mod.run(shot, report, cancel)
            status, error, outputs, code = "done", None, result.outputs, 0
        except JobCancelled as exc:
            status, error, outputs = ("interrupted" if self.stopping.is_set() else "cancelled",
                                      str(exc), [])
            code = exc.exit_code
        except ActAnywhereError as exc:
            status, error, outputs, code = "failed", str(exc), [], exc.exit_code
        except Exception as exc:  # noqa: BLE001 - a job must never take the worker down
            status, error, outputs = "failed", f"internal error: {type(exc).__name__}: {exc}", []
            code = 1
        self.store.finish(job_id, status, error=error, outputs=outputs,
                          timings={"run_s": round(time.monotonic() - t0, 3)})
        self.store.event(job_id, {"stage": END, "message": status, "exit_code": code})
        self.current = None
        self.last_activity = time.monotonic()
        self.notify()

    def cancel(self, job_id: str) -> str | None:
        before = self.store.request_cancel(job_id)
        current = self.current
        if before == "running" and current is not None and current[0] == job_id:
            current[1].set()
            threading.Thread(target=self._hard_kill, args=(job_id,), daemon=True).start()
        self.notify()
        return before

    def _hard_kill(self, job_id: str) -> None:
        """A job still running ``hard_kill_s`` after cancel is stuck where it cannot check the
        flag (a model load): record it cancelled and end the worker process."""
        deadline = time.monotonic() + self.hard_kill_s
        while time.monotonic() < deadline:
            current = self.current
            if current is None or current[0] != job_id:
                return
            time.sleep(0.1)
        self.store.finish(job_id, "cancelled", error="cancelled; the worker was restarted "
                          "because the job could not stop by itself (stage "
                          f"{self.current_stage or 'unknown'})")
        paths.remove_connection(self.state, os.getpid())
        os._exit(3)

    # ----------------------------------------------------------------------------- requests
    def submit(self, body: dict[str, Any]) -> dict[str, Any]:
        from .. import job as job_mod
        from .. import spec as spec_mod

        raw = body.get("spec")
        if not isinstance(raw, dict):
            raise HttpError(422, "the body needs a 'spec' object (a ShotSpec)", "spec")
        try:
            shot = spec_mod.from_dict(raw)
            job_mod.check(shot)
        except SpecError as exc:
            raise HttpError(422, str(exc), _field_of(str(exc)), exc.exit_code) from exc
        except InputError as exc:
            raise HttpError(422, str(exc), exit_code=exc.exit_code) from exc
        except OutputError as exc:
            raise HttpError(409, str(exc), "output", exc.exit_code) from exc
        except ActAnywhereError as exc:  # e.g. an engine setting that cannot work
            raise HttpError(422, str(exc), exit_code=exc.exit_code) from exc
        # only the fields the client set: defaults stay defaults, so a model's recommended
        # settings still apply to what the job leaves unset
        job_id = self.store.submit(json.loads(shot.model_dump_json(exclude_unset=True)),
                                   str(body.get("client", ""))[:64])
        self.notify()
        return {"id": job_id, "status": "queued"}

    def health(self) -> dict[str, Any]:
        versions = {"actanywhere": __version__, "python": platform.python_version()}
        for mod in ("torch", "diffusers"):
            m = sys.modules.get(mod)
            if m is not None:
                versions[mod] = getattr(m, "__version__", "?")
        info: dict[str, Any] = {"ok": True, "pid": os.getpid(), "versions": versions,
                                "running": self.current[0] if self.current else None,
                                "queued": self.store.queued(), "uptime_s":
                                round(time.time() - self.started, 1), "state": self.state}
        cache_mod = sys.modules.get("actanywhere.model.cache")
        if cache_mod is not None and cache_mod.active() is not None:
            info["models"] = cache_mod.active().info()
        return info

    def wait_events(self, job_id: str, after: int, wait: float) -> dict[str, Any]:
        deadline = time.monotonic() + min(max(wait, 0.0), MAX_WAIT_S)
        while True:
            job = self.store.get(job_id)
            if job is None:
                raise HttpError(404, f"no job {job_id}")
            events = self.store.events(job_id, after)
            left = deadline - time.monotonic()
            if events or job["status"] in FINAL or left <= 0:
                return {"id": job_id, "status": job["status"], "done": job["done"],
                        "total": job["total"], "error": job["error"], "events": events,
                        "last": events[-1]["seq"] if events else after}
            with self.changed:
                self.changed.wait(min(left, 0.5))


def _field_of(message: str) -> str | None:
    """The first field path a SpecError message names (``plate.path: ...``)."""
    head = message.split(": ", 2)
    if len(head) >= 2 and head[0] == "invalid ShotSpec":
        return head[1].split(" ")[0]
    return None


def _take(job: dict) -> dict:
    """A finished job as a take: what it made, and its record's proxies when it wrote them."""
    output = job["spec"]["output"]["path"]
    out = {"id": job["id"], "output": output, "seed": job["seed"], "engine": job["engine"],
           "model_hash": job["model_hash"], "frames": len(job["outputs"]),
           "finished": job["finished"], "record": None, "proxy": None, "plate_proxy": None,
           "contact_sheet": None, "proxies": 0, "starred": False}
    take = takes_mod.for_output(output)
    if take is not None:
        out.update(record=take.path, proxy=take.abs_path(take.proxy) or None,
                   plate_proxy=take.abs_path(take.plate_proxy) or None,
                   contact_sheet=take.contact_sheet_file(), proxies=len(take.proxies()),
                   starred=take.starred)
    return out


def _server_class(host: str) -> type[ThreadingHTTPServer]:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET

    class Server(ThreadingHTTPServer):
        address_family = family
        daemon_threads = True
        allow_reuse_address = False

        def handle_error(self, request, client_address) -> None:
            """A client that hung up (between requests, or mid-answer) is no error."""
            if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
                return
            super().handle_error(request, client_address)

    return Server


def _limit(query: dict[str, str]) -> int:
    """The ``limit`` query parameter: an integer from 1 to 10000 (default 200)."""
    raw = query.get("limit", "200")
    try:
        value = int(raw)
    except ValueError:
        raise HttpError(400, f"limit {raw!r}: must be a whole number from 1 to 10000",
                        "limit") from None
    if not 1 <= value <= 10000:
        raise HttpError(400, f"limit {value}: must be from 1 to 10000", "limit")
    return value


def _handler(worker: Worker) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = f"ActAnywhere/{__version__}"
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt: str, *args: Any) -> None:  # quiet: the DB is the log
            return

        def _send(self, status: int, body: dict[str, Any] | list[Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def _error(self, err: HttpError) -> None:
            body = {"error": err.message, "status": err.status}
            if err.field:
                body["field"] = err.field
            if err.exit_code is not None:
                body["exit_code"] = err.exit_code
            self._send(err.status, body)

        def _authorised(self) -> bool:
            got = self.headers.get("Authorization", "")
            want = f"Bearer {worker.token}"
            return hmac.compare_digest(got.encode(), want.encode())

        def _body(self) -> dict[str, Any]:
            try:
                length = int(self.headers.get("Content-Length", "0"))
            except ValueError as exc:
                raise HttpError(400, "bad Content-Length") from exc
            if length < 0:
                self.close_connection = True
                raise HttpError(400, f"bad Content-Length {length}")
            if length > MAX_BODY:
                self._drain(length)
                raise HttpError(413, f"body of {length} bytes exceeds {MAX_BODY}")
            raw = self.rfile.read(length) if length else b""
            if not raw:
                return {}
            try:
                data = json.loads(raw)
            except (ValueError, UnicodeDecodeError) as exc:
                raise HttpError(400, f"body is not valid JSON ({exc})") from exc
            if not isinstance(data, dict):
                raise HttpError(400, "body must be a JSON object")
            return data

        def _drain(self, length: int) -> None:
            """Read and drop a body that will not be used, so the client is not cut off while
            still sending (it would see a broken pipe instead of our answer); past
            ``DRAIN_LIMIT`` the connection is closed instead."""
            self.close_connection = True
            if 0 < length <= DRAIN_LIMIT:
                while length > 0:
                    chunk = self.rfile.read(min(length, 1 << 16))
                    if not chunk:
                        break
                    length -= len(chunk)

        def _dispatch(self, method: str) -> None:
            url = urlparse(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            parts = [p for p in url.path.split("/") if p]
            try:
                if not self._authorised():  # drop the body unread into anything; run nothing
                    try:
                        self._drain(int(self.headers.get("Content-Length", "0")))
                    except ValueError:
                        self.close_connection = True
                    raise HttpError(401, "missing or wrong token; read it from the worker's "
                                    "connection file")
                worker.last_activity = time.monotonic()
                status, body = self._route(method, parts, query)
                self._send(status, body)
            except HttpError as err:
                self._error(err)
            except (BrokenPipeError, ConnectionResetError):  # the client left (a long poll)
                self.close_connection = True
            except Exception as exc:  # noqa: BLE001 - the server stays up whatever happens
                self._error(HttpError(500, f"internal error: {type(exc).__name__}: {exc}"))

        def _route(self, method: str, parts: list[str], query: dict[str, str]
                   ) -> tuple[int, Any]:
            if parts[:1] == ["openapi.json"] and method == "GET":
                return 200, OPENAPI
            if parts[:1] != ["v1"]:
                raise HttpError(404, f"no endpoint {self.path}")
            rest = parts[1:]
            if rest == ["health"] and method == "GET":
                return 200, worker.health()
            if rest == ["shutdown"] and method == "POST":
                worker.shutdown()
                return 202, {"ok": True}
            if rest == ["jobs"] and method == "POST":
                return 202, worker.submit(self._body())
            if rest == ["jobs"] and method == "GET":
                return 200, {"jobs": worker.store.list(query.get("status"), _limit(query))}
            if rest == ["takes"] and method == "GET":
                takes = [_take(j) for j in worker.store.list("done", _limit(query))]
                return 200, {"takes": takes}
            if len(rest) >= 2 and rest[0] == "jobs":
                job_id = rest[1]
                if worker.store.get(job_id) is None:
                    raise HttpError(404, f"no job {job_id}")
                if len(rest) == 2 and method == "GET":
                    return 200, worker.store.get(job_id)
                if rest[2:] == ["events"] and method == "GET":
                    try:
                        after = int(query.get("after", 0))
                        wait = float(query.get("wait", 0))
                    except ValueError as exc:
                        raise HttpError(400, "after and wait must be numbers") from exc
                    return 200, worker.wait_events(job_id, after, wait)
                if rest[2:] == ["cancel"] and method == "POST":
                    status = worker.store.get(job_id)["status"]
                    if status in FINAL:
                        raise HttpError(409, f"job {job_id} is {status}; nothing to cancel")
                    return 202, {"id": job_id, "was": worker.cancel(job_id)}
                if rest[2:] == ["resume"] and method == "POST":
                    if not worker.store.resume(job_id):
                        raise HttpError(409, f"job {job_id} is active or done; nothing to resume")
                    worker.notify()
                    return 202, {"id": job_id, "status": "queued"}
            raise HttpError(404 if method == "GET" else 405, f"no endpoint {method} {self.path}")

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self._dispatch("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._dispatch("POST")

        def _not_allowed(self) -> None:
            self.close_connection = True
            self._error(HttpError(405, f"method {self.command} not allowed; use GET or POST"))

        do_PUT = do_DELETE = do_PATCH = do_TRACE = do_OPTIONS = do_HEAD = _not_allowed

    return Handler


def serve(state: str | None = None, host: str = "127.0.0.1", port: int = 0,
          idle_s: float = 1800.0, allow_remote: bool = False, model_budget_gb: float = 16.0,
          hard_kill_s: float = 30.0, announce=print) -> None:
    worker = Worker(state, host, port, idle_s, allow_remote, model_budget_gb, hard_kill_s)
    if worker.interrupted:
        announce(f"marked {len(worker.interrupted)} job(s) interrupted: "
                 f"{', '.join(worker.interrupted)}")
    announce(f"ActAnywhere worker {__version__} on {worker.url} (pid {os.getpid()}); "
             f"connection file {os.path.join(worker.state, paths.CONNECTION)}")
    worker.serve()
