"""The node's inputs as files the worker reads: EXR in scene linear.

An unmodified Read of an EXR sequence is used as it is (its files, its colourspace mapped to
an OCIO name); anything else (a Roto, a Grade, a Read that reformats, offsets or
premultiplies) is rendered by a temporary Write, EXR and raw (the working space), on the main
thread through ``nuke.execute`` (Nuke shows its progress), into the take's ``inputs/``
folder. Data and display windows are what Nuke writes: the bbox and the format.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import nuke

from actanywhere.api.patterns import frame_file, has_frame_number

from .colour import ocio_name, working_space

#: Read knobs whose non-default value changes the pixels the Read outputs
_CHANGES = {"premultiplied": False, "reformat": False, "disable": False, "frame": ""}


class InputError(Exception):
    """An input the node cannot use; the message is one line for the artist."""


@dataclass
class Source:
    path: str  # a ####-pattern (or one file for a still)
    colorspace: str | None
    first: int
    last: int
    rendered: bool  # made by a temporary Write


def direct_read(node) -> bool:
    """An unmodified Read of EXR files: the worker reads its files itself."""
    if node is None or node.Class() != "Read":
        return False
    path = node["file"].value()
    if not path.lower().endswith(".exr") or "[" in path:
        return False
    for knob, default in _CHANGES.items():
        k = node.knob(knob)
        if k is not None and k.value() not in (default, None):
            return False
    return True


def _colorspace(node) -> str:
    if node["raw"].value():
        return "Raw"
    return ocio_name(node["colorspace"].value(), working_space())


def source(node, name: str, first: int, last: int, folder: str, still: bool = False
           ) -> Source:
    """Input ``name`` (a node) as files for frames first..last; ``still``: one frame (the
    background), the first of the range."""
    if node is None:
        raise InputError(f"connect the {name} input")
    if direct_read(node):
        pattern = node["file"].value()
        if still and has_frame_number(pattern):
            pattern = frame_file(pattern, max(int(node["first"].value()),
                                              min(first, int(node["last"].value()))))
        return Source(pattern, _colorspace(node), int(node["first"].value()),
                      int(node["last"].value()), False)
    return render(node, name, first, first if still else last, folder)


def render(node, name: str, first: int, last: int, folder: str) -> Source:
    """Render ``node`` to EXR with a temporary Write at the script's top level (a button's
    code runs inside the gizmo, where a new node would otherwise land)."""
    path = os.path.join(folder, f"{name}.####.exr")
    with nuke.root():
        write = nuke.nodes.Write(file=path, file_type="exr", channels="rgba", raw=True,
                                 datatype="32 bit float", create_directories=True,
                                 autocrop=False, name=f"ActAnywhere_{name}_render")
    try:
        write.setInput(0, node)
        nuke.execute(write, first, last)
    except RuntimeError as exc:
        raise InputError(f"the {name} input could not be rendered: "
                         f"{str(exc).splitlines()[0] if str(exc) else exc}") from None
    finally:
        nuke.delete(write)
    return Source(path, working_space(), first, last, True)
