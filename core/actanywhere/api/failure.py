"""``WorkerError``: anything that went wrong talking to the worker, in one line for the artist
(its own module so that ``client.py`` and the modules it uses, ``upload.py`` and
``workers.py``, share it without importing one another; ``client`` re-exports it)."""

from __future__ import annotations


class WorkerError(Exception):
    """Anything that went wrong talking to the worker; the message is for the artist.
    ``exit_code``: the CLI exit code of the same error in a local run, when the worker said."""

    def __init__(self, message: str, exit_code: int | None = None,
                 field: str | None = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.field = field  # the request field the worker named, when it named one
        #: set when a stale connection file was removed: what was done, for the user
        self.notice: str | None = None
