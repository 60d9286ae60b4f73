"""The video model as the segmenter of a shot (see matte/track.py).

``propagate`` tracks the whole shot with the model's own memory: every anchor (key frame, or
a frame a stopped run wrote) seeds one session, then the plan's runs carry the subject forward
and backward from them (plan.py, tracker.py). ``key`` gives a key frame's matte from its
prompts (inside that session while it runs); ``track`` answers one frame's prompts alone, for
``track.propagate``'s optical-flow tracking.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ...errors import InputError
from ...media.imageio import ImageInfo
from ...progress import ProgressEvent, Reporter, null_reporter
from ..store import MatteStore
from ..track import Hint, KeyFrame, ObjectPrompts
from . import plan, resume, tracker
from .loader import VideoModel
from .session import Session


def model_memory(vm: VideoModel) -> int:
    """Tracked frames the model reads back: mask memories and object pointers (15 for SAM
    2.1: 6 and 15)."""
    cfg = vm.model.config
    return max(int(cfg.num_maskmem), int(cfg.max_object_pointers_in_encoder)) - 1


class Sam2Segmenter:
    """Segmenter over frames given as uint8 RGB by index (``image(i)``)."""

    def __init__(self, vm: VideoModel, image: Callable[[int], np.ndarray], *, ref: ImageInfo,
                 settings: Any, report: Reporter = null_reporter) -> None:
        self.vm, self.image, self.ref, self.settings, self.report = (vm, image, ref, settings,
                                                                     report)
        self.name = vm.info.name
        self.keep = settings.max_memory_frames or model_memory(vm)
        self.batch = settings.batch if vm.device.type == "cuda" else 1
        self.session: Session | None = None  # the shot's, while propagate runs
        self.last: Session | None = None  # the last shot's (its counts)
        self._plans: dict[tuple, tuple[plan.Plan, dict[int, str]]] = {}

    def _scratch(self) -> Session:
        return Session(self.vm, self.image, keep=self.keep)

    # --------------------------------------------------------------- one frame
    def key(self, index: int, key: KeyFrame) -> np.ndarray:
        """The key frame's matte from its clicks and boxes (several boxes: united); inside a
        running ``propagate`` the prompts also seed the shot's session."""
        s = self.session or self._scratch()
        if len(key.boxes) > 1:
            m = s.boxes(index, key.points, key.boxes)
            if self.session is not None:
                s.mask(index, m)
            return m
        return s.prompt(index, key.points, key.boxes[0] if key.boxes else None)

    def track(self, index: int, hint: Hint) -> np.ndarray:
        """Frame ``index`` from prompts derived from the warped previous matte (no memory)."""
        points = [(float(x), float(y), int(lab))
                  for (x, y), lab in zip(hint.points, hint.labels, strict=True)]
        return self._scratch().prompt(index, points, hint.box)

    # --------------------------------------------------------------- whole shot
    def _plan(self, frames: Sequence[int], keys: Sequence[int]
              ) -> tuple[plan.Plan, dict[int, str]]:
        at = (tuple(frames), tuple(sorted(keys)))
        if at not in self._plans:
            done = resume.written(self.settings.resume_from, frames)
            self._plans[at] = (plan.make(len(frames), keys, done), done)
        return self._plans[at]

    def steps(self, frames: Sequence[int], keys: Sequence[int]) -> int:
        """How many times ``propagate`` calls ``advance``."""
        return self._plan(frames, keys)[0].steps

    def propagate(self, frames: Sequence[int], keys: dict[int, KeyFrame], *,
                  key_matte: Callable[[int, KeyFrame], np.ndarray],
                  advance: Callable[[int], None] = lambda i: None,
                  warn: Callable[[str], None] = lambda m: None,
                  cancel: Any = None) -> MatteStore:
        """Mattes (float16, [0, 1]) of frames ``0..len(frames)-1`` (``frames``: plate frame
        numbers) from key frames by index; ``key_matte(i, key)`` gives a key frame's matte (a
        painted one as is, else ``self.key``)."""
        p, done = self._plan(frames, list(keys))
        if done:
            self.report(ProgressEvent("matte", message=(
                f"resuming: {len(done)} matte frame(s) kept from "
                f"{self.settings.resume_from}, tracking restarts beside them")))
        read = resume.reader(done, self.ref, self.settings.resume_channel, warn)
        session = self.session = Session(self.vm, self.image, keep=self.keep, batch=self.batch)

        def anchor(i: int) -> list[np.ndarray]:
            if i in done:
                m = read(i)
            else:
                m = np.asarray(key_matte(i, keys[i]), np.float32)
                if keys[i].matte is None:  # prompted: ``key`` seeded the session
                    return [m]
            session.mask(i, m)
            return [m]

        try:
            return tracker.run(session, p, frames=frames, anchor=anchor,
                               read=lambda i: [read(i)], advance=advance, warn=warn,
                               cancel=cancel)[0]
        finally:
            self.session, self.last = None, session

    # --------------------------------------------------------------- several objects
    @staticmethod
    def _groups(objects: Sequence[ObjectPrompts]) -> list[list[ObjectPrompts]]:
        """The objects keyed on the same frames, each group tracked in one session."""
        groups: dict[tuple[int, ...], list[ObjectPrompts]] = {}
        for o in objects:
            groups.setdefault(tuple(sorted({k.frame for k in o.keys})), []).append(o)
        return list(groups.values())

    def steps_objects(self, frames: Sequence[int], objects: Sequence[ObjectPrompts]) -> int:
        """How many times ``propagate_objects`` calls ``advance``."""
        at = {f: i for i, f in enumerate(frames)}
        return sum(self.steps(frames, [at[k.frame] for k in g[0].keys])
                   for g in self._groups(objects))

    def propagate_objects(self, frames: Sequence[int], objects: Sequence[ObjectPrompts], *,
                          painted: Callable[[KeyFrame], np.ndarray],
                          advance: Callable[[int], None] = lambda i: None,
                          warn: Callable[[str], None] = lambda m: None,
                          cancel: Any = None) -> dict[str, MatteStore]:
        """Each object's mattes (float16, [0, 1]) of frames ``0..len(frames)-1``: the objects
        keyed on the same frames share one session (each frame encoded once for all of them),
        the others have one each; ``painted(key)`` reads a key's painted matte."""
        at = {f: i for i, f in enumerate(frames)}
        out: dict[str, MatteStore] = {}
        for group in self._groups(objects):
            p, _ = self._plan(frames, [at[k.frame] for k in group[0].keys])
            session = self.session = Session(self.vm, self.image, keep=self.keep,
                                             batch=self.batch)
            try:
                stores = tracker.run(
                    session, p, frames=frames, objects=len(group),
                    anchor=lambda i, g=group, s=session: self._anchor(s, g, i, frames[i],
                                                                      painted),
                    read=lambda i: [], advance=advance, warn=warn, cancel=cancel)
            finally:
                self.session, self.last = None, session
            out.update({o.name: m for o, m in zip(group, stores, strict=True)})
        return {o.name: out[o.name] for o in objects}

    def _anchor(self, session: Session, group: Sequence[ObjectPrompts], i: int, frame: int,
                painted: Callable[[KeyFrame], np.ndarray]) -> list[np.ndarray]:
        """Every object's key on frame i as its prompt in ``session``, run once: each one's
        matte (a painted or several-box key's own matte, else the model's answer)."""
        given: dict[int, np.ndarray] = {}
        for n, o in enumerate(group):
            k = {k.frame: k for k in o.keys}[frame]
            if k.matte is not None or len(k.boxes) > 1:
                given[n] = (np.asarray(painted(k), np.float32) if k.matte is not None
                            else session.boxes(i, k.points, k.boxes))
                session.add_mask(i, given[n], obj=n + 1)
            else:
                session.add_prompt(i, k.points, k.boxes[0] if k.boxes else None, obj=n + 1)
        mattes = [given.get(n, m) for n, m in enumerate(session.anchor(i))]
        for o, m in zip(group, mattes, strict=True):
            if not (m > 0.5).any():
                raise InputError(f"key frame {frame} (object {o.name}): the sam2 matte is "
                                 "empty (no subject found from its prompts); add points or a "
                                 "box on the subject")
        return mattes
