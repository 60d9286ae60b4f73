"""Image files through OpenImageIO: read into the display window, select channels by name,
views and parts, damaged-file checks (writing: ``imagewrite``).

Pixels are float32 arrays of shape (height, width, channels) covering the *display* window;
data-window pixels outside it are cropped, display pixels outside the data window are zero.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import OpenImageIO as oiio

from ..errors import InputError

EXR_MAGIC = b"\x76\x2f\x31\x01"
HALF_MAX = 65504.0
# Attributes that describe the file's structure, not the picture: never carried to outputs.
_STRUCTURAL_PREFIXES = ("oiio:", "openexr:", "exr:", "tiff:", "jpeg:", "png:", "ICCProfile")
_STRUCTURAL = {"compression", "planarconfig", "Orientation", "XResolution", "YResolution",
               "ResolutionUnit", "chunkCount", "dataWindow", "displayWindow", "channels",
               "version", "type", "name", "tiles", "lineOrder"}


@dataclass(frozen=True)
class Attr:
    """A metadata value with its OpenImageIO type (``float[2]``, ``rational``, ...)."""

    type: str
    value: object


@dataclass(frozen=True)
class Window:
    """A pixel rectangle: origin (x, y) and size (width, height)."""

    x: int
    y: int
    width: int
    height: int

    def __str__(self) -> str:
        return f"{self.width}x{self.height}+{self.x}+{self.y}"


@dataclass(frozen=True)
class Part:
    """One part (OpenImageIO subimage) of a file: its index, name, view and channels."""

    index: int
    name: str
    view: str
    channels: tuple[str, ...]


@dataclass
class ImageInfo:
    """What a file holds, without its pixels. For a stereo/multi-view file ``views`` lists the
    views (the first is the hero), ``view`` is the one this info describes and ``channels``
    are that view's, named without the view (``R``, ``A``, ``diffuse.R``)."""

    path: str
    display: Window
    data: Window
    channels: tuple[str, ...]
    pixel_format: str
    pixel_aspect: float = 1.0
    file_format: str = ""
    metadata: dict[str, object] = field(default_factory=dict)
    deep: bool = False
    views: tuple[str, ...] = ()
    view: str = ""
    parts: tuple[Part, ...] = ()
    #: channel name as used here -> name in the file (differs for a view's channels)
    file_channels: dict[str, str] = field(default_factory=dict)
    subimage: int = 0

    def layout(self) -> dict[str, str]:
        """Views, parts and layers, for ``info`` (empty values when there are none)."""
        plain = [split_view(c, self.views)[1] for p in self.parts for c in p.channels]
        layers = sorted({c.rsplit(".", 1)[0] for c in plain if "." in c})
        return {
            "views": ", ".join(self.views) + (f" (hero: {self.views[0]})" if self.views else ""),
            "parts": "; ".join(f"{p.index}: {p.name or '-'} view {p.view or '-'} "
                               f"({','.join(p.channels)})" for p in self.parts)
            if len(self.parts) > 1 else "",
            "layers": ", ".join(layers),
        }

    def flags(self) -> dict[str, bool]:
        """What a compositor should know before using this file: message -> whether the
        frame is unusable as it is (empty when nothing)."""
        out: dict[str, bool] = {}
        if self.deep:
            out["deep image: flatten it (Nuke DeepToImage) before using it"] = True
        d, w = self.data, self.display
        x0, y0 = max(d.x, w.x), max(d.y, w.y)
        x1, y1 = min(d.x + d.width, w.x + w.width), min(d.y + d.height, w.y + w.height)
        if x1 <= x0 or y1 <= y0:
            out[f"data window {d} entirely outside the display window {w}: reads as black"] = True
        elif (x0, y0, x1, y1) != (d.x, d.y, d.x + d.width, d.y + d.height):
            out[f"data window {d} extends outside the display window {w} (overscan, cropped "
                "on read)"] = False
        why = incomplete(self.path) if os.path.isfile(self.path) else None
        if why:
            out[why] = True
        return out


@dataclass
class Image:
    """Pixels in the display window plus the file's description."""

    pixels: np.ndarray  # (H, W, C) float32
    info: ImageInfo
    nonfinite: int = 0  # NaN/Inf values replaced on read

    def channel(self, name: str) -> np.ndarray:
        return self.pixels[..., self.info.channels.index(name)]

    def channels(self, names: Sequence[str]) -> np.ndarray:
        """The named channels; a view when they are adjacent and in order (no copy)."""
        idx = [self.info.channels.index(n) for n in names]
        if idx == list(range(idx[0], idx[0] + len(idx))):
            return self.pixels[..., idx[0] : idx[0] + len(idx)]
        return self.pixels[..., idx]


