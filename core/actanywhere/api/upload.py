"""A take on a worker that cannot see the client's files: the inputs sent, the take fetched.

Standard library only (Python 3.10+). ``send`` finds the files a ShotSpec reads (the plate's
frames, a matte sequence of ``matte.source=file``, the key frames' painted mattes, the
background, a ``motion.source=file`` motion file), hashes each (sha256), opens an upload on
the worker with them (``POST /v1/uploads``: the same files again are the same upload, so an
interrupted upload goes on from the bytes the worker holds) and sends what the worker lacks
in chunks (``CHUNK`` bytes, ``PUT .../files?name=NAME&offset=N``). A file the worker finds
damaged (its sha256 differs) is sent again once, then the take is refused. The spec is
rewritten to the uploaded copies and to an output folder of its own inside the upload.

``fetch`` brings a finished take's files (frames, proxies, ``take.json``) into the output
folder the user asked for, each checked against the worker's sha256 and written under a
temporary name first; a file already there is never written over (frames only with
``output.existing=overwrite``), it is kept and said so.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import hashlib
import json
import os
import secrets
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote

from . import atomic, pathmap
from .failure import WorkerError
from .patterns import frame_file, frames_on_disk, has_frame_number

CHUNK = 8 << 20
EventCallback = Callable[[dict], None]


class Client(Protocol):
    """What sending and fetching ask of ``client.Client``."""

    timeout: float
    chunk_bytes: int
    stop_after_chunks: int | None

    def _request(self, method: str, path: str, body: dict | None = None,
                 timeout: float | None = None, *, raw: bytes | None = None) -> Any: ...

    def _open(self, method: str, path: str, body: dict | None = None,
              timeout: float | None = None, *, raw: bytes | None = None
              ) -> contextlib.AbstractContextManager[Any]: ...


@dataclass
class Sent:
    """What a take sent: where its files are on the worker, and where the user wants them."""

    upload_id: str
    take: str  # the take's folder under the upload's ``out``
    worker_output: str  # the output pattern the worker writes
    client_output: str  # the output pattern the user asked for
    existing: str  # the spec's output.existing
    client_spec: dict[str, Any]  # the spec as the user gave it
    files: list[str] = field(default_factory=list)  # names sent, for messages
    sent_bytes: int = 0  # bytes actually sent (resumed files count what was missing)


# ------------------------------------------------------------------------------- inputs
def inputs(spec: dict[str, Any]) -> Iterator[tuple[str, str, list[str]]]:
    """(field, folder name in the upload, the client's files) for each input the spec reads;
    ValueError naming the field for an input that is not on this machine."""
    def files(field: str, path: str) -> list[str]:
        if has_frame_number(path):
            found = [p for _, p in frames_on_disk(path)]
            if not found:
                raise ValueError(f"{field}: no frames match {path} on this machine; check the "
                                 "path (the files are sent to the worker from here)")
            return found
        if not os.path.isfile(path):
            raise ValueError(f"{field}: {path} does not exist on this machine; check the path "
                             "(the file is sent to the worker from here)")
        return [path]

    plate = (spec.get("plate") or {}).get("path")
    if plate:
        yield "plate.path", "plate", files("plate.path", plate)
    matte = spec.get("matte") or {}
    if matte.get("source") == "file" and matte.get("path"):
        yield "matte.path", "matte", files("matte.path", matte["path"])
    for i, key in enumerate(matte.get("keys") or []):
        if isinstance(key, dict) and key.get("matte"):
            yield f"matte.keys.{i}.matte", f"keys/{i}", files(f"matte.keys.{i}.matte",
                                                               key["matte"])
    background = (spec.get("background") or {}).get("path")
    if background:
        yield "background.path", "background", files("background.path", background)
    motion = spec.get("motion") or {}
    if motion.get("source") == "file" and motion.get("path"):
        yield "motion.path", "motion", files("motion.path", motion["path"])


def _set(spec: dict[str, Any], field_name: str, value: str) -> None:
    node: Any = spec
    steps = field_name.split(".")
    for step in steps[:-1]:
        node = node[int(step)] if isinstance(node, list) else node[step]
    node[steps[-1]] = value


def sha256(path: str) -> str:
    """A file's sha256 (hex), as both ends of an upload compute it."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _event(on_event: EventCallback | None, message: str, done: int = 0, total: int = 0,
           stage: str = "prepare") -> None:
    if on_event is not None:
        on_event({"stage": stage, "message": message, "done": done, "total": total})


