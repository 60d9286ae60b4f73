"""Where the worker keeps its state: the connection file (``api/connection.py``, the one
definition the hosts' client reads too) and the job database."""

from __future__ import annotations

from ..api.connection import CONNECTION, state_dir
from ..api.connection import remove as remove_connection
from ..api.connection import write as write_connection

__all__ = ["CONNECTION", "DATABASE", "state_dir", "write_connection", "remove_connection"]

DATABASE = "jobs.sqlite"
