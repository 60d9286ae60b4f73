"""The add-on's preferences: the worker's Python (the venv ``install.py`` made)."""

from __future__ import annotations

import json
import os

import bpy

#: written into the extension by ``python3 install.py blender``: the venv it made
DEFAULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "defaults.json")


def _default_python() -> str:
    try:
        with open(DEFAULTS, encoding="utf-8") as fh:
            return str(json.load(fh).get("python", ""))
    except (OSError, ValueError):
        return os.environ.get("ACTANYWHERE_PYTHON", "")


class ActAnywherePreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    worker_python: bpy.props.StringProperty(
        name="Worker Python", subtype="FILE_PATH", default=_default_python(),
        description="The Python of the ActAnywhere venv (install.py makes .venv/bin/python); "
        "Generate starts the worker with it when none is running")

    def draw(self, context) -> None:
        self.layout.prop(self, "worker_python")
        if not self.worker_python:
            self.layout.label(text="Run python3 install.py blender, or pick the venv's python",
                              icon="INFO")


def get(context=None) -> ActAnywherePreferences:
    return (context or bpy.context).preferences.addons[__package__].preferences


def worker_python(context=None) -> str:
    path = get(context).worker_python.strip()
    return bpy.path.abspath(path) if path else ""