# --------------------------------------------------------------------------------- send
def send(client: Client, spec: dict[str, Any], *, on_event: EventCallback | None = None
         ) -> tuple[dict[str, Any], Sent, list[str]]:
    """Upload ``spec``'s inputs to ``client``'s worker; (the spec rewritten to the worker's
    copies and a take folder of its own, what was sent, the fields rewritten). WorkerError
    (one line) for an input missing here, an output that would overwrite frames, a refusal
    of the worker (413 over its limit, 507 its disk full, a file damaged twice)."""
    out = (spec.get("output") or {})
    existing = out.get("existing") or "error"
    if existing == "error" and out.get("path") and frames_on_disk(out["path"]):
        raise WorkerError(f"output.path: {out['path']} already has frames on this machine; "
                          "choose another output, or set output.existing to skip or overwrite",
                          4, "output.path")
    try:
        found = list(inputs(spec))
    except ValueError as exc:
        raise WorkerError(str(exc), 3, str(exc).split(":", 1)[0]) from None
    names: dict[str, str] = {}  # upload name -> client path
    for _, folder, paths in found:
        for path in paths:
            names.setdefault(f"{folder}/{os.path.basename(path)}", path)
    files = []
    for name, path in names.items():
        try:
            files.append({"name": name, "size": os.path.getsize(path), "sha256": sha256(path)})
        except OSError as exc:
            raise WorkerError(f"{path}: cannot read it to send it ({exc.strerror or exc})", 3
                              ) from None
    key = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
    upload = client._request("POST", "/v1/uploads", {"key": key, "files": files})
    total, sent = len(files), Sent(upload["id"], secrets.token_hex(6), "", out.get("path", ""),
                                   existing, copy.deepcopy(spec), [f["name"] for f in files])
    for i, item in enumerate(files, 1):
        held = upload["files"].get(item["name"], {})
        if held.get("complete"):
            _event(on_event, f"upload {item['name']}: already on the worker", i, total)
            continue
        sent.sent_bytes += _send_file(client, upload["id"], item, names[item["name"]],
                                      int(held.get("have", 0)))
        start = int(held.get("have", 0))
        how = f" (resumed at byte {start})" if start else ""
        _event(on_event, f"upload {item['name']}: sent {item['size']} bytes{how}", i, total)
    rewritten = copy.deepcopy(spec)
    fields = []
    for field_name, folder, paths in found:
        first = paths[0]
        base = os.path.basename(spec_value(spec, field_name))
        if not has_frame_number(base):
            base = os.path.basename(first)
        _set(rewritten, field_name, f"{upload['inputs']}/{folder}/{base}")
        fields.append(field_name)
    if out.get("path"):
        sent.worker_output = f"{upload['outputs']}/{sent.take}/{os.path.basename(out['path'])}"
        rewritten["output"] = {**out, "path": sent.worker_output}
        fields.append("output.path")
    return rewritten, sent, fields


def spec_value(spec: dict[str, Any], field_name: str) -> str:
    node: Any = spec
    for step in field_name.split("."):
        node = node[int(step)] if isinstance(node, list) else node[step]
    return str(node)