def first_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[0][:200] if lines else "unknown error"


def library_error(get: Callable[[], str]) -> str:
    """The error text OpenImageIO holds (``oiio.geterror``, ``ImageInput.geterror`` ...),
    cleared. A damaged file puts bytes of any kind into it: those that are not UTF-8 are
    replaced rather than raised."""
    try:
        return get() or ""
    except UnicodeDecodeError as exc:
        raw = exc.object
        return bytes(raw).decode("utf-8", "replace") if isinstance(
            raw, (bytes, bytearray, memoryview)) else "error text not readable"


def _open(path: str) -> oiio.ImageInput:
    if not os.path.exists(path):
        raise InputError(f"{path}: file not found; check the path and frame number")
    if not os.path.isfile(path):
        raise InputError(f"{path}: not a file")
    inp = oiio.ImageInput.open(path)
    if inp is None:
        reason = first_line(library_error(oiio.geterror))
        with open(path, "rb") as fh:
            magic = fh.read(4)
        if "Subsampled channels are not supported" in reason:
            raise InputError(
                f"{path}: luminance/chroma EXR (subsampled RY/BY channels), which OpenImageIO "
                "cannot decode; the file is not damaged: re-save it as RGB (e.g. Nuke Read + "
                "Write, or OpenEXR's RgbaInputFile) and use that")
        if magic == EXR_MAGIC:
            reason = "damaged EXR header"
        elif "could not find a format reader" in reason:
            reason = "not an image format OpenImageIO can read"
        raise InputError(f"{path}: cannot read ({reason}); re-render or replace this file")
    return inp


def _opened_with_error(inp: oiio.ImageInput) -> str:
    """What opening the file reported although it opened (an inconsistent EXR header, such
    as a wrong chunk count), cleared so later checks see only their own errors."""
    return library_error(inp.geterror)


#: scanlines per chunk by EXR compression id (none, rle, zips, zip, piz, pxr24, b44, b44a,
#: dwaa, dwab)
_LINES_PER_CHUNK = (1, 1, 1, 16, 32, 16, 32, 32, 32, 256)


