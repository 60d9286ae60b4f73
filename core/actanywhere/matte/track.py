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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from ..errors import JobCancelled
from .flow import Flow


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


def propagate(
    count: int,
    keys: dict[int, KeyFrame],
    image: Callable[[int], np.ndarray],
    segmenter: Segmenter | None,
    settings: TrackSettings,
    advance: Callable[[int], None] = lambda i: None,
    warn: Callable[[str], None] = lambda m: None,
    cancel: threading.Event | None = None,
    key_matte: Callable[[int, KeyFrame], np.ndarray] | None = None,
) -> list[np.ndarray]:
    """Mattes (float32, [0, 1]) for frames ``0..count-1`` of a shot from key frames given by
    index. ``image(i)`` is frame i as uint8 RGB; ``key_matte(i, key)`` gives the matte of a key
    frame (default: the segmenter's). ``segmenter`` None or mode ``flow`` only warps."""
    if not keys:
        raise ValueError("no key frames")
    flow = Flow(settings.flow, settings.scale)
    small: dict[int, np.ndarray] = {}

    def gray(i: int) -> np.ndarray:
        if i not in small:
            small[i] = flow.small_gray(image(i))
        return small[i]

    def check_cancel() -> None:
        if cancel is not None and cancel.is_set():
            raise JobCancelled("cancelled while computing mattes")

    def step(src: int, state: tuple, dst: int) -> tuple:
        """One frame on: ``state`` is (anchor matte, maps from frame ``src`` into it, the
        matte of ``src``); returns the state at ``dst``."""
        check_cancel()
        anchor, maps, matte = state
        maps = flow.compose(maps, flow.subject_flow(gray(src), gray(dst), matte))
        warped = flow.sample(anchor, maps)
        if segmenter is None or settings.mode == "flow":
            out = (anchor, maps, warped)
        else:
            hint = hint_from(warped, settings.points, settings.negative_points)
            out = (anchor, maps, warped)
            if hint is not None:
                seg = np.asarray(segmenter.track(dst, hint), np.float32)
                agree = iou(seg, warped)
                if agree >= settings.min_agreement:
                    out = (seg, None, seg)  # the new matte anchors the next frames
                else:
                    warn(f"frame index {dst}: {segmenter.name} disagreed with the tracked matte "
                         f"(IoU {agree:.2f} < {settings.min_agreement}); kept the tracked matte")
        advance(dst)
        return out

    order = sorted(keys)
    anchors: dict[int, np.ndarray] = {}
    for k in order:
        check_cancel()
        get = key_matte or (lambda i, kf: segmenter.key(i, kf))  # type: ignore[union-attr]
        anchors[k] = np.asarray(get(k, keys[k]), np.float32)
        advance(k)

    out: list[np.ndarray | None] = [None] * count
    for k in order:
        out[k] = anchors[k]
    # before the first key: backward only; after the last: forward only
    st = (anchors[order[0]], None, anchors[order[0]])
    for i in range(order[0] - 1, -1, -1):
        st = step(i + 1, st, i)
        out[i] = st[2]
    st = (anchors[order[-1]], None, anchors[order[-1]])
    for i in range(order[-1] + 1, count):
        st = step(i - 1, st, i)
        out[i] = st[2]
    # between two keys: both directions, blended by distance where they agree; where they
    # disagree a blend is a ghost of two shapes, so the nearer key's track is kept, with a
    # warning naming the frames
    for a, b in zip(order, order[1:], strict=False):
        if b - a < 2:
            continue
        fwd, st = [], (anchors[a], None, anchors[a])
        for i in range(a + 1, b):
            st = step(i - 1, st, i)
            fwd.append(st[2])
        st = (anchors[b], None, anchors[b])
        split: list[tuple[int, float]] = []
        for i in range(b - 1, a, -1):
            st = step(i + 1, st, i)
            t = (i - a) / (b - a)  # 0 at a, 1 at b
            f, g = fwd[i - a - 1], st[2]
            agree = iou(f, g)
            if agree < DISAGREE:
                out[i] = f if t <= 0.5 else g
                split.append((i, agree))
            else:
                out[i] = (1 - t) * f + t * g
        if split:
            idx = sorted(i for i, _ in split)
            warn(f"frame indices {idx[0]}-{idx[-1]}: tracking from key {a} and from key {b} "
                 f"disagree (IoU down to {min(v for _, v in split):.2f}); kept each frame's "
                 "nearer key instead of blending; check both key frames (a box or click in "
                 "the wrong place?) or add a key between them")
        for i in [i for i in small if a < i < b]:  # done with these frames
            small.pop(i)
    return [np.asarray(o, np.float32) for o in out]  # type: ignore[arg-type]
