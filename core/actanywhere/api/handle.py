"""A job run from a host without blocking it: connect, submit and follow happen on the
handle's own thread; the host hears of progress and of the end through callbacks that the
handle passes to a host-supplied "run this on the main thread" function.

    handle = JobHandle(spec, lambda: Client.connect(python=venv_python),
                       main_thread=nuke.executeInMainThread,
                       on_progress=show, on_done=load_take, on_failed=show_error,
                       on_cancelled=show_cancelled).start()
    ...
    handle.cancel()  # from any thread; returns at once

Every outcome ends in exactly one of ``on_done(job)``, ``on_failed(message)`` or
``on_cancelled(message)``; a message is one line for the artist, never a traceback.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from .client import Client, WorkerError
from .status import END, WORK_STAGES

Callback = Callable[[], None]
MainThread = Callable[[Callback], None]


def call_now(fn: Callback) -> None:
    """The main-thread function of a caller that has no UI thread: run the callback at once
    (on the handle's thread)."""
    fn()


class MainThreadQueue:
    """A main thread for hosts without an event loop of their own (the CLI, Blender in
    background mode, tests): ``post`` from any thread, ``pump`` on the main thread."""

    def __init__(self) -> None:
        self._calls: queue.Queue[Callback] = queue.Queue()

    def post(self, fn: Callback) -> None:
        self._calls.put(fn)

    def pump(self, timeout: float = 0.0) -> int:
        """Run every queued callback, waiting up to ``timeout`` s for the first; the count."""
        ran = 0
        try:
            fn = self._calls.get(timeout=timeout) if timeout > 0 else self._calls.get_nowait()
            while True:
                fn()
                ran += 1
                fn = self._calls.get_nowait()
        except queue.Empty:
            return ran

    def run_until(self, handle: JobHandle, tick: float = 0.1) -> None:
        """Pump until ``handle`` has ended and its callbacks have run."""
        while not handle.finished.is_set():
            self.pump(tick)
        self.pump()


class JobHandle:
    """One job in the worker, followed on a background thread.

    ``status``: connecting, queued, running, then one of done, failed, cancelled, interrupted
    (the worker stopped or died while the job ran). ``job``: the worker's final record of the
    job (outputs, timings, model hash) when it got that far. ``times``: monotonic seconds at
    start, submitted, running (the first work event) and end.
    """

    def __init__(self, spec: dict[str, Any], connect: Callable[[], Client], *,
                 main_thread: MainThread = call_now,
                 on_submitted: Callable[[str], None] | None = None,
                 on_progress: Callable[[dict], None] | None = None,
                 on_done: Callable[[dict], None] | None = None,
                 on_failed: Callable[[str], None] | None = None,
                 on_cancelled: Callable[[str], None] | None = None,
                 finalize: Callable[[JobHandle], None] | None = None,
                 client: str = "host", poll: float = 2.0) -> None:
        self.spec, self._connect, self._main = spec, connect, main_thread
        self.on_submitted, self.on_progress = on_submitted, on_progress
        self.on_done, self.on_failed, self.on_cancelled = on_done, on_failed, on_cancelled
        self.finalize = finalize  # runs on the handle's thread before the end callback
        self.client_name, self.poll = client, poll
        self.client: Client | None = None
        self.status = "connecting"
        self.job_id: str | None = None
        self.job: dict[str, Any] | None = None
        self.error: str | None = None
        self.exit_code: int | None = None
        self.last_event: dict[str, Any] | None = None
        self.times: dict[str, float] = {}
        self.finished = threading.Event()
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="actanywhere-job", daemon=True)

    # ------------------------------------------------------------------------------- host side
    def start(self) -> JobHandle:
        self.times["start"] = time.monotonic()
        self._thread.start()
        return self

    def cancel(self) -> None:
        """Ask the worker to stop the job (between frames or steps; written frames are kept).
        Safe from any thread; never blocks: the request goes out on a thread of its own."""
        self._cancel.set()
        if self.job_id is not None and not self.finished.is_set():
            threading.Thread(target=self._send_cancel, daemon=True).start()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job has ended (not on a UI thread); whether it has."""
        return self.finished.wait(timeout)

    # ---------------------------------------------------------------------------- its thread
    def _post(self, fn: Callable[..., None] | None, *args: Any) -> None:
        if fn is not None:
            self._main(lambda: fn(*args))

    def _send_cancel(self) -> None:
        try:
            if self.client is not None and self.job_id is not None:
                self.client.cancel(self.job_id)
        except WorkerError:
            pass  # already over, or the worker is gone: _follow reports which

    def _event(self, ev: dict[str, Any]) -> None:
        if ev.get("stage") == END:
            self.exit_code = ev.get("exit_code")
            return
        if ev.get("stage") in WORK_STAGES and self.status != "running":
            self.status = "running"
            self.times["running"] = time.monotonic()
        self.last_event = ev
        self._post(self.on_progress, ev)

    def _follow(self) -> None:
        try:
            self._run()
        except WorkerError as exc:
            self.error = str(exc)
            self.exit_code = self.exit_code if exc.exit_code is None else exc.exit_code
            # lost after submit: the worker stopped or died while the job was in it
            self.status = "interrupted" if self.job_id is not None else "failed"
        except Exception as exc:  # noqa: BLE001 - a host sees one line, never a traceback
            self.status, self.error = "failed", f"internal error: {type(exc).__name__}: {exc}"
        self.times["end"] = time.monotonic()
        if self.finalize is not None:
            try:
                self.finalize(self)
            except Exception as exc:  # noqa: BLE001
                self.status = "failed"
                self.error = f"{self.error + '; ' if self.error else ''}{exc}"
        if self.status == "done":
            self._post(self.on_done, self.job)
        elif self.status == "cancelled":
            self._post(self.on_cancelled, self.error or "cancelled")
        else:
            self._post(self.on_failed, self.error or self.status)
        self.finished.set()

    def _run(self) -> None:
        self.client = self._connect()
        if self._cancel.is_set():
            self.status, self.error = "cancelled", "cancelled before it was submitted"
            return
        self.job_id = self.client.submit(self.spec, client=self.client_name)
        self.status = "queued"
        self.times["submitted"] = time.monotonic()
        self._post(self.on_submitted, self.job_id)
        if self._cancel.is_set():  # cancel() came while the submit was on its way
            self._send_cancel()
        self.job = self.client.wait(self.job_id, on_event=self._event, poll=self.poll)
        self.status = self.job["status"]
        if self.status != "done":
            self.error = self.job.get("error") or self.status
