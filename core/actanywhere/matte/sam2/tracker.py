"""A plan (plan.py) carried out on a session (session.py): anchors seeded, runs tracked, the
frames between two anchors crossfaded where both tracks agree."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import numpy as np

from ...errors import JobCancelled
from ..store import MatteStore
from ..track import DISAGREE, iou
from .plan import Plan
from .session import Session


def run(session: Session, plan: Plan, *, frames: Sequence[int], objects: int = 1,
        anchor: Callable[[int], list[np.ndarray]], read: Callable[[int], list[np.ndarray]],
        advance: Callable[[int], None] = lambda i: None,
        warn: Callable[[str], None] = lambda m: None,
        cancel: threading.Event | None = None) -> list[MatteStore]:
    """Each object's matte (float16, [0, 1]) of every frame of the shot, a store each (the
    session tracks ``objects`` objects, all keyed on the plan's anchors); ``frames`` are the
    plate frame numbers (for messages). ``anchor(i)`` seeds the session with anchor i and gives
    the objects' mattes, ``read(i)`` gives the mattes a stopped run wrote; ``advance(i)`` once
    per plan step."""

    def check() -> None:
        if cancel is not None and cancel.is_set():
            raise JobCancelled("cancelled while computing mattes")

    def put(i: int, mattes: list[np.ndarray]) -> None:
        for o, m in zip(out, mattes, strict=True):
            o[i] = m

    out = [MatteStore(len(frames)) for _ in range(objects)]
    for i in plan.read:
        check()
        put(i, read(i))
        advance(i)
    for i in plan.anchors:
        check()
        put(i, anchor(i))
        advance(i)
    first = [MatteStore(len(frames)) for _ in range(objects)]  # blended frames' first tracks
    pending: set[int] = set()
    split: list[tuple[int, float]] = []
    for r in plan.runs:
        session.start_run()
        for n, i in enumerate(r.frames):
            check()
            ms = session.track(i, reverse=r.step < 0, ahead=r.frames[n + 1:])
            if i not in plan.blend:
                put(i, ms)
            elif i not in pending:
                for f, m in zip(first, ms, strict=True):
                    f[i] = m
                pending.add(i)
            else:
                pending.discard(i)
                for o, f, m in zip(out, first, ms, strict=True):
                    other = f[i].astype(np.float32)
                    fwd, bwd = (other, m) if r.step < 0 else (m, other)
                    w, agree = plan.blend[i], iou(fwd, bwd)
                    if agree < DISAGREE:  # a blend of two shapes is a ghost: the nearer track
                        o[i] = fwd if w <= 0.5 else bwd
                        split.append((i, agree))
                    else:
                        o[i] = (1.0 - w) * fwd + w * bwd
            advance(i)
    for f in first:
        f.close()
    if split:
        shown = sorted({frames[i] for i, _ in split})
        warn(f"frames {shown[0]}-{shown[-1]}: the tracks from the key frames either side "
             f"disagree (IoU down to {min(v for _, v in split):.2f}); kept each frame's nearer "
             "key instead of blending; check both key frames or add a key between them")
    missing = sorted({frames[i] for o in out for i in o.missing()})
    assert not missing, f"plan left frames {missing} without a matte"
    return out
