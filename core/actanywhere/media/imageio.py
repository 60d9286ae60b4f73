"""Image files through OpenImageIO: read into the display window, select channels by name,
views and parts, damaged-file checks (``exrcheck``; writing: ``imagewrite``). Luminance/chroma
EXRs, which OpenImageIO refuses, are read as RGB by ``lumachroma``.

Pixels are float32 arrays of shape (height, width, channels) covering the *display* window;
data-window pixels outside it are cropped, display pixels outside the data window are zero.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import OpenImageIO as oiio

from ..errors import InputError
from . import lumachroma
from .exrcheck import EXR_MAGIC, incomplete
from .exrcheck import check_whole as check_whole  # re-exported: shot.plate asks it

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
    subimage: int = 0  # the part this info describes (windows, metadata): the colour's
    #: channel name as used here -> the part holding it (a view's parts are merged; a name
    #: two parts share is ``<part name>.<channel>`` in the later one)
    channel_parts: dict[str, int] = field(default_factory=dict)

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
            raise lumachroma.Subsampled(path)
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


def same_size(info: ImageInfo, ref: ImageInfo, what: str) -> None:
    """``info`` (a plate frame, a matte) has the reference frame's display window size."""
    if (info.display.width, info.display.height) != (ref.display.width, ref.display.height):
        raise InputError(
            f"{info.path}: {what} display window {info.display.width}x{info.display.height} "
            f"differs from the plate's {ref.display.width}x{ref.display.height} ({ref.path}); "
            "all frames must share one size")


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


def _merge(group: Sequence[Part]) -> tuple[int, dict[str, str], dict[str, int]]:
    """The parts of one view (or of a file without views) as one image: the part holding the
    colour (R or Y, else the first), {name here: name in the file} with that part's channels
    first, {name here: part}; a name an earlier part has is ``<part>.<channel>`` in a later
    one."""
    main = next((p for p in group if {"R", "Y"} & set(p.channels)), group[0])
    names: dict[str, str] = {}
    where: dict[str, int] = {}
    for p in [main, *(p for p in group if p is not main)]:
        for c in p.channels:
            key = c if c not in names else f"{p.name}.{c}"
            if key not in names:
                names[key], where[key] = c, p.index
    return main.index, names, where


def _info(path: str, inp: oiio.ImageInput, view: str | None = None) -> ImageInfo:
    """The file's description; for a multi-view file, of ``view`` (default: the hero): its
    channels from every part of that view (of a multi-part file without views: every part)."""
    parts = _parts(inp)
    spec = inp.spec()
    multi = spec.getattribute("multiView")
    views = tuple(multi) if isinstance(multi, tuple) and multi else tuple(dict.fromkeys(
        p.view for p in parts if p.view))
    chosen, index, names = "", 0, {c: c for c in spec.channelnames}
    group = list(parts) if inp.format_name() == "openexr" else parts[:1]  # not TIFF pages
    if views:
        chosen = view or views[0]
        if chosen not in views:
            raise InputError(f"{path}: no view {chosen!r}; it has views {', '.join(views)}; "
                             "set plate.view to one of them")
        if len(parts) > 1 and any(p.view for p in parts):
            group = [p for p in parts if p.view == chosen or (not p.view and chosen == views[0])]
        else:
            names, group = view_channels(spec.channelnames, views, chosen), []
    elif view:
        raise InputError(f"{path}: has no views (not a stereo/multi-view file); remove "
                         f"plate.view {view!r}")
    if len(group) > 1:
        index, names, where = _merge(group)
    else:
        if group:
            index, names = group[0].index, {c: c for c in group[0].channels}
        where = dict.fromkeys(names, index)
    inp.seek_subimage(index, 0)
    spec = inp.spec()
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
        channel_parts=where,
    )


def part_layer(info: ImageInfo, part: int) -> str | None:
    """The layer to ask for the colour of part ``part`` in ``info`` (of that part's view), or
    None when the part holds no R or Y channel."""
    for name, at in info.channel_parts.items():
        if at == part and info.file_channels[name].rsplit(".", 1)[-1] in ("R", "Y"):
            return name.rsplit(".", 1)[0] if "." in name else ""
    return None


