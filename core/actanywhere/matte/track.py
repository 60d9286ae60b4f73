"""Carry key-frame mattes through a shot, in both directions from every key frame.

From a key frame the matte is warped to the next frame by optical flow; in ``segment`` mode
the warped matte becomes prompts (a box and interior/exterior points) for the segmenter, whose
answer is kept when it agrees with the warped matte (IoU >= ``min_agreement``), else the warped
matte is kept. Every key frame re-anchors the track; a frame between two key frames blends the
forward track from the earlier key and the backward track from the later one, weighted by
distance, so the result is continuous across key frames.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from ..errors import JobCancelled
from .flow import Flow
from .store import MatteStore


class KeyFrame(Protocol):
    """Prompts on one key frame (ShotSpec's ``matte.keys[]`` entries have these fields)."""

    frame: int
    points: list[tuple[float, float, int]]
    boxes: list[tuple[float, float, float, float]]
    matte: str | None


class TrackSettings(Protocol):
    """How to track (ShotSpec's ``matte.track`` has these fields)."""

    mode: str
    flow: str
    scale: int
    points: int
    negative_points: int
    min_agreement: float


@dataclass
class Hint:
    """Prompts derived from a warped matte."""

    warped: np.ndarray
    box: tuple[float, float, float, float]
    points: np.ndarray  # N x 2, x y
    labels: np.ndarray  # N, 1 subject / 0 not


class Segmenter(Protocol):
    name: str

    def key(self, index: int, key: KeyFrame) -> np.ndarray:
        """Matte of frame ``index`` from the user's prompts."""

    def track(self, index: int, hint: Hint) -> np.ndarray:
        """Matte of frame ``index`` from prompts derived from the warped previous matte."""


@runtime_checkable
class VideoSegmenter(Segmenter, Protocol):
    """A segmenter that carries the key mattes through the shot itself (a video model with a
    memory of the frames it saw), used by ShotMattes instead of ``propagate``."""

    def steps(self, frames: list[int], keys: list[int]) -> int:
        """How many times ``propagate`` calls ``advance`` (keys by index)."""

    def propagate(self, frames: list[int], keys: dict[int, KeyFrame], *,
                  key_matte: Callable[[int, KeyFrame], np.ndarray],
                  advance: Callable[[int], None], warn: Callable[[str], None],
                  cancel: threading.Event | None) -> Sequence[np.ndarray]:
        """Mattes of frames ``0..len(frames)-1`` (``frames``: the plate frame numbers)."""


class ObjectPrompts(Protocol):
    """One of several objects (ShotSpec's ``matte.objects[]`` entries have these fields)."""

    name: str
    keys: list[KeyFrame]
    text: str | None


@runtime_checkable
class ObjectsSegmenter(VideoSegmenter, Protocol):
    """A video segmenter that tracks several objects at once (one session, one id each), used
    by ShotMattes for matte.objects instead of one track per object."""

    def steps_objects(self, frames: list[int], objects: list[ObjectPrompts]) -> int:
        """How many times ``propagate_objects`` calls ``advance``."""

    def propagate_objects(self, frames: list[int], objects: list[ObjectPrompts], *,
                          painted: Callable[[KeyFrame], np.ndarray],
                          advance: Callable[[int], None], warn: Callable[[str], None],
                          cancel: threading.Event | None) -> dict[str, Sequence[np.ndarray]]:
        """Each object's mattes (by name) of frames ``0..len(frames)-1``; ``painted(key)``
        reads a key frame's painted matte."""


def iou(a: np.ndarray, b: np.ndarray) -> float:
    ma, mb = a > 0.5, b > 0.5
    union = np.count_nonzero(ma | mb)
    return 1.0 if union == 0 else np.count_nonzero(ma & mb) / union


def _spread(candidates: np.ndarray, score: np.ndarray, count: int, radius: float) -> np.ndarray:
    """Up to ``count`` candidates by descending score, none closer than ``radius``."""
    chosen: list[np.ndarray] = []
    for i in np.argsort(-score, kind="stable"):
        p = candidates[i]
        if all(np.hypot(*(p - q)) >= radius for q in chosen):
            chosen.append(p)
            if len(chosen) == count:
                break
    return np.array(chosen, np.float32).reshape(-1, 2)


def hint_from(warped: np.ndarray, points: int, negative_points: int) -> Hint | None:
    """A box around the warped matte, points deep inside it and points in a band around it;
    None when the warped matte is empty."""
    solid = (warped > 0.5).astype(np.uint8)
    ys, xs = np.nonzero(solid)
    if len(xs) == 0:
        return None
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    size = max(x1 - x0, y1 - y0)
    h, w = warped.shape
    pad = 0.05 * size
    box = (max(0.0, x0 - pad), max(0.0, y0 - pad), min(float(w), x1 + pad), min(float(h), y1 + pad))
    # interior: deepest points of the distance transform, spread apart
    step = max(1, size // 256)
    dist = cv2.distanceTransform(solid, cv2.DIST_L2, 3)[::step, ::step]
    yy, xx = np.nonzero(dist > 1.0)
    pos = _spread(np.stack([xx, yy], 1).astype(np.float32) * step, dist[yy, xx], points,
                  size / max(2, points)) if len(xx) else np.zeros((0, 2), np.float32)
    # exterior: a band 3-12% of the subject size outside it, far from each other
    near = max(1, round(0.03 * size))
    far = max(near + 1, round(0.12 * size))
    k = lambda r: cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))  # noqa: E731
    band = cv2.dilate(solid, k(far)) & ~cv2.dilate(solid, k(near)) & 1
    band = band[::step, ::step]
    yy, xx = np.nonzero(band)
    neg = np.zeros((0, 2), np.float32)
    if len(xx) and negative_points:
        # score by angle around the centre so that the points surround the subject
        cx, cy = (x0 + x1) / 2 / step, (y0 + y1) / 2 / step
        ang = np.arctan2(yy - cy, xx - cx)
        neg = _spread(np.stack([xx, yy], 1).astype(np.float32) * step,
                      -np.abs(((ang * negative_points / (2 * np.pi)) % 1.0) - 0.5),
                      negative_points, size / max(2, negative_points))
    pts = np.concatenate([pos, neg]).astype(np.float32)
    labels = np.concatenate([np.ones(len(pos), np.int32), np.zeros(len(neg), np.int32)])
    return Hint(warped, box, pts, labels)


