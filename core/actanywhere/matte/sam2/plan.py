"""Which frames the video model tracks from which anchor, in which direction (no model here).

Anchors are the key frames and, when a stopped run is resumed, the frames it already wrote
that border frames still to do. Before the first anchor the model tracks backward from it,
after the last forward; between two anchors each frame takes the track of the nearer one, and
the ``overlap`` frames either side of the midpoint are tracked from both and crossfaded (the
weight of the later anchor rising across them), so two tracks meet without a jump. Frames a
stopped run wrote that border nothing to do are read as they are.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

#: frames either side of the midpoint between two anchors tracked from both and crossfaded
OVERLAP = 2


@dataclass(frozen=True)
class Run:
    """Consecutive frames tracked from one anchor: ``step`` +1 forward, -1 backward."""

    anchor: int
    step: int
    frames: tuple[int, ...]


@dataclass(frozen=True)
class Plan:
    anchors: tuple[int, ...]  # prompted, painted or written frames the model is seeded with
    read: tuple[int, ...]  # frames written by a stopped run, used as they are
    runs: tuple[Run, ...]
    #: frame tracked from two anchors -> the weight of the later anchor's track
    blend: dict[int, float] = field(default_factory=dict)

    @property
    def steps(self) -> int:
        """Progress steps: one per anchor, per frame read, per frame tracked (blended frames
        are tracked twice)."""
        return len(self.anchors) + len(self.read) + sum(len(r.frames) for r in self.runs)


def make(count: int, keys: Iterable[int], done: Iterable[int] = (), *,
         overlap: int = OVERLAP) -> Plan:
    """The plan for frames ``0..count-1`` with key frames ``keys`` and frames ``done`` already
    written (kept, never tracked again)."""
    keys, done = set(keys), set(done)
    if not keys and not done:
        raise ValueError("no key frames")
    todo = [i for i in range(count) if i not in keys and i not in done]
    left = set(todo)
    bordering = {i for i in done if i - 1 in left or i + 1 in left}
    anchors = sorted((keys - done) | bordering)  # a key written already is read
    if not anchors:  # everything is written already
        return Plan((), tuple(sorted(done)), ())
    read = tuple(sorted(done - set(anchors)))
    runs: list[Run] = []
    blend: dict[int, float] = {}  # frames between two anchors are all to do or all written
    first, last = anchors[0], anchors[-1]
    if first - 1 in left:
        runs.append(Run(first, -1, tuple(range(first - 1, -1, -1))))
    for a, b in zip(anchors, anchors[1:], strict=False):
        gap = b - a - 1
        if gap <= 0 or a + 1 not in left:  # neighbours, or written frames between
            continue
        near_a = (gap + 1) // 2  # frames a+1 .. a+near_a are nearer a (the middle one too)
        fwd_end = min(b - 1, a + near_a + overlap)
        bwd_end = max(a + 1, a + near_a + 1 - overlap)
        runs.append(Run(a, 1, tuple(range(a + 1, fwd_end + 1))))
        runs.append(Run(b, -1, tuple(range(b - 1, bwd_end - 1, -1))))
        both = range(bwd_end, fwd_end + 1)
        for n, i in enumerate(both, start=1):
            blend[i] = n / (len(both) + 1)
    if last + 1 in left:
        runs.append(Run(last, 1, tuple(range(last + 1, count))))
    return Plan(tuple(anchors), read, tuple(runs), blend)