def _luma_chroma(path: str, view: str | None, pixels: bool) -> tuple[ImageInfo, np.ndarray]:
    """A luminance/chroma EXR (``lumachroma``): its info and RGB pixels in the data window."""
    if view:
        raise InputError(f"{path}: has no views (not a stereo/multi-view file); remove "
                         f"plate.view {view!r}")
    try:
        got = lumachroma.decode(path, pixels)
    except lumachroma.Unsupported as exc:
        raise InputError(f"{path}: luminance/chroma EXR ({exc}), which cannot be read here; "
                         "re-save it as RGB (e.g. Nuke Read + Write) and use that") from None
    except (lumachroma.Corrupt, OSError) as exc:
        raise InputError(f"{path}: cannot read pixels ({first_line(str(exc))}); the file is "
                         "damaged or truncated, re-render or replace it") from None
    names = {c: c for c in got.channels}
    info = ImageInfo(path=path, display=Window(*got.display), data=Window(*got.data),
                     channels=got.channels, pixel_format=got.pixel_format,
                     pixel_aspect=float(got.metadata.get("PixelAspectRatio", 1.0)),  # type: ignore
                     file_format="openexr", metadata={
                         k: Attr(*v) if isinstance(v, tuple) else v
                         for k, v in got.metadata.items()},
                     parts=(Part(0, "", "", got.channels),), file_channels=names,
                     channel_parts=dict.fromkeys(names, 0))
    return info, got.pixels if got.pixels is not None else np.zeros((0, 0, 0), np.float32)


def probe(path: str, view: str | None = None) -> ImageInfo:
    """Header information of an image file (of ``view`` in a multi-view file)."""
    try:
        inp = _open(path)
    except lumachroma.Subsampled:
        return _luma_chroma(path, view, pixels=False)[0]
    try:
        _opened_with_error(inp)  # a header problem shows when the pixels are read
        return _info(path, inp, view)
    finally:
        inp.close()


def _part(path: str, inp: oiio.ImageInput, index: int, opened: str
          ) -> tuple[np.ndarray, list[str], Window]:
    """One part's pixels (its data window), channel names and data window."""
    inp.seek_subimage(index, 0)
    spec = inp.spec()
    if spec.deep:
        raise InputError(f"{path}: deep image; flatten it (Nuke DeepToImage) before using it")
    data = inp.read_image(index, 0, 0, spec.nchannels, "float")
    err = opened or library_error(inp.geterror)
    if data is None or err:
        raise InputError(
            f"{path}: cannot read pixels ({first_line(err or 'no data')}); the file is "
            "damaged or truncated, re-render or replace it"
        )
    data = np.asarray(data, dtype=np.float32).reshape(spec.height, spec.width, spec.nchannels)
    return data, list(spec.channelnames), Window(spec.x, spec.y, spec.width, spec.height)


def _wanted(info: ImageInfo, channels: Sequence[str] | None) -> list[str]:
    wanted = list(channels) if channels is not None else list(info.channels)
    missing = [c for c in wanted if c not in info.channels]
    if missing:
        raise InputError(f"{info.path}: no channel(s) {', '.join(missing)}; it has "
                         f"{', '.join(info.channels)}; choose channels that exist")
    return wanted


def read(path: str, channels: Sequence[str] | None = None, clean: bool = True,
         view: str | None = None) -> Image:
    """Read ``path`` (all channels, or those named) as float32 in the display window; in a
    stereo/multi-view file, only the channels of ``view`` (default: the hero view), named
    without the view, from whichever part holds them.

    ``clean``: NaN becomes 0 and +/-Inf becomes the largest half value, so no NaN reaches an
    output; otherwise non-finite values are kept (the caller repairs them). Either way
    ``Image.nonfinite`` counts them.
    """
    try:
        inp = _open(path)
    except lumachroma.Subsampled:
        info, data = _luma_chroma(path, view, pixels=True)
        wanted = _wanted(info, channels)
        read_parts = {0: (data, list(info.channels), info.data)}
    else:
        opened = _opened_with_error(inp)
        try:
            info = _info(path, inp, view)
            wanted = _wanted(info, channels)
            read_parts = {i: _part(path, inp, i, opened)
                          for i in dict.fromkeys(info.channel_parts[c] for c in wanted)}
        finally:
            inp.close()
    layers = []
    for i, (data, in_file, window) in read_parts.items():
        mine = [c for c in wanted if info.channel_parts[c] == i]
        if [info.file_channels[c] for c in mine] != in_file:
            data = data[..., [in_file.index(info.file_channels[c]) for c in mine]]
        layers.append((mine, _to_display(data, window, info.display)))
    if len(layers) == 1 and layers[0][0] == wanted:
        pixels = layers[0][1]
    else:
        found = {c: (px, k) for names, px in layers for k, c in enumerate(names)}
        pixels = np.stack([found[c][0][..., found[c][1]] for c in wanted], -1)
    info.channels = tuple(wanted)
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
