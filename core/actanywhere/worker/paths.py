"""Where the worker keeps its state: the connection file and the job database.

The folder and the connection file name come from ``client.py`` (standard library only), so
the worker and the hosts' client always agree on them.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

from ..client import CONNECTION, state_dir

__all__ = ["CONNECTION", "DATABASE", "state_dir", "write_connection", "remove_connection"]

DATABASE = "jobs.sqlite"


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
