"""Luminance/chroma EXRs (Y full size, RY and BY subsampled 2x2, as OpenEXR's RgbaOutputFile
writes them with WRITE_YC) read as RGB, the way OpenEXR's RgbaInputFile reconstructs them:
the missing chroma samples filled by its 27-tap filter (rows, then columns), Y/RY/BY to RGB
with the luminance weights of the file's chromaticities (Rec.709 when it has none), then its
saturation fix against the neighbouring rows; every step rounded to half as there.

OpenImageIO refuses subsampled channels, so the header and the raw planes (RY, BY at their
own sampling) come from the OpenEXR package (``OpenEXR.File``: OpenEXR's own decoders, every
compression). Its Python binding before 3.4.14 returned subsampled planes at full size with
stale rows: such a plane is refused, naming the upgrade. RgbaInputFile reads a DECREASING_Y file
bottom-up, but OpenEXR requires a subsampled file's data window to start and end on whole
samples, so every buffered line is the same either way: line order does not change the result.

A layered file (``diffuse.Y``, ``diffuse.RY``, ``diffuse.BY``) gives ``diffuse.R,G,B``; other
full-size channels (``A``, ``Z``) are kept as they are.
"""

from __future__ import annotations

import contextlib
import io
import sys
import threading
from dataclasses import dataclass

import numpy as np
import OpenEXR

from ..errors import InputError
from .exrcheck import incomplete

#: OpenEXR's half-band filter: taps at odd distances 1, 3, ..., 13 from a missing sample
TAPS = np.array([0.627123, -0.186077, 0.087929, -0.043159, 0.019597, -0.007540, 0.002128],
                np.float32)
