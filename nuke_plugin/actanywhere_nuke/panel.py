"""The takes browser as a Nuke panel (Windows -> Custom -> ActAnywhere Takes).

Nuke 16+ ships PySide6, Nuke 15 PySide2: the browser's import shim takes either. Choosing
(starring) a take in the panel switches the ActAnywhere node whose takes it is to that take.
"""

from __future__ import annotations

import os

import nuke

from . import node as node_mod

PANEL_ID = "uk.actanywhere.TakesPanel"
PANEL_NAME = "ActAnywhere Takes"


def register() -> bool:
    """Add the panel to Nuke's Custom windows; False (and one line why) without Qt."""
    try:
        from actanywhere.browser import qt  # noqa: F401 - only whether Qt is there
    except ImportError as exc:
        print(f"ActAnywhere: the Takes panel is not available ({exc})")
        return False
    import nukescripts

    nukescripts.panels.registerWidgetAsPanel(f"{__name__}.TakesPanel", PANEL_NAME, PANEL_ID)
    return True


def _root() -> str:
    """The selected ActAnywhere node's take folder, else the script's ``actanywhere`` one."""
    picked = nuke.selectedNodes("ActAnywhere")
    if picked:
        try:
            return node_mod.take_root(picked[0])
        except Exception:  # noqa: BLE001 - an unsaved script: fall through
            pass
    script = nuke.root().name()
    return os.path.join(os.path.dirname(script), "actanywhere") if script and \
        script != "Root" else ""


def _connect():
    """How the panel reaches the worker (sending a take again): the selected node's worker
    connection, read now on the main thread, else the node's default (``node._connect``)."""
    picked = nuke.selectedNodes("ActAnywhere")
    if picked:
        try:
            return node_mod._connector(picked[0])
        except Exception as exc:  # noqa: BLE001 - said once; the panel opens all the same
            print(f"ActAnywhere: {picked[0].name()}: {exc}")
    return node_mod._connect


def switch_node(take) -> list:
    """Show ``take`` on every ActAnywhere node whose takes live where it does."""
    folder = os.path.dirname(os.path.abspath(take.folder))
    switched = []
    for n in nuke.allNodes("ActAnywhere", nuke.root()):
        try:
            if os.path.abspath(node_mod.take_root(n)) == folder:
                node_mod.refresh(n, select=take.name)
                switched.append(n)
        except Exception as exc:  # noqa: BLE001 - one node's problem is said, not raised
            print(f"ActAnywhere: {n.name()}: not switched ({exc})")
    return switched


def _make():
    from actanywhere.browser.window import TakesBrowser

    class TakesPanel(TakesBrowser):
        """The browser on the selected node's takes; choosing one switches that node."""

        def __init__(self, parent=None) -> None:
            super().__init__(_root(), connect=_connect(), parent=parent)
            self.chosen.connect(switch_node)

    return TakesPanel


def __getattr__(name: str):
    # the class is made on first use, so importing this module never needs Qt
    if name == "TakesPanel":
        cls = _make()
        globals()["TakesPanel"] = cls
        return cls
    raise AttributeError(name)
