"""A shot planned before its first pixel is read: inputs opened and checked, the output
sequence planned and checked. ``generate`` (job.py) and ``segment`` (segment.py) both start
here, so both refuse the same bad inputs with the same one-line errors."""

from __future__ import annotations

import contextlib
import copy
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np
import OpenImageIO as oiio

from ..api import atomic
from ..api.patterns import frames_on_disk
from ..engines.base import over
from ..errors import InputError, OutputError
from ..matte.shot import ShotMattes, check, files
from ..media import frames, imageio, raster
from ..media.color import ColorContext
from ..media.imageio import Window
from ..motion.backdrop import Backdrop
from ..progress import ProgressEvent, Reporter
from ..spec import ColorSpec, MatteSpec, PlateSpec, ShotSpec
from .plate import Plate


@dataclass
class Inputs:
    """The plate and its mattes, opened and checked."""

    color: ColorContext
    plate: Plate
    matte_files: dict[int, str]
    mattes: ShotMattes
    key_mattes: list[str] = field(default_factory=list)  # painted mattes of key frames

    def real_paths(self) -> set[str]:
        """Every input file, as a real path (an output must not be one of them)."""
        paths = {os.path.realpath(s.path) for s in self.plate.sources if s.path}
        return paths | {os.path.realpath(p) for p in [*self.matte_files.values(),
                                                        *self.key_mattes]}


def spec_inputs(spec: ShotSpec) -> set[str]:
    """Every file ``spec`` reads that is on disk now, as real paths: each file of the plate's
    and the matte's patterns (whatever their range), the painted key mattes, the background
    and a motion file. Nothing is opened."""
    patterns = [spec.plate.path, spec.matte.path or ""]
    single = [spec.background.path, spec.motion.path or "",
              *(k.matte or "" for k in spec.matte.keys)]
    found = [p for pattern in patterns if pattern
             for _, p in frames_on_disk(frames.template(pattern))]
    return {os.path.realpath(p) for p in [*found, *single] if p and os.path.isfile(p)}


def refuse_over_inputs(paths: list[str], inputs: set[str], what: str) -> None:
    """OutputError naming the first of ``paths`` that is one of ``inputs`` (real paths):
    nothing a job writes may replace a file it reads."""
    for path in paths:
        if os.path.realpath(path) in inputs:
            raise OutputError(f"{path}: {what} would overwrite an input; choose another "
                              "output path")


def remove_leftovers(paths: list[str], warn: Callable[[str], None]) -> None:
    """Remove the temporary files a killed run left while writing ``paths`` (hidden
    ``.<name>.<random>.tmp.<ext>`` beside each); says how many."""
    gone = 0
    for tmp in atomic.leftovers(paths):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
            gone += 1
    if gone:
        warn(f"removed {gone} temporary file(s) a stopped run left beside the output")


def color_context(spec: ColorSpec) -> ColorContext:
    return ColorContext(spec.config, spec.working_space, spec.highlight, spec.knee)


def inputs(plate: PlateSpec, matte: MatteSpec, color: ColorSpec) -> Inputs:
    """Open the plate (frames planned, every frame checked whole, view and colourspace
    chosen) and check the matte settings against it."""
    ctx = color_context(color)
    opened = Plate.open(plate, ctx)
    matte_files = files(matte, opened.seq, opened.ref)
    check(matte, opened.frames, opened.ref)
    mattes = ShotMattes(matte, ctx, opened.frames, opened.ref, matte_files)
    return Inputs(ctx, opened, matte_files, mattes, [k.matte for k in matte.keys if k.matte])


@dataclass
class OutputPlan:
    sequence: frames.Sequence
    skipped: list[int]  # frames on disk kept (output.existing=skip)
    todo: list[int]  # frames to write


def output(pattern: str, plate_seq: frames.Sequence, inputs: set[str], existing: str,
           what: str) -> OutputPlan:
    """The output sequence over the plate frames, checked: it overwrites no input (``inputs``
    are real paths), its folder is writable, existing frames follow the ``existing`` policy."""
    seq = frames.Sequence(frames.template(pattern), plate_seq.frames)
    if not seq.template.lower().endswith(".exr"):
        raise OutputError(f"{seq.template}: {what} frames are written as OpenEXR; give the "
                          "output path a .exr extension")
    if seq.template == plate_seq.template:
        raise OutputError(f"{seq.template}: output would overwrite an input; choose another "
                          "output path")
    refuse_over_inputs(seq.paths(), inputs, "output")
    check_writable(seq.template)
    found = [f for f in plate_seq.frames if os.path.exists(seq.path(f))]
    if found and existing == "error":
        raise OutputError(f"{seq.template}: {len(found)} {what} frame(s) exist "
                          f"({frames.compact(found)}); pass --existing skip to resume or "
                          "--existing overwrite to replace them")
    skipped = found if existing == "skip" else []
    todo = [f for f in plate_seq.frames if f not in set(skipped)]
    return OutputPlan(seq, skipped, todo)


