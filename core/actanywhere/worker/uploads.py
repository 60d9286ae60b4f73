"""Uploads: a job's input files sent to the worker by a client that does not share its disks.

Each upload is a folder under ``<state>/uploads/<id>/``, owned by the user whose token made
it: ``upload.json`` (owner, the client's key, the declared files with size and sha256, when
it was made and last used), ``in/<name>`` the files received whole, ``in/<name>.part`` one
being received, ``out/`` the takes written from it. A client opens an upload with the files
it will send (the same key and files again: the same upload, so an interrupted upload goes
on from what the worker holds), then sends each file in chunks at the offset the worker
holds; a file whose bytes are all there is checked against its sha256 and kept, or refused
and dropped. Another user's upload is as unknown as a missing one; an admin reaches all.

What the uploads take (the files declared and the takes written from them) is bounded
(``limit_bytes``: an upload that would go past it is a 413), a full disk is a
507 naming the file, and ``sweep`` removes uploads unused for ``keep_s`` that no queued or
running job reads or writes.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Iterable
from typing import Any

from ..api import atomic
from ..api.upload import sha256
from .auth import User
from .models import HttpError

MANIFEST = "upload.json"
INPUTS, OUTPUTS = "in", "out"
PART = ".part"
MAX_FILES = 100_000
_ID = re.compile(r"^[0-9a-f]{16}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_BAD_PART = re.compile(r"[\x00-\x1f\\:]")


class UploadStore:
    """The uploads under ``root``: opened, filled chunk by chunk, listed, swept."""

    def __init__(self, root: str, *, limit_bytes: int, keep_s: float) -> None:
        self.root = os.path.realpath(root)
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        self.limit_bytes, self.keep_s = limit_bytes, keep_s
        self._lock = threading.Lock()  # manifests and the index
        self._file_locks: dict[tuple[str, str], threading.Lock] = {}
        self._index: dict[str, dict[str, Any]] = {}
        for entry in os.listdir(self.root):
            manifest = self._read(entry)
            if manifest is not None:
                self._index[entry] = manifest

    # ------------------------------------------------------------------------ helpers
    def folder(self, upload_id: str) -> str:
        return os.path.join(self.root, upload_id)

    def _read(self, upload_id: str) -> dict[str, Any] | None:
        if not _ID.match(upload_id):
            return None
        try:
            with open(os.path.join(self.folder(upload_id), MANIFEST), encoding="utf-8") as fh:
                data = json.load(fh)
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) and isinstance(data.get("files"), dict) else None

    def _save(self, manifest: dict[str, Any]) -> None:
        path = os.path.join(self.folder(manifest["id"]), MANIFEST)
        try:
            atomic.write_json(path, manifest, mode=0o600)
        except OSError as exc:
            raise _disk_error(path, exc) from None

    def get(self, upload_id: str, user: User) -> dict[str, Any]:
        """The upload's manifest if ``user`` may use it; 404 otherwise (another user's upload
        is as unknown as a missing one)."""
        with self._lock:
            manifest = self._index.get(upload_id)
        if manifest is None or not user.admin and manifest.get("owner") != user.name:
            raise HttpError(404, f"no upload {upload_id}; open one with POST /v1/uploads (an "
                            "upload the worker cleaned or another user's is not there)",
                            "id")
        return manifest

    def used_bytes(self) -> int:
        """What the uploads take: the files declared, and the takes written from them."""
        with self._lock:
            ids = list(self._index)
            declared = sum(int(m.get("bytes", 0)) for m in self._index.values())
        return declared + sum(_tree_bytes(os.path.join(self.folder(i), OUTPUTS)) for i in ids)

    def touch(self, upload_id: str) -> None:
        with self._lock:
            manifest = self._index.get(upload_id)
            if manifest is not None:
                manifest["used"] = time.time()
        if manifest is not None:
            with contextlib.suppress(HttpError):
                self._save(manifest)

    # --------------------------------------------------------------------------- open
    def open(self, user: User, key: str, files: list[dict[str, Any]]) -> dict[str, Any]:
        """The upload of ``user`` with ``key`` and these ``files`` (name, size, sha256): the
        one made before (resume) or a new one; 413 when it would take the uploads past the
        limit, 507 when the disk has not the room."""
        declared = _declared(files)
        total = sum(f["size"] for f in declared.values())
        used = self.used_bytes()
        with self._lock:
            for manifest in self._index.values():
                if manifest.get("owner") == user.name and manifest.get("key") == key \
                        and manifest.get("files") == declared:
                    found = manifest
                    break
            else:
                found = None
            if found is None:
                if used + total > self.limit_bytes:
                    raise HttpError(413, f"files: this upload of {_gb(total)} would take the "
                                    "worker's uploads (files and takes) to "
                                    f"{_gb(used + total)}, over its --upload-limit of "
                                    f"{_gb(self.limit_bytes)}; send fewer frames, wait for "
                                    "older uploads to be cleaned (--upload-keep), or ask the "
                                    "worker's admin for a higher limit",
                                    "files")
                free = shutil.disk_usage(self.root).free
                if free < total:
                    raise HttpError(507, f"files: {self.root} on the worker has {_gb(free)} "
                                    f"free, the upload needs {_gb(total)}; ask the worker's "
                                    "admin to free space", "files")
                now = time.time()
                found = {"id": secrets.token_hex(8), "owner": user.name, "key": key,
                         "created": now, "used": now, "bytes": total, "files": declared}
                folder = self.folder(found["id"])
                try:
                    os.makedirs(os.path.join(folder, INPUTS), mode=0o700)
                    os.makedirs(os.path.join(folder, OUTPUTS), mode=0o700)
                except OSError as exc:
                    raise _disk_error(folder, exc) from None
                self._save(found)
                self._index[found["id"]] = found
        self.touch(found["id"])
        return self.status(found["id"], user)

    def status(self, upload_id: str, user: User) -> dict[str, Any]:
        """What the worker holds of each file: ``have`` bytes, ``complete`` once checked."""
        manifest = self.get(upload_id, user)
        base = os.path.join(self.folder(upload_id), INPUTS)
        files = {}
        for name, want in manifest["files"].items():
            path = os.path.join(base, *name.split("/"))
            if os.path.isfile(path):
                files[name] = {"size": want["size"], "have": want["size"], "complete": True}
            else:
                have = _size(path + PART)
                files[name] = {"size": want["size"], "have": min(have, want["size"]),
                               "complete": False}
        return {"id": upload_id, "root": self.folder(upload_id),
                "inputs": base, "outputs": os.path.join(self.folder(upload_id), OUTPUTS),
                "owner": manifest["owner"], "files": files}

    # ----------------------------------------------------------------------- receive
    def put(self, upload_id: str, user: User, name: str, offset: int, data: bytes
            ) -> dict[str, Any]:
        """``data`` written at ``offset`` of file ``name``: the offset must be what the worker
        holds (409 says how much that is). The last chunk checks the whole file's sha256:
        a mismatch drops what came (422) so the client sends the file again."""
        manifest = self.get(upload_id, user)
        want = manifest["files"].get(name)
        if want is None:
            raise HttpError(404, f"{name}: not a file of upload {upload_id}; open the upload "
                            "with every file it sends", "name")
        path = os.path.join(self.folder(upload_id), INPUTS, *name.split("/"))
        with self._file_lock(upload_id, name):
            if os.path.isfile(path):
                return {"name": name, "have": want["size"], "complete": True}
            part = path + PART
            have = _size(part)
            if offset != have:
                raise HttpError(409, f"{name}: chunk at byte {offset}, but the worker holds "
                                f"{have} bytes of it; send from byte {have}", "offset")
            if have + len(data) > want["size"]:
                raise HttpError(422, f"{name}: {have + len(data)} bytes sent, more than the "
                                f"{want['size']} declared; open the upload again with the "
                                "file's size", "size")
            try:
                os.makedirs(os.path.dirname(part), mode=0o700, exist_ok=True)
                with open(part, "ab") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
            except OSError as exc:
                with contextlib.suppress(OSError):
                    os.truncate(part, have)  # keep what was whole
                raise _disk_error(part, exc) from None
            have += len(data)
            complete = have == want["size"]
            if complete:
                digest = sha256(part)
                if digest != want["sha256"]:
                    os.unlink(part)
                    raise HttpError(422, f"{name}: its sha256 on the worker is {digest[:12]}..."
                                    f", not the {want['sha256'][:12]}... declared (changed or "
                                    "damaged on the way); the worker dropped it: send it again",
                                    "sha256")
                os.replace(part, path)
        self.touch(upload_id)
        return {"name": name, "have": have, "complete": complete}

    def _file_lock(self, upload_id: str, name: str) -> threading.Lock:
        with self._lock:
            return self._file_locks.setdefault((upload_id, name), threading.Lock())

    # -------------------------------------------------------------------------- send
    def outputs(self, upload_id: str, user: User, sub: str) -> list[dict[str, Any]]:
        """Every file under ``out/<sub>`` (a take's folder): its name there, size, sha256."""
        self.get(upload_id, user)
        base = os.path.join(self.folder(upload_id), OUTPUTS, *_name(sub, "take").split("/"))
        found = []
        for folder, dirs, names in os.walk(base):
            dirs.sort()
            for name in sorted(names):
                path = os.path.join(folder, name)
                if name.startswith(".") and ".tmp" in name:
                    continue  # a writer's temporary file
                found.append({"name": os.path.relpath(path, base).replace(os.sep, "/"),
                              "size": os.path.getsize(path), "sha256": sha256(path)})
        self.touch(upload_id)
        return found

    def output_file(self, upload_id: str, user: User, sub: str, name: str) -> str:
        """The path of a take's file for ``user`` to download; 404 when there is none."""
        self.get(upload_id, user)
        path = os.path.join(self.folder(upload_id), OUTPUTS, *_name(sub, "take").split("/"),
                            *_name(name, "name").split("/"))
        if not os.path.isfile(path):
            raise HttpError(404, f"{sub}/{name}: no such file in upload {upload_id}", "name")
        self.touch(upload_id)
        return path

    def remove(self, upload_id: str, user: User) -> None:
        self.get(upload_id, user)
        with self._lock:
            self._index.pop(upload_id, None)
        shutil.rmtree(self.folder(upload_id), ignore_errors=True)

    # ------------------------------------------------------------------ ownership, age
    def owner_of(self, path: str) -> tuple[str, str | None] | None:
        """(upload id, its owner or None when there is no such upload) of a path inside the
        uploads folder; None for a path elsewhere."""
        real = os.path.realpath(path)
        if not real.startswith(self.root + os.sep):
            return None
        upload_id = real[len(self.root) + 1:].split(os.sep, 1)[0]
        with self._lock:
            manifest = self._index.get(upload_id)
        return upload_id, manifest.get("owner") if manifest else None

    def sweep(self, in_use: Iterable[str], now: float | None = None) -> list[str]:
        """Remove the uploads unused for ``keep_s`` that none of the ``in_use`` paths (those
        of queued and running jobs) lies in; returns their ids."""
        now = time.time() if now is None else now
        busy = {found[0] for p in in_use if (found := self.owner_of(p)) is not None}
        with self._lock:
            old = [i for i, m in self._index.items()
                   if now - float(m.get("used", 0)) > self.keep_s and i not in busy]
            for upload_id in old:
                self._index.pop(upload_id, None)
        for upload_id in old:
            shutil.rmtree(self.folder(upload_id), ignore_errors=True)
        return old


def check_spec_paths(uploads: UploadStore, paths: Iterable[tuple[str, str]], user: User
                     ) -> None:
    """HttpError (404) for a spec path (field, path) inside another user's upload, or an
    upload that is not there: a user's job reads and writes only their own uploads."""
    for field, path in paths:
        found = uploads.owner_of(path)
        if found is None or user.admin:
            continue
        upload_id, owner = found
        if owner != user.name:
            raise HttpError(404, f"{field}: no upload {upload_id} of yours on the worker (it "
                            "was cleaned after --upload-keep hours, or is not yours); send the "
                            "files again", field, 3)


# ----------------------------------------------------------------------------- pieces
def _declared(files: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    if not files:
        raise HttpError(422, "files: an upload needs at least one file", "files")
    if len(files) > MAX_FILES:
        raise HttpError(413, f"files: {len(files)} files, more than the {MAX_FILES} one upload "
                        "takes; send the shot in parts", "files")
    out: dict[str, dict[str, Any]] = {}
    for i, item in enumerate(files):
        name = _name(str(item.get("name", "")), f"files.{i}.name")
        size, digest = item.get("size"), str(item.get("sha256", "")).lower()
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise HttpError(422, f"files.{i}.size: {size!r} is not a byte count", "files")
        if not _HEX64.match(digest):
            raise HttpError(422, f"files.{i}.sha256: give the file's sha256 as 64 hex digits",
                            "files")
        if name in out:
            raise HttpError(422, f"files.{i}.name: {name} is named twice", "files")
        out[name] = {"size": size, "sha256": digest}
    names = set(out)
    for name in names:  # a file cannot also be a folder of another
        parts = name.split("/")
        if any("/".join(parts[:k]) in names for k in range(1, len(parts))):
            raise HttpError(422, f"files: {name} lies under another file's name", "files")
    return out


def _name(name: str, field: str) -> str:
    """A relative POSIX name inside an upload: no '..', no hidden or empty parts."""
    parts = name.split("/")
    if not name or len(name) > 1024 or name.startswith("/") or any(
            not p or p in (".", "..") or p.startswith(".") or _BAD_PART.search(p)
            or p.endswith(PART) for p in parts):
        raise HttpError(422, f"{field}: {name!r} is not a file name inside an upload (relative,"
                        " '/'-separated, no '..', hidden or empty parts)", field)
    return name


def _tree_bytes(folder: str) -> int:
    total = 0
    for base, _, names in os.walk(folder):
        total += sum(_size(os.path.join(base, n)) for n in names)
    return total


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _gb(size: int) -> str:
    return f"{size / 2**30:.2f} GB" if size >= 2**27 else f"{size / 2**20:.1f} MB"


def _disk_error(path: str, exc: OSError) -> HttpError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return HttpError(507, f"{path}: the worker's disk is full; ask the worker's admin to "
                         "free space (or lower --upload-keep), then send the upload again",
                         "files")
    return HttpError(500, f"{path}: the worker cannot write the upload ({exc.strerror or exc})"
                     "; ask the worker's admin", "files")