def incomplete(path: str) -> str | None:
    """Why the file at ``path`` is not a whole image (0 bytes; for a single-part EXR, a chunk
    table or last chunk that runs past the end of the file, or holes in its chunk table, as
    an interrupted render leaves), or None when nothing is seen wrong. Reads the header and
    the chunk table only, not the pixels."""
    size = os.path.getsize(path)
    if size == 0:
        return "0-byte file (an interrupted render or copy?)"
    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
        if head[:4] != EXR_MAGIC or len(head) < 9:
            return None
        flags = struct.unpack("<i", head[4:8])[0]
        if flags & 0x1800:  # multi-part or deep: not checked here
            return None
        tiled, pos, attrs = bool(flags & 0x200), 8, {}
        try:
            while head[pos] != 0:
                name_end = head.index(b"\0", pos)
                type_end = head.index(b"\0", name_end + 1)
                n = struct.unpack("<i", head[type_end + 1 : type_end + 5])[0]
                attrs[head[pos:name_end]] = head[type_end + 5 : type_end + 5 + n]
                pos = type_end + 5 + n
            pos += 1
            if b"chunkCount" in attrs:
                count = struct.unpack("<i", attrs[b"chunkCount"])[0]
            elif tiled:
                return None
            else:
                _, y0, _, y1 = struct.unpack("<4i", attrs[b"dataWindow"])
                count = -(-(y1 - y0 + 1) // _LINES_PER_CHUNK[attrs[b"compression"][0]])
        except (IndexError, ValueError, KeyError, struct.error):
            return None  # OpenImageIO judges headers it cannot parse
        if count <= 0:
            return None
        table_end = pos + 8 * count
        if table_end > size:
            return f"truncated ({size} bytes; its chunk table alone needs {table_end})"
        fh.seek(pos)
        offsets = struct.unpack(f"<{count}Q", fh.read(8 * count))
        if any(o < table_end for o in offsets):
            return "incomplete (holes in its chunk table: the render did not finish)"
        last = max(offsets)
        chunk_head = 20 if tiled else 8  # tile x, y, level x, y + size; or y + size
        if last + chunk_head > size:
            return f"truncated ({size} bytes; its last chunk starts at {last})"
        fh.seek(last)
        raw = fh.read(chunk_head)
        if len(raw) < chunk_head:
            return f"truncated ({size} bytes; its last chunk starts at {last})"
        end = last + chunk_head + struct.unpack("<i", raw[-4:])[0]
        if end > size:
            return f"truncated ({size} bytes; its last chunk ends at {end})"
    return None


def same_size(info: ImageInfo, ref: ImageInfo, what: str) -> None:
    """``info`` (a plate frame, a matte) has the reference frame's display window size."""
    if (info.display.width, info.display.height) != (ref.display.width, ref.display.height):
        raise InputError(
            f"{info.path}: {what} display window {info.display.width}x{info.display.height} "
            f"differs from the plate's {ref.display.width}x{ref.display.height} ({ref.path}); "
            "all frames must share one size")


def check_whole(path: str) -> None:
    """A one-line InputError when ``path`` is missing, empty or visibly truncated."""
    if not os.path.isfile(path):
        raise InputError(f"{path}: file not found; check the path and frame number")
    why = incomplete(path)
    if why:
        raise InputError(f"{path}: {why}; re-render or replace this frame")


def _metadata(spec: oiio.ImageSpec) -> dict[str, object]:
    meta: dict[str, object] = {}
    for attr in spec.extra_attribs:
        name = attr.name
        if name in _STRUCTURAL or name.startswith(_STRUCTURAL_PREFIXES):
            continue
        value = attr.value
        if isinstance(value, (str, int, float)):
            meta[name] = value
        elif isinstance(value, tuple) and all(isinstance(v, (int, float)) for v in value):
            meta[name] = Attr(str(attr.type), value)
    return meta


def _parts(inp: oiio.ImageInput) -> tuple[Part, ...]:
    parts, i = [], 0
    while inp.seek_subimage(i, 0):
        spec = inp.spec()
        parts.append(Part(i, str(spec.getattribute("name") or ""),
                          str(spec.getattribute("view") or ""), tuple(spec.channelnames)))
        i += 1
    library_error(inp.geterror)  # "could not seek to subimage N": the end, not an error
    inp.seek_subimage(0, 0)
    return tuple(parts)


def view_channels(channels: Sequence[str], views: Sequence[str], view: str) -> dict[str, str]:
    """The channels of ``view`` in a single-part multi-view file, as {name without the view:
    name in the file}. OpenEXR's convention: the view is the last-but-one component
    (``right.R``, ``diffuse.right.R``); channels without one belong to the hero (first) view."""
    out: dict[str, str] = {}
    for name in channels:
        own, plain = split_view(name, views)
        if (own or views[0]) == view and plain not in out:
            out[plain] = name
    return out


def split_view(name: str, views: Sequence[str]) -> tuple[str, str]:
    """(view or "" for the hero's unprefixed channels, the name without the view)."""
    comps = name.split(".")
    if len(comps) >= 2 and comps[-2] in views:
        return comps[-2], ".".join(comps[:-2] + comps[-1:])
    return "", name


def _info(path: str, inp: oiio.ImageInput, view: str | None = None) -> ImageInfo:
    """The file's description; for a multi-view file, of ``view`` (default: the hero)."""
    parts = _parts(inp)
    spec = inp.spec()
    multi = spec.getattribute("multiView")
    views = tuple(multi) if isinstance(multi, tuple) and multi else tuple(dict.fromkeys(
        p.view for p in parts if p.view))
    index, chosen, names = 0, "", {c: c for c in spec.channelnames}
    if views:
        chosen = view or views[0]
        if chosen not in views:
            raise InputError(f"{path}: no view {chosen!r}; it has views {', '.join(views)}; "
                             "set plate.view to one of them")
        if len(parts) > 1 and any(p.view for p in parts):
            index = next(p.index for p in parts if p.view == chosen or (
                not p.view and chosen == views[0]))
            inp.seek_subimage(index, 0)
            spec = inp.spec()
            names = {c: c for c in spec.channelnames}
        else:
            names = view_channels(spec.channelnames, views, chosen)
    elif view:
        raise InputError(f"{path}: has no views (not a stereo/multi-view file); remove "
                         f"plate.view {view!r}")
    return ImageInfo(
        path=path,
        display=Window(spec.full_x, spec.full_y, spec.full_width, spec.full_height),
        data=Window(spec.x, spec.y, spec.width, spec.height),
        channels=tuple(names),
        pixel_format=str(spec.format),
        pixel_aspect=float(spec.get_float_attribute("PixelAspectRatio", 1.0)),
        file_format=inp.format_name(),
        metadata=_metadata(spec),
        deep=bool(spec.deep),
        views=views,
        view=chosen,
        parts=parts,
        file_channels=names,
        subimage=index,
    )


def probe(path: str, view: str | None = None) -> ImageInfo:
    """Header information of an image file (of ``view`` in a multi-view file)."""
    inp = _open(path)
    try:
        _opened_with_error(inp)  # a header problem shows when the pixels are read
        return _info(path, inp, view)
    finally:
        inp.close()


def read(path: str, channels: Sequence[str] | None = None, clean: bool = True,
         view: str | None = None) -> Image:
    """Read ``path`` (all channels, or those named) as float32 in the display window; in a
    stereo/multi-view file, only the channels of ``view`` (default: the hero view), named
    without the view, from whichever part holds them.

    ``clean``: NaN becomes 0 and +/-Inf becomes the largest half value, so no NaN reaches an
    output; otherwise non-finite values are kept (the caller repairs them). Either way
    ``Image.nonfinite`` counts them.
    """
    inp = _open(path)
    opened = _opened_with_error(inp)
    try:
        info = _info(path, inp, view)
        spec = inp.spec()
        if spec.deep:
            raise InputError(f"{path}: deep image; flatten it (Nuke DeepToImage) before using it")
        if channels is not None:
            missing = [c for c in channels if c not in info.channels]
            if missing:
                raise InputError(
                    f"{path}: no channel(s) {', '.join(missing)}; it has "
                    f"{', '.join(info.channels)}; choose channels that exist"
                )
        data = inp.read_image(info.subimage, 0, 0, spec.nchannels, "float")
        err = opened or library_error(inp.geterror)
        if data is None or err:
            raise InputError(
                f"{path}: cannot read pixels ({first_line(err or 'no data')}); the file is "
                "damaged or truncated, re-render or replace it"
            )
    finally:
        inp.close()
    data = np.asarray(data, dtype=np.float32).reshape(spec.height, spec.width, spec.nchannels)
    in_file = list(spec.channelnames)
    wanted = list(channels) if channels is not None else list(info.channels)
    if wanted != in_file:
        data = data[..., [in_file.index(info.file_channels[c]) for c in wanted]]
        info.channels = tuple(wanted)
    pixels = _to_display(data, info.data, info.display)
    bad = ~np.isfinite(pixels)
    count = int(bad.sum())
    if count and clean:
        np.nan_to_num(pixels, copy=False, nan=0.0, posinf=HALF_MAX, neginf=-HALF_MAX)
    return Image(pixels, info, count)


def _to_display(data: np.ndarray, dw: Window, disp: Window) -> np.ndarray:
    if dw == disp:
        return np.ascontiguousarray(data)
    out = np.zeros((disp.height, disp.width, data.shape[2]), np.float32)
    x0, y0 = max(dw.x, disp.x), max(dw.y, disp.y)
    x1 = min(dw.x + dw.width, disp.x + disp.width)
    y1 = min(dw.y + dw.height, disp.y + disp.height)
    if x1 > x0 and y1 > y0:
        out[y0 - disp.y : y1 - disp.y, x0 - disp.x : x1 - disp.x] = data[
            y0 - dw.y : y1 - dw.y, x0 - dw.x : x1 - dw.x
        ]
    return out


def rgb_names(channels: Sequence[str], path: str, layer: str = "") -> list[str]:
    """Names of the colour channels of ``layer``: R,G,B, or Y for a luminance image."""
    prefix = f"{layer}." if layer else ""
    for names in (["R", "G", "B"], ["r", "g", "b"], ["red", "green", "blue"]):
        full = [prefix + n for n in names]
        if all(n in channels for n in full):
            return full
    for y in ("Y", "y"):
        if prefix + y in channels:
            return [prefix + y] * 3
    raise InputError(
        f"{path}: no colour channels {prefix}R,{prefix}G,{prefix}B (or {prefix}Y); it has "
        f"{', '.join(channels)}; pick a layer that holds colour"
    )
