"""Image files written whole or not at all: multi-layer half-float EXR through OpenImageIO,
8-bit JPEG and PNG encoded in memory, every file read back before it is renamed into place;
a failed write (a full disk included) is one OutputError line."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import OpenImageIO as oiio

from ..api import atomic
from ..errors import OutputError
from .formats import COMPRESSIONS
from .imageio import HALF_MAX, Attr, Window, first_line, incomplete, library_error


def finite_half(pixels: np.ndarray) -> np.ndarray:
    """``pixels`` (float32, in place) made safe for half float: NaN -> 0, everything else
    clamped to +/-65504, so no NaN or Inf can reach a written file whatever came before."""
    if pixels.size == 0 or pixels.min() >= -HALF_MAX and pixels.max() <= HALF_MAX:
        return pixels  # two read-only reductions (NaN fails both tests): the common case
    np.nan_to_num(pixels, copy=False, nan=0.0, posinf=HALF_MAX, neginf=-HALF_MAX)
    np.clip(pixels, -HALF_MAX, HALF_MAX, out=pixels)
    return pixels


def _set_attributes(spec: oiio.ImageSpec, metadata: Mapping[str, object]) -> None:
    for key, value in metadata.items():
        if isinstance(value, Attr):
            spec.attribute(key, oiio.TypeDesc(value.type), value.value)
        else:
            spec.attribute(key, value)


def write_exr(
    path: str,
    names: Sequence[str],
    pixels: np.ndarray,
    display: Window,
    metadata: Mapping[str, object] | None = None,
    compression: str = "zip",
    pixel_aspect: float = 1.0,
    data: Window | None = None,
) -> None:
    """Write ``pixels`` (H, W, C) as a half-float EXR with display window ``display``, atomically.

    ``names`` are the C channel names (``R``, ``bg.R``, ``matte.A``); the pixels cover the data
    window (``data``, default: the display window). The file is written next to ``path`` under
    a temporary name and renamed into place, so a reader never sees a half-written frame.
    """
    data = data or display
    if compression not in COMPRESSIONS:
        raise OutputError(f"compression {compression!r}: use one of {', '.join(COMPRESSIONS)}")
    names = list(names)
    pixels = np.ascontiguousarray(pixels, np.float32)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if pixels.shape[2] != len(names):
        raise OutputError(f"{path}: {pixels.shape[2]} channels of pixels for {len(names)} names")
    if pixels.shape[:2] != (data.height, data.width):
        raise OutputError(f"{path}: pixels {pixels.shape[1]}x{pixels.shape[0]} do not fill the "
                          f"data window {data}")
    finite_half(pixels)
    spec = oiio.ImageSpec(data.width, data.height, len(names), "half")
    spec.x, spec.y = data.x, data.y
    spec.full_x, spec.full_y = display.x, display.y
    spec.full_width, spec.full_height = display.width, display.height
    spec.channelnames = tuple(names)
    alpha = [i for i, n in enumerate(names) if n == "A"]
    spec.alpha_channel = alpha[0] if alpha else -1
    _set_attributes(spec, metadata or {})
    spec.attribute("compression", "dwaa:45" if compression == "dwaa" else compression)
    spec.attribute("PixelAspectRatio", float(pixel_aspect))
    _atomic_write(path, spec, pixels)


def write_image(path: str, pixels: np.ndarray, pixel_format: str = "uint8",
                metadata: Mapping[str, object] | None = None) -> None:
    """Write a plain image (PNG, JPEG, ...) atomically; pixels are (H, W, C) in [0, 1] (NaN
    written as 0, integer formats clamped to [0, 1]). 8-bit JPEG and PNG are encoded in
    memory and written by Python, so a full disk is an OutputError: OpenImageIO's JPEG
    writer ends the process on a write error, and its PNG writer leaves an empty file."""
    pixels = np.array(pixels, dtype=np.float32, order="C", copy=True)
    finite_half(pixels)
    if pixel_format.startswith(("uint", "int")):
        np.clip(pixels, 0.0, 1.0, out=pixels)
    h, w, c = pixels.shape
    ext = os.path.splitext(path)[1].lower()
    if pixel_format == "uint8" and ext in _ENCODED and c in (1, 3, 4):
        _write_bytes(path, _encode(pixels, ext, metadata or {}))
        return
    spec = oiio.ImageSpec(w, h, c, pixel_format)
    _set_attributes(spec, metadata or {})
    _atomic_write(path, spec, pixels)


#: 8-bit formats encoded in memory (OpenCV) rather than written by OpenImageIO
_ENCODED = (".jpg", ".jpeg", ".png")


def _encode(pixels: np.ndarray, ext: str, metadata: Mapping[str, object]) -> bytes:
    """``pixels`` in [0, 1] as the bytes of an 8-bit JPEG (quality from a ``Compression``
    of ``jpeg:NN``, default 95; alpha dropped) or PNG file."""
    import cv2

    u8 = np.rint(pixels * 255.0).astype(np.uint8)
    jpeg = ext != ".png"
    if jpeg and u8.shape[2] == 4:
        u8 = u8[..., :3]
    if u8.shape[2] >= 3:  # OpenCV orders colour B, G, R
        u8 = np.ascontiguousarray(u8[..., [2, 1, 0, 3][: u8.shape[2]]])
    params: list[int] = []
    if jpeg:
        comp = str(metadata.get("Compression", ""))
        quality = int(comp.split(":")[1]) if comp.startswith("jpeg:") and \
            comp.split(":")[1].isdigit() else 95
        params = [cv2.IMWRITE_JPEG_QUALITY, quality]
    ok, buf = cv2.imencode(".jpg" if jpeg else ".png", u8, params)
    if not ok:
        raise OutputError(f"cannot encode a {u8.shape[1]}x{u8.shape[0]} {ext} image")
    return buf.tobytes()


def _write_bytes(path: str, data: bytes) -> None:
    """``data`` written to ``path`` atomically; OutputError (one line) when it cannot be."""
    try:
        atomic.write_bytes(path, data)
    except OSError as exc:
        raise OutputError(cannot_write(path, exc.strerror or str(exc))) from exc


def cannot_write(path: str, reason: str) -> str:
    """One line: why ``path`` could not be written, saying so when its disk is full."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        full = os.statvfs(directory).f_bavail == 0
    except (OSError, AttributeError):  # no statvfs on Windows
        full = False
    if full or "No space left" in reason:
        return (f"{path}: cannot write, the disk is full ({directory}); free space or choose "
                "another output folder")
    return f"{path}: cannot write ({first_line(reason)}); check the folder and disk space"


def _atomic_write(path: str, spec: oiio.ImageSpec, pixels: np.ndarray) -> None:
    """``pixels`` written by OpenImageIO under a temporary name beside ``path``, read back
    (a writer that ignores a failed write leaves an empty or cut file) and renamed."""
    try:
        with atomic.replacing(path) as tmp:
            out = oiio.ImageOutput.create(tmp)
            if out is None or not out.open(tmp, spec):
                raise OutputError(cannot_write(path, (library_error(out.geterror) if out
                                                       else "") or library_error(oiio.geterror)))
            ok = out.write_image(pixels)
            ok = out.close() and ok
            if not ok:
                raise OutputError(cannot_write(path, library_error(out.geterror)))
            if os.path.getsize(tmp) == 0 or (path.lower().endswith(".exr") and incomplete(tmp)):
                raise OutputError(cannot_write(path, "the file written is empty or cut"))
    except OSError as exc:
        raise OutputError(cannot_write(path, exc.strerror or str(exc))) from exc
