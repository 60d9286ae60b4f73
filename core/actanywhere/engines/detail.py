"""Plate-resolution detail for the generated background (no torch here).

The model sees the shot at a few hundred pixels (64 for the shipped model) in display-referred
colour, so its frames, enlarged, are soft and their highlights stop at the roll-off's ceiling.
Where the model kept the background plate's content, the plate itself (moved with the camera,
at plate resolution, scene-linear, highlights and all) is the better picture; where the model
changed it (a contact shadow, relighting, new content) the model must win. Per frame:

1. At the model's resolution, both the generated frame and the moved plate in model colour are
   blurred (``sigma`` model pixels) and compared: ``agreement = exp(-(d / tolerance)^2)`` with
   ``d`` the mean absolute difference of the channels (display-referred, so a highlight the
   model rolled off to 0.99 agrees with the plate's 0.995).
2. The model's low frequencies relative to the plate's give a gain per channel, taken to linear
   light with the sRGB exponent (2.2) and kept within 1/16..16: the shading the model added.
3. At plate size: ``agreement * plate * gain + (1 - agreement) * enlarged model frame``.

Where the model agrees exactly the result is the plate, pixel for pixel, values above 1
included; where it disagrees it is the model's frame as before.

Before either (and with ``diffusion.detail model`` too), ``without_subject`` fills the model's
frame under the subject (its matte grown by one model pixel) from the frame's own surroundings:
the model saw no background there and a small model echoes the subject's colours, a ghost the
``bg`` layer and the comp's soft edges would show. Contact shadows beside the subject stay.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..media import raster
from ..model import modelspace
from .base import EngineInput, EngineOutput, over, subject_of

GAMMA = 2.2
GAIN_LIMIT = 16.0


def without_subject(generated: np.ndarray, subject: np.ndarray, radius: float = 3.0
                    ) -> np.ndarray:
    """``generated`` (h, w, 3) display-referred in [0, 1] with the pixels under ``subject``
    (h, w matte in [0, 1], grown by one pixel) inpainted from their surroundings (OpenCV's
    Telea method, on 16-bit channels: its float path is unreliable)."""
    hole = cv2.dilate((subject > 0.05).astype(np.uint8), np.ones((3, 3), np.uint8))
    if not hole.any() or hole.all():
        return generated
    levels = np.round(np.clip(generated, 0.0, 1.0) * 65535).astype(np.uint16)
    out = [cv2.inpaint(np.ascontiguousarray(levels[..., c]), hole, radius, cv2.INPAINT_TELEA)
           for c in range(generated.shape[2])]
    filled = np.stack(out, axis=-1).astype(np.float32) / 65535
    return np.where(hole[..., None] > 0, filled, generated).astype(np.float32)


def agreement(generated: np.ndarray, plate: np.ndarray, tolerance: float, sigma: float = 1.0
              ) -> tuple[np.ndarray, np.ndarray]:
    """Model-resolution agreement (h, w) in [0, 1] and linear gain (h, w, 3) of ``generated``
    over ``plate``, both (h, w, 3) display-referred in [0, 1]."""
    g = cv2.GaussianBlur(np.ascontiguousarray(generated, np.float32), (0, 0), sigma)
    p = cv2.GaussianBlur(np.ascontiguousarray(plate, np.float32), (0, 0), sigma)
    d = np.abs(g - p).mean(axis=2)
    agree = np.exp(-np.square(d / max(tolerance, 1e-6))).astype(np.float32)
    gain = np.power(np.maximum(g, 1e-3) / np.maximum(p, 1e-3), GAMMA)
    return agree, np.clip(gain, 1 / GAIN_LIMIT, GAIN_LIMIT).astype(np.float32)


def combine(enlarged: np.ndarray, plate: np.ndarray, agree: np.ndarray, gain: np.ndarray
            ) -> np.ndarray:
    """The background at plate size: ``agree``/``gain`` (model resolution) enlarged smoothly
    to ``plate``'s size and applied to it and to the ``enlarged`` model frame (both linear)."""
    h, w = plate.shape[:2]
    a = np.clip(raster.resize(agree[..., None], w, h), 0.0, 1.0)
    k = np.clip(raster.resize(gain, w, h), 1 / GAIN_LIMIT, GAIN_LIMIT)
    return (a * plate * k + (1.0 - a) * enlarged).astype(np.float32)


def finish(geo: modelspace.Geometry, color, generated: np.ndarray, *, mask: np.ndarray,
           moved: np.ndarray | None, plate: np.ndarray | None, inp: EngineInput, detail: str,
           tolerance: float, recomposite: bool, filled: bool = False) -> EngineOutput:
    """A model engine's output frame at plate size: ``generated`` (model frame, display
    referred) without the subject's echo (``mask``: 1 = background), back to linear at plate
    size, with the moved ``plate``'s detail where the model kept it (``detail`` plate;
    ``moved``: the moved plate in model colour at content size) and, with ``recomposite``,
    the original subject over it. ``filled``: the frame is ``steady.py``'s (the
    subject's echo gone, the moved background with the model's shading alone), so the plate
    with that shading is used everywhere."""
    if not filled:
        generated = without_subject(generated, 1.0 - mask)
    bg = modelspace.background(geo, color, generated)
    if detail == "plate" and moved is not None and plate is not None:
        agree, gain = agreement(geo.content(generated), moved, tolerance)
        if filled:  # steadied: the frame is the moved background with shading alone
            agree = np.ones_like(agree)
        bg = combine(bg, plate, agree, gain)
    if not recomposite:
        return EngineOutput(background=bg, comp=bg)
    return EngineOutput(background=bg, comp=over(subject_of(inp), inp.matte, bg))
