"""Where the worker keeps its state: the connection file (``api/connection.py``, the one
definition the hosts' client reads too), the lock that makes a worker its folder's only one,
and the job database. The folder is 0700 and every file in it 0600, whatever existed before."""

from __future__ import annotations

import contextlib
import os
import sys
import time

from ..api.connection import CONNECTION, LOCK, LOG, busy_message, lock_holder, state_dir
from ..api.connection import read as read_connection
from ..api.connection import remove as remove_connection
from ..api.connection import write as write_connection
from ..errors import OutputError

__all__ = ["CONNECTION", "DATABASE", "LOCK", "LOG", "StateBusy", "lock", "private_file",
           "private_folder", "read_connection", "remove_connection", "stale_connection",
           "state_dir", "write_connection"]

DATABASE = "jobs.sqlite"
_LOCK_BYTE = 1 << 16  # Windows locks a byte range: one past the pid, so the pid stays readable


class StateBusy(OutputError):
    """Another worker holds the state folder's lock."""


def private_folder(folder: str) -> str:
    """Create ``folder`` 0700, or make an existing one 0700 (and its log 0600); OutputError
    naming it if it cannot be used."""
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        os.chmod(folder, 0o700)
        private_file(os.path.join(folder, LOG))
    except OSError as exc:
        raise OutputError(f"{folder}: cannot use it as the worker's state folder "
                          f"({exc.strerror or exc}); pass another --state-dir") from None
    return folder


def private_file(path: str) -> None:
    """Make ``path`` readable by the user only, if it exists."""
    with contextlib.suppress(FileNotFoundError):
        os.chmod(path, 0o600)


def lock(folder: str, wait_s: float = 2.0) -> int:
    """Take the folder's worker lock for the life of this process: the returned descriptor
    stays open, and the OS lets go of the lock however the process ends (``kill -9``
    included). Waits up to ``wait_s`` for a worker that is stopping; StateBusy, naming the
    holder's pid, when another process still holds it."""
    path = os.path.join(folder, LOCK)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise OutputError(f"{path}: cannot open the worker's lock file ({exc.strerror or exc});"
                          " pass another --state-dir") from None
    private_file(path)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            _try_lock(fd)
            break
        except OSError:
            if time.monotonic() >= deadline:
                os.close(fd)
                raise StateBusy(busy_message(folder, lock_holder(folder))) from None
            time.sleep(0.1)
    os.lseek(fd, 0, os.SEEK_SET)
    data = str(os.getpid()).encode()
    os.write(fd, data)
    os.ftruncate(fd, len(data))
    return fd


def _try_lock(fd: int) -> None:
    if sys.platform == "win32":
        import msvcrt

        os.lseek(fd, _LOCK_BYTE, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def stale_connection(folder: str) -> str | None:
    """What a starting worker (holding the lock) will replace: a connection file left by a
    worker that has stopped, or a damaged one; None when there is none."""
    path = os.path.join(folder, CONNECTION)
    if not os.path.exists(path):
        return None
    try:
        pid = read_connection(folder).get("pid")
    except (OSError, ValueError):
        return f"replaced the damaged connection file {path}"
    return f"replaced the connection file {path} of worker pid {pid}, which has stopped"
