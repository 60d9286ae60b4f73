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


def run(session: Session, plan: Plan, *, frames: Sequence[int],
        anchor: Callable[[int], np.ndarray], read: Callable[[int], np.ndarray],
        advance: Callable[[int], None] = lambda i: None,
        warn: Callable[[str], None] = lambda m: None,
        cancel: threading.Event | None = None) -> MatteStore:
    """The matte (float16, [0, 1]) of every frame of the shot, in a store; ``frames`` are the
    plate frame numbers (for messages). ``anchor(i)`` seeds the session with anchor i and gives
    its matte, ``read(i)`` gives the matte a stopped run wrote; ``advance(i)`` once per plan
    step."""

    def check() -> None:
        if cancel is not None and cancel.is_set():
            raise JobCancelled("cancelled while computing mattes")

    out = MatteStore(len(frames))
    for i in plan.read:
        check()
        out[i] = read(i)
        advance(i)
    for i in plan.anchors:
        check()
        out[i] = anchor(i)
        advance(i)
    first = MatteStore(len(frames))  # a blended frame's first track, until the second
    pending: set[int] = set()
    split: list[tuple[int, float]] = []
    for r in plan.runs:
        session.start_run()
        for n, i in enumerate(r.frames):
            check()
            m = session.track(i, reverse=r.step < 0, ahead=r.frames[n + 1:])
            if i not in plan.blend:
                out[i] = m
            elif i not in pending:
                first[i] = m
                pending.add(i)
            else:
                pending.discard(i)
                other = first[i].astype(np.float32)
                fwd, bwd = (other, m) if r.step < 0 else (m, other)
                w, agree = plan.blend[i], iou(fwd, bwd)
                if agree < DISAGREE:  # a blend of two shapes is a ghost: the nearer track
                    out[i] = fwd if w <= 0.5 else bwd
                    split.append((i, agree))
                else:
                    out[i] = (1.0 - w) * fwd + w * bwd
            advance(i)
    first.close()
    if split:
        shown = [frames[i] for i, _ in sorted(split)]
        warn(f"frames {shown[0]}-{shown[-1]}: the tracks from the key frames either side "
             f"disagree (IoU down to {min(v for _, v in split):.2f}); kept each frame's nearer "
             "key instead of blending; check both key frames or add a key between them")
    missing = [frames[i] for i in out.missing()]
    assert not missing, f"plan left frames {missing} without a matte"
    return out
