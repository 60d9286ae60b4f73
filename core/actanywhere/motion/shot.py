"""A shot's motion from its files: the plate (and a matte) read frame by frame, one source
run, smoothed, checked; plus the overlay preview (a grid fixed to the background, drawn on the
plate as the motion moves it) to judge it by eye."""

from __future__ import annotations

import os
from collections.abc import Iterator

import cv2
import numpy as np

from ..errors import InputError
from ..media import frames as frameseq
from ..media import imageio, preview, raster
from . import choose
from .format import Motion


def _rgb(img: imageio.Image, path: str) -> np.ndarray:
    return img.channels(imageio.rgb_names(img.info.channels, path))


def _frames(plate: frameseq.Sequence, matte: str | None,
            channel: str) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    matte_seq = frameseq.resolve(matte) if matte else None
    for f in plate.frames:
        img = imageio.read(plate.path(f))
        rgb = _rgb(img, plate.path(f))
        if matte_seq is not None:
            m = imageio.read(matte_seq.path(f), [channel]).channel(channel)
        elif channel in img.info.channels:
            m = img.channel(channel)
        else:
            raise InputError(f"{plate.path(f)}: no {channel} channel for the matte; give "
                             "--matte, or --source metadata, keys or none")
        yield f, rgb, m


def estimate(plate_pattern: str, frames: str | None, settings: choose.Settings, *,
             matte: str | None = None, matte_channel: str = "A",
             note=lambda _m: None) -> tuple[Motion, list[tuple[int, np.ndarray]]]:
    """(the motion, a few (frame, rgb) samples for the preview)."""
    plate = frameseq.resolve(plate_pattern, frames)
    missing = plate.missing()
    if missing:
        raise InputError(f"{plate.template}: missing frame(s) {frameseq.compact(missing)}")
    info = imageio.probe(plate.path(plate.frames[0]))
    w, h = info.display.width, info.display.height
    samples: dict[int, np.ndarray] = {}
    every = max(1, len(plate.frames) // 24)
    sampled = set(plate.frames[::every])

    def pictures() -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        for f, rgb, m in _frames(plate, matte, matte_channel):
            if f in sampled:
                samples[f] = raster.shrink(np.asarray(rgb), 480)
            yield f, rgb, m

    paths = {f: plate.path(f) for f in plate.frames}
    motion = choose.estimate(settings, frames=list(plate.frames), width=w, height=h,
                             pixel_aspect=info.pixel_aspect,
                             headers=lambda f: imageio.probe(paths[f]).metadata,
                             pictures=pictures, note=note, names=paths)
    for f in sampled:  # sources that read no pixels
        if f not in samples:
            samples[f] = raster.shrink(_rgb(imageio.read(paths[f]), paths[f]), 480)
    return motion, sorted(samples.items())


def overlay(motion: Motion, samples: list[tuple[int, np.ndarray]], path: str) -> str:
    """A GIF (or a PNG strip for ``.png``) of the samples with a grid fixed to the
    background: if the motion is right, the grid sticks to the set."""
    frames = []
    for f, rgb in samples:
        img = np.clip(np.nan_to_num(rgb), 0, 1) ** (1 / 2.2)
        k = img.shape[1] / motion.width
        scale = np.diag([k, k, 1.0])
        h = scale @ motion.frames[f] @ np.linalg.inv(scale)
        over = np.ascontiguousarray(img * 0.85, np.float32)
        hh, ww = img.shape[:2]
        grid = [((x, 0.0), (x, hh)) for x in np.linspace(0, ww, 11)] + \
            [((0.0, y), (ww, y)) for y in np.linspace(0, hh, 7)]
        for a, b in np.round(cv2.perspectiveTransform(
                np.array(grid, np.float64).reshape(-1, 1, 2), h).reshape(-1, 2, 2)).astype(int):
            cv2.line(over, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])), (1.0, 0.85, 0.1), 1,
                     cv2.LINE_AA)
        frames.append(over)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if path.lower().endswith(".png"):
        preview.contact_sheet(path, [frames[:: max(1, len(frames) // 6)][:6]])
    else:
        preview.animated_gif(path, frames, fps=12)
    return path
