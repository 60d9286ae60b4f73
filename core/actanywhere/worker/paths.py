"""Where the worker keeps its state: the connection file and the job database.

Standard library only: the host-side client imports this module's twin logic (client.py has
its own copy of ``state_dir`` so it needs nothing from the heavy package).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from typing import Any

CONNECTION = "worker.json"
DATABASE = "jobs.sqlite"


def state_dir(explicit: str | None = None) -> str:
    """``$ACTANYWHERE_STATE_DIR``, else the platform's per-user state folder."""
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


def write_connection(folder: str, info: dict[str, Any]) -> str:
    """Write the connection file readable by the user only (0600), atomically."""
    os.makedirs(folder, mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".worker-", dir=folder)  # created 0600
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(info, fh, indent=2)
        os.chmod(tmp, 0o600)
        path = os.path.join(folder, CONNECTION)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def remove_connection(folder: str, pid: int) -> None:
    """Remove the connection file if it is still this process's."""
    path = os.path.join(folder, CONNECTION)
    try:
        with open(path) as fh:
            if json.load(fh).get("pid") != pid:
                return
        os.unlink(path)
    except (OSError, ValueError):
        pass
