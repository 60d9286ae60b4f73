"""Mattes for every frame of a shot from a MatteSpec: check, compute, refine.

Per-frame sources (alpha, file, keyer) are computed when a frame is read. Sources that need
the whole shot (sam, sam2, sam3, grabcut: tracked from key frames or a text) and temporal
refinement are computed in a ``matte`` stage first and held as float16 (2 bytes a pixel: 4.4 MB
a 2K frame) in ``store.MatteStore``s: in memory up to ``matte.memory_mb``, beyond it in a
temporary file, so a long shot's mattes do not grow the process. With ``matte.objects`` each
object is tracked (in one session where the segmenter can: ``track.ObjectsSegmenter``; else
one track each), refined, and kept as its own matte (``objects``); the subject matte is their
union.
"""

from __future__ import annotations

import re
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from .. import catalog
from ..errors import InputError, JobCancelled, SpecError
from ..media import frames as frameseq
from ..media import imageio
from ..media.color import ColorContext
from ..media.imageio import Image, ImageInfo
from ..progress import ProgressEvent, Reporter, StageClock, null_reporter
from ..spec import KeyFrame, MatteSpec
from . import channels, refine, source_class, store, track
from .source import FrameSource, Source, TrackedSource
from .store import MatteStore

# read(frame) -> (plate image or None for a missing frame, working-space linear RGB)
PlateReader = Callable[[int], tuple[Image | None, np.ndarray]]
Warn = Callable[[str], None]


@dataclass
class FrameMatte:
    matte: np.ndarray  # (H, W) float32 in [0, 1]
    rgb: np.ndarray  # the plate colour (despilled by the keyer)
    premultiplied: bool


def files(spec: MatteSpec, plate_seq: frameseq.Sequence, ref: ImageInfo) -> dict[int, str]:
    """The matte file of every plate frame (source=file), checked; {} for other sources."""
    if spec.source != "file":
        return {}
    if not spec.path:
        raise SpecError("matte.path: required when matte.source is 'file'; give the matte "
                        "sequence pattern")
    seq = frameseq.Sequence(frameseq.template(spec.path), plate_seq.frames)
    gaps = seq.missing()
    if gaps:
        raise InputError(f"{seq.template}: the matte lacks plate frame(s) "
                         f"{frameseq.compact(gaps)}; matte and plate ranges must match")
    imageio.same_size(imageio.probe(seq.path(plate_seq.frames[0])), ref, "matte")
    return {f: seq.path(f) for f in plate_seq.frames}


def check(spec: MatteSpec, plate_frames: list[int], ref: ImageInfo) -> None:
    """Everything about the matte settings that can be checked without pixels: the key
    frames' prompts, then what the source itself needs (``Source.check``)."""
    w, h = ref.display.width, ref.display.height
    rng = frameseq.compact(plate_frames)
    keys = [("matte.keys", k) for k in spec.keys]
    keys += [(f"matte.objects {o.name}", k) for o in spec.objects for k in o.keys]
    for field, k in keys:
        where = f"{field}: key frame {k.frame}"
        if k.frame not in plate_frames:
            raise InputError(f"{where} is outside the plate frames {rng}; choose a plate frame")
        for x, y, _ in k.points:
            if not (0 <= x <= w and 0 <= y <= h):
                raise InputError(f"{where}: point ({x:g}, {y:g}) is outside the {w}x{h} frame "
                                 "(pixels, origin top-left)")
        for x0, y0, x1, y1 in k.boxes:
            if x1 <= 0 or y1 <= 0 or x0 >= w or y0 >= h:
                raise InputError(f"{where}: box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) is outside "
                                 f"the {w}x{h} frame (pixels, origin top-left)")
        if k.matte is not None:
            imageio.same_size(imageio.probe(k.matte), ref, f"key frame {k.frame} matte")
    source_class(spec.source).check(spec, ref)


