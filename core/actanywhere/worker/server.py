"""`actanywhere serve`: the worker. HTTP + JSON on loopback, one job at a time; other
machines over TLS with ``listen``.

The jobs are this module's (``Worker``); the HTTP API is a FastAPI app (``app.py``, its
models in ``models.py``) served by uvicorn (``transport.py``).

- Binds 127.0.0.1 (or ::1) on a free port. ``listen`` (HOST:PORT) serves other machines:
  TLS (``tls``: certificate and key, ``tls.py``) unless ``insecure`` (one warning line).
- Users: a tokens file (``tokens.py``, re-read when it changes) names one token per user,
  some admins; the worker's own token (its connection file) is an admin too. In remote mode
  (``listen`` or ``tokens``) failed token attempts are limited per address (``auth.py``), a
  user may have ``max_queued`` jobs queued, and a user's submit is checked against the
  worker's disks (``access.py``). The queue is taken round-robin across users (``store.py``).
- One worker per state folder: it holds an OS lock there for its life (``paths.lock``); a
  second exits with one line naming the first's pid. The folder is 0700, its files 0600.
- A random token is written with the port to the connection file (0600, the user's state
  folder; put back if damaged or removed while the worker runs); every request must send
  ``Authorization: Bearer <token>`` (compared in constant time), or gets 401 and nothing runs.
- A connection must send a whole authorised request head within ``HEADER_TIMEOUT_S`` (idle
  keep-alive included) or it is closed; at most ``transport.connection_limit()`` are open at
  once, the oldest unauthorised one closed to make room. Authorised long polls wait their
  full time.
- Jobs are ShotSpecs, checked when submitted (4xx naming the field or file), queued in SQLite
  (``store.py``) and run one at a time by a runner thread; HTTP requests are served on the
  server's event loop and thread pool meanwhile. Progress events are stored and long-polled.
- Models stay loaded between jobs (``model/cache.py``) within a memory budget.
- Cancel is cooperative (between diffusion steps and frames; frames are written atomically);
  a job stuck loading a model is ended by exiting the worker after ``hard_kill_s``.
- On start, jobs left running by a dead worker are marked interrupted; ``resume`` re-queues a
  job with ``existing=skip`` so it finishes only the missing frames. A damaged job database
  is kept aside and a new one started; a damaged row is left out of listings (``store.py``).
- The worker exits after ``idle_s`` without jobs or requests.
"""

from __future__ import annotations

import ipaddress
import json
import os
import platform
import secrets
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from .. import __version__, catalog
from ..api import takes as takes_mod
from ..api.pathmap import spec_paths
from ..api.status import FINAL
from ..errors import ActAnywhereError, InputError, JobCancelled, OutputError, SpecError
from ..model import model_hash
from ..progress import ProgressEvent
from . import access, app, paths, tls, transport, uploads
from .auth import AUTH_WINDOW_S, MAX_FAILURES, Auth, Failures, User
from .models import HttpError, spec_field
from .store import JobStore, QueueFull, StateFull
from .tokens import TokenFile
from .transport import HEADER_TIMEOUT_S as HEADER_TIMEOUT_S

if TYPE_CHECKING:
    from ..spec import ShotSpec

