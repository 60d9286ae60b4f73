"""Nuke's colourspace names as the OCIO names the worker's ShotSpec takes.

Nuke's legacy (nuke-default) names are mapped to the built-in OCIO config's; OCIO config
names (and the ACES 1.x names, which the built-in config knows as aliases) pass through.
The linear roles mean the script's working space. A script on a custom OCIO config sends
that config's path, and its names pass through unchanged.
"""

from __future__ import annotations

import re

#: nuke-default colourspaces -> the built-in OCIO config (a test checks every target exists)
NUKE_DEFAULT = {
    "linear": "Linear Rec.709 (sRGB)",
    "sRGB": "sRGB Encoded Rec.709 (sRGB)",
    "rec709": "Camera Rec.709",
    "Gamma1.8": "Gamma 1.8 Encoded Rec.709",
    "Gamma2.2": "Gamma 2.2 Encoded Rec.709",
    "Gamma2.4": "Gamma 2.4 Encoded Rec.709",
    "AlexaV3LogC": "ARRI LogC3 (EI800)",
    "raw": "Raw",
}
LINEAR_ROLES = ("scene_linear", "reference", "compositing_linear")


def ocio_name(nuke_name: str, working: str) -> str:
    """A Read or Write colourspace knob's value as an OCIO name; ``default (X)`` is X, and
    ``default`` or a linear role is ``working``."""
    name = nuke_name.strip()
    match = re.fullmatch(r"default \((.+)\)", name)
    if match:
        name = match.group(1)
    if name in ("", "default") or name in LINEAR_ROLES:
        return working
    return NUKE_DEFAULT.get(name, name)


def _knob(node, name: str) -> str:
    knob = node.knob(name)
    return str(knob.value()) if knob is not None else ""


def custom_config() -> str | None:
    """The script's own OCIO config file, when it uses one."""
    import nuke

    root = nuke.root()
    if _knob(root, "OCIO_config") == "custom":
        return _knob(root, "customOCIOConfigPath") or None
    return None


def working_space() -> str:
    """The script's working (scene linear) space as an OCIO name."""
    import nuke

    root = nuke.root()
    name = _knob(root, "workingSpaceLUT") or "linear"
    if name in LINEAR_ROLES and custom_config() is None:
        aces = _knob(root, "OCIO_config").startswith("aces")
        return "ACEScg" if aces else NUKE_DEFAULT["linear"]
    return ocio_name(name, NUKE_DEFAULT["linear"])


def color_section() -> dict:
    """The ShotSpec ``color`` section: work in the script's working space, write takes in it
    (the node's Read shows them raw), with the script's custom config if it has one."""
    out = {"working_space": working_space()}
    config = custom_config()
    if config:
        out["config"] = config
    return out
