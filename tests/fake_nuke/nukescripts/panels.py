"""``nukescripts.panels.registerWidgetAsPanel`` as Foundry documents it: ``widget`` is the
dotted name of a QWidget class that Nuke imports and instantiates with no arguments when the
artist opens the panel (Windows -> Custom -> ``name``); ``id`` is unique; the return value is
a PythonPanel (``create=True`` makes the widget at once)."""

from __future__ import annotations

import importlib

#: id -> (widget class name, panel name), in registration order
registered: dict[str, tuple[str, str]] = {}


class PythonPanel:
    def __init__(self, widget: str, name: str, id: str) -> None:  # noqa: A002
        self.widget_name, self.name, self.id = widget, name, id
        self.widget = None

    def create(self):
        """What Nuke does when the panel is opened: import the class, call it."""
        module, _, cls = self.widget_name.rpartition(".")
        self.widget = getattr(importlib.import_module(module), cls)()
        return self.widget


def registerWidgetAsPanel(widget: str, name: str, id: str, create: bool = False  # noqa: A002,N802
                          ) -> PythonPanel:
    if not isinstance(widget, str):
        raise TypeError("registerWidgetAsPanel: widget must be the class's dotted name")
    registered[id] = (widget, name)
    panel = PythonPanel(widget, name, id)
    if create:
        panel.create()
    return panel


def restorePanel(id: str) -> PythonPanel:  # noqa: A002,N802
    widget, name = registered[id]
    panel = PythonPanel(widget, name, id)
    panel.create()
    return panel
