"""Talk to the ActAnywhere worker from any Python 3.10+: standard library only.

Nuke's and Blender's own Pythons import this file (it needs neither numpy nor torch, and
nothing else from the package). It finds a running worker through the connection file in
the user's state folder, or starts one from a configured venv, or (``connect`` when the
environment names one, ``remote.py``) reaches a worker on another machine over TLS with the
user's token, mapping the spec's paths to the worker's mounts and the answers' paths back
(``pathmap.py``). It submits ShotSpecs (as dicts),
streams progress to a callback, cancels, and turns every failure into one ``WorkerError``
whose message says what to do. A connection file left by a worker that has stopped is removed
(and said so); a worker that cannot start is reported with its own one-line error; one that
finds the folder served already leads to the worker that serves it.

    from actanywhere.api import Client
    c = Client.connect(python="/studio/actanywhere/.venv/bin/python")
    job = c.submit(spec_dict)
    c.wait(job, on_event=lambda ev: print(ev))

``wait`` blocks: a host UI uses ``JobHandle`` (``handle.py``), which waits on its own thread;
``cancel`` is safe from any thread.

A worker that cannot see the client's files (``transfer``: ``upload``, or ``auto`` when the
worker's access check refuses them) gets them sent by ``submit`` (``upload.py``), and
``wait`` fetches the take into the output the user asked for. Several workers (a
connection file's ``workers`` list, ``ACTANYWHERE_WORKER=URL,URL``): ``submit`` sends each
take to the one ``workers.pick`` chooses and says which. ``on_transfer`` hears those steps as
progress events (``stage``, ``message``, ``done``, ``total``).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from . import connection, pathmap, upload, workers
from .connection import state_dir
from .failure import WorkerError
from .remote import (
    ENV_CONNECTION,
    ENV_TOKEN,
    ENV_WORKER,
    Remote,
    RemoteError,
    from_env,
    tls_context,
    workers_from_env,
)
from .status import FINAL

EventCallback = Callable[[dict], None]


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if sys.platform == "win32":
        out = subprocess.run(["tasklist", "/FI", f"PID eq {pid}"], capture_output=True,
                             text=True, check=False).stdout
        return str(pid) in out
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (killed, not yet reaped by its parent) is not alive
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _alive_after(pid: int, grace: float) -> bool:
    """Whether ``pid`` still lives ``grace`` seconds on: a killed worker's sockets are reset
    a moment before the process is gone, so a refused or reset connection looks again."""
    end = time.monotonic() + grace
    while _pid_alive(pid):
        if time.monotonic() >= end:
            return True
        time.sleep(0.05)
    return False


class Client:
    """One worker connection (url + token). ``ca``: the CA file an https worker's certificate
    is checked against (``pin``: the worker's own certificate, trusted whatever host name it
    holds); ``path_maps``: client prefix -> worker prefix; ``settings``: where a remote
    worker's settings came from (``remote.Remote``), for messages."""

    def __init__(self, url: str, token: str, pid: int = 0, timeout: float = 10.0,
                 state: str | None = None, *, ca: str | None = None, pin: bool = False,
                 path_maps: Sequence[pathmap.Rule] = (),
                 settings: Remote | None = None) -> None:
        self.url, self.token, self.pid, self.timeout = url.rstrip("/"), token, pid, timeout
        self.state = state
        self.path_maps = tuple(path_maps)
        self.settings = settings
        self._ca_setting = settings.ca_setting if settings else "ca in the connection file"
        self._tls: ssl.SSLContext | None = None
        if self.url.startswith("https:"):
            try:
                self._tls = tls_context(ca, self._ca_setting, pin=pin)
            except RemoteError as exc:
                raise WorkerError(str(exc)) from None
        self._ca = ca
        #: what ``connect`` did on the way that the user should hear of (a stale connection
        #: file removed), or None
        self.notice: str | None = None
        #: shared | upload | auto (``remote.py``); bytes per chunk of an upload
        self.transfer = settings.transfer if settings else "shared"
        self.chunk_bytes = upload.CHUNK
        #: stop an upload after sending this many chunks (WorkerError; submitting again goes
        #: on from there): a host that pauses, and the tests of resuming
        self.stop_after_chunks: int | None = None
        #: the workers a take may go to (``submit`` picks one when there are several)
        self.pool: tuple[Remote, ...] = (settings,) if settings else ()
        #: hears the upload, download and worker-choice steps (None: ``wait``'s on_event, and
        #: ``notes``)
        self.on_transfer: EventCallback | None = None
        #: the lines the user should hear that ``on_transfer`` did not take
        self.notes: list[str] = []
        self._sent: dict[str, upload.Sent] = {}

    def _use(self, settings: Remote) -> None:
        """Talk to the worker of ``settings`` from now on."""
        self.url, self.token, self.settings = settings.url.rstrip("/"), settings.token, settings
        self.path_maps, self.transfer, self._ca = settings.path_maps, settings.transfer, \
            settings.ca
        self._ca_setting = settings.ca_setting
        self._tls = tls_context(settings.ca, settings.ca_setting) \
            if self.url.startswith("https:") else None

    def _say(self, message: str, stage: str = "prepare", done: int = 0, total: int = 0,
             on_event: EventCallback | None = None) -> None:
        event = {"stage": stage, "message": message, "done": done, "total": total}
        target = self.on_transfer or on_event
        if target is not None:
            target(event)
        else:
            self.notes.append(message)

    @classmethod
    def remote(cls, settings: Remote | None = None, timeout: float = 10.0) -> Client:
        """The remote worker of ``settings`` (default: the environment's, ``remote.py``),
        checked with ``/v1/health``; WorkerError (one line naming the setting) if it cannot
        be reached, its certificate is not trusted, or the token is refused."""
        try:
            settings = settings or from_env()
        except (RemoteError, pathmap.PathMapError) as exc:
            raise WorkerError(str(exc)) from None
        if settings is None:
            raise WorkerError(f"no remote worker is set; set {ENV_CONNECTION} to the "
                              f"connection file your admin gave you (or {ENV_WORKER} "
                              f"and {ENV_TOKEN})")
        client = cls(settings.url, settings.token, 0, timeout, None, ca=settings.ca,
                     path_maps=settings.path_maps, settings=settings)
        client.health()
        return client

    @classmethod
    def remotes(cls, pool: tuple[Remote, ...] | None = None, timeout: float = 10.0) -> Client:
        """A client for several remote workers (default: the environment's list): each take's
        ``submit`` goes to the one ``workers.pick`` chooses. WorkerError when none answers."""
        try:
            pool = pool or workers_from_env()
        except (RemoteError, pathmap.PathMapError) as exc:
            raise WorkerError(str(exc)) from None
        if len(pool) <= 1:
            return cls.remote(pool[0] if pool else None, timeout)
        ask = workers.health_of(cls, min(timeout, workers.HEALTH_TIMEOUT_S))
        first, warnings = None, []
        for settings in pool:  # the first that answers, until a take picks
            try:
                ask(settings)
            except WorkerError as exc:
                warnings.append(f"skipped the worker {settings.url}: {exc}")
                continue
            first = settings
            break
        if first is None:
            raise WorkerError(f"none of the {len(pool)} workers answered: "
                              + "; ".join(warnings))
        client = cls(first.url, first.token, 0, timeout, None, ca=first.ca,
                     path_maps=first.path_maps, settings=first)
        client.pool = tuple(pool)
        return client

    # ---------------------------------------------------------------------------- connect
    @classmethod
    def from_state(cls, state: str | None = None, timeout: float = 10.0) -> Client:
        """The worker whose connection file is in ``state``; WorkerError if none answers. A
        file left by a worker that has stopped (its pid gone, or its port refusing) is
        removed, and the error says so (``notice``)."""
        folder = state_dir(state)
        path = connection.path(folder)
        try:
            info = connection.read(folder)
        except FileNotFoundError as exc:
            raise WorkerError(f"no worker is running (no {path}); start one with "
                              "`actanywhere serve`") from exc
        except (OSError, ValueError) as exc:
            raise WorkerError(f"{path}: unreadable connection file ({exc}); start the worker "
                              "(`actanywhere serve`): it replaces the file, or the worker that "
                              "serves this folder puts it back") from exc
        try:
            ca = info.get("ca")
            client = cls(str(info["url"]), str(info["token"]), int(info.get("pid") or 0),
                         timeout, folder, ca=str(ca) if ca else None, pin=True)
        except (TypeError, ValueError) as exc:
            raise WorkerError(f"{path}: unreadable connection file ({exc}); start the worker "
                              "(`actanywhere serve`): it replaces the file") from exc
        try:
            client.health()
        except WorkerError as exc:
            if not _stale(client.pid, exc):
                raise
            connection.remove(folder, info.get("pid"))
            notice = (f"removed {path}, left by worker pid {client.pid}, which has stopped"
                      if not _pid_alive(client.pid) else f"removed {path}: worker pid "
                      f"{client.pid} does not answer at {client.url}")
            err = WorkerError(f"no worker is running: {notice}; start one with "
                              "`actanywhere serve`")
            err.notice = notice
            raise err from exc
        return client

    @classmethod
    def connect(cls, state: str | None = None, python: str | None = None,
                start: bool = True, start_timeout: float = 120.0, idle_s: float | None = None,
                timeout: float = 10.0) -> Client:
        """A running worker, or (``start``) a new one started with ``python`` (the venv's
        interpreter; default ``$ACTANYWHERE_PYTHON``, else this interpreter). Without
        ``state``, a remote worker the environment names (``ACTANYWHERE_CONNECTION`` or
        ``ACTANYWHERE_WORKER``) comes first; none is started then."""
        if state is None:
            try:
                pool = workers_from_env()
            except (RemoteError, pathmap.PathMapError) as exc:
                raise WorkerError(str(exc)) from None
            if len(pool) > 1:
                return cls.remotes(pool, timeout)
            if pool:
                return cls.remote(pool[0], timeout)
        notice = None
        try:
            return cls.from_state(state, timeout)
        except WorkerError as exc:
            if not start:
                raise
            notice = exc.notice
        python = python or os.environ.get("ACTANYWHERE_PYTHON") or sys.executable
        if not os.path.isfile(python):
            raise WorkerError(f"{python}: no such Python; set the ActAnywhere venv's python "
                              "(ACTANYWHERE_PYTHON or the host preferences) after running "
                              "install.py")
        folder = state_dir(state)
        deadline = time.monotonic() + start_timeout
        for _ in range(3):
            client = cls._start(folder, python, idle_s=idle_s, timeout=timeout,
                                deadline=deadline, start_timeout=start_timeout)
            if client is not None:
                client.notice = notice
                return client
        raise WorkerError(f"{folder}: the worker that held this state folder kept stopping as "
                          "a new one started; start one again")

    @classmethod
    def _start(cls, folder: str, python: str, *, idle_s: float | None, timeout: float,
               deadline: float, start_timeout: float) -> Client | None:
        """Start a worker on ``folder`` and wait until it, or the worker that already serves
        the folder, answers. None when the folder's worker was stopping and has gone: start
        again."""
        log_path = os.path.join(folder, connection.LOG)
        try:
            os.makedirs(folder, mode=0o700, exist_ok=True)
            log_fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            if hasattr(os, "fchmod"):
                os.fchmod(log_fd, 0o600)  # one an older run left readable
        except OSError as exc:
            raise WorkerError(f"{log_path}: cannot write the worker's log ({exc.strerror or exc}"
                              "); pass another state folder") from exc
        said_from = os.fstat(log_fd).st_size  # what this start adds to the log is read back
        cmd = [python, "-m", "actanywhere", "serve", "--state-dir", folder]
        if idle_s is not None:
            cmd += ["--idle-timeout", str(idle_s)]
        env = dict(os.environ, HF_HUB_OFFLINE="1")
        if python != sys.executable:
            env.pop("PYTHONPATH", None)  # a host's PYTHONPATH is not for the worker's venv
        with open(log_fd, "ab") as log:
            kw: dict[str, Any] = {"stdout": log, "stderr": log, "stdin": subprocess.DEVNULL,
                                  "env": env}
            if sys.platform == "win32":
                kw["creationflags"] = 0x00000008 | 0x00000200  # DETACHED, NEW_PROCESS_GROUP
            else:
                kw["start_new_session"] = True
            proc = subprocess.Popen(cmd, **kw)
        busy = None  # the new worker's line when another holds the folder
        while time.monotonic() < deadline:
            ended = proc.poll() is not None
            try:
                # this one, or the worker that already serves the folder (only the holder of
                # the folder's lock writes the connection file)
                client = cls.from_state(folder, timeout)
            except WorkerError:
                pass
            else:
                if client.pid != proc.pid and proc.poll() is None:
                    proc.terminate()  # still waiting for the lock: not to serve once it goes
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(timeout=10)
                return client
            if ended and busy is None:
                said = _said(log_path, said_from)
                error = _error_line(said)
                if error is None:
                    raise WorkerError(f"the worker did not start (exit code {proc.returncode}): "
                                      f"{_last_lines(said)}; check that ActAnywhere is installed"
                                      f" in {python} (python3 install.py setup)")
                if connection.BUSY not in error:  # the worker's own one-line error
                    code = proc.returncode if proc.returncode in (2, 3, 4, 5) else None
                    raise WorkerError(f"the worker did not start: {error}", code)
                busy = error
            if busy is not None:
                # the folder's worker puts its connection file back within a second or two,
                # is still starting, or is stopping (then start again)
                holder = connection.lock_holder(folder)
                if holder is None or not _pid_alive(holder):
                    return None
            time.sleep(0.2)
        if busy is not None:
            raise WorkerError(f"{busy}; it did not answer within {start_timeout:.0f} s (see "
                              f"{log_path})")
        proc.kill()
        raise WorkerError(f"the worker did not answer within {start_timeout:.0f} s; see "
                          f"{log_path}")

    # ---------------------------------------------------------------------------- requests
    def _request(self, method: str, path: str, body: dict | None = None,
                 timeout: float | None = None, *, raw: bytes | None = None) -> Any:
        """One request; its JSON answer. ``raw``: bytes sent as they are (a chunk)."""
        with self._open(method, path, body, timeout=timeout, raw=raw) as resp:
            return json.loads(resp.read() or b"{}")

    @contextlib.contextmanager
    def _open(self, method: str, path: str, body: dict | None = None,
              timeout: float | None = None, *, raw: bytes | None = None) -> Iterator[Any]:
        """The worker's answer to one request, to read (a file streams); every failure,
        reading included, one WorkerError."""
        data = raw if raw is not None else json.dumps(body).encode() if body is not None \
            else None
        kind = "application/octet-stream" if raw is not None else "application/json"
        req = urllib.request.Request(f"{self.url}{path}", data=data, method=method, headers={
            "Authorization": f"Bearer {self.token}", "Content-Type": kind})
        try:
            with urllib.request.urlopen(req, timeout=timeout or self.timeout,
                                        context=self._tls) as resp:
                yield resp
        except urllib.error.HTTPError as exc:
            code = field = None
            try:
                answer = json.loads(exc.read())
                detail, code = answer.get("error", ""), answer.get("exit_code")
                field = answer.get("field")
            except (ValueError, AttributeError):
                detail = exc.reason
            if exc.code == 401 and self.settings is not None:
                raise WorkerError(f"the worker at {self.url} refused the token "
                                  f"({self.settings.token_setting}): it is wrong or revoked; "
                                  "ask the worker's admin for a new one") from exc
            if exc.code == 401:
                raise WorkerError("the worker rejected the token: the connection file is stale "
                                  "or belongs to another worker; restart the worker") from exc
            raise WorkerError(f"worker: {detail} (HTTP {exc.code})", code, field) from exc
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            # HTTPException: a worker killed mid-answer (IncompleteRead, RemoteDisconnected)
            if self.pid and not _alive_after(self.pid, 0.25):
                raise WorkerError(f"the worker (pid {self.pid}) has stopped; start it again "
                                  "and resume the job (interrupted jobs keep their frames)"
                                  ) from exc
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, ssl.SSLCertVerificationError):
                trusted = f"the CA file {self._ca}" if self._ca else "the system's CAs"
                raise WorkerError(
                    f"{self.url}: the worker's certificate is not trusted by {trusted} "
                    f"({reason.verify_message or reason.reason}); set {self._ca_setting} to "
                    "the worker's certificate or your studio's CA") from exc
            if isinstance(reason, ssl.SSLError):
                raise WorkerError(f"cannot reach the worker at {self.url} over TLS "
                                  f"({reason.reason or reason}); use https:// for a worker "
                                  "with --tls-cert, http:// for one with --insecure") from exc
            hint = ("; a worker serving TLS needs https://" if self.settings is not None and
                    self.url.startswith("http:") else "")
            raise WorkerError(f"cannot reach the worker at {self.url} ({reason}){hint}"
                              ) from exc

    def health(self) -> dict:
        return self._request("GET", "/v1/health")

    def submit(self, spec: dict, client: str = "") -> str:
        """Queue a ShotSpec (dict, its paths the client's: mapped here to the worker's);
        returns the job id. Invalid specs raise WorkerError naming the field, and for a
        mapped path the client's path and the map used. With several workers the take goes
        to the one ``workers.pick`` chooses; with ``transfer`` upload (or auto, when the
        worker cannot read the inputs) the inputs are sent first (``upload.send``)."""
        if len(self.pool) > 1:
            choice = workers.pick(self.pool, spec, workers.health_of(
                type(self), min(self.timeout, workers.HEALTH_TIMEOUT_S)))
            for warning in choice.warnings:
                self._say(warning, "warning")
            self._use(choice.settings)
            self._say(choice.line)
        if self.transfer == "upload":
            return self._submit_uploaded(spec, client)
        try:
            return self._submit(spec, client)
        except WorkerError as exc:
            if self.transfer != "auto" or not _unreadable(exc):
                raise
            self._say(f"the worker cannot use {exc.field or 'the inputs'} ({exc}); sending "
                      "the inputs", "warning")
        return self._submit_uploaded(spec, client)

    def _submit(self, spec: dict, client: str, keep: tuple[str, ...] = ()) -> str:
        try:
            sent, mapped = pathmap.spec_to_worker(spec, self.path_maps, setting=self.settings
                                                  .maps_setting if self.settings else "path_maps",
                                                  keep=keep)
        except pathmap.PathMapError as exc:
            raise WorkerError(str(exc), 2, exc.field) from None
        try:
            return self._request("POST", "/v1/jobs", {"spec": sent, "client": client})["id"]
        except WorkerError as exc:
            if exc.field not in mapped:
                raise
            theirs, rule = mapped[exc.field]
            raise WorkerError(f"{exc} [{exc.field} was {theirs} here, mapped by {rule}]",
                              exc.exit_code, exc.field) from exc

    def _submit_uploaded(self, spec: dict, client: str) -> str:
        rewritten, sent, fields = upload.send(self, spec, on_event=self.on_transfer or (
            lambda ev: self.notes.append(ev["message"])))
        job_id = self._submit(rewritten, client, keep=tuple(fields))
        self._sent[job_id] = sent
        return job_id

    def _windows(self) -> bool:
        return sys.platform == "win32"

    def job(self, job_id: str) -> dict:
        """The job, its paths as this machine sees them (an uploaded take's: the spec as the
        user gave it; its outputs on the worker until ``wait`` fetched them)."""
        job = pathmap.job_to_client(self._request("GET", f"/v1/jobs/{job_id}"),
                                    self.path_maps, windows=self._windows())
        sent = self._sent.get(job_id)
        if sent is not None:
            job = {**job, "spec": sent.client_spec, "upload": {"id": sent.upload_id,
                                                               "take": sent.take}}
        return job

    def fetch(self, job_id: str, on_event: EventCallback | None = None) -> dict:
        """An uploaded take's files brought into the output the user asked for (``wait``
        does it when the take ends); the job with its outputs as this machine sees them."""
        sent = self._sent[job_id]
        job = self._request("GET", f"/v1/jobs/{job_id}")
        return upload.fetch(self, sent, job, on_event=self.on_transfer or on_event or (
            lambda ev: self.notes.append(ev["message"])))

    def jobs(self, status: str | None = None) -> list[dict]:
        query = f"?status={status}" if status else ""
        return [pathmap.job_to_client(j, self.path_maps, windows=self._windows())
                for j in self._request("GET", f"/v1/jobs{query}")["jobs"]]

    def takes(self) -> list[dict]:
        """The finished takes, their files as this machine sees them."""
        return [pathmap.take_to_client(t, self.path_maps, windows=self._windows())
                for t in self._request("GET", "/v1/takes")["takes"]]

    def events(self, job_id: str, after: int = 0, wait: float = 0.0) -> dict:
        return self._request("GET", f"/v1/jobs/{job_id}/events?after={after}&wait={wait}",
                             timeout=self.timeout + wait)

    def cancel(self, job_id: str) -> None:
        self._request("POST", f"/v1/jobs/{job_id}/cancel", {})

    def resume(self, job_id: str) -> None:
        self._request("POST", f"/v1/jobs/{job_id}/resume", {})

    def shutdown(self) -> None:
        self._request("POST", "/v1/shutdown", {})

    def wait(self, job_id: str, on_event: EventCallback | None = None, poll: float = 5.0,
             timeout: float | None = None) -> dict:
        """Stream the job's events to ``on_event`` until it ends; returns the final job.
        A worker that dies meanwhile raises WorkerError within about ``poll`` seconds."""
        after, start = 0, time.monotonic()
        while True:
            if timeout is not None and time.monotonic() - start > timeout:
                raise WorkerError(f"job {job_id} did not finish within {timeout:.0f} s; it is "
                                  "still queued or running in the worker")
            page = self.events(job_id, after, wait=poll)
            for ev in page["events"]:
                if on_event is not None:
                    on_event(ev)
            after = page["last"]
            if page["status"] in FINAL:
                if job_id in self._sent:  # what the take wrote, brought here
                    return self.fetch(job_id, on_event)
                return self.job(job_id)


