"""Errors users see: one line that names the file or field and the fix, plus an exit code."""

from __future__ import annotations

#: the longest name a message shows whole; longer ones (a pasted 10 MB path) are cut
LONGEST_NAME = 300


def cut_names(text: str, longest: int = LONGEST_NAME) -> str:
    """``text`` with every run of non-blank characters longer than ``longest`` shortened to
    its start and end around ``...(N characters)...``, so one line stays one readable line."""
    def cut(word: str) -> str:
        if len(word) <= longest:
            return word
        keep = longest // 2 - 20
        return f"{word[:keep]}...({len(word)} characters)...{word[-keep:]}"

    return " ".join(cut(w) for w in text.split(" ")) if len(text) > longest else text


class ActAnywhereError(Exception):
    """Base class: the message is shown to the user as is, on one line (names longer than
    ``LONGEST_NAME`` cut)."""

    exit_code = 1

    def __str__(self) -> str:
        return cut_names(super().__str__())


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