#: below this IoU the tracks from two keys disagree: no blending between them
DISAGREE = 0.5


def steps(count: int, keys: list[int]) -> int:
    """How many frame mattes ``propagate`` computes (frames between keys are tracked twice)."""
    order = sorted(keys)
    return count + sum(max(0, b - a - 1) for a, b in zip(order, order[1:], strict=False))


@dataclass
class TrackState:
    """A track at one frame: the matte it is anchored to, the composed coordinate maps from
    this frame back into that anchor (None at the anchor's own frame), and this frame's matte."""

    anchor: np.ndarray
    maps: np.ndarray | None
    matte: np.ndarray

    @classmethod
    def at(cls, matte: np.ndarray) -> TrackState:
        """A track anchored at ``matte``, on its own frame."""
        return cls(matte, None, matte)


@dataclass
class _Tracker:
    """Frame-to-frame tracking through one shot: the flow, the frames at working size (kept
    until done with) and ``propagate``'s callbacks."""

    image: Callable[[int], np.ndarray]
    segmenter: Segmenter | None
    settings: TrackSettings
    advance: Callable[[int], None]
    warn: Callable[[str], None]
    cancel: threading.Event | None
    flow: Flow = field(init=False)
    small: dict[int, np.ndarray] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.flow = Flow(self.settings.flow, self.settings.scale)

    def gray(self, i: int) -> np.ndarray:
        if i not in self.small:
            self.small[i] = self.flow.small_gray(self.image(i))
        return self.small[i]

    def check_cancel(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise JobCancelled("cancelled while computing mattes")

    def step(self, src: int, state: TrackState, dst: int) -> TrackState:
        """The track carried from frame ``src`` to frame ``dst``."""
        self.check_cancel()
        flow = self.flow
        maps = flow.compose(state.maps, flow.subject_flow(self.gray(src), self.gray(dst),
                                                          state.matte))
        warped = flow.sample(state.anchor, maps)
        out = self.reanchor(dst, warped) or TrackState(state.anchor, maps, warped)
        self.advance(dst)
        return out

    def reanchor(self, dst: int, warped: np.ndarray) -> TrackState | None:
        """The segmenter's matte of frame ``dst``, prompted by the warped matte, as the anchor
        of the next frames; None in ``flow`` mode, for an empty warped matte, or when the two
        disagree (IoU < ``min_agreement``, said)."""
        s, segmenter = self.settings, self.segmenter
        if segmenter is None or s.mode == "flow":
            return None
        hint = hint_from(warped, s.points, s.negative_points)
        if hint is None:
            return None
        seg = np.asarray(segmenter.track(dst, hint), np.float32)
        agree = iou(seg, warped)
        if agree >= s.min_agreement:
            return TrackState.at(seg)
        self.warn(f"frame index {dst}: {segmenter.name} disagreed with the tracked matte "
                  f"(IoU {agree:.2f} < {s.min_agreement}); kept the tracked matte")
        return None

    def track(self, start: np.ndarray, frames: range) -> Iterator[np.ndarray]:
        """The mattes of ``frames`` (consecutive, forward or backward) tracked from ``start``,
        the matte of the frame before the first of them."""
        state = TrackState.at(start)
        for i in frames:
            state = self.step(i - frames.step, state, i)
            yield state.matte

    def between(self, a: int, b: int, anchors: dict[int, np.ndarray],
                out: MatteStore) -> None:
        """Frames strictly between keys ``a`` and ``b``: tracked from both, blended by distance
        where they agree; where they disagree a blend is a ghost of two shapes, so the nearer
        key's track is kept, with a warning naming the frames."""
        fwd = MatteStore(b - a - 1, np.float32)
        for n, f in enumerate(self.track(anchors[a], range(a + 1, b))):
            fwd[n] = f
        split: list[tuple[int, float]] = []
        for i, g in zip(range(b - 1, a, -1), self.track(anchors[b], range(b - 1, a, -1)),
                        strict=True):
            t = (i - a) / (b - a)  # 0 at a, 1 at b
            f = fwd[i - a - 1]  # a copy
            agree = iou(f, g)
            if agree < DISAGREE:
                out[i] = f if t <= 0.5 else g
                split.append((i, agree))
            else:
                out[i] = (1 - t) * f + t * g
        fwd.close()
        if split:
            idx = sorted(i for i, _ in split)
            self.warn(f"frame indices {idx[0]}-{idx[-1]}: tracking from key {a} and from key "
                      f"{b} disagree (IoU down to {min(v for _, v in split):.2f}); kept each "
                      "frame's nearer key instead of blending; check both key frames (a box or "
                      "click in the wrong place?) or add a key between them")
        for i in [i for i in self.small if a < i < b]:  # done with these frames
            self.small.pop(i)


def propagate(
    count: int,
    keys: dict[int, KeyFrame],
    image: Callable[[int], np.ndarray],
    segmenter: Segmenter | None,
    settings: TrackSettings,
    *,
    advance: Callable[[int], None] = lambda i: None,
    warn: Callable[[str], None] = lambda m: None,
    cancel: threading.Event | None = None,
    key_matte: Callable[[int, KeyFrame], np.ndarray] | None = None,
) -> MatteStore:
    """Mattes (float32, [0, 1]) for frames ``0..count-1`` of a shot from key frames given by
    index, in a store. ``image(i)`` is frame i as uint8 RGB; ``key_matte(i, key)`` gives the
    matte of a key frame (default: the segmenter's). ``segmenter`` None or mode ``flow`` only
    warps."""
    if not keys:
        raise ValueError("no key frames")
    tracker = _Tracker(image, segmenter, settings, advance, warn, cancel)
    get = key_matte or (lambda i, kf: segmenter.key(i, kf))  # type: ignore[union-attr]
    order = sorted(keys)
    anchors: dict[int, np.ndarray] = {}
    for k in order:
        tracker.check_cancel()
        anchors[k] = np.asarray(get(k, keys[k]), np.float32)
        advance(k)

    out = MatteStore(count, np.float32)
    for k in order:
        out[k] = anchors[k]
    # before the first key: backward only; after the last: forward only
    first, last = order[0], order[-1]
    for span, start in ((range(first - 1, -1, -1), first), (range(last + 1, count), last)):
        for i, m in zip(span, tracker.track(anchors[start], span), strict=True):
            out[i] = m
    for a, b in zip(order, order[1:], strict=False):
        if b - a >= 2:
            tracker.between(a, b, anchors, out)
    return out
