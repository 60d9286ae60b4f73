"""The takes browser: compare a shot's takes and choose one (docs/takes.md).

Qt only (PySide6; PySide2 inside Nuke 15) and the standard-library ``api`` layer: no numpy,
so the same widget docks inside Nuke. ``actanywhere takes [FOLDER]`` opens it standalone.
"""