MAX_WAIT_S = 30.0
MAX_QUEUED_PER_USER = 8
DEFAULT_MODEL = "(default)"  # a job that left engine.model to the engine's default
UPLOAD_KEEP_H = 24.0
UPLOAD_LIMIT_GB = 100.0


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::]:8765`` for IPv6) as (host, port); SpecError otherwise."""
    host, sep, port = value.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise SpecError(f"--listen {value}: give HOST:PORT, e.g. 0.0.0.0:8765 (all addresses) "
                        "or [::]:8765")
    return host, int(port)


def _url(scheme: str, host: str, port: int) -> str:
    return f"{scheme}://{'[' + host + ']' if ':' in host else host}:{port}"


def _address(host: str, port: int, *, listen: str | None, tls_files: tuple[str, str] | None,
             insecure: bool, allow_remote: bool) -> tuple[str, int, str | None]:
    """Where the worker listens (host, port) and the warning plain HTTP beyond loopback
    gets; SpecError (one line, the fix) for an address it may not serve as asked."""
    if listen is not None:
        host, port = parse_listen(listen)
        if tls_files is None and not insecure:
            raise SpecError(f"--listen {listen}: other machines reach the worker over TLS; "
                            "give --tls-cert FILE --tls-key FILE (`actanywhere serve "
                            "--make-cert DIR --host NAME` makes a pair), or --insecure for "
                            "plain HTTP on a network you trust")
    elif not _loopback(host) and not allow_remote:
        raise SpecError(f"--host {host}: the worker only listens on loopback (127.0.0.1 or "
                        "::1); to serve other machines use --listen HOST:PORT with "
                        "--tls-cert/--tls-key (docs/worker.md); --allow-remote exposes it "
                        "as plain HTTP (as --listen with --insecure)")
    if insecure and tls_files is not None:
        raise SpecError("--insecure with --tls-cert: choose one (TLS, or plain HTTP)")
    exposed = listen is not None or not _loopback(host)
    note = (f"--insecure: serving plain HTTP on {host}:{port}; tokens and shots cross the "
            "network unencrypted (give --tls-cert and --tls-key)"
            if exposed and tls_files is None else None)
    return host, port, note


def _reach_locally(host: str) -> str:
    """The address a client on this machine uses for a worker bound to ``host``."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)


