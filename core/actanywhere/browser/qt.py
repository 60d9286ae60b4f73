"""The Qt binding: PySide6 (the ``takes`` extra; Nuke 16+), else PySide2 (Nuke 15)."""

from __future__ import annotations

NEEDS = ("the takes browser needs PySide6: pip install 'actanywhere[takes]' (Nuke 16+ ships "
         "it; Nuke 15's PySide2 works too)")

try:
    from PySide6 import QtCore, QtGui, QtWidgets

    BINDING = "PySide6"
except ImportError:
    try:
        from PySide2 import QtCore, QtGui, QtWidgets  # type: ignore[no-redef]

        BINDING = "PySide2"
    except ImportError as exc:
        raise ImportError(NEEDS) from exc

Signal = QtCore.Signal


def run_modal(obj) -> int:
    """``exec`` (PySide6) or ``exec_`` (PySide2) of a dialog or an application."""
    return (obj.exec if hasattr(obj, "exec") else obj.exec_)()


__all__ = ["BINDING", "NEEDS", "QtCore", "QtGui", "QtWidgets", "Signal", "run_modal"]
