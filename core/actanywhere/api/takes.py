"""Takes: every finished (or stopped) job of one host node, each in its own folder.

A node's takes live in ``<root>/take_001/``, ``take_002/`` ...; a new take gets the next
free number (the folder is created exclusively, so two Generates never share one and no take
overwrites another). Each folder holds the frames and ``take.json``: the take's record
(status, output pattern, frame range, seed, engine, model hash, the spec it ran, timings, a
short label), written atomically whenever it changes. The folder is the truth: a host lists
takes by reading it, so saving and reopening a script (or a .blend) keeps them.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .client import Client
from .handle import JobHandle, MainThread, call_now
from .patterns import frames_on_disk

TAKE_FILE = "take.json"
_NAME = re.compile(r"^take_(\d{3,})$")


@dataclass
class Take:
    folder: str
    number: int
    status: str = "starting"  # starting, then the job's: queued ... done/failed/cancelled/...
    label: str = ""
    job: str | None = None
    output: str = ""  # the frames' pattern, e.g. <folder>/comp.####.exr
    frames: str = ""  # the range asked for, e.g. 1001-1100 (empty: the plate's own)
    engine: str = ""
    seed: int | None = None
    model_hash: str | None = None
    spec: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    created: float = 0.0
    error: str | None = None
    written: int = 0  # frames on disk when the take ended

    @property
    def name(self) -> str:
        return f"take_{self.number:03d}"

    def menu_item(self) -> str:
        """``take_002: diffusion seed 7, done``: a line for a take list (no slashes, which
        host menus read as sub-menus)."""
        return f"{self.name}: {self.label}, {self.status}".replace("/", "-")

    def files(self) -> list[str]:
        """The take's frames on disk, in frame order (partly written frames never match:
        the writer renames a frame into place only when it is complete)."""
        return [p for _, p in frames_on_disk(self.output)]

    def frame_range(self) -> tuple[int, int] | None:
        found = frames_on_disk(self.output)
        return (found[0][0], found[-1][0]) if found else None

    def save(self) -> None:
        data = json.dumps(asdict(self), indent=2)
        fd, tmp = tempfile.mkstemp(prefix=".take-", dir=self.folder)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(data)
            os.replace(tmp, os.path.join(self.folder, TAKE_FILE))
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    @classmethod
    def load(cls, folder: str) -> Take:
        with open(os.path.join(folder, TAKE_FILE)) as fh:
            data = json.load(fh)
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in data.items() if k in known}
        data["folder"] = folder  # the folder may have moved with its project
        if data.get("output"):
            data["output"] = os.path.join(folder, os.path.basename(data["output"]))
        return cls(**data)


class Takes:
    """The takes of one node (or strip), in ``root``."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)

    def list(self) -> list[Take]:
        """Every take with a readable record, by number."""
        try:
            names = os.listdir(self.root)
        except OSError:
            return []
        out = []
        for name in names:
            if _NAME.match(name):
                try:
                    out.append(Take.load(os.path.join(self.root, name)))
                except (OSError, ValueError, TypeError):
                    continue  # a folder someone else made, or a record cut short
        return sorted(out, key=lambda t: t.number)

    def get(self, name: str) -> Take | None:
        """The take called ``name`` (``take_002``, or a menu item starting with it); None
        when there is no such take or its record cannot be read."""
        name = name.split(":")[0].strip()
        if not _NAME.match(name):
            return None
        try:
            return Take.load(os.path.join(self.root, name))
        except (OSError, ValueError, TypeError):
            return None

    def new(self, **values: Any) -> Take:
        """A new take in the next free folder, its record saved; OSError when ``root``
        cannot be written (the message names it)."""
        os.makedirs(self.root, exist_ok=True)
        taken = [int(m.group(1)) for n in os.listdir(self.root) if (m := _NAME.match(n))]
        number = max(taken, default=0) + 1
        while True:
            folder = os.path.join(self.root, f"take_{number:03d}")
            try:
                os.mkdir(folder)  # exclusive: another Generate cannot get the same one
                break
            except FileExistsError:
                number += 1
        take = Take(folder=folder, number=number, created=time.time(), **values)
        take.save()
        return take


def _label(spec: dict[str, Any]) -> str:
    engine = (spec.get("engine") or {}).get("name", "composite")
    if engine != "diffusion":
        return engine
    diff = spec.get("diffusion") or {}
    bits = [engine, f"seed {diff.get('seed', 0)}"]
    if "steps" in diff:
        bits.append(f"{diff['steps']} steps")
    return " ".join(bits)


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
    take.engine, take.label = engine, label or _label(spec)
    take.seed = (spec.get("diffusion") or {}).get("seed", 0) if engine == "diffusion" else None
    take.frames = str((spec.get("plate") or {}).get("frames") or "")
    take.output = os.path.join(take.folder, f"{stem}.####.exr")
    spec.setdefault("output", {})["path"] = take.output
    take.spec = spec
    take.save()

    def record(handle: JobHandle) -> None:
        job = handle.job or {}
        take.status, take.job, take.error = handle.status, handle.job_id, handle.error
        take.model_hash = job.get("model_hash") or take.model_hash
        if job.get("seed") is not None and engine == "diffusion":
            take.seed = job["seed"]
        t = handle.times
        take.timings = {k: round(v, 3) for k, v in {
            "submit_s": t.get("submitted", t["end"]) - t["start"],
            "queued_s": t["running"] - t["submitted"] if "running" in t else None,
            "total_s": t["end"] - t["start"], **(job.get("timings") or {})}.items()
            if v is not None}
        take.written = len(take.files())
        take.save()

    def ended(_: Any = None) -> None:
        if on_end is not None:
            on_end(take, handle)

    handle = JobHandle(spec, connect, main_thread=main_thread, on_progress=on_progress,
                       on_done=ended, on_failed=ended, on_cancelled=ended, finalize=record,
                       client=client)
    return handle.start()
