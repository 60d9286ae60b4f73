"""Takes: every finished (or stopped) job of one host node, each in its own folder.

A node's takes live in ``<root>/take_001/``, ``take_002/`` ...; a new take gets the next
free number (the folder is created exclusively, so two Generates never share one and no take
overwrites another). Each folder holds the frames and ``take.json``: the take's record
(status, output pattern, frame range, seed, engine, model hash, motion source, the spec it
ran, timings, a short label, the artist's star and note, the proxies), written atomically
whenever it changes. The folder is the truth: a host lists takes by reading it, so saving and
reopening a script (or a .blend) keeps them.

Every job writes the record too (``generate`` beside any output: ``take.json``, or
``<stem>.take.json`` when another output's record already has that folder) and its proxies in
``proxy/``: ``<stem>.####.jpg`` (the output), ``<stem>.plate.####.jpg`` (the plate) and
``<stem>.contact.jpg``, display-referred through the OCIO view, written as frames finish.
Each writer changes only its own fields (``update``); the star and the note are the artist's
(``mark``): no other save overwrites them.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .. import catalog
from . import atomic
from .patterns import FRAME, frames_on_disk

TAKE_FILE = "take.json"
TRASH = ".trash"
PROXY_DIR = "proxy"
_NAME = re.compile(r"^take_(\d{3,})$")
#: fields only ``mark`` writes (the artist's)
_ARTIST = ("starred", "note")


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
    #: what the engine says of its run (model engines: the model, its offload, the frames
    #: per window it ended with, the peak GPU memory in bytes)
    engine_info: dict[str, Any] = field(default_factory=dict)
    spec: dict[str, Any] = field(default_factory=dict)
    #: where each setting of the engine's section came from, e.g. ``{"diffusion.resolution":
    #: "model", "diffusion.seed": "spec", "diffusion.steps": "default"}``; ``spec`` holds the
    #: values that ran
    settings_from: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    created: float = 0.0
    error: str | None = None
    written: int = 0  # frames on disk when the take ended
    motion: str = ""  # the background's motion source the job used (none, track, ...)
    starred: bool = False  # the artist's chosen take
    note: str = ""
    #: proxies, relative to the folder: output frames, plate frames, contact sheet
    proxy: str = ""
    plate_proxy: str = ""
    contact_sheet: str = ""
    view: str = ""  # the OCIO display/view of the proxies
    finished: float = 0.0
    record: str = TAKE_FILE  # the record's file name in the folder

    @property
    def name(self) -> str:
        if self.number:
            return f"take_{self.number:03d}"
        stem = self.record[: -len(TAKE_FILE)].rstrip(".")
        return stem or os.path.basename(self.folder.rstrip(os.sep)) or "take"

    @property
    def path(self) -> str:
        """The record file."""
        return os.path.join(self.folder, self.record)

    def abs_path(self, relative: str) -> str:
        return os.path.join(self.folder, relative) if relative else ""

    def proxies(self) -> list[tuple[int, str]]:
        """(frame, file) of the output's proxy frames on disk, by frame (a running take has
        the frames finished so far)."""
        return frames_on_disk(self.abs_path(self.proxy))

    def plate_proxies(self) -> list[tuple[int, str]]:
        return frames_on_disk(self.abs_path(self.plate_proxy))

    def contact_sheet_file(self) -> str | None:
        path = self.abs_path(self.contact_sheet)
        return path if path and os.path.isfile(path) else None

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
        """Write the record atomically; the star and the note on disk are kept (``mark``
        writes those)."""
        data = asdict(self)
        try:
            with open(self.path) as fh:
                disk = json.load(fh)
            for key in _ARTIST:
                if key in disk:
                    data[key] = disk[key]
                    setattr(self, key, disk[key])
        except (OSError, ValueError):
            pass
        self._write(data)

    def _write(self, data: dict[str, Any]) -> None:
        """The record written atomically; on a full disk, rewritten in place (its blocks are
        already the file's), so a take that failed for want of space still says so."""
        text = json.dumps(data, indent=2)
        try:
            atomic.write_text(self.path, text)
        except OSError as exc:
            raw = text.encode("utf-8")
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT) or not os.path.isfile(self.path) \
                    or len(raw) > getattr(os.stat(self.path), "st_blocks", 0) * 512:
                raise
            with open(self.path, "r+b") as fh:
                fh.write(raw)
                fh.truncate()

    def update(self, **changes: Any) -> None:
        """Set these fields, the others as on disk (another writer's may be newer), save."""
        try:
            fresh = Take.load(self.folder, self.record)
        except (OSError, ValueError, TypeError):
            fresh = self
        for f in fields(self):
            if f.name not in changes and f.name != "folder":
                setattr(self, f.name, getattr(fresh, f.name))
        for key, value in changes.items():
            setattr(self, key, value)
        self.save()

    def mark(self, *, starred: bool | None = None, note: str | None = None) -> None:
        """The artist's star and note, written to the record."""
        try:
            fresh = Take.load(self.folder, self.record)
        except (OSError, ValueError, TypeError):
            fresh = self
        if starred is not None:
            fresh.starred = self.starred = bool(starred)
        if note is not None:
            fresh.note = self.note = note
        fresh.starred, fresh.note = self.starred, self.note
        fresh._write(asdict(fresh))

    @classmethod
    def load(cls, folder: str, record: str = TAKE_FILE) -> Take:
        with open(os.path.join(folder, record)) as fh:
            data = json.load(fh)
        if not isinstance(data, dict):
            raise ValueError(f"{os.path.join(folder, record)}: not a take record")
        known = {f.name: f.type for f in fields(cls)}
        data = {k: v for k, v in data.items() if k in known}
        for key, value in data.items():
            if not _is_a(value, str(known[key])):
                raise ValueError(f"{os.path.join(folder, record)}: field {key!r} is "
                                 f"{type(value).__name__} {str(value)[:40]!r}, not "
                                 f"{known[key]}; fix or remove that field")
        data["folder"] = folder  # the folder may have moved with its project
        data["record"] = record
        if data.get("output"):
            data["output"] = os.path.join(folder, os.path.basename(data["output"]))
        return cls(**data)


