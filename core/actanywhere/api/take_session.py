"""The session that runs a take: its spec sent to the worker through a ``JobHandle``, its
record (``takes.Take``) updated as the job ends. Hosts call it as ``takes.start``."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from .. import catalog
from .client import Client
from .handle import JobHandle, MainThread, call_now
from .takes import Take, label_of


def start(take: Take, spec: dict[str, Any], connect: Callable[[], Client], *,
          stem: str = "take", main_thread: MainThread = call_now,
          on_progress: Callable[[dict], None] | None = None,
          on_end: Callable[[Take, JobHandle], None] | None = None,
          label: str = "", client: str = "host") -> JobHandle:
    """Run ``spec`` as ``take`` (from ``Takes.new``; its output goes into the take's folder
    as ``<stem>.####.exr``) and return the job's running handle. The take's record is
    updated on the handle's thread when the job ends, then ``on_end(take, handle)`` runs on
    the main thread whatever the outcome (``handle.status``, ``handle.error`` say which)."""
    spec = json.loads(json.dumps(spec))  # the caller's dict stays as it was
    engine = (spec.get("engine") or {}).get("name", "composite")
    take.engine, take.label = engine, label or label_of(spec)
    take.seed = catalog.seed_of(spec)
    take.frames = str((spec.get("plate") or {}).get("frames") or "")
    take.output = os.path.join(take.folder, f"{stem}.####.exr")
    spec.setdefault("output", {})["path"] = take.output
    take.spec = spec
    take.save()

    def record(handle: JobHandle) -> None:
        job = handle.job or {}
        t = handle.times
        seed = job["seed"] if job.get("seed") is not None and take.seed is not None else None
        # update: the job's own fields in the record (motion, proxies) stay as it wrote them
        take.update(status=handle.status, job=handle.job_id, error=handle.error,
                    model_hash=job.get("model_hash") or take.model_hash,
                    seed=take.seed if seed is None else seed,
                    timings={k: round(v, 3) for k, v in {
                        "submit_s": t.get("submitted", t["end"]) - t["start"],
                        "queued_s": t["running"] - t["submitted"] if "running" in t else None,
                        "total_s": t["end"] - t["start"], **(job.get("timings") or {})}.items()
                        if v is not None},
                    written=len(take.files()))

    def ended(_: Any = None) -> None:
        if on_end is not None:
            on_end(take, handle)

    handle = JobHandle(spec, connect, main_thread=main_thread, on_progress=on_progress,
                       on_done=ended, on_failed=ended, on_cancelled=ended, finalize=record,
                       client=client)
    return handle.start()