class Worker:
    def __init__(self, state: str | None = None, host: str = "127.0.0.1", port: int = 0,
                 idle_s: float = 1800.0, allow_remote: bool = False,
                 model_budget_gb: float = 16.0, hard_kill_s: float = 30.0, *,
                 listen: str | None = None, tls_files: tuple[str, str] | None = None,
                 insecure: bool = False, tokens: str | None = None,
                 max_queued_per_user: int = MAX_QUEUED_PER_USER,
                 max_auth_failures: int = MAX_FAILURES, upload_keep_h: float = UPLOAD_KEEP_H,
                 upload_limit_gb: float = UPLOAD_LIMIT_GB) -> None:
        host, port, insecure_note = _address(host, port, listen=listen, tls_files=tls_files,
                                             insecure=insecure, allow_remote=allow_remote)
        #: what the start did that the user should hear of (one warning line each)
        self.notes: list[str] = [insecure_note] if insecure_note else []
        ssl_context = tls.server_context(*tls_files) if tls_files is not None else None
        token_file = TokenFile(tokens) if tokens is not None else None
        # remote mode: failed token attempts are counted per address
        remote = listen is not None or not _loopback(host) or token_file is not None
        self.state = paths.private_folder(paths.state_dir(state))
        self._lock_fd = paths.lock(self.state)  # held (open) for the life of the process
        stale = paths.stale_connection(self.state)  # ours now: no worker holds the lock
        self.store = JobStore(os.path.join(self.state, paths.DATABASE))
        self.notes += [*self.store.notes, *([stale] if stale else [])]
        self.interrupted = self.store.mark_interrupted()
        #: files sent by clients that do not share the worker's disks (``uploads.py``)
        self.uploads = uploads.UploadStore(os.path.join(self.state, "uploads"),
                                           limit_bytes=int(upload_limit_gb * 2**30),
                                           keep_s=upload_keep_h * 3600.0)
        self._next_sweep = 0.0
        #: (engine, model) of the jobs run here, newest last: reported as warm (``health``)
        self._ran: dict[tuple[str, str | None], float] = {}
        self.token = secrets.token_urlsafe(32)
        self.auth = Auth(self.token, tokens=token_file, failures=Failures(
            max_auth_failures, AUTH_WINDOW_S) if remote else None)
        self.max_queued = max_queued_per_user
        self.idle_s, self.hard_kill_s = idle_s, hard_kill_s
        self.model_budget = int(model_budget_gb * 2**30)
        self.changed = threading.Condition()
        self.stopping = threading.Event()
        self.current: tuple[str, threading.Event] | None = None
        self.current_stage = ""
        self.last_activity = time.monotonic()
        self.started = time.time()
        self.socket = transport.listen(host, port)
        self.host, self.port = host, int(self.socket.getsockname()[1])
        scheme = "https" if ssl_context is not None else "http"
        #: where it listens; ``local_url``: where a client on this machine reaches it
        self.url = _url(scheme, host, self.port)
        self.local_url = _url(scheme, _reach_locally(host), self.port)
        self.info = {"url": self.local_url, "host": _reach_locally(host), "port": self.port,
                     "token": self.token, "pid": os.getpid(), "version": __version__,
                     "started": self.started, "python": sys.executable}
        if tls_files is not None:  # local clients trust exactly this certificate
            self.info["ca"] = os.path.abspath(tls_files[0])
        self._connection_guard = threading.Lock()
        self._connection_live = False  # the connection file is ours to keep while True
        self.server = transport.server(app.build(self), ssl=ssl_context)

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
            transport.run(self.server, self.socket)
        finally:
            self.stopping.set()
            self._drop_connection()
            self.socket.close()
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
        """Stop serving (answers under way are sent; long polls end now) and the job."""
        self.stopping.set()
        if self.current is not None:
            self.current[1].set()
        self.server.should_exit = True
        self.notify()

    def touch(self) -> None:
        """An authorised request came: the worker is not idle."""
        self.last_activity = time.monotonic()

    def _idle_watch(self) -> None:
        while not self.stopping.wait(min(1.0, max(self.uploads.keep_s / 4, 0.2))):
            self._keep_connection()
            self._sweep_uploads()
            busy = self.current is not None or self.store.queued() > 0
            if busy:
                self.last_activity = time.monotonic()
            elif time.monotonic() - self.last_activity > self.idle_s:
                self.shutdown()
                return

    def _sweep_uploads(self) -> None:
        """Remove uploads unused for ``--upload-keep`` hours that no queued or running job
        reads or writes (one line each on stderr)."""
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + min(60.0, max(self.uploads.keep_s / 4, 0.2))
        try:
            busy = [holder[key] for status in ("queued", "running")
                    for job in self.store.list(status, 10000)
                    for _, holder, key in spec_paths(job.get("spec") or {})]
            for upload_id in self.uploads.sweep(busy):
                print(f"removed upload {upload_id}: unused for --upload-keep "
                      f"{self.uploads.keep_s / 3600:g} h", file=sys.stderr, flush=True)
        except Exception as exc:  # noqa: BLE001 - a sweep never stops the worker
            self.store.warn(f"cleaning uploads met {type(exc).__name__}: {exc}; tried again "
                            "later")

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
            self._ran[(shot.engine.name, _model_path(shot))] = time.time()
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
    def submit(self, shot: ShotSpec, client: str = "",
               user: User = User("local", admin=True, local=True)) -> dict[str, Any]:
        """Queue ``shot`` (valid as a ShotSpec) for ``user`` once ``job.check`` finds it can
        run, as a local run checks it before its first pixel; HttpError naming what is wrong.
        A user of the tokens file has their paths checked as this machine sees them first
        (``access.py``) and at most ``max_queued`` jobs queued."""
        from ..shot import job as job_mod

        full = shot.model_dump(mode="json")
        uploads.check_spec_paths(self.uploads, ((f, h[k]) for f, h, k in spec_paths(full)),
                                 user)
        if not user.local:
            access.check(full)
        try:
            job_mod.check(shot)
        except SpecError as exc:
            raise HttpError(422, str(exc), spec_field(exc), exc.exit_code) from exc
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
                                       client, owner=user.name,
                                       max_queued=None if user.local else self.max_queued)
        except StateFull as exc:
            raise HttpError(507, str(exc), exit_code=exc.exit_code) from None
        except QueueFull as exc:
            raise HttpError(429, str(exc), exit_code=exc.exit_code) from None
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
        loaded: set[str] | None = None
        if cache_mod is not None and cache_mod.active() is not None:
            info["models"] = cache_mod.active().info()
            loaded = {os.path.realpath(str(m)) for m in info["models"].get("models", [])}
        info["warm"] = [{"engine": engine, "model": model} for (engine, model), _ in
                        sorted(self._ran.items(), key=lambda kv: -kv[1])
                        if model is None or loaded and (model in loaded or model == DEFAULT_MODEL)]
        return info

    def takes(self, limit: int, owner: str | None = None) -> list[dict]:
        """The finished takes (``owner``'s only, when given); one whose job or record cannot
        be read is left out with a warning naming its job, and the others are listed."""
        out = []
        for job in self.store.list("done", limit, owner=owner):
            try:
                out.append(_take(job))
            except Exception as exc:  # noqa: BLE001 - a bad record never hides the others
                self.store.warn(f"job {job.get('id')}: its take cannot be read "
                                f"({type(exc).__name__}: {exc}); left out of the takes")
        return out

    def wait_events(self, job_id: str, after: int, wait: float) -> dict[str, Any]:
        deadline = time.monotonic() + min(max(wait, 0.0), MAX_WAIT_S)
        while True:
            job = self.store.get(job_id)
            if job is None:
                raise HttpError(404, f"no job {job_id}")
            events = self.store.events(job_id, after)
            left = deadline - time.monotonic()
            if events or job["status"] in FINAL or left <= 0 or self.stopping.is_set():
                return {"id": job_id, "status": job["status"], "done": job["done"],
                        "total": job["total"], "error": job["error"], "events": events,
                        "last": events[-1]["seq"] if events else after}
            with self.changed:
                self.changed.wait(min(left, 0.5))