def check_writable(template: str) -> None:
    """The output folder, or the nearest existing folder above it, takes files. Nothing is
    created: the folder is made by the first frame written, so a job refused for its inputs
    leaves no empty folder behind."""
    directory = os.path.dirname(os.path.abspath(template))
    probe = directory
    while not os.path.exists(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise OutputError(f"{directory}: output folder is not writable ({probe} is a file); "
                          "choose another output path")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        raise OutputError(f"{probe}: output folder is not writable ({exc.strerror}); choose "
                          "a writable output path") from exc


@dataclass
class Warnings:
    """Warnings of one run: kept for its result and reported as they come (any thread)."""

    report: Reporter
    lines: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __call__(self, msg: str) -> None:
        with self._lock:
            self.lines.append(msg)
        self.report(ProgressEvent("warning", message=msg))

    def plate(self, inp: Inputs) -> None:
        """What opening the plate chose or found: view, colourspace, missing frames."""
        if inp.plate.note:
            self(inp.plate.note)
        for src in inp.plate.sources:
            if src.path is None:
                self(f"frame {src.frame}: missing plate frame, rendered black (--missing black)")
            elif src.held_from is not None:
                self(f"frame {src.frame}: missing plate frame, holding frame {src.held_from}")


# ----------------------------------------------------------------------------- overscan
#: matte sources whose matte beyond the display window is in a file: the plate's own channel
#: (alpha) or the matte sequence's (file); computed mattes cover the display window only
_FILE_MATTES = ("alpha", "file")


def union(a: Window, b: Window) -> Window:
    x0, y0 = min(a.x, b.x), min(a.y, b.y)
    x1, y1 = max(a.x + a.width, b.x + b.width), max(a.y + a.height, b.y + b.height)
    return Window(x0, y0, x1 - x0, y1 - y0)


def shown(w: Window) -> str:
    """``80x46-8-5``: size and origin, as compositors write a bounding box."""
    return f"{w.width}x{w.height}{w.x:+d}{w.y:+d}"


def read_window(path: str, names: list[str], window: Window, view: str | None = None
                ) -> np.ndarray:
    """Channels ``names`` of ``path`` (of ``view``, from whichever part holds each) over
    ``window``: each part's data window where it covers it, 0 elsewhere; NaN as 0, Inf as
    the largest half. ``imageio.read`` reads into the display window only."""
    info = imageio.probe(path, view)
    parts = getattr(info, "channel_parts", None) or {}
    by_part: dict[int, list[int]] = {}
    for k, name in enumerate(names):
        by_part.setdefault(parts.get(name, info.subimage), []).append(k)
    out = np.zeros((window.height, window.width, len(names)), np.float32)
    inp = oiio.ImageInput.open(path)
    if inp is None:
        why = imageio.first_line(imageio.library_error(oiio.geterror))
        raise InputError(f"{path}: its overscan cannot be read ({why}); set output.overscan "
                         "crop")
    try:
        for part, ks in by_part.items():
            _paste(path, inp, part, [info.file_channels[names[k]] for k in ks], out, ks,
                   window)
    finally:
        inp.close()
    return np.nan_to_num(out, copy=False, nan=0.0, posinf=imageio.HALF_MAX,
                         neginf=-imageio.HALF_MAX)


def _paste(path: str, inp: oiio.ImageInput, part: int, file_names: list[str],
           out: np.ndarray, ks: list[int], window: Window) -> None:
    """Channels ``file_names`` of ``part`` into ``out[..., ks]`` (over ``window``)."""
    inp.seek_subimage(part, 0)
    spec = inp.spec()
    in_file = list(spec.channelnames)
    idx = [in_file.index(n) for n in file_names]
    lo, hi = min(idx), max(idx) + 1
    px = inp.read_image(part, 0, lo, hi, "float")
    err = imageio.library_error(inp.geterror)
    if px is None or err:
        why = imageio.first_line(err or "no data")
        raise InputError(f"{path}: cannot read pixels ({why}); the file is damaged or "
                         "truncated, re-render or replace it")
    d = Window(spec.x, spec.y, spec.width, spec.height)
    data = np.asarray(px, np.float32).reshape(d.height, d.width, hi - lo)
    x0, y0 = max(d.x, window.x), max(d.y, window.y)
    x1, y1 = min(d.x + d.width, window.x + window.width), min(d.y + d.height,
                                                              window.y + window.height)
    if x1 > x0 and y1 > y0:
        out[y0 - window.y : y1 - window.y, x0 - window.x : x1 - window.x, ks] = \
            data[y0 - d.y : y1 - d.y, x0 - d.x : x1 - d.x][..., [i - lo for i in idx]]


def _place(img: np.ndarray, left: int, top: int, width: int, height: int,
           border: int) -> np.ndarray:
    """A (height, width) window with ``img``'s pixel (0, 0) at (left, top), continued beyond
    ``img`` by ``border`` (OpenCV's: its edge repeated, or 0)."""
    pl, pt = max(0, left), max(0, top)
    pr, pb = max(0, width - left - img.shape[1]), max(0, height - top - img.shape[0])
    big = cv2.copyMakeBorder(np.ascontiguousarray(img), pt, pb, pl, pr, border, value=0)
    y0, x0 = pt - top, pl - left
    return np.ascontiguousarray(big[y0 : y0 + height, x0 : x0 + width])


class WideBackground:
    """The moved background continued beyond the display window (the overscan): a still
    background is the fitted image continued at the same scale and centre as ``raster.fit``
    (its display window checked against ``Backdrop.still``, else the border of that is
    repeated); a moving one is ``Backdrop``'s own warp over the wider window."""

    def __init__(self, backdrop: Backdrop, image: np.ndarray, fit: str, pixel_aspect: float,
                 source_aspect: float, display: Window) -> None:
        self.backdrop, self.image, self.fit = backdrop, image, fit
        self.aspects, self.display = (pixel_aspect, source_aspect), display
        self._still: dict[Window, np.ndarray] = {}
        self._lock = threading.Lock()

    def at(self, frame: int, win: Window) -> np.ndarray:
        dx, dy = self.display.x - win.x, self.display.y - win.y
        if self.backdrop.moving:
            return self._moving(frame, win, dx, dy)
        with self._lock:
            if win not in self._still:
                self._still[win] = self._fitted(win, dx, dy)
            return self._still[win].copy()

    def _fitted(self, win: Window, dx: int, dy: int) -> np.ndarray:
        w, h = self.display.width, self.display.height
        still, border = self.backdrop.still, cv2.BORDER_REPLICATE
        if self.fit == "stretch":
            scaled, left, top = still, 0, 0
        else:  # raster.fit's scale and centring, the image kept whole
            pa, sa = self.aspects
            src_h, src_w = self.image.shape[:2]
            scale = (max if self.fit == "cover" else min)(w * pa / (src_w * sa), h / src_h)
            new_w, new_h = max(1, round(src_w * sa * scale / pa)), max(1, round(src_h * scale))
            scaled = raster.resize(self.image, new_w, new_h)
            left = max(0, (w - new_w) // 2) - max(0, (new_w - w) // 2)
            top = max(0, (h - new_h) // 2) - max(0, (new_h - h) // 2)
            border = cv2.BORDER_REPLICATE if self.fit == "cover" else cv2.BORDER_CONSTANT
        out = _place(scaled, left + dx, top + dy, win.width, win.height, border)
        if not np.array_equal(out[dy : dy + h, dx : dx + w], still):
            out = _place(still, dx, dy, win.width, win.height, cv2.BORDER_REPLICATE)
        return out

    def _moving(self, frame: int, win: Window, dx: int, dy: int) -> np.ndarray:
        bd = self.backdrop
        try:  # Backdrop's warp over the wider window (until it offers at(frame, window))
            inverse = bd._inverses[frame] @ np.array([[1, 0, -dx], [0, 1, -dy], [0, 0, 1.0]])
            wide = copy.copy(bd)
            wide.width, wide.height = win.width, win.height
            return wide._warp(inverse)
        except (AttributeError, KeyError, TypeError):
            return _place(bd.at(frame), dx, dy, win.width, win.height, cv2.BORDER_REPLICATE)


@dataclass
class Overscan:
    """``output.overscan`` keep: each output frame whose plate frame's data window reaches
    beyond the display window is written over both (``windows``). Inside the display window
    it is the engine's output; around it, the plate's subject (its matte channel, or the
    matte file's; computed mattes have none there) over the moved background continued."""

    windows: dict[int, Window]  # frame -> its output's data window (frames with overscan)
    display: Window
    paths: dict[int, str]
    plate: Plate
    matte: MatteSpec
    matte_files: dict[int, str]
    #: frame -> whether its colour is premultiplied, as the job's matte found (``_load``)
    premultiplied: dict[int, bool] = field(default_factory=dict)

    @classmethod
    def plan(cls, spec: ShotSpec, inputs: Inputs) -> Overscan | None:
        """The frames with overscan (each plate file's header read), or None."""
        if spec.output.overscan == "crop":
            return None
        plate = inputs.plate
        disp, view = plate.ref.display, plate.ref.view or None
        data = {plate.ref.path: plate.ref.data}
        windows, paths = {}, {}
        for src in plate.sources:
            if src.path is None:
                continue
            if src.path not in data:
                data[src.path] = imageio.probe(src.path, view).data
            win = union(disp, data[src.path])
            if win != disp:
                windows[src.frame], paths[src.frame] = win, src.path
        return cls(windows, disp, paths, plate, spec.matte, inputs.matte_files) \
            if windows else None

    def warning(self, engine: str, model: bool) -> str | None:
        """One line when the overscan is not all the engine's and the plate's own."""
        why = []
        if model:
            why.append(f"the {engine} engine generates the display window only, so there the "
                       "output is the plate's subject over the moved background")
        if self.matte.source not in _FILE_MATTES:
            why.append(f"matte.source {self.matte.source} makes no matte there, so it shows "
                       "the moved background without the subject")
        if not why:
            return None
        wins = sorted({shown(w) for w in self.windows.values()})
        return (f"frame(s) {frames.compact(sorted(self.windows))}: the plate's data window "
                f"({', '.join(wins[:3])}{', ...' if len(wins) > 3 else ''}) reaches beyond "
                f"the display window ({shown(self.display)}), kept in the output; "
                f"{'; '.join(why)} (output.overscan crop writes the display window only)")

    def frame(self, frame: int, matte: np.ndarray, comp: np.ndarray, background: np.ndarray,
              wide: WideBackground) -> tuple[Window, np.ndarray, np.ndarray, np.ndarray]:
        """(data window, comp, background, matte) of ``frame``: ``comp``, ``background`` and
        ``matte`` (the display window's, working space) inside, the overscan around them."""
        win, disp = self.windows[frame], self.display
        dx, dy = disp.x - win.x, disp.y - win.y
        inside = (slice(dy, dy + disp.height), slice(dx, dx + disp.width))
        view = self.plate.ref.view or None
        own = self.matte.source == "alpha"
        px = read_window(self.paths[frame], [*self.plate.rgb, *([self.matte.channel] if own
                                                               else [])], win, view)
        rgb = self.plate.color.to_working(px[..., :3], self.plate.space)
        if own:
            ring = px[..., 3]
        elif self.matte.source == "file":
            ring = self._matte_file(frame, win)
        else:
            ring = np.zeros(rgb.shape[:2], np.float32)
        if self.matte.invert and self.matte.source in _FILE_MATTES:
            ring = 1.0 - ring
        ring = np.clip(ring, 0.0, 1.0).astype(np.float32)
        ring[inside] = matte
        subject = rgb if self.premultiplied.get(frame, False) else \
            raster.decontaminate(rgb, ring)
        bg = wide.at(frame, win)
        out = over(subject, ring, bg)
        out[inside], bg[inside] = comp, background
        return win, out, bg, ring

    def _matte_file(self, frame: int, win: Window) -> np.ndarray:
        """The matte file's channel over ``win``, chosen as the file matte's (channel, A, Y,
        its only one)."""
        path = self.matte_files[frame]
        names = imageio.probe(path).channels
        pick = next((n for n in (self.matte.channel, "A", "Y") if n in names), None)
        if pick is None and len(names) == 1:
            pick = names[0]
        if pick is None:
            return np.zeros((win.height, win.width), np.float32)
        return read_window(path, [pick], win)[..., 0]