def _unreadable(exc: WorkerError) -> bool:
    """Whether the worker refused a job because it cannot see its files (its access check,
    or the job's own input check): then ``auto`` sends them."""
    if exc.exit_code == 2:  # a path on none of the path maps: the worker cannot see it
        return "is under none of the path maps" in str(exc)
    return exc.exit_code in (3, 4) and (exc.field in _PATH_FIELDS or "as the worker sees it"
                                        in str(exc) or "does not exist" in str(exc))


_PATH_FIELDS = frozenset(f.replace(".*", "") for f in pathmap.PATH_FIELDS)


def _stale(pid: int, exc: WorkerError) -> bool:
    """Whether a connection file whose worker failed to answer with ``exc`` is a stopped
    worker's: its pid is gone, or nothing listens on its port."""
    if not _pid_alive(pid):
        return True
    cause = exc.__cause__
    reason = getattr(cause, "reason", cause)
    return isinstance(reason, ConnectionRefusedError)


def _said(path: str, offset: int) -> str:
    """What was written to the log at ``path`` from ``offset`` on."""
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            return fh.read(1 << 20).decode(errors="replace")
    except OSError:
        return ""


def _error_line(text: str) -> str | None:
    """The last ``error: ...`` line the CLI printed (its one-line error), without the prefix."""
    for line in reversed(text.splitlines()):
        if line.startswith("error: "):
            return line[len("error: "):].strip()
    return None


def _last_lines(text: str, lines: int = 3) -> str:
    return " | ".join(text.strip().splitlines()[-lines:]) or "no output"