def _model_path(shot: ShotSpec) -> str | None:
    """The real path of the model the job's engine loads, None for an engine without one."""
    if not catalog.engine(shot.engine.name).model:
        return None
    return os.path.realpath(str(shot.engine.model)) if shot.engine.model else DEFAULT_MODEL


def _take(job: dict) -> dict:
    """A finished job as a take: what it made, and its record's proxies when it wrote them."""
    output = job["spec"]["output"]["path"]
    out = {"id": job["id"], "output": output, "seed": job["seed"], "engine": job["engine"],
           "model_hash": job["model_hash"], "frames": len(job["outputs"]),
           "finished": job["finished"], "record": None, "proxy": None, "plate_proxy": None,
           "contact_sheet": None, "proxies": 0, "starred": False, "owner": job["owner"]}
    take = takes_mod.for_output(output)
    if take is not None:
        out.update(record=take.path, proxy=take.abs_path(take.proxy) or None,
                   plate_proxy=take.abs_path(take.plate_proxy) or None,
                   contact_sheet=take.contact_sheet_file(), proxies=len(take.proxies()),
                   starred=take.starred)
    return out




def serve(state: str | None = None, host: str = "127.0.0.1", port: int = 0,
          idle_s: float = 1800.0, allow_remote: bool = False, model_budget_gb: float = 16.0,
          hard_kill_s: float = 30.0, announce=print, **remote: Any) -> None:
    """Start a ``Worker`` (``remote``: its keyword-only settings: listen, tls_files, insecure,
    tokens, max_queued_per_user, max_auth_failures, upload_keep_h, upload_limit_gb), say how
    it started, serve until it stops."""
    worker = Worker(state, host, port, idle_s, allow_remote, model_budget_gb, hard_kill_s,
                    **remote)
    for note in worker.notes:
        announce(f"warning: {note}")
    if worker.interrupted:
        announce(f"marked {len(worker.interrupted)} job(s) interrupted: "
                 f"{', '.join(worker.interrupted)}")
    users = worker.auth.tokens
    who = f"; {len(users.entries)} token(s) in {users.path}" if users is not None else ""
    announce(f"ActAnywhere worker {__version__} on {worker.url} (pid {os.getpid()}); "
             f"connection file {os.path.join(worker.state, paths.CONNECTION)}{who}")
    worker.serve()
