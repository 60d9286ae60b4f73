"""Blender's colourspace names (its own OCIO config) as the names of the worker's OCIO config
(the built-in studio config), and back for the takes' strips.

A plate in a linear space is worked on and written in that space (the take's strip gets the
plate's colourspace, so it displays like the plate); a display-referred plate (sRGB PNG/JPEG)
is worked on in linear Rec.709 and its take is a linear EXR tagged ``Linear Rec.709``.
"""

from __future__ import annotations

#: Blender colourspace -> the worker's built-in config (a test checks every target exists)
TO_OCIO = {
    "Linear Rec.709": "Linear Rec.709 (sRGB)",
    "scene_linear": "Linear Rec.709 (sRGB)",
    "Linear Rec.2020": "Linear Rec.2020",
    "Linear DCI-P3 D65": "Linear P3-D65",
    "ACEScg": "ACEScg",
    "ACES2065-1": "ACES2065-1",
    "ACEScc": "ACEScc",
    "ACEScct": "ACEScct",
    "sRGB": "sRGB Encoded Rec.709 (sRGB)",
    "Display P3": "sRGB Encoded P3-D65",
    "Rec.1886": "Gamma 2.4 Encoded Rec.709",
    "Non-Color": "Raw",
}
#: the scene-linear spaces a take can be worked on and written in, and their Blender names
LINEAR = {"Linear Rec.709 (sRGB)": "Linear Rec.709", "Linear Rec.2020": "Linear Rec.2020",
          "Linear P3-D65": "Linear DCI-P3 D65", "ACEScg": "ACEScg", "ACES2065-1": "ACES2065-1"}
DEFAULT_WORKING = "Linear Rec.709 (sRGB)"


class ColourError(ValueError):
    pass


def ocio_name(blender_name: str, what: str) -> str:
    """``what``'s colourspace as the worker's OCIO name; ColourError (one line) if it has
    none there."""
    try:
        return TO_OCIO[blender_name]
    except KeyError:
        raise ColourError(
            f"{what}: colourspace {blender_name!r} has no match in the worker's OCIO config; "
            f"set the strip's colourspace to how its files were written "
            f"(one of {', '.join(sorted(TO_OCIO))})") from None


def working_space(plate_ocio: str) -> str:
    """The space a take is worked on and written in: the plate's when it is linear."""
    return plate_ocio if plate_ocio in LINEAR else DEFAULT_WORKING


def blender_name(working: str) -> str:
    """The Blender colourspace of a take written in ``working``."""
    return LINEAR[working]
