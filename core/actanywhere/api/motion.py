"""A shot's motion (``motion.json``, docs/motion.md) as compositors edit it: a Nuke CornerPin2D
snippet and Blender strip-transform keys. Standard library only: Nuke and Blender use it.

motion.json homographies map reference-frame pixels to frame pixels, origin top left, y
down, pixel centres at integers. Nuke puts the origin bottom left, y up, pixel edges at
integers; Blender's strip offsets are in pixels, y up, rotation counter-clockwise.
"""

from __future__ import annotations

import json
import math
from typing import Any

from . import atomic

Matrix = list[list[float]]


def read(path: str) -> dict[str, Any]:
    """A motion.json as a dict (frames keyed by int); ValueError naming the file."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        frames = {int(f): [[float(v) for v in row] for row in h]
                  for f, h in data["frames"].items()}
        return {**data, "frames": frames, "width": int(data["width"]),
                "height": int(data["height"])}
    except FileNotFoundError:
        raise ValueError(f"{path}: no such motion file; write one with `actanywhere motion`") \
            from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a motion file ({exc})") from None


def apply(h: Matrix, x: float, y: float) -> tuple[float, float]:
    px = h[0][0] * x + h[0][1] * y + h[0][2]
    py = h[1][0] * x + h[1][1] * y + h[1][2]
    w = h[2][0] * x + h[2][1] * y + h[2][2]
    return px / w, py / w


def nuke_snippet(data: dict[str, Any], name: str = "ActAnywhereMotion") -> str:
    """A CornerPin2D node whose ``to`` corners carry the frame's corners through the motion,
    keyed every frame (paste it, or ``nuke.nodePaste(path)``): it moves the background plate
    as the shot's camera moves it."""
    w, h = data["width"], data["height"]
    frames = sorted(data["frames"])
    # Nuke corners 1-4: bottom left, bottom right, top right, top left (pixel edges)
    corners = [(0.0, 0.0), (float(w), 0.0), (float(w), float(h)), (0.0, float(h))]
    lines = ["set cut_paste_input [stack 0]", "version 15.0 v1", "push $cut_paste_input",
             "CornerPin2D {"]
    for i, (nx, ny) in enumerate(corners, 1):
        # Nuke (edges, y up) -> ours (centres, y down) -> through the motion -> Nuke
        cx, cy = nx - 0.5, h - ny - 0.5
        xs, ys = [], []
        for f in frames:
            x, y = apply(data["frames"][f], cx, cy)
            xs.append(f"{x + 0.5:.4f}")
            ys.append(f"{h - (y + 0.5):.4f}")
        lines.append(f" to{i} {{{{curve x{frames[0]} {' '.join(xs)}}} "
                     f"{{curve x{frames[0]} {' '.join(ys)}}}}}")
    for i, (nx, ny) in enumerate(corners, 1):
        lines.append(f" from{i} {{{nx:g} {ny:g}}}")
    label = f"{data.get('source', '')} motion, reference {data.get('reference_frame', '')}"
    lines += [f" name {name}", f" label \"{label}\"", "}"]
    return "\n".join(lines) + "\n"


def write_nuke(data: dict[str, Any], path: str, name: str = "ActAnywhereMotion") -> str:
    """Write the CornerPin2D snippet atomically."""
    return atomic.write_text(path, nuke_snippet(data, name))


def similarity(h: Matrix, width: int, height: int) -> tuple[float, float, float, float]:
    """The similarity part of one frame's motion about the frame centre, as Blender's strip
    transform holds it: (offset x, offset y (up), scale, rotation in radians, counter-
    clockwise)."""
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    x0, y0 = apply(h, cx, cy)
    x1, y1 = apply(h, cx + 1.0, cy)  # where a unit step right goes: scale and angle
    dx, dy = x1 - x0, y1 - y0
    return x0 - cx, -(y0 - cy), math.hypot(dx, dy), math.atan2(-dy, dx)


def blender_keys(data: dict[str, Any]) -> list[tuple[int, float, float, float, float]]:
    """(frame, offset x, offset y, scale, rotation) per frame of the motion, for keying a
    background strip's transform (the similarity part; perspective is dropped)."""
    return [(f, *similarity(data["frames"][f], data["width"], data["height"]))
            for f in sorted(data["frames"])]
