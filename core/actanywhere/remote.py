"""A ShotSpec run in the warm local worker as if it ran in this process (``generate
--worker``): paths made absolute, progress streamed to the same reporter, Ctrl-C cancels the
job in the worker, and the outcome raises the error (and exit code) a local run would."""

from __future__ import annotations

import json
import os
import sys

from .client import Client, WorkerError
from .errors import JobCancelled, ModelError, from_exit_code
from .progress import ProgressEvent, Reporter
from .spec import ShotSpec, resolve_paths


def run(shot: ShotSpec, report: Reporter, state_dir: str | None = None,
        python: str | None = None) -> dict:
    """Submit, follow to the end, and return the finished job (``outputs`` and all)."""
    data = resolve_paths(json.loads(shot.model_dump_json(exclude_unset=True)),  # unset stays
                         os.getcwd())
    try:
        client = Client.connect(state_dir, python=python or sys.executable)
        job_id = client.submit(data, client="cli")
    except WorkerError as exc:  # refused at submit: the exit code a local run would give
        raise from_exit_code(str(exc), exc.exit_code) from exc
    fields = set(ProgressEvent.__dataclass_fields__)
    end: dict = {}

    def on_event(ev: dict) -> None:
        if ev.get("stage") == "end":
            end.update(ev)
        else:
            report(ProgressEvent(**{k: v for k, v in ev.items() if k in fields}))

    try:
        final = client.wait(job_id, on_event=on_event)
    except KeyboardInterrupt:  # cancel the job in the worker, then say what it did
        client.cancel(job_id)
        try:
            final = client.wait(job_id)
        except (KeyboardInterrupt, WorkerError):
            raise JobCancelled(f"job {job_id} cancelled; rerun with --existing skip "
                               "/ output.existing=skip to resume") from None
    except WorkerError as exc:
        raise ModelError(f"job {job_id}: {exc}") from exc
    if final["status"] == "cancelled":
        raise JobCancelled(final["error"] or "cancelled")
    if final["status"] != "done":
        raise from_exit_code(f"job {job_id} {final['status']}: {final['error']}",
                             end.get("exit_code"))
    return {**final, "id": job_id}