class ShotMattes:
    """The mattes of one job. ``frame()`` is thread safe; call ``prepare()`` first."""

    def __init__(self, spec: MatteSpec, color: ColorContext, plate_frames: list[int],
                 ref: ImageInfo, files: dict[int, str] | None = None) -> None:
        self.spec = spec
        self.color = color
        self.frames = list(plate_frames)
        self.ref = ref
        self.files = files or {}
        self.refine = refine.Refine.resolve(spec.refine, spec.source)
        self.kind = catalog.matte(spec.source)
        self.source: Source = source_class(spec.source)(
            spec, ref, self.files)
        self._at = {f: i for i, f in enumerate(self.frames)}  # plate frame -> shot index
        self._done: MatteStore | None = None  # after prepare, when the shot needs it
        self._objects: dict[str, MatteStore] = {}  # by name, after prepare
        self.warnings: list[str] = []

    @property
    def needs_shot(self) -> bool:
        return self.kind.tracked or self.refine.temporal > 0

    @property
    def object_names(self) -> list[str]:
        """The names of matte.objects, in the spec's order."""
        return [o.name for o in self.spec.objects]

    def objects(self, frame: int) -> dict[str, np.ndarray]:
        """Each object's refined matte (float32) of a plate frame, by name; after
        ``prepare``."""
        return {n: done[self._at[frame]].astype(np.float32)
                for n, done in self._objects.items()}

    # ---------------------------------------------------------------- per frame
    def _raw(self, frame: int, img: Image | None, rgb: np.ndarray,
             warn: Warn) -> tuple[np.ndarray, np.ndarray]:
        if img is None:  # missing plate frame rendered black: nothing to matte
            return np.zeros(rgb.shape[:2], np.float32), rgb
        assert isinstance(self.source, FrameSource), "tracked mattes are made in prepare()"
        m, rgb = self.source.matte(frame, img, rgb, warn)
        m = np.clip(m, 0.0, 1.0)
        if self.spec.invert:
            m = 1.0 - m
        return np.ascontiguousarray(m, np.float32), rgb

    def _premultiplied(self, rgb: np.ndarray, matte: np.ndarray) -> bool:
        if self.spec.premultiplied is not None:
            return self.spec.premultiplied
        if isinstance(self.source, FrameSource):
            return self.source.premultiplied(rgb, matte)
        return False  # segmented plates are full plates

    def _check_empty(self, frame: int, matte: np.ndarray, img_missing: bool = False) -> None:
        if self.kind.computed and not self.spec.allow_empty and \
                not img_missing and not (matte > 0.5).any():
            raise InputError(f"frame {frame}: the {self.spec.source} matte is empty (no subject "
                             "found); add a key frame near it, adjust the settings, or set "
                             "matte.allow_empty")

    def frame(self, frame: int, img: Image | None, rgb: np.ndarray,
              warn: Warn = lambda m: None) -> FrameMatte:
        """The refined matte of one plate frame (and its colour, despilled by the keyer)."""
        if self._done is not None and frame in self._at:
            matte = self._done[self._at[frame]].astype(np.float32)
            if isinstance(self.source, FrameSource) and img is not None:
                rgb = self.source.colour(img, rgb)
        else:
            matte, rgb = self._raw(frame, img, rgb, warn)
            if self.refine.spatial:
                matte = refine.spatial(matte, self.refine)
            self._check_empty(frame, matte, img is None)
        return FrameMatte(matte, rgb, self._premultiplied(rgb, matte))

    # ---------------------------------------------------------------- whole shot
    def prepare(self, read: PlateReader, report: Reporter = null_reporter,
                cancel: threading.Event | None = None, warn: Warn = lambda m: None,
                threads: int = 1) -> None:
        """Compute the mattes that need the whole shot (tracking, temporal smoothing)."""
        if not self.needs_shot:
            return
        cancel = cancel or threading.Event()
        with store.limit(self.spec.memory_mb):
            objects = self._shot(read, report, cancel, warn, threads)
            mattes = objects.pop("", None)
            if mattes is None:  # the subject is the union of the objects
                mattes = MatteStore(len(self.frames), np.float32)
                for i in range(len(self.frames)):
                    mattes[i] = np.maximum.reduce([ms[i] for ms in objects.values()])
            if self.refine.temporal:
                report(ProgressEvent("matte", message=f"temporal smoothing, radius "
                                     f"{self.refine.temporal}"))
            self._done = self._smoothed(mattes, check=True)
            self._objects = {n: self._smoothed(ms) for n, ms in objects.items()}
        if self.spilled:
            report(ProgressEvent("matte", message=(
                f"{self.spilled} matte frame(s) beyond matte.memory_mb "
                f"({self.spec.memory_mb:g} MB) wait in a temporary file in "
                f"{tempfile.gettempdir()}")))

    @property
    def spilled(self) -> int:
        """Frames of the shot's mattes held in the temporary file, not in memory."""
        stores = [self._done, *self._objects.values()]
        return sum(s.spilled for s in stores if s is not None)

    def _shot(self, read: PlateReader, report: Reporter, cancel: threading.Event, warn: Warn,
              threads: int) -> dict[str, Sequence[np.ndarray]]:
        """Spatially refined mattes of the shot by object name ("": the single subject)."""
        if isinstance(self.source, TrackedSource):
            return self._track(read, report, cancel, warn)
        clock = StageClock(report, "matte", len(self.frames))

        def one(frame: int) -> np.ndarray:
            if cancel.is_set():
                raise JobCancelled("cancelled while computing mattes")
            img, rgb = read(frame)
            m, _ = self._raw(frame, img, rgb, warn)
            m = refine.spatial(m, self.refine) if self.refine.spatial else m
            clock.advance(frame)
            return m

        mattes = MatteStore(len(self.frames), np.float32)
        with ThreadPoolExecutor(max_workers=threads) as pool:
            for i, m in enumerate(pool.map(one, self.frames)):
                mattes[i] = m
        return {"": mattes}

    def _smoothed(self, mattes: Sequence[np.ndarray], *, check: bool = False) -> MatteStore:
        """``mattes`` temporally refined (when set) and kept as float16; ``check``: refuse an
        empty frame. A store given is emptied."""
        out = MatteStore(len(self.frames))
        smoothed = refine.temporal(mattes, self.refine.temporal, self.refine.temporal_tolerance)
        for f, (i, m) in zip(self.frames, enumerate(smoothed), strict=True):
            if check:
                self._check_empty(f, m)
            out[i] = m
        if isinstance(mattes, MatteStore):
            mattes.close()
        return out

    def _track(self, read: PlateReader, report: Reporter, cancel: threading.Event,
               warn: Warn) -> dict[str, Sequence[np.ndarray]]:
        """Spatially refined mattes by object name ("": the single subject)."""
        s = self.spec
        frames = self.frames
        lock = threading.Lock()
        images: OrderedDict[int, np.ndarray] = OrderedDict()

        def image(i: int) -> np.ndarray:
            """Frame i (index into the shot) as display-referred uint8 RGB."""
            with lock:
                if i in images:
                    images.move_to_end(i)
                    return images[i]
            _, rgb = read(frames[i])
            rgb8 = (self.color.to_model(rgb) * 255.0 + 0.5).astype(np.uint8)
            with lock:
                images[i] = rgb8
                while len(images) > 8:
                    images.popitem(last=False)
            return rgb8

        source = self.source
        if s.objects and s.sam.resume_from:  # a stopped run wrote their union, no one's track
            source = type(source)(s.model_copy(update={
                "sam": s.sam.model_copy(update={"resume_from": None})}), self.ref, self.files)
        assert isinstance(source, TrackedSource)
        segmenter = source.segmenter(image, len(frames), report)
        if not s.objects:
            tracks = [("", s.keys)]
        elif isinstance(segmenter, track.ObjectsSegmenter):
            tracks = []  # all at once
        else:  # one track each, by the same segmenter (the model loaded once)
            tracks = [(o.name, o.keys) for o in s.objects]

        def index(keys) -> dict[int, object]:
            return {frames.index(k.frame): k for k in keys}

        def steps(seg, keys) -> int:
            if isinstance(seg, track.VideoSegmenter):
                return seg.steps(frames, list(index(keys)))
            return track.steps(len(frames), list(index(keys)))

        if tracks:
            total = sum(steps(segmenter, keys) for _, keys in tracks)
        else:
            assert isinstance(segmenter, track.ObjectsSegmenter)
            total = segmenter.steps_objects(frames, list(s.objects))
        clock = StageClock(report, "matte", total)

        def advance(i: int) -> None:
            clock.advance(frames[i])

        def tell(msg: str) -> None:  # name plate frames, not shot indices
            warn(re.sub(r"frame index (\d+):", lambda m: f"frame {frames[int(m[1])]}:", msg))

        if tracks:
            out = {name: self._one_track(segmenter, index(keys), image, advance, tell, cancel,
                                         warn)
                   for name, keys in tracks}
        else:
            assert isinstance(segmenter, track.ObjectsSegmenter)
            out = segmenter.propagate_objects(
                frames, list(s.objects), painted=lambda k: self._painted(k, warn),
                advance=advance, warn=warn, cancel=cancel)
        if self.refine.spatial:
            out = {n: self._spatial(ms) for n, ms in out.items()}
        return out

    def _spatial(self, mattes: Sequence[np.ndarray]) -> MatteStore:
        """``mattes`` spatially refined (float32); a store given is emptied."""
        out = MatteStore(len(mattes), np.float32)
        for i in range(len(mattes)):
            out[i] = refine.spatial(np.asarray(mattes[i], np.float32), self.refine)
        if isinstance(mattes, MatteStore):
            mattes.close()
        return out

    def _painted(self, key: KeyFrame, warn: Warn = lambda m: None) -> np.ndarray:
        """A key frame's painted matte (float32, [0, 1])."""
        m = channels.matte_image(key.matte, self.ref, None, warn)
        return np.clip(m, 0.0, 1.0).astype(np.float32)

    def _one_track(self, segmenter: track.Segmenter, keys: dict, image: Callable,
                   advance: Callable[[int], None], tell: Warn, cancel: threading.Event,
                   warn: Warn) -> Sequence[np.ndarray]:
        """One subject's mattes through the shot from its key frames (by shot index)."""
        s = self.spec

        def key_matte(i: int, k) -> np.ndarray:
            m = self._painted(k, warn) if k.matte is not None else segmenter.key(i, k)
            if not (m > 0.5).any():
                raise InputError(f"key frame {k.frame}: the {s.source} matte is empty (no "
                                 "subject found from its prompts); add points or a box on the "
                                 "subject")
            return m

        if isinstance(segmenter, track.VideoSegmenter):
            return segmenter.propagate(self.frames, keys, key_matte=key_matte,
                                       advance=advance, warn=warn, cancel=cancel)
        return track.propagate(len(self.frames), keys, image, segmenter, s.track,
                               advance=advance, warn=tell, cancel=cancel, key_matte=key_matte)
