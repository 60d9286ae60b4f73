"""Training and measuring the ``subject`` motion source (motion/subject.py) on
``motion_clips``, whose camera is known. ``actanywhere train-motion`` runs both; the shipped
model was made with the command in ``motion/shipped/subject.json``.

Measured on held-out clips (seeds from 1,000,000 on, never trained on), per kind of shot: the
mean end-point error of each frame-to-frame background step, in pixels at 1920 px width, for
the learned source (as ``generate`` runs it: chained and smoothed) and two baselines: ``static``
(no camera move) and ``locked`` (the camera keeps the subject where it is: the background
moves and scales with the subject's foot point and height, right for a standing subject).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from multiprocessing import get_context

import numpy as np
import torch

from ..motion import subject
from ..motion.format import apply
from ..motion.smooth import smooth
from .motion_clips import KINDS, make_motion_clip

HELD_OUT = 1_000_000  # evaluation seeds start here; training seeds are 0..clips-1


Samples = tuple[np.ndarray, np.ndarray, np.ndarray]  # crops, growth, targets


def _clip_samples(seed: int) -> Samples:
    clip = make_motion_clip(seed, mattes_only=True)
    mattes = np.stack([subject.working(m) for m in clip.mattes])
    wins = [subject.window(m) for m in mattes]
    keep = [t for t in range(len(mattes) - 1) if wins[t] is not None and wins[t + 1] is not None]
    return (subject.crops(mattes, wins)[keep], subject.growth(mattes, wins)[keep],
            subject.targets(clip.camera, wins)[keep])


def dataset(clips: int, workers: int = 2, first: int = 0) -> Samples:
    """(crops, growth, targets) of ``clips`` clips from seed ``first`` on, mirrored too (a shot
    seen in a mirror: x translations and offsets from the centre change sign)."""
    seeds = range(first, first + clips)
    if workers > 1:
        with get_context("spawn").Pool(workers) as pool:
            parts = pool.map(_clip_samples, seeds, chunksize=16)
    else:
        parts = [_clip_samples(s) for s in seeds]
    x, g, y = (np.concatenate([p[i] for p in parts]) for i in range(3))
    flipped = x[..., ::-1].copy()
    flipped[:, -2] *= -1
    mirrored = y * np.array([-1.0, 1.0, 1.0], np.float32)
    return np.concatenate([x, flipped]), np.concatenate([g, g]), np.concatenate([y, mirrored])


def train(clips: int = 2000, epochs: int = 12, seed: int = 0, width: int = 16,
          workers: int = 2, report: Callable[[str], None] = print) -> subject.SubjectNet:
    """A network trained on ``clips`` clips (Adam, cosine-decayed, smooth L1)."""
    t0 = time.time()
    x, g, y = dataset(clips, workers)
    report(f"data: {len(x)} steps from {clips} clips ({time.time() - t0:.0f} s)")
    torch.manual_seed(seed)
    net = subject.SubjectNet(width)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    xt, gt, yt = (torch.from_numpy(np.ascontiguousarray(a)) for a in (x, g, y))
    batch = 256
    total = epochs * math.ceil(len(x) / batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 2e-3, total_steps=total, pct_start=0.1)
    gen = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        losses = []
        net.train()
        for i in range(0, len(x), batch):
            idx = order[i:i + batch]
            loss = torch.nn.functional.smooth_l1_loss(net(xt[idx], gt[idx]), yt[idx], beta=0.1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
        report(f"epoch {epoch + 1}/{epochs}: loss {np.mean(losses):.4f} "
               f"({time.time() - t0:.0f} s)")
    return net.eval()


def locked(mattes: np.ndarray) -> list[np.ndarray]:
    """The ``locked`` baseline's path: each step scales by the subject's height change about
    its foot point (the matte's centroid x, its lowest row) and moves with it."""
    steps, prev = [], None
    for m in mattes:
        ys, xs = np.nonzero(m > 0.5)
        cur = None if len(xs) < 4 else (m[ys, xs] @ xs / m[ys, xs].sum(), ys.max() + 1.0,
                                        float(ys.max() + 1 - ys.min()))
        if prev is not None:
            if cur is None:
                steps.append(np.eye(3))
                continue
            k = cur[2] / prev[2]
            steps.append(np.array([[k, 0, cur[0] - k * prev[0]], [0, k, cur[1] - k * prev[1]],
                                   [0, 0, 1.0]]))
        prev = cur if cur is not None else prev
    return subject.chain(steps)


def step_error(path: list[np.ndarray], truth: np.ndarray, width: int, height: int) -> float:
    """Mean end-point error (px at 1920 px width) of each frame-to-frame step of ``path``
    against the truth's, over a 9x6 grid of the frame."""
    xs, ys = np.meshgrid(np.linspace(0, width - 1, 9), np.linspace(0, height - 1, 6))
    pts = np.stack([xs.ravel(), ys.ravel()], axis=1)
    errs = []
    for t in range(len(path) - 1):
        at = apply(path[t], pts)  # where the background point is in frame t
        want = apply(truth[t + 1] @ np.linalg.inv(truth[t]), at)
        got = apply(path[t + 1] @ np.linalg.inv(path[t]), at)
        errs.append(np.linalg.norm(got - want, axis=1).mean())
    return float(np.mean(errs)) * 1920 / width


def evaluate(net: subject.SubjectNet, clips_per_kind: int = 30, frames: int = 16,
             radius: int = 2) -> dict[str, dict[str, float]]:
    """{kind: {"subject", "static", "locked": mean step error}} on held-out clips, plus
    "all" (every kind together)."""
    out: dict[str, dict[str, float]] = {}
    for k, kind in enumerate(KINDS):
        rows = []
        for i in range(clips_per_kind):
            clip = make_motion_clip(HELD_OUT + k * 10_000 + i, kind, frames, mattes_only=True)
            h, w = clip.mattes.shape[1:]
            est = subject.estimate(((f, None, m) for f, m in enumerate(clip.mattes)), w, h, net)
            path = smooth(est.frames, radius, est.confidence)
            learned = [path[f] for f in sorted(path)]
            rows.append((step_error(learned, clip.camera, w, h),
                         step_error([np.eye(3)] * frames, clip.camera, w, h),
                         step_error(locked(clip.mattes), clip.camera, w, h)))
        mean = np.mean(rows, axis=0)
        out[kind] = {"subject": float(mean[0]), "static": float(mean[1]),
                     "locked": float(mean[2])}
    out["all"] = {key: float(np.mean([out[k][key] for k in KINDS]))
                  for key in ("subject", "static", "locked")}
    return out


def table(result: dict[str, dict[str, float]]) -> str:
    lines = [f"{'kind':<10}{'subject':>10}{'static':>10}{'locked':>10}"]
    for kind, row in result.items():
        lines.append(f"{kind:<10}{row['subject']:>10.2f}{row['static']:>10.2f}"
                     f"{row['locked']:>10.2f}")
    return "\n".join(lines)
