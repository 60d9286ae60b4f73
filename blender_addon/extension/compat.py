"""The one place that knows Blender versions apart: 4.2-4.5 name the sequencer's strips
``sequences`` / ``sequences_all`` (4.4+ also ``strips``), 5.x only ``strips`` / ``strips_all``."""

from __future__ import annotations

import bpy


def editor(scene: bpy.types.Scene, create: bool = False):
    """The scene's sequence editor (made when ``create``), or None."""
    if scene.sequence_editor is None and create:
        scene.sequence_editor_create()
    return scene.sequence_editor


def strips(ed) -> bpy.types.bpy_prop_collection:
    """The top-level strips (where ``new_image`` adds one)."""
    return ed.strips if hasattr(ed, "strips") else ed.sequences


def strips_all_name(ed) -> str:
    """The attribute holding every strip, meta strips' contents too (for prop_search)."""
    return "strips_all" if hasattr(ed, "strips_all") else "sequences_all"


def strips_all(ed) -> bpy.types.bpy_prop_collection:
    return getattr(ed, strips_all_name(ed))


def progress(layout, factor: float, text: str) -> None:
    """A progress bar (``layout.progress``, Blender 4.0+), else the text."""
    if hasattr(layout, "progress"):
        layout.progress(factor=factor, type="BAR", text=text)
    else:
        layout.label(text=text)
