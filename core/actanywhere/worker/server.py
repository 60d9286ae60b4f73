"""`actanywhere serve`: the local worker. HTTP + JSON on loopback, one job at a time.

- Binds 127.0.0.1 (or ::1) on a free port; any other address needs ``allow_remote``.
- One worker per state folder: it holds an OS lock there for its life (``paths.lock``); a
  second exits with one line naming the first's pid. The folder is 0700, its files 0600.
- A random token is written with the port to the connection file (0600, the user's state
  folder; put back if damaged or removed while the worker runs); every request must send
  ``Authorization: Bearer <token>`` (compared in constant time), or gets 401 and nothing runs.
- A connection must send a whole authorised request head within ``HEADER_TIMEOUT_S`` (idle
  keep-alive included) or it is closed; at most ``_connection_limit()`` are open at once, the
  oldest unauthorised one closed to make room. Authorised long polls wait their full time.
- Jobs are ShotSpecs, checked when submitted (4xx naming the field or file), queued in SQLite
  (``store.py``) and run one at a time by a runner thread; HTTP requests are served by other
  threads meanwhile. Progress events are stored and long-polled.
- Models stay loaded between jobs (``model/cache.py``) within a memory budget.
- Cancel is cooperative (between diffusion steps and frames; frames are written atomically);
  a job stuck loading a model is ended by exiting the worker after ``hard_kill_s``.
- On start, jobs left running by a dead worker are marked interrupted; ``resume`` re-queues a
  job with ``existing=skip`` so it finishes only the missing frames. A damaged job database
  is kept aside and a new one started; a damaged row is left out of listings (``store.py``).
- The worker exits after ``idle_s`` without jobs or requests.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import json
import math
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

from .. import __version__, catalog
from ..api import takes as takes_mod
from ..api.status import FINAL, STATUSES
from ..errors import ActAnywhereError, InputError, JobCancelled, OutputError, SpecError
from ..model import model_hash
from ..progress import ProgressEvent
from . import paths
from .openapi import OPENAPI
from .store import DamagedRecord, JobStore, StateFull

MAX_BODY = 1 << 20  # a ShotSpec is a few KB
DRAIN_LIMIT = 64 << 20  # bodies up to this are read and dropped before an error answer
MAX_WAIT_S = 30.0
HEADER_TIMEOUT_S = 5.0  # to send a request line and headers (and, unauthorised, any body)
MAX_CONNECTIONS = 64


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class HttpError(Exception):
    def __init__(self, status: int, message: str, field: str | None = None,
                 exit_code: int | None = None, allow: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field
        self.exit_code = exit_code  # the CLI's exit code for the same error in a local run
        self.allow = allow  # a 405's methods the resource takes (its Allow header)


def _methods(parts: list[str]) -> tuple[str, ...]:
    """The methods the resource at ``parts`` (the path's segments) takes; () if none."""
    if parts in (["openapi.json"], ["v1", "health"], ["v1", "takes"]):
        return ("GET",)
    if parts == ["v1", "jobs"]:
        return ("GET", "POST")
    if parts == ["v1", "shutdown"]:
        return ("POST",)
    if len(parts) == 3 and parts[:2] == ["v1", "jobs"]:
        return ("GET",)
    if len(parts) == 4 and parts[:2] == ["v1", "jobs"]:
        return {"events": ("GET",), "cancel": ("POST",), "resume": ("POST",)}.get(parts[3], ())
    return ()


class Worker:
    def __init__(self, state: str | None = None, host: str = "127.0.0.1", port: int = 0,
                 idle_s: float = 1800.0, allow_remote: bool = False,
                 model_budget_gb: float = 16.0, hard_kill_s: float = 30.0) -> None:
        if not _loopback(host) and not allow_remote:
            raise SpecError(f"--host {host}: the worker only listens on loopback (127.0.0.1 or "
                            "::1); pass --allow-remote to expose it (anyone with the token can "
                            "then run jobs)")
        self.state = paths.private_folder(paths.state_dir(state))
        self._lock_fd = paths.lock(self.state)  # held (open) for the life of the process
        stale = paths.stale_connection(self.state)  # ours now: no worker holds the lock
        self.store = JobStore(os.path.join(self.state, paths.DATABASE))
        #: what the start did that the user should hear of (one warning line each)
        self.notes = [*self.store.notes, *([stale] if stale else [])]
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
        self.info = {"url": self.url, "host": self.host, "port": self.port, "token": self.token,
                     "pid": os.getpid(), "version": __version__, "started": self.started,
                     "python": sys.executable}
        self._connection_guard = threading.Lock()
        self._connection_live = False  # the connection file is ours to keep while True

    # -------------------------------------------------------------------------- lifecycle
    def serve(self) -> None:
        """Run until shutdown or idle; the connection file exists while requests are served."""
        with self._connection_guard:
            paths.write_connection(self.state, self.info)
            self._connection_live = True
        runner = threading.Thread(target=self._runner, name="aa-runner", daemon=True)
        runner.start()
        watcher = threading.Thread(target=self._idle_watch, name="aa-idle", daemon=True)
        watcher.start()
        try:
            self.httpd.serve_forever(poll_interval=0.2)
        finally:
            self.stopping.set()
            self._drop_connection()
            self.httpd.server_close()
            if self.current is not None:
                self.current[1].set()
            runner.join(timeout=60)

    def _drop_connection(self) -> None:
        with self._connection_guard:
            self._connection_live = False
            paths.remove_connection(self.state, os.getpid())

    def _keep_connection(self) -> None:
        """Put the connection file back if it was damaged, removed or overwritten: this
        worker holds the folder, so clients must find it (not start a second one)."""
        with self._connection_guard:
            if not self._connection_live:
                return
            try:
                if paths.read_connection(self.state) == self.info:
                    return
            except (OSError, ValueError):
                pass
            try:
                paths.write_connection(self.state, self.info)
            except OSError as exc:
                self.store.warn(f"cannot write the connection file in {self.state} ({exc})")
                return
        print(f"warning: put back the connection file {os.path.join(self.state, paths.CONNECTION)}"
              " (it was damaged or removed)", file=sys.stderr, flush=True)

    def shutdown(self) -> None:
        self.stopping.set()
        if self.current is not None:
            self.current[1].set()
        threading.Thread(target=self.httpd.shutdown, daemon=True).start()

    def _idle_watch(self) -> None:
        while not self.stopping.wait(1.0):
            self._keep_connection()
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
            try:
                job = self.store.claim_next()
                if job is None:
                    with self.changed:
                        self.changed.wait(0.5)
                    continue
                self._run(job)
            except Exception as exc:  # noqa: BLE001 - the runner outlives a bad store moment
                self.current = None
                self.store.warn(f"the runner met {type(exc).__name__}: {exc}; going on")
                time.sleep(1.0)

    def _enable_cache(self) -> None:
        from ..model import cache  # no torch import: a worker starts in a moment

        cache.enable(self.model_budget)

    def _run(self, job: dict[str, Any]) -> None:
        from .. import spec as spec_mod
        from ..shot import job as job_mod

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
            if catalog.engine(shot.engine.name).model:
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
        # the end event goes with the final status (one transaction): a client that sees the
        # status also finds the exit code
        self._record_end(job_id, status, exit_code=code, error=error, outputs=outputs,
                         timings={"run_s": round(time.monotonic() - t0, 3)})
        self.current = None
        self.last_activity = time.monotonic()
        self.notify()

    def _record_end(self, job_id: str, status: str, **fields: Any) -> None:
        """The job's end stored; while the store's disk is full, tried again each second
        (one warning), so the job does not stay "running" once there is room. A worker
        stopped meanwhile leaves it to the next start, which marks it interrupted."""
        warned = False
        while True:
            try:
                self.store.finish(job_id, status, **fields)
                return
            except StateFull as exc:
                if not warned:
                    self.store.warn(f"{exc}; job {job_id} ends {status} once there is room")
                    warned = True
            if self.stopping.wait(1.0):
                return

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
        self.store.finish(job_id, "cancelled", exit_code=JobCancelled.exit_code,
                          error="cancelled; the worker was restarted because the job could not "
                          f"stop by itself (stage {self.current_stage or 'unknown'})")
        self._drop_connection()
        os._exit(3)

    # ----------------------------------------------------------------------------- requests
    def submit(self, body: dict[str, Any]) -> dict[str, Any]:
        from .. import spec as spec_mod
        from ..shot import job as job_mod

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
        try:
            job_id = self.store.submit(json.loads(shot.model_dump_json(exclude_unset=True)),
                                       str(body.get("client", ""))[:64])
        except StateFull as exc:
            raise HttpError(507, str(exc), exit_code=exc.exit_code) from None
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


def _connection_limit() -> int:
    """Connections served at once: ``MAX_CONNECTIONS``, fewer when the process may open few
    files (each connection's thread opens the job database too)."""
    try:
        import resource
    except ImportError:  # Windows
        return MAX_CONNECTIONS
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return max(4, min(MAX_CONNECTIONS, (soft - 32) // 4))


def _takes(store: JobStore, limit: int) -> list[dict]:
    """The finished takes; one whose job or record cannot be read is left out with a warning
    naming its job, and the others are listed."""
    out = []
    for job in store.list("done", limit):
        try:
            out.append(_take(job))
        except Exception as exc:  # noqa: BLE001 - a bad record never hides the other takes
            store.warn(f"job {job.get('id')}: its take cannot be read ({type(exc).__name__}: "
                       f"{exc}); left out of the takes")
    return out


def _server_class(host: str) -> type[ThreadingHTTPServer]:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET

    class Server(ThreadingHTTPServer):
        """Threads per connection, with a deadline for every connection until its request
        is authorised and a bound on how many are open."""

        address_family = family
        daemon_threads = True
        allow_reuse_address = False
        request_queue_size = 64

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.guard = threading.Lock()
            self.live: set[socket.socket] = set()
            self.deadlines: dict[socket.socket, float] = {}  # not yet authorised
            self.limit = _connection_limit()
            super().__init__(*args, **kwargs)

        def process_request(self, request, client_address) -> None:
            with self.guard:
                full = len(self.live) >= self.limit
                oldest = min(self.deadlines, key=self.deadlines.__getitem__, default=None)
                if full and oldest is not None:  # make room: the longest-waiting unauthorised
                    self._hang_up(oldest)
                if not full or oldest is not None:
                    self.live.add(request)
                    self.deadlines[request] = time.monotonic() + HEADER_TIMEOUT_S
            if full and oldest is None:  # every slot is an authorised request: refuse this
                self.shutdown_request(request)
                return
            super().process_request(request, client_address)

        def _hang_up(self, conn: socket.socket) -> None:
            """End ``conn`` (its thread sees the end of the stream and closes it); under guard."""
            self.live.discard(conn)
            self.deadlines.pop(conn, None)
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

        def arm(self, conn: socket.socket) -> None:
            """A request is awaited on ``conn``: it has ``HEADER_TIMEOUT_S`` to arrive."""
            with self.guard:
                if conn in self.live:
                    self.deadlines[conn] = time.monotonic() + HEADER_TIMEOUT_S

        def authorised(self, conn: socket.socket) -> None:
            with self.guard:
                self.deadlines.pop(conn, None)

        def service_actions(self) -> None:
            """Called by serve_forever every poll: hang up connections past their deadline."""
            super().service_actions()
            now = time.monotonic()
            with self.guard:
                for conn in [c for c, d in self.deadlines.items() if d <= now]:
                    self._hang_up(conn)

        def close_request(self, request) -> None:
            with self.guard:
                self.live.discard(request)
                self.deadlines.pop(request, None)
            super().close_request(request)

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


def _status(query: dict[str, str]) -> str | None:
    """The ``status`` query parameter: one of the job statuses, or absent (every job)."""
    status = query.get("status")
    if status is not None and status not in STATUSES:
        raise HttpError(400, f"status {status!r}: must be one of {', '.join(STATUSES)}",
                        "status")
    return status


def _handler(worker: Worker) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = f"ActAnywhere/{__version__}"
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt: str, *args: Any) -> None:  # quiet: the DB is the log
            return

        def handle_one_request(self) -> None:
            self.server.arm(self.connection)  # the next request has a deadline to arrive
            super().handle_one_request()

        def _send(self, status: int, body: dict[str, Any] | list[Any],
                  allow: tuple[str, ...] = ()) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            if allow:
                self.send_header("Allow", ", ".join(allow))
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
            self._send(err.status, body, err.allow)

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
            self._read = True
            if not raw:
                return {}
            try:
                data = json.loads(raw)
            except (ValueError, UnicodeDecodeError, RecursionError) as exc:
                why = "nested too deeply" if isinstance(exc, RecursionError) else exc
                raise HttpError(400, f"body is not valid JSON ({why})") from None
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
            self._read = False  # whether the request's body was read
            url = urlparse(self.path)
            # blank values kept: ``limit=`` is a bad limit, not none
            query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
            parts = [p for p in url.path.split("/") if p]
            try:
                if not self._authorised():  # drop the body unread into anything; run nothing
                    with contextlib.suppress(ValueError):  # within the connection's deadline
                        self._drain(int(self.headers.get("Content-Length", "0")))
                    self.close_connection = True
                    raise HttpError(401, "missing or wrong token; read it from the worker's "
                                    "connection file")
                self.server.authorised(self.connection)  # no deadline now: long polls wait
                worker.last_activity = time.monotonic()
                status, body = self._route(method, parts, query)
                self._send(status, body)
            except HttpError as err:
                if self.headers.get("Content-Length", "0") not in ("", "0") and not self._read:
                    self.close_connection = True  # its body was not read: end the connection
                self._error(err)
            except DamagedRecord as exc:  # the one job's record; the others are served
                self._error(HttpError(500, str(exc)))
            except (BrokenPipeError, ConnectionResetError):  # the client left (a long poll)
                self.close_connection = True
            except Exception as exc:  # noqa: BLE001 - the server stays up whatever happens
                self._error(HttpError(500, f"internal error: {type(exc).__name__}: {exc}"))

        def _route(self, method: str, parts: list[str], query: dict[str, str]
                   ) -> tuple[int, Any]:
            allow = _methods(parts)
            if allow and method not in allow:
                raise HttpError(405, f"{method} {urlparse(self.path).path}: use "
                                f"{' or '.join(allow)}", allow=allow)
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
                return 200, {"jobs": worker.store.list(_status(query), _limit(query))}
            if rest == ["takes"] and method == "GET":
                return 200, {"takes": _takes(worker.store, _limit(query))}
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
                    if not math.isfinite(wait):
                        raise HttpError(400, f"wait {wait}: must be a number of seconds",
                                        "wait")
                    if not 0 <= after < 2**62:
                        raise HttpError(400, f"after {after}: must be an event number "
                                        "(0 or more)", "after")
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
            raise HttpError(404, f"no endpoint {method} {self.path}")

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self._dispatch("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._dispatch("POST")

        def send_error(self, code: int, message: str | None = None,
                       explain: str | None = None) -> None:
            """http.server's own errors (a bad request line, oversized headers, a method it
            has no handler for) as JSON too; an unknown method is a 405 like the others."""
            self.close_connection = True
            if code == 501:  # no do_<METHOD>
                self._not_allowed()
                return
            short = self.responses.get(code, ("error",))[0]
            self._error(HttpError(code, f"{short}: {message or explain or 'bad request'}"))

        def _not_allowed(self) -> None:
            self.close_connection = True
            allow = _methods([p for p in urlparse(self.path).path.split("/") if p])
            self._error(HttpError(405, f"method {self.command} not allowed; use "
                                  f"{' or '.join(allow or ('GET', 'POST'))}",
                                  allow=allow or ("GET", "POST")))

        do_PUT = do_DELETE = do_PATCH = do_TRACE = do_OPTIONS = do_HEAD = _not_allowed

    return Handler


def serve(state: str | None = None, host: str = "127.0.0.1", port: int = 0,
          idle_s: float = 1800.0, allow_remote: bool = False, model_budget_gb: float = 16.0,
          hard_kill_s: float = 30.0, announce=print) -> None:
    worker = Worker(state, host, port, idle_s, allow_remote, model_budget_gb, hard_kill_s)
    for note in worker.notes:
        announce(f"warning: {note}")
    if worker.interrupted:
        announce(f"marked {len(worker.interrupted)} job(s) interrupted: "
                 f"{', '.join(worker.interrupted)}")
    announce(f"ActAnywhere worker {__version__} on {worker.url} (pid {os.getpid()}); "
             f"connection file {os.path.join(worker.state, paths.CONNECTION)}")
    worker.serve()
