"""ActAnywhere inside Nuke: the node's callbacks (``node``), its inputs as files
(``inputs``), colourspace names (``colour``) and the gizmo's definition (``definition``).

Only the standard library and ``actanywhere.api`` (the host-neutral layer) are imported:
no numpy, torch or OpenImageIO in Nuke's Python. Nuke 15 (Python 3.10) to 17.
"""

__version__ = "0.1.0"
