"""Previews to look at: PNG contact sheets and animated GIFs, display-referred sRGB."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import OpenImageIO as oiio

from ..api import atomic
from ..errors import OutputError
from . import imageio, imagewrite, raster
from .color import ColorContext


def thumbnail(linear_rgb: np.ndarray, color: ColorContext, width: int) -> np.ndarray:
    """A small sRGB-encoded (display) copy of a linear working-space image, values in [0, 1]
    (any channel layout: its first three channels, or its first repeated)."""
    return color.to_model(raster.rgb3(raster.shrink(raster.rgb3(linear_rgb), width)))


def contact_sheet(path: str, rows: Sequence[Sequence[np.ndarray]], gap: int = 4) -> None:
    """Write a PNG grid; ``rows`` holds display-referred thumbnails of one size."""
    imagewrite.write_image(path, raster.grid([list(r) for r in rows], gap))


def animated_gif(path: str, frames: Sequence[np.ndarray], fps: int = 24) -> None:
    """An endlessly looping GIF of display-referred frames, written atomically."""
    h, w = frames[0].shape[:2]
    specs = []
    for _ in frames:
        spec = oiio.ImageSpec(w, h, 3, "uint8")
        spec.attribute("FramesPerSecond", oiio.TypeDesc("rational"), (int(fps), 1))
        spec.attribute("gif:LoopCount", 0)
        specs.append(spec)
    try:
        with atomic.replacing(path) as tmp:
            out = oiio.ImageOutput.create(tmp)
            if out is None or not out.open(tmp, specs):
                raise OutputError(imagewrite.cannot_write(path, imageio.library_error(
                    out.geterror if out else oiio.geterror)))
            for i, frame in enumerate(frames):
                if i and not out.open(tmp, specs[i], "AppendSubimage"):
                    raise OutputError(imagewrite.cannot_write(path, imageio.library_error(
                        out.geterror)))
                out.write_image(np.clip(imagewrite.finite_half(np.array(frame[..., :3],
                                                                     np.float32)), 0.0, 1.0))
            if not out.close() or os.path.getsize(tmp) == 0:  # giflib ignores a full disk
                raise OutputError(imagewrite.cannot_write(path, "the file written is empty"))
    except OSError as exc:
        raise OutputError(imagewrite.cannot_write(path, exc.strerror or str(exc))) from exc
