"""Mattes that already exist: a channel of the plate, a matte sequence, a painted key matte."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..errors import InputError
from ..media import imageio
from ..media.imageio import Image, ImageInfo


def plate_channel(img: Image, channel: str) -> np.ndarray:
    if channel not in img.info.channels:
        raise InputError(f"{img.info.path}: no matte channel {channel!r}; it has "
                         f"{', '.join(img.info.channels)}; set matte.channel or use "
                         "matte.source=file")
    return img.channel(channel)


def matte_image(path: str, ref: ImageInfo, channel: str | None,
                warn: Callable[[str], None] = lambda m: None) -> np.ndarray:
    """The matte in an image file: ``channel``, else A, Y, its only channel, or R of a gray
    RGB painting. A stereo matte file gives the plate's view (a mono one serves either)."""
    views = imageio.probe(path).views if ref.view else ()
    if views and ref.view not in views:
        raise InputError(f"{path}: the matte file has views {', '.join(views)}, not the "
                         f"plate's view {ref.view!r}; render the matte for that view")
    img = imageio.read(path, view=ref.view if views else None)
    imageio.same_size(img.info, ref, "matte")
    if img.nonfinite:
        warn(f"{path}: {img.nonfinite} NaN/Inf value(s) replaced in the matte")
    names = img.info.channels
    for name in ([channel] if channel else []) + ["A", "Y"]:
        if name in names:
            return img.channel(name)
    if len(names) == 1:
        return img.pixels[..., 0]
    if not channel and "R" in names:
        return img.channel("R")
    raise InputError(f"{path}: no matte channel {channel or 'A'!r}; it has "
                     f"{', '.join(names)}; set matte.channel")


def is_premultiplied(rgb: np.ndarray, matte: np.ndarray) -> bool:
    """True when the colour is black wherever the matte is empty (a CG render of the subject
    alone); False for a full plate whose matte only marks the subject."""
    step = 2 if min(matte.shape) >= 64 else 1  # every other pixel is plenty, and 4x cheaper
    m, c = matte[::step, ::step], rgb[::step, ::step]
    outside = m <= 1e-4
    if not outside.any():
        return False
    return float(np.abs(c[outside]).max()) <= 1e-4
