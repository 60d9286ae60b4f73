"""A ShotSpec run in the warm local worker as if it ran in this process (``generate
--worker``), through the same job handle the hosts use: paths made absolute, progress
streamed to the same reporter (callbacks run on this, the main, thread), Ctrl-C cancels the
job in the worker, and the outcome raises the error (and exit code) a local run would. A
remote worker's uploads, downloads and the choice among several workers are reported as
``prepare`` (and ``warning``) events."""

from __future__ import annotations

import json
import os
import sys

from ..api.client import Client
from ..api.handle import JobHandle, MainThreadQueue
from ..api.shotspec import absolute_paths
from ..errors import JobCancelled, ModelError, from_exit_code
from ..progress import ProgressEvent, Reporter
from ..spec import ShotSpec


def run(shot: ShotSpec, report: Reporter, state_dir: str | None = None,
        python: str | None = None) -> dict:
    """Submit, follow to the end, and return the finished job (``outputs`` and all)."""
    data = absolute_paths(json.loads(shot.model_dump_json(exclude_unset=True)),  # unset stays
                          os.getcwd())
    fields = set(ProgressEvent.__dataclass_fields__)
    main = MainThreadQueue()

    def progress(ev: dict) -> None:
        report(ProgressEvent(**{k: v for k, v in ev.items() if k in fields}))

    def connect() -> Client:
        client = Client.connect(state_dir, python=python or sys.executable)
        # uploads, downloads and the worker chosen among several: said as they happen
        client.on_transfer = lambda ev: main.post(lambda: progress(ev))
        return client

    handle = JobHandle(data, connect, main_thread=main.post, client="cli",
                       on_progress=progress).start()
    try:
        main.run_until(handle)
    except KeyboardInterrupt:  # cancel the job in the worker, then say what it did
        handle.cancel()
        try:
            main.run_until(handle)
        except KeyboardInterrupt:
            raise JobCancelled(f"job {handle.job_id} cancelled; rerun with --existing skip "
                               "/ output.existing=skip to resume") from None
    if handle.client is not None and handle.client.notice:  # e.g. a stale connection file
        report(ProgressEvent("warning", message=handle.client.notice))
    if handle.job_id is None:  # refused at submit: the exit code a local run would give
        raise from_exit_code(handle.error or "the worker refused the job", handle.exit_code)
    if handle.job is None:  # the worker went away while the job ran
        raise ModelError(f"job {handle.job_id}: {handle.error}")
    if handle.status == "cancelled":
        raise JobCancelled(handle.error or "cancelled")
    if handle.status != "done":
        raise from_exit_code(f"job {handle.job_id} {handle.status}: {handle.error}",
                             handle.exit_code)
    return {**handle.job, "id": handle.job_id}
