"""Plate space <-> model space: geometry and colour for the diffusion engine (no torch here).

The plate's display window is scaled, keeping its physical aspect (pixel aspect included), so
that its short side is ``resolution``; the scaled picture is padded to multiples of 64 (the
UNet's and VAE's combined stride; 16 for Wan VACE) and centred. On the way back the padding is
cropped and the picture resized to the display window, so a model pixel maps onto the plate
pixels it came from: the generated background lines up with the plate. Padding is marked
"generate" in the mask and gray in the foreground, as any other background.

Colour: working-space linear -> display-referred sRGB in [0, 1] (``ColorContext.to_model``, with
the highlight roll-off) and back. The subject is reduced premultiplied (the correct way to
filter a matted colour), then unpremultiplied before the non-linear encode.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..media import raster
from ..media.color import ColorContext

MULTIPLE = 64
GRAY = 127.0 / 255.0


@dataclass(frozen=True)
class Geometry:
    plate_w: int
    plate_h: int
    content_w: int  # scaled picture inside the model frame
    content_h: int
    model_w: int  # model frame: multiples of 64
    model_h: int
    left: int
    top: int

    @classmethod
    def fit(cls, plate_w: int, plate_h: int, resolution: int,
            pixel_aspect: float = 1.0, *, multiple: int = MULTIPLE) -> Geometry:
        """The model frame for a plate: short side ``resolution``, padded to ``multiple``
        (64 for this package's model, 16 for Wan VACE)."""
        phys_w = plate_w * pixel_aspect
        scale = resolution / min(phys_w, plate_h)
        cw, ch = max(1, round(phys_w * scale)), max(1, round(plate_h * scale))
        mw, mh = -(-cw // multiple) * multiple, -(-ch // multiple) * multiple
        return cls(plate_w, plate_h, cw, ch, mw, mh, (mw - cw) // 2, (mh - ch) // 2)

    def _pad(self, a: np.ndarray, value: float | None) -> np.ndarray:
        pad = [(self.top, self.model_h - self.content_h - self.top),
               (self.left, self.model_w - self.content_w - self.left)] + [(0, 0)] * (a.ndim - 2)
        if value is None:
            return np.pad(a, pad, mode="edge")
        return np.pad(a, pad, mode="constant", constant_values=value)

    def to_model(self, a: np.ndarray, pad_value: float | None = None) -> np.ndarray:
        """Plate-resolution array -> model frame (pad with ``pad_value``, or the edge)."""
        return self._pad(raster.resize(a, self.content_w, self.content_h), pad_value)

    def content(self, a: np.ndarray) -> np.ndarray:
        """The model-frame array without its padding."""
        return a[self.top : self.top + self.content_h, self.left : self.left + self.content_w]

    def to_plate(self, a: np.ndarray) -> np.ndarray:
        """Model-frame array -> plate display window (crop padding, resize)."""
        return raster.resize(np.ascontiguousarray(self.content(a)), self.plate_w, self.plate_h)


def segmentation(subject: np.ndarray, matte: np.ndarray) -> np.ndarray:
    """The paper's S: premultiplied subject colour over gray 127 (model space, [0, 1])."""
    return (subject + GRAY * (1.0 - matte[..., None])).astype(np.float32)


def foreground(geo: Geometry, color: ColorContext, subject: np.ndarray,
               matte: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The paper's S and M in the model frame from a premultiplied linear subject and its matte.

    Returns S (h, w, 3): subject in model colour, gray 127 elsewhere; M (h, w): 1 = background
    to generate, 0 = subject (padding counts as background)."""
    small = geo.to_model(np.concatenate([subject, matte[..., None]], axis=2), 0.0)
    m = np.clip(small[..., 3], 0.0, 1.0)
    straight = small[..., :3] / np.maximum(m, 1e-4)[..., None]
    return segmentation(color.to_model(straight) * m[..., None], m), (1.0 - m).astype(np.float32)


def condition(geo: Geometry, color: ColorContext, image: np.ndarray) -> np.ndarray:
    """A plate-sized linear image (the fitted background, or a comp) as the condition frame."""
    return np.ascontiguousarray(
        color.to_model(raster.resize(image, geo.content_w, geo.content_h)), np.float32)


def initial(geo: Geometry, condition_image: np.ndarray) -> np.ndarray:
    """A ``condition`` image (model colour, content size) as a whole model frame (padding
    edge-extended): where sampling starts from with ``diffusion.init_strength``."""
    return geo._pad(condition_image, None)


def background(geo: Geometry, color: ColorContext, generated: np.ndarray) -> np.ndarray:
    """A generated model-frame image back to plate size in working-space linear (converted at
    model size, where it is cheap, then enlarged; Catmull-Rom overshoot below 0 is clipped)."""
    linear = color.from_model(np.ascontiguousarray(geo.content(generated)))
    return np.maximum(raster.resize(linear, geo.plate_w, geo.plate_h), 0.0)