#: a record field's annotation -> the JSON values it takes
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,), "int": (int,), "float": (int, float), "bool": (bool,), "dict": (dict,)}


def _is_a(value: Any, annotation: str) -> bool:
    """Whether a JSON ``value`` fits a record field annotated ``annotation`` (``str``,
    ``int | None``, ``dict[str, Any]`` ...)."""
    for kind in annotation.split("|"):
        kind = kind.strip().split("[")[0]
        if kind == "None" and value is None:
            return True
        types = _JSON_TYPES.get(kind, ())
        if isinstance(value, types) and not (isinstance(value, bool) and bool not in types):
            return True
    return False


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

    def chosen(self) -> Take | None:
        """The starred take (the newest when several are)."""
        starred = [t for t in self.list() if t.starred]
        return starred[-1] if starred else None

    def choose(self, name: str) -> Take | None:
        """Star the take called ``name`` and unstar the others: the shot's chosen take."""
        chosen = None
        for take in self.list():
            if take.name == name.split(":")[0].strip():
                take.mark(starred=True)
                chosen = take
            elif take.starred:
                take.mark(starred=False)
        return chosen


@dataclass
class Found:
    """A take record found under a folder: the take, or why its record cannot be read."""

    folder: str
    record: str
    shot: str
    take: Take | None = None
    error: str = ""

    @property
    def name(self) -> str:
        return self.take.name if self.take else os.path.basename(self.folder)


def record_file(output: str) -> str:
    """The record's file name for an output pattern: ``take.json``, unless that file in the
    folder belongs to another output (then ``<stem>.take.json``)."""
    folder, name = os.path.split(output)
    try:
        with open(os.path.join(folder, TAKE_FILE)) as fh:
            other = json.load(fh).get("output", "")
    except (OSError, ValueError, AttributeError):
        return TAKE_FILE
    if not other or os.path.basename(other) == name:
        return TAKE_FILE
    return f"{stem_of(output)}.{TAKE_FILE}"


