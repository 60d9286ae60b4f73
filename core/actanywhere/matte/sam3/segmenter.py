"""SAM 3 as the segmenter of a shot (see matte/track.py).

``propagate_objects`` runs one streaming session over the shot with every object's text
prompt: SAM 3 detects each concept on every frame and tracks its instances by id. An object
without key frames is the union of every instance its text found; key frames' points and boxes
pick instances (pick.py) and the object is those instances, wherever they go. ``propagate``
is the single-subject case (``matte.text`` and ``matte.keys``); ``key`` and ``track`` answer
one frame alone.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np

from ...errors import InputError, JobCancelled
from ...progress import Reporter, null_reporter
from ..sam2.loader import VideoModel
from ..store import MatteStore
from ..track import Hint, KeyFrame, ObjectPrompts
from .pick import pick
from .session import Instance, TextSession


def model_memory(vm: VideoModel) -> int:
    """Tracked frames the tracker reads back (mask memories and object pointers)."""
    cfg = vm.model.config.tracker_config
    return max(int(cfg.num_maskmem), int(cfg.max_object_pointers_in_encoder)) - 1


class Sam3Segmenter:
    """Segmenter over frames given as uint8 RGB by index (``image(i)``); ``text`` is the
    single subject's prompt (matte.text)."""

    def __init__(self, vm: VideoModel, image: Callable[[int], np.ndarray], *, text: str | None,
                 settings: Any, report: Reporter = null_reporter) -> None:
        self.vm, self.image, self.text, self.report = vm, image, text, report
        self.name = vm.info.name
        self.keep = settings.max_memory_frames or model_memory(vm)
        self.last: TextSession | None = None  # the last shot's session (its counts)

    # --------------------------------------------------------------- one frame
    def _alone(self, index: int, text: str, points, boxes, where: str) -> np.ndarray:
        s = TextSession(self.vm, self.image, texts=[text], keep=self.keep)
        found = {oid: s.matte(lg) for oid, (_, lg) in s.step(index).items()}
        return _union(found, s.size, _chosen(found, points, boxes, text, where))

    def key(self, index: int, key: KeyFrame) -> np.ndarray:
        """The key frame's matte: the instances of ``text`` its points and boxes pick."""
        assert self.text, "sam3 needs matte.text"
        return self._alone(index, self.text, key.points, key.boxes, f"key frame {key.frame}")

    def track(self, index: int, hint: Hint) -> np.ndarray:
        """Frame ``index`` alone: the instance of ``text`` filling the hint's box best."""
        assert self.text, "sam3 needs matte.text"
        return self._alone(index, self.text, [], [hint.box], f"frame index {index}")

    # --------------------------------------------------------------- whole shot
    def steps(self, frames: Sequence[int], keys: Sequence[int]) -> int:
        """How many times ``propagate`` calls ``advance``: once a frame."""
        del keys
        return len(frames)

    def propagate(self, frames: Sequence[int], keys: dict[int, KeyFrame], *,
                  key_matte: Callable[[int, KeyFrame], np.ndarray] | None = None,
                  advance: Callable[[int], None] = lambda i: None,
                  warn: Callable[[str], None] = lambda m: None,
                  cancel: threading.Event | None = None) -> MatteStore:
        """The subject's matte on every frame: ``text``'s instances (those picked by the key
        frames' prompts, else all)."""
        del key_matte  # key frames pick instances; they are not mattes of their own
        subject = SimpleNamespace(name="", text=self.text, keys=[keys[i] for i in sorted(keys)])
        return self.propagate_objects(frames, [subject], advance=advance, warn=warn,
                                      cancel=cancel)[""]

    def steps_objects(self, frames: Sequence[int], objects: Sequence[ObjectPrompts]) -> int:
        """How many times ``propagate_objects`` calls ``advance``: once a frame."""
        del objects
        return len(frames)

    def propagate_objects(self, frames: Sequence[int], objects: Sequence[ObjectPrompts], *,
                          painted: Callable[[KeyFrame], np.ndarray] | None = None,
                          advance: Callable[[int], None] = lambda i: None,
                          warn: Callable[[str], None] = lambda m: None,
                          cancel: threading.Event | None = None) -> dict[str, MatteStore]:
        """Each object's matte (float32, [0, 1]) on frames ``0..len(frames)-1`` (``frames``:
        plate frame numbers), from one session over the shot; key frames pick instances, so a
        painted key matte (``painted``) is not read."""
        del painted
        texts = [str(o.text) for o in objects]
        session = TextSession(self.vm, self.image, texts=texts, keep=self.keep)
        found: list[dict[int, Instance]] = []
        for i in range(len(frames)):
            if cancel is not None and cancel.is_set():
                raise JobCancelled("cancelled while computing mattes")
            found.append(session.step(i))
            advance(i)
        self.last = session
        false_starts = session.spurious()
        if false_starts:
            found = [{oid: v for oid, v in inst.items() if oid not in false_starts}
                     for inst in found]
        out: dict[str, MatteStore] = {}
        for o in objects:
            ids = _object_ids(o, found, frames, session)
            mattes, seen = MatteStore(len(found), np.float32), False
            for i, inst in enumerate(found):
                m = _union([session.matte(lg) for oid, (t, lg) in inst.items()
                            if t == o.text and (ids is None or oid in ids)], session.size, None)
                mattes[i], seen = m, seen or bool((m > 0.5).any())
            if not seen:
                warn(f"sam3: no {o.text!r} found in the shot" +
                     (f" (object {o.name})" if o.name else "") + "; check the text prompt")
            out[o.name] = mattes
        return out


def _object_ids(o: ObjectPrompts, found: list[dict[int, Instance]], frames: Sequence[int],
                session: TextSession) -> set[int] | None:
    """The instance ids an object's key frames pick; None (every instance) without keys."""
    if not o.keys:
        return None
    ids: set[int] = set()
    for k in o.keys:
        where = f"key frame {k.frame}" + (f" (object {o.name})" if o.name else "")
        inst = found[list(frames).index(k.frame)]
        cands = {oid: session.matte(lg) for oid, (t, lg) in inst.items() if t == o.text}
        ids |= _chosen(cands, k.points, k.boxes, str(o.text), where)
    return ids


def _chosen(cands: dict[int, np.ndarray], points, boxes, text: str, where: str) -> set[int]:
    if not cands:
        raise InputError(f"{where}: SAM 3 found no {text!r} on this frame to pick from; key a "
                         "frame where it is found, or drop the key to take every instance")
    got = pick(cands, points=points, boxes=boxes)
    if not got:
        raise InputError(f"{where}: none of the {len(cands)} {text!r} instance(s) SAM 3 found "
                         "there is under its points or boxes; move them onto the one wanted")
    return got


def _union(mattes, size: tuple[int, int] | None, ids: set[int] | None) -> np.ndarray:
    """The soft union (per-pixel maximum) of ``mattes`` (a dict filtered by ``ids``, or any
    iterable of mattes)."""
    if isinstance(mattes, dict):
        mattes = [m for oid, m in mattes.items() if ids is None or oid in ids]
    mattes = list(mattes)
    if not mattes:
        return np.zeros(size or (1, 1), np.float32)
    return np.maximum.reduce(mattes).astype(np.float32)
