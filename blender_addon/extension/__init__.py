"""ActAnywhere for Blender's Video Sequence Editor: the active image strip as the plate, a new
background, takes made by the ActAnywhere worker shown as strips above it (docs/blender.md).

Standard library and ``bpy`` only: the worker (numpy, torch, OpenImageIO) runs in its own
Python, reached through the bundled host layer (``vendor/actanywhere/api``).
"""

from __future__ import annotations

import bpy

from . import jobs, operators, panel, preferences, props

CLASSES = (preferences.ActAnywherePreferences, *props.CLASSES, *operators.CLASSES,
           *panel.CLASSES)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    props.register()
    panel.register()


def unregister() -> None:
    jobs.stop_all()
    panel.unregister()
    props.unregister()
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
