"""Files written whole or not at all (standard library only: the core and hosts share it).

A file is written under a hidden temporary name beside its target
(``.<name>.<random>.tmp<ext>``) and renamed over it when complete, so a reader never sees
half a file and a crash leaves the target as it was. ``leftovers`` finds what a killed
writer left behind, so the next run of that output can remove it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import sys
import tempfile
from collections.abc import Iterator
from typing import Any


def _process_umask() -> int:
    """The process umask, read once at import. Reading it means setting it, which must not
    happen in frame threads (another thread creating a file in between would get mode 0)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


UMASK = _process_umask()


def loose_mode(path: str) -> int | None:
    """``path``'s permission bits when other users may read or write it (POSIX), else None
    (always None on Windows, whose permissions are not mode bits)."""
    if sys.platform == "win32":
        return None
    mode = stat.S_IMODE(os.stat(path).st_mode)
    return mode if mode & 0o077 else None
#: a temporary name this module makes: ``.<name>.<random>.tmp<ext>``
_TEMP = re.compile(r"^\.(?P<name>.+)\.[A-Za-z0-9_]{8}\.tmp(?P<ext>\.[A-Za-z0-9]+)?$")


@contextlib.contextmanager
def replacing(path: str, *, mode: int | None = None) -> Iterator[str]:
    """A temporary file name beside ``path`` to write to; renamed to ``path`` when the block
    ends without error, removed otherwise. ``mode``: the file's permissions (default: what
    a plain ``open`` would give under the process umask)."""
    directory = os.path.dirname(os.path.abspath(path))
    base, ext = os.path.splitext(os.path.basename(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=f".tmp{ext}", dir=directory)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~UMASK if mode is None else mode)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def write_bytes(path: str, data: bytes, *, mode: int | None = None) -> str:
    """``data`` written to ``path`` atomically (flushed to the disk before the rename, so a
    full or failing disk raises OSError here); returns ``path``."""
    with replacing(path, mode=mode) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return path


def write_text(path: str, text: str, *, mode: int | None = None) -> str:
    """``text`` (UTF-8) written to ``path`` atomically; returns ``path``."""
    return write_bytes(path, text.encode("utf-8"), mode=mode)


def write_json(path: str, data: Any, *, mode: int | None = None, indent: int = 2) -> str:
    """``data`` as JSON written to ``path`` atomically; returns ``path``."""
    return write_text(path, json.dumps(data, indent=indent), mode=mode)


def leftovers(paths: list[str]) -> list[str]:
    """The temporary files that writers of ``paths`` left beside them (a killed run): each
    one's target is one of ``paths``. A run about to write ``paths`` removes them; files
    another run is writing (other targets) are never among them."""
    by_folder: dict[str, set[str]] = {}
    for path in paths:
        folder, name = os.path.split(os.path.abspath(path))
        by_folder.setdefault(folder, set()).add(name)
    out = []
    for folder, names in by_folder.items():
        try:
            found = os.listdir(folder)
        except OSError:
            continue
        for name in found:
            match = _TEMP.match(name)
            if match and f"{match['name']}{match['ext'] or ''}" in names:
                out.append(os.path.join(folder, name))
    return sorted(out)