def _send_file(client: Client, upload_id: str, item: dict[str, Any], path: str,
               have: int) -> int:
    """Send ``path`` from byte ``have``; once more from 0 when the worker finds it damaged.
    Returns the bytes sent."""
    url = f"/v1/uploads/{upload_id}/files?name={quote(item['name'], safe='')}"
    sent = 0
    for attempt in range(2):
        try:
            with open(path, "rb") as fh:
                fh.seek(have)
                while True:
                    data = fh.read(client.chunk_bytes)
                    if not data and have < item["size"]:
                        raise WorkerError(f"{path}: it shrank while it was sent ({have} of "
                                          f"{item['size']} bytes); send the take again", 3)
                    if not data:
                        break
                    if client.stop_after_chunks is not None:
                        if client.stop_after_chunks <= 0:
                            raise WorkerError(f"upload stopped at byte {have} of {item['name']}"
                                              " (stop_after_chunks); submit again to go on "
                                              "from there")
                        client.stop_after_chunks -= 1
                    try:
                        answer = client._request("PUT", f"{url}&offset={have}", raw=data)
                    except WorkerError as exc:
                        if "send from byte" not in str(exc):
                            raise
                        have = int(client._request("GET", f"/v1/uploads/{upload_id}")
                                   ["files"][item["name"]]["have"])
                        fh.seek(have)
                        continue
                    have, sent = int(answer["have"]), sent + len(data)
                    if answer.get("complete"):
                        return sent
        except OSError as exc:
            raise WorkerError(f"{path}: cannot read it to send it ({exc.strerror or exc})", 3
                              ) from None
        except WorkerError as exc:
            if exc.field != "sha256" or attempt:
                if exc.field == "sha256":
                    raise WorkerError(f"{exc}; refused twice: {path} changes while it is "
                                      "sent, or the network damages it", 3, "sha256") from None
                raise
            have = 0
    return sent


# -------------------------------------------------------------------------------- fetch
def fetch(client: Client, sent: Sent, job: dict[str, Any], *,
          on_event: EventCallback | None = None) -> dict[str, Any]:
    """Bring the take's files into the user's output folder; returns ``job`` with its spec
    and outputs as the user sees them, ``kept``: the user's files left as they were."""
    folder = os.path.dirname(sent.client_output) or "."
    listing = client._request("GET", f"/v1/uploads/{sent.upload_id}/takes/{sent.take}")
    files = listing["files"]
    frames = {os.path.basename(p) for p in _frame_names(sent, job)}
    kept = []
    for i, item in enumerate(files, 1):
        target = os.path.join(folder, *item["name"].split("/"))
        over = sent.existing == "overwrite" and item["name"] in frames
        if _is_record(item["name"]):
            if not _record(client, sent, item, target, folder):
                kept.append(target)
                _event(on_event, f"kept {target}: a record of another take; the worker's "
                       "was not fetched", i, len(files), stage="warning")
                continue
            _event(on_event, f"download {item['name']}: the take's record", i, len(files))
            continue
        if os.path.lexists(target) and not over:
            kept.append(target)
            _event(on_event, f"kept {target}: it was there before the take; the worker's copy "
                   "was not fetched", i, len(files), stage="warning")
            continue
        url = (f"/v1/uploads/{sent.upload_id}/takes/{sent.take}/file?name="
               f"{quote(item['name'], safe='')}")
        for attempt in range(2):
            try:
                digest = _download(client, url, target, replace=over)
            except FileExistsError:
                kept.append(target)
                break
            except OSError as exc:
                why = "the disk is full" if exc.errno == errno.ENOSPC else exc.strerror or exc
                raise WorkerError(f"{target}: cannot write the take's file here ({why}); "
                                  "free space or choose another output; the take stays on the "
                                  "worker until --upload-keep ends", 4) from None
            if digest == item["sha256"]:
                break
            os.unlink(target)
            if attempt:
                raise WorkerError(f"{target}: its sha256 differs from the worker's twice; the "
                                  "network damages it; fetch the take again", 4, "sha256")
        _event(on_event, f"download {item['name']}: {item['size']} bytes", i, len(files))
    back = dict(job)
    back["spec"] = copy.deepcopy(sent.client_spec)
    prefix = os.path.dirname(sent.worker_output)
    back["outputs"] = [os.path.join(folder, os.path.relpath(p, prefix))
                       if isinstance(p, str) and p.startswith(prefix + "/") else p
                       for p in job.get("outputs") or []]
    back["upload"] = {"id": sent.upload_id, "take": sent.take, "files": len(files),
                      "kept": kept, "sent_bytes": sent.sent_bytes}
    return back


