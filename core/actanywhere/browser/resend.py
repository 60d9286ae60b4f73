"""The dialog that sends a take again with changes: a new seed, another background, a label."""

from __future__ import annotations

from typing import Any

from .. import catalog
from ..api.takes import Take
from .qt import QtWidgets


class ResendDialog(QtWidgets.QDialog):
    """The seed, the background and a label for a new take made from an old one."""

    def __init__(self, take: Take, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Send {take.name} again")
        form = QtWidgets.QFormLayout(self)
        self.seed = QtWidgets.QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setValue(int((take.seed or 0) + 1))
        self.seed.setEnabled(catalog.seeded(take.engine))
        self.background = QtWidgets.QLineEdit(
            str((take.spec.get("background") or {}).get("path", "")))
        self.label = QtWidgets.QLineEdit()
        form.addRow("seed", self.seed)
        form.addRow("background", self.background)
        form.addRow("label", self.label)
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.Ok |
                                             QtWidgets.QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def changes(self) -> dict[str, Any]:
        """``TakesBrowser.send_again``'s keywords: the seed (None for an engine without one),
        the background (None: the take's) and the label."""
        return {"seed": self.seed.value() if self.seed.isEnabled() else None,
                "background": self.background.text().strip() or None,
                "label": self.label.text().strip()}