#: (tap, offset) in the order OpenEXR sums them (float32 sums round differently by order)
ORDER = [(TAPS[abs(d) // 2], d) for d in range(-13, 14, 2)]
REC709 = (0.64, 0.33, 0.30, 0.60, 0.15, 0.06, 0.3127, 0.3290)
# header attributes under the names OpenImageIO gives them
RENAMED = {"owner": "Copyright", "comments": "ImageDescription", "capDate": "DateTime",
           "pixelAspectRatio": "PixelAspectRatio"}
SKIPPED = {"channels", "compression", "dataWindow", "displayWindow", "lineOrder", "preview",
           "chunkCount", "tiles", "type", "name", "version"}
#: header values the binding gives as arrays, kept as (OpenImageIO type, values) like
#: OpenImageIO keeps them: v2f, v3f, v2i, m33f, m44f (doubles, v3i and the rest are dropped)
ARRAYS = {("float32", (2,)): "float[2]", ("float32", (3,)): "float[3]",
          ("int32", (2,)): "int[2]", ("float32", (3, 3)): "matrix33",
          ("float32", (4, 4)): "matrix"}
MAX_PIXELS = 1 << 28  # a window larger than this is a damaged header, not a picture
#: the binding reports a part it could not read on sys.stdout (and drops the part): reads
#: that catch those lines take turns, so two never swap sys.stdout under each other
_PRINTS = threading.Lock()
_FAILED = "Warning: Exception raised reading pixel data for part"


class Subsampled(Exception):
    """OpenImageIO could not open the file because it has subsampled channels."""


class Unsupported(ValueError):
    """A well-formed luminance/chroma file read no further here (multi-part, deep, chroma
    not 2x2, other subsampled channels)."""


class Corrupt(ValueError):
    """OpenEXR could not read the file, or its header contradicts itself (damaged)."""


@dataclass
class Decoded:
    """A luminance/chroma file as RGB: pixels (H, W, C) in the data window and its header."""

    pixels: np.ndarray | None  # None when only the header was read
    channels: tuple[str, ...]
    data: tuple[int, int, int, int]  # x, y, width, height
    display: tuple[int, int, int, int]
    pixel_format: str
    metadata: dict[str, object]


def weights(chroma: tuple[float, ...]) -> np.ndarray:
    """OpenEXR's computeYw: the Y row of Imath's RGBtoXYZ for these primaries (computed in
    float32 as there), summing to 1."""
    rx, ry, gx, gy, bx, by, wx, wy = (np.float32(v) for v in chroma)
    one = np.float32(1)
    if wy == 0:
        raise Corrupt("chromaticities with a white point of y = 0")
    x, z = wx / wy, (one - wx - wy) / wy
    d = rx * (by - gy) + bx * (gy - ry) + gx * (ry - by)
    sr = x * (by - gy) - gx * ((by - one) + by * (x + z)) + bx * ((gy - one) + gy * (x + z))
    sg = x * (ry - by) + rx * ((by - one) + by * (x + z)) - bx * ((ry - one) + ry * (x + z))
    sb = x * (gy - ry) - rx * ((gy - one) + gy * (x + z)) + gx * ((ry - one) + ry * (x + z))
    if d == 0:
        raise Corrupt("degenerate chromaticities")
    yw = np.array([sr / d * ry, sg / d * gy, sb / d * by], np.float32)
    return (yw / (yw[0] + yw[1] + yw[2])).astype(np.float32)


def _half(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float16).astype(np.float32)


def _columns(c: np.ndarray, width: int) -> np.ndarray:
    """Chroma rows (n, ceil(width/2)) at full width: samples at even columns, odd columns
    from the filter over the samples around them (edges repeat the outer samples)."""
    out = np.empty((c.shape[0], width), np.float32)
    out[:, 0::2] = c[:, : (width + 1) // 2]
    odd = np.arange(1, width, 2)
    if odd.size:
        last = c.shape[1] - 1
        acc = np.zeros((c.shape[0], odd.size), np.float32)
        for tap, d in ORDER:
            acc += tap * c[:, np.clip((odd + d) // 2, 0, last)]
        out[:, 1::2] = _half(acc)
    return out


def _chroma_rows(c: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Full-width chroma of image rows ``rows`` (any, outside the image too): even rows their
    own samples, odd rows the filter over the even rows around them; rows past the edges
    repeat the outer chroma rows (as OpenEXR's reader clamps them)."""
    last = c.shape[0] - 1
    out = np.empty((rows.size, c.shape[1]), np.float32)
    even = rows % 2 == 0
    out[even] = c[np.clip(rows[even] // 2, 0, last)]
    odd = rows[~even]
    acc = np.zeros((odd.size, c.shape[1]), np.float32)
    for tap, d in ORDER:
        acc += tap * c[np.clip((odd + d) // 2, 0, last)]
    out[~even] = _half(acc)
    return out


def _saturation(rgb: np.ndarray) -> np.ndarray:
    hi, lo = rgb.max(axis=-1), rgb.min(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(hi > 0, 1 - lo / hi, 0.0).astype(np.float32)


def _fix_saturation(rgb: np.ndarray, yw: np.ndarray) -> np.ndarray:
    """OpenEXR's fixSaturation: rows 1..-2 of ``rgb`` (the image with one row above and
    below), pixels more saturated than their four diagonal neighbours toned down (luminance
    kept): chroma filtering overshoots next to sharp colour edges."""
    sat = _saturation(rgb)
    pad = np.pad(sat, ((0, 0), (1, 1)), mode="edge")
    mean = np.minimum(1.0, 0.25 * (pad[:-2, :-2] + pad[:-2, 2:] + pad[2:, :-2] + pad[2:, 2:]))
    mid, s = rgb[1:-1], sat[1:-1]
    s_max = np.minimum(1.0, 1 - (1 - mean) * 0.25)
    fix = (s > mean) & (s > s_max)
    if not fix.any():
        return mid
    px, f = mid[fix], (s_max[fix] / s[fix])[:, None]
    hi = px.max(axis=-1, keepdims=True)
    out = _half(np.maximum(hi - (hi - px) * f, 0.0))
    y_in, y_out = px @ yw, out @ yw
    scale = np.where(y_out > 0, y_in / np.where(y_out > 0, y_out, 1.0), 1.0)[:, None]
    result = mid.copy()
    result[fix] = _half(out * scale)
    return result


def to_rgb(y: np.ndarray, ry: np.ndarray, by: np.ndarray, yw: np.ndarray) -> np.ndarray:
    """RGB (H, W, 3) from full-size Y and 2x2-subsampled RY, BY (whose first sample is at the
    data window's origin), as RgbaInputFile reads them."""
    h, w = y.shape
    rows = np.arange(-1, h + 1)  # one row beyond each edge for the saturation fix
    cr = _chroma_rows(_columns(ry, w), rows)
    cb = _chroma_rows(_columns(by, w), rows)
    lum = y[np.clip(np.where(rows >= h, h - 2, rows), 0, h - 1)]  # OpenEXR reads h-2 there
    r, b = (cr + 1) * lum, (cb + 1) * lum
    g = (lum - r * yw[0] - b * yw[2]) / yw[1]
    grey = (cr == 0) & (cb == 0)
    rgb = _half(np.stack([np.where(grey, lum, r), np.where(grey, lum, g),
                          np.where(grey, lum, b)], -1))
    return _fix_saturation(rgb, yw)


def _value(value: object) -> object | None:
    """A header value as ``imageio`` keeps metadata (an (OpenImageIO type, values) pair for
    tuples), or None for kinds that are not kept."""
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return value
    if isinstance(value, tuple) and len(value) == 8 and all(  # chromaticities
            isinstance(v, float) for v in value):
        return "float[8]", value
    if isinstance(value, np.ndarray):
        if value.dtype == np.float64 and value.shape == (1,):  # a double
            return float(value[0])
        kind = ARRAYS.get((str(value.dtype), value.shape))
        if kind:
            return kind, tuple(value.ravel().tolist())
    return None


def _metadata(header: dict) -> dict[str, object]:
    out: dict[str, object] = {}
    for name, raw in header.items():
        value = None if name in SKIPPED else _value(raw)
        if value is not None:
            out[RENAMED.get(name, name)] = value
    return out


def _layout(sampling: dict[str, tuple[int, int]]
            ) -> tuple[list[str], dict[str, tuple[str, str, str]]]:
    """The channels as read (R, G, B for each Y/RY/BY triple, the rest as they are) and the
    triples by prefix; ``sampling``: each channel's (x, y) sampling, in file order."""
    names = list(sampling)
    triples: dict[str, tuple[str, str, str]] = {}
    for n in names:
        if n == "Y" or n.endswith(".Y"):
            pre = n[:-1]
            if pre + "RY" in names and pre + "BY" in names:
                triples[pre] = (n, pre + "RY", pre + "BY")
    chroma = {c for t in triples.values() for c in t[1:]}
    for c in sorted(chroma):
        if sampling[c] != (2, 2):
            raise Unsupported("chroma channel {} sampled {}x{}".format(c, *sampling[c]))
    other = {n for n, s in sampling.items() if s != (1, 1)} - chroma
    if other:
        raise Unsupported(f"subsampled channel(s) {', '.join(sorted(other))} that "
                          "are not RY/BY chroma")
    out: list[str] = []
    for pre in triples:
        out += [pre + "R", pre + "G", pre + "B"]
    out += [n for n in names if n not in chroma and not any(n == t[0] for t in triples.values())]
    return out, triples


def _reason(text: str, path: str) -> str:
    """OpenEXR's message on one line, without the path (the caller names the file)."""
    text = text.strip().splitlines()[0] if text.strip() else "unknown error"
    return text.replace(f" '{path}'", "").replace(f" in {path}", "").replace(path, "the file")


def _header(path: str) -> tuple[dict, dict[str, tuple[int, int]]]:
    """The file's header and its channels' (x, y) sampling; the file is refused here when it
    is not one scan-line part or its windows are out of reason."""
    try:
        with OpenEXR.File(path, header_only=True) as exr:
            parts = [dict(p.header) for p in exr.parts]  # emptied when the file closes
        sampling = {c.name: (c.xSampling, c.ySampling) for p in parts[:1]
                    for c in p.get("channels", [])}
    except Exception as exc:  # RuntimeError; UnicodeDecodeError (a name that is not UTF-8)
        raise Corrupt(f"damaged EXR header: {_reason(str(exc), path)}") from None
    if len(parts) != 1:
        raise Unsupported(f"a {len(parts)}-part luminance/chroma file")
    head = parts[0]
    if head.get("type", OpenEXR.scanlineimage) != OpenEXR.scanlineimage:
        raise Unsupported(f"{str(head['type']).split('.')[-1]} luminance/chroma file")
    for name in ("dataWindow", "displayWindow"):
        (x0, y0), (x1, y1) = head[name]
        width, height = int(x1) - int(x0) + 1, int(y1) - int(y0) + 1
        if width < 1 or height < 1 or width * height > MAX_PIXELS or not sampling:
            raise Corrupt(f"{name} {width}x{height} with {len(sampling)} channel(s)")
    return head, sampling


def _planes(path: str) -> dict[str, np.ndarray]:
    """Every channel's samples as OpenEXR decodes them (float32, at its own sampling). What
    the binding prints of a part it could not read becomes ``Corrupt``; anything else
    printed meanwhile (another thread's output) is passed on after it."""
    printed, failed = io.StringIO(), None
    with _PRINTS, contextlib.redirect_stdout(printed):
        try:
            with OpenEXR.File(path, separate_channels=True) as exr:
                planes = {n: c.pixels for n, c in exr.channels().items()} if exr.parts else {}
        except Exception as exc:
            failed = str(exc)
    lines = printed.getvalue().splitlines(keepends=True)
    said = [ln.split(" - ", 1)[-1] for ln in lines if ln.startswith(_FAILED)]
    others = "".join(ln for ln in lines if not ln.startswith(_FAILED))
    if others:
        sys.stdout.write(others)
    if said or failed is not None or not planes:
        raise Corrupt(incomplete(path) or _reason(said[0] if said else failed or "", path))
    return {n: p.astype(np.float32) for n, p in planes.items()}


def decode(path: str, pixels: bool = True) -> Decoded:
    """The file as RGB (``pixels``) or its header only. Raises ``Unsupported`` or
    ``Corrupt`` (one line, no path)."""
    head, sampling = _header(path)
    names, triples = _layout(sampling)
    meta = _metadata(head)
    chroma = meta.get("chromaticities")
    yw = weights(chroma[1] if isinstance(chroma, tuple) and len(chroma[1]) == 8  # type: ignore
                 else REC709)
    (x0, y0), (x1, y1) = (tuple(int(v) for v in corner) for corner in head["dataWindow"])
    (dx0, dy0), (dx1, dy1) = (tuple(int(v) for v in corner) for corner in head["displayWindow"])
    out = None
    if pixels:
        planes = _planes(path)
        for n, (xs, ys) in sampling.items():
            want = (-(-(y1 - y0 + 1) // ys), -(-(x1 - x0 + 1) // xs))
            if planes[n].shape != want:
                raise InputError(
                    f"{path}: OpenEXR {OpenEXR.__version__} read channel {n} as "
                    f"{planes[n].shape[0]}x{planes[n].shape[1]} samples, not {want[0]}x{want[1]}"
                    "; upgrade it: pip install 'OpenEXR>=3.4.14,<4'")
        layers: dict[str, np.ndarray] = {}
        for pre, (yn, rn, bn) in triples.items():
            with np.errstate(all="ignore"):  # NaN/Inf pass through, as OpenEXR reads them
                rgb = to_rgb(planes[yn], planes[rn], planes[bn], yw)
            for i, c in enumerate("RGB"):
                layers[pre + c] = rgb[..., i]
        out = np.stack([layers[n] if n in layers else planes[n] for n in names], -1)
    # half: what RgbaInputFile gives (the binding's header does not tell the channels' types)
    return Decoded(out, tuple(names), (x0, y0, x1 - x0 + 1, y1 - y0 + 1),
                   (dx0, dy0, dx1 - dx0 + 1, dy1 - dy0 + 1), "half", meta)


__all__ = ["Corrupt", "Decoded", "Subsampled", "Unsupported", "decode", "to_rgb", "weights"]