def _is_record(name: str) -> bool:
    return "/" not in name and (name == RECORD or name.endswith("." + RECORD))


def _record(client: Client, sent: Sent, item: dict[str, Any], target: str, folder: str
            ) -> bool:
    """The take's record (``take.json``) as the user's machine sees it: its folder, output
    and spec paths the user's, merged into the record a host made for this take before it
    was sent (the artist's star and note kept). False, and nothing written, when the file
    there is another take's record."""
    url = (f"/v1/uploads/{sent.upload_id}/takes/{sent.take}/file?name="
           f"{quote(item['name'], safe='')}")
    with client._open("GET", url) as resp:
        raw = resp.read()
    if hashlib.sha256(raw).hexdigest() != item["sha256"]:
        raise WorkerError(f"{target}: the take's record came damaged (sha256); fetch the "
                          "take again", 4, "sha256")
    theirs = json.loads(raw)
    mine: dict[str, Any] = {}
    if os.path.lexists(target):
        try:
            with open(target, encoding="utf-8") as fh:
                mine = json.load(fh)
        except (OSError, ValueError):
            return False
        if not isinstance(mine, dict) or mine.get("output") != sent.client_output:
            return False
    spec = theirs.get("spec") if isinstance(theirs.get("spec"), dict) else {}
    for name, holder, key in list(pathmap.spec_paths(spec)):
        # a path the user did not give (a default the worker filled) stays the worker's
        with contextlib.suppress(KeyError, IndexError, TypeError):
            holder[key] = spec_value(sent.client_spec, name)
    merged = {**mine, **{k: v for k, v in theirs.items() if k not in _HOST_FIELDS or k not
                         in mine}}
    merged.update(folder=folder, output=sent.client_output, spec=spec)
    try:
        atomic.write_json(target, merged)
    except OSError as exc:
        why = exc.strerror or exc
        raise WorkerError(f"{target}: cannot write the take's record here ({why}); free "
                          "space or choose another output", 4) from None
    return True


#: a host's own fields of a take's record, kept when the worker's record is merged in
_HOST_FIELDS = ("starred", "note", "label", "number", "created", "job", "status", "timings")
RECORD = "take.json"


def _frame_names(sent: Sent, job: dict[str, Any]) -> list[str]:
    return [p for p in job.get("outputs") or [] if isinstance(p, str)] or \
        [frame_file(sent.worker_output, 0)]


def _download(client: Client, url: str, target: str, *, replace: bool) -> str:
    """One file into ``target`` through a temporary name beside it (``atomic``'s kind, so a
    later run finds what a killed one left); its sha256. Without ``replace`` it is linked
    into place, which fails with FileExistsError when a file appeared there meanwhile (the
    file is kept)."""
    digest = hashlib.sha256()
    folder = os.path.dirname(os.path.abspath(target))
    base, ext = os.path.splitext(os.path.basename(target))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=f".tmp{ext}", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh, client._open("GET", url, timeout=max(
                client.timeout, 60.0)) as resp:
            while block := resp.read(1 << 20):
                digest.update(block)
                fh.write(block)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~atomic.UMASK)
        if replace:
            os.replace(tmp, target)
        else:
            try:
                os.link(tmp, target)  # never over a file: fails if one is there
            except FileExistsError:
                raise
            except OSError:  # no hard links on this disk: look, then rename
                if os.path.lexists(target):
                    raise FileExistsError(target) from None
                os.rename(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return digest.hexdigest()