def for_output(output: str) -> Take | None:
    """The record of the take whose frames are ``output`` (a pattern), or None."""
    folder, name = os.path.split(os.path.abspath(output))
    for record in (TAKE_FILE, f"{stem_of(output)}.{TAKE_FILE}"):
        try:
            take = Take.load(folder, record)
        except (OSError, ValueError, TypeError):
            continue
        if os.path.basename(take.output) == name:
            return take
    return None


def stem_of(output: str) -> str:
    """``comp`` of ``/out/comp.####.exr`` (the name before the frame number)."""
    name = os.path.basename(output)
    match = FRAME.search(name)
    head = name[: match.start()] if match else os.path.splitext(name)[0]
    return head.rstrip("._-") or "frames"


def find(root: str, depth: int = 3) -> list[Found]:
    """Every take record under ``root`` (``take.json`` / ``*.take.json``, ``depth`` folders
    down, the trash left out), readable or not; the shot is the folder that holds the take
    folders (``sh010`` of ``sh010/take_002``; ``root``'s own name at the top)."""
    root = os.path.abspath(root)
    out: list[Found] = []
    for folder, dirs, files in os.walk(root):
        rel = os.path.relpath(folder, root)
        level = 0 if rel == "." else rel.count(os.sep) + 1
        dirs[:] = sorted(d for d in dirs if d != TRASH and d != PROXY_DIR and level < depth
                         and not d.startswith("."))
        for name in sorted(files):
            if name != TAKE_FILE and not name.endswith("." + TAKE_FILE):
                continue
            parent = os.path.dirname(folder) if _NAME.match(os.path.basename(folder)) \
                else folder
            shot = os.path.basename(parent) if parent != os.path.dirname(root) else \
                os.path.basename(root)
            found = Found(folder, name, shot or "shot")
            try:
                found.take = Take.load(folder, name)
            except (OSError, ValueError, TypeError) as exc:
                found.error = f"{os.path.join(folder, name)}: cannot read the record ({exc})"
            out.append(found)
    return out


def trash(take: Take, root: str) -> str:
    """Move the files ``take`` wrote (its frames, proxies, contact sheet and record) into
    ``<root>/.trash/<take>-<time>/``, keeping their places relative to the take's folder.
    Nothing else is moved, touched or deleted: a plate or background beside the frames stays
    where it is. Folders left empty by the move (``proxy/``, a ``take_NNN`` folder) are
    removed. Returns where the files went."""
    root = os.path.abspath(root)
    bin_ = os.path.join(root, TRASH)
    os.makedirs(bin_, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = os.path.join(bin_, f"{take.name}-{stamp}")
    n = 1
    while os.path.exists(target):
        n += 1
        target = os.path.join(bin_, f"{take.name}-{stamp}-{n}")
    folder = os.path.abspath(take.folder)
    own = [p for _, p in frames_on_disk(take.output)] + \
        [p for _, p in take.proxies()] + [p for _, p in take.plate_proxies()]
    sheet = take.contact_sheet_file()
    os.makedirs(target)
    for path in dict.fromkeys([*own, *([sheet] if sheet else []), take.path]):
        path = os.path.abspath(path)
        if not os.path.isfile(path):
            continue
        rel = os.path.relpath(path, folder)
        dest = os.path.join(target, rel if not rel.startswith(os.pardir) else
                            os.path.basename(path))
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.move(path, dest)
    for empty in (os.path.join(folder, PROXY_DIR), folder):
        if empty != root and (empty != folder or _NAME.match(os.path.basename(folder))):
            with contextlib.suppress(OSError):  # not empty: something else lives there
                os.rmdir(empty)
    return target


def label_of(spec: dict[str, Any]) -> str:
    """``diffusion seed 7, 20 steps``: the engine, and the seed and steps of a seeded one."""
    engine = (spec.get("engine") or {}).get("name", "composite")
    seed = catalog.seed_of(spec)
    if seed is None:
        return engine
    settings = spec.get(catalog.engine(engine).settings or "") or {}
    bits = [engine, f"seed {seed}"]
    if "steps" in settings:
        bits.append(f"{settings['steps']} steps")
    return " ".join(bits)
