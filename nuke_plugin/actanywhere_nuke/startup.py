"""What Nuke runs at start: ``init()`` from init.py (every Nuke, GUI or not: ``nuke -t`` and
farm renders too), ``menu()`` from menu.py (the GUI only)."""

from __future__ import annotations

import os
import sys

PLUGIN = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(PLUGIN)


def core_path() -> str:
    """The folder holding the ``actanywhere`` package: ``$ACTANYWHERE_CORE``, else the
    checkout this plugin sits in."""
    return os.environ.get("ACTANYWHERE_CORE") or os.path.join(REPO, "core")


def init() -> None:
    """The gizmo folder on Nuke's plugin path, the host-neutral layer importable."""
    import nuke

    nuke.pluginAddPath(os.path.join(REPO, "gizmos"))
    core = core_path()
    if not os.path.isfile(os.path.join(core, "actanywhere", "api", "__init__.py")):
        raise RuntimeError(f"no actanywhere package in {core}; set ACTANYWHERE_CORE to the "
                           "checkout's core folder")
    if core not in sys.path:
        sys.path.append(core)


def menu() -> None:
    """The node in the Nodes toolbar (and the Tab menu, through the toolbar)."""
    import nuke

    toolbar = nuke.menu("Nodes").addMenu("ActAnywhere")
    toolbar.addCommand("ActAnywhere", "nuke.createNode('ActAnywhere')")
    from . import panel

    panel.register()  # Windows -> Custom -> ActAnywhere Takes (needs Qt: Nuke 15+)
