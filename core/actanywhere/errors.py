"""Errors users see: one line that names the file or field and the fix, plus an exit code."""

from __future__ import annotations


class ActAnywhereError(Exception):
    """Base class: the message is shown to the user as is, on one line."""

    exit_code = 1


class SpecError(ActAnywhereError):
    """An invalid ShotSpec field or CLI flag."""

    exit_code = 2


class InputError(ActAnywhereError):
    """A plate, matte or background that cannot be used (missing, damaged, mismatched)."""

    exit_code = 3


class OutputError(ActAnywhereError):
    """An output that cannot be written (unwritable, would overwrite an input, exists)."""

    exit_code = 4


class ModelError(ActAnywhereError):
    """A model checkpoint or engine that cannot be loaded or run."""

    exit_code = 5


class JobCancelled(ActAnywhereError):
    """The job was cancelled; frames already written are complete."""

    exit_code = 130


EXIT_CODES = {
    0: "success",
    1: "unexpected internal error (please report it with the command and traceback from --debug)",
    2: "invalid ShotSpec or command-line flag",
    3: "unusable input (plate, matte or background)",
    4: "output cannot be written",
    5: "model or engine cannot be loaded or run",
    130: "cancelled (Ctrl-C or cancel request); written frames are complete",
}


def from_exit_code(message: str, code: int | None) -> ActAnywhereError:
    """The error class whose exit code is ``code`` (a worker reports codes, not classes), so
    ``generate --worker`` exits as a local run would; ModelError for any other code."""
    for cls in (SpecError, InputError, OutputError, ModelError, JobCancelled):
        if cls.exit_code == code:
            return cls(message)
    return ModelError(message)
