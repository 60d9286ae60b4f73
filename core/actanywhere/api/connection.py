"""Where a running worker is found: its connection file in the user's state folder.

The worker writes ``worker.json`` (url, token, pid; readable by the user only) when it starts,
puts it back if it is damaged or removed while the worker runs, and removes it when it stops;
clients read it, and remove one left by a worker that has stopped. One worker serves a state
folder: it holds an OS lock on ``worker.lock`` there for its life (``worker/paths.py``), and a
second one exits with ``busy_message``. This module is both sides' one definition.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from . import atomic

CONNECTION = "worker.json"
LOCK = "worker.lock"
LOG = "worker.log"  # where a worker started by a client writes (0600)
#: the words a worker's start error uses when another worker holds the folder's lock
BUSY = "already serves"


def busy_message(folder: str, pid: int | None) -> str:
    """The one line a second worker exits with; clients recognise it by ``BUSY``."""
    who = f"another worker (pid {pid})" if pid else "another worker"
    return (f"{folder}: {who} {BUSY} this state folder; use it (its connection file is "
            f"{os.path.join(folder, CONNECTION)}), stop it (`actanywhere serve --stop "
            "--state-dir ...`) or pass another --state-dir")


def state_dir(explicit: str | None = None) -> str:
    """``explicit``, else ``$ACTANYWHERE_STATE_DIR``, else the platform's per-user state
    folder (``~/.local/state/actanywhere`` on Linux)."""
    if explicit:
        return os.path.abspath(explicit)
    if os.environ.get("ACTANYWHERE_STATE_DIR"):
        return os.path.abspath(os.environ["ACTANYWHERE_STATE_DIR"])
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.expanduser("~\\AppData\\Local")
    elif sys.platform == "darwin":
        base = os.path.expanduser("~/Library/Application Support")
    else:
        base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return os.path.join(base, "actanywhere")


def lock_holder(folder: str) -> int | None:
    """The pid the worker holding ``folder``'s lock wrote into the lock file, if readable
    (the file stays after its worker; whether that pid lives is the reader's question)."""
    try:
        with open(os.path.join(folder, LOCK)) as fh:
            return int(fh.read(32).strip())
    except (OSError, ValueError):
        return None


def path(folder: str | None = None) -> str:
    return os.path.join(state_dir(folder), CONNECTION)


def read(folder: str | None = None) -> dict[str, Any]:
    """The connection file's contents; FileNotFoundError when no worker wrote one, OSError or
    ValueError when it cannot be read."""
    with open(path(folder)) as fh:
        info = json.load(fh)
    if not isinstance(info, dict) or not {"url", "token"} <= set(info):
        raise ValueError("no url and token in it")
    return info


def write(folder: str, info: dict[str, Any]) -> str:
    """Write the connection file readable by the user only (0600), atomically."""
    os.makedirs(folder, mode=0o700, exist_ok=True)
    return atomic.write_json(os.path.join(folder, CONNECTION), info, mode=0o600)


def remove(folder: str, pid: int) -> None:
    """Remove the connection file if it is still process ``pid``'s."""
    target = os.path.join(folder, CONNECTION)
    try:
        with open(target) as fh:
            if json.load(fh).get("pid") != pid:
                return
        os.unlink(target)
    except (OSError, ValueError):
        pass
