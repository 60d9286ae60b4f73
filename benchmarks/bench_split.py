"""The seam of a long diffusion shot generated in parts (``farm export --split``).

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_split.py     # shipped model, CPU

In one run, one 48-frame 192x108 shot (the test plate: a subject crossing a grey set,
the demo's background gradient; the camera pans 1 px a frame, motion keys) three ways:
1. a single pass (the reference);
2. parts of 24 frames sharing 8 (1-24, 17-40, 33-48) generated with the whole shot's noise,
   windows and camera path (``diffusion.shot_frames``) and cross-faded by ``farm join``;
3. the same parts generated as independent shots (no ``shot_frames``) and cut hard at the
   middle of each overlap (what splitting without this support gives).
Printed, on the ``bg`` layer (the generated background), as mean absolute differences: each
way against the single pass, on the frames of one part and on the shared frames, and the
seam: how much a frame-to-frame step at a join differs from the single pass's own step
there, over the single pass's median step (0 = the joins move exactly as a single pass).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "core"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from conftest import make_shot  # noqa: E402

from actanywhere import spec  # noqa: E402
from actanywhere.farm import join  # noqa: E402
from actanywhere.media import imageio  # noqa: E402
from actanywhere.shot import job  # noqa: E402

BG = ["bg.R", "bg.G", "bg.B"]


def _bg(pattern: str, frames: list[int]) -> list[np.ndarray]:
    return [imageio.read(pattern.replace("####", f"{f:04d}"), BG).pixels for f in frames]


def _run(data: dict, frames: str | None, whole: str | None, out: str) -> float:
    d = json.loads(json.dumps(data))
    if frames:
        d["plate"]["frames"] = frames
    if whole:
        d["diffusion"]["shot_frames"] = whole
    d["output"]["path"] = out
    t0 = time.perf_counter()
    job.run(spec.from_dict(d))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--part", type=int, default=24)
    ap.add_argument("--overlap", type=int, default=8)
    ap.add_argument("--steps", type=int, default=10)
    ns = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="aa-bench-split-"))
    n = ns.frames
    frames = list(range(1, n + 1))
    plate, bg = make_shot(root / "sh010", frames=frames, size=(192, 108))
    data = {"plate": {"path": str(plate)}, "background": {"path": str(bg)},
            "output": {"path": "", "proxy": False},
            "engine": {"name": "diffusion", "device": "cpu"},
            "motion": {"source": "keys", "keys": ["1:0,0", f"{n}:{-(n - 1)},0"]},
            "diffusion": {"steps": ns.steps}}
    t_single = _run(data, None, None, str(root / "single" / "c.####.exr"))
    parts = join.plan(frames, ns.part, ns.overlap)
    t_parts = sum(_run(data, f"{p[0]}-{p[-1]}", f"1-{n}",
                       join.part_pattern(str(root / "parts"), p, "sh010")) for p in parts)
    out = dict(data, output={"path": str(root / "joined" / "sh010.####.exr"), "proxy": False})
    t_join = join.join(spec.from_dict(out), parts, str(root / "parts"), "sh010").seconds
    for p in parts:
        _run(data, f"{p[0]}-{p[-1]}", None, join.part_pattern(str(root / "alone"), p, "sh010"))

    single = _bg(str(root / "single" / "c.####.exr"), frames)
    joined = _bg(str(root / "joined" / "sh010.####.exr"), frames)
    # the hard cut: each shared run of frames split at its middle
    owner: dict[int, int] = {}
    for i, p in enumerate(parts):
        for f in p:
            owner.setdefault(f, i)
        if i:
            shared = [f for f in p if f in parts[i - 1]]
            for f in shared[len(shared) // 2 :]:
                owner[f] = i
    cut = [imageio.read(join.part_pattern(str(root / "alone"), parts[owner[f]], "sh010")
                        .replace("####", f"{f:04d}"), BG).pixels for f in frames]
    shared = {f for f, w in join.weights(parts).items() if len(w) > 1}
    joins = sorted({i for i in range(n - 1) if frames[i] in shared or frames[i + 1] in shared})

    def diff(a: list[np.ndarray]) -> np.ndarray:
        return np.array([np.abs(x - y).mean() for x, y in zip(a, single, strict=True)])

    def steps(a: list[np.ndarray]) -> np.ndarray:
        return np.array([np.abs(y - x).mean() for x, y in zip(a, a[1:], strict=False)])

    median = float(np.median(steps(single)))
    away = [i for i in range(n) if frames[i] not in shared]
    at = [i for i in range(n) if frames[i] in shared]
    print(f"{n}-frame 192x108 shot, shipped model, {ns.steps} steps, CPU ({os.cpu_count()} "
          f"cores); parts {', '.join(f'{p[0]}-{p[-1]}' for p in parts)}; bg layer, mean |diff|")
    print(f"  single pass {t_single:.1f} s; parts {t_parts:.1f} s + join {t_join:.1f} s; "
          f"median frame step of the single pass {median:.4f}")
    for name, seq in (("split + join (shot_frames)", joined), ("independent parts, hard cut", cut)):
        d, s = diff(seq), steps(seq)
        extra = np.abs(s - steps(single))[joins].max()
        print(f"  {name:28s} vs single: frames of one part max {d[away].max():.4f}, shared "
              f"frames max {d[at].max():.4f}; seam (a step at a join beyond the single "
              f"pass's own there) {extra / median:.2f}x the median step")


if __name__ == "__main__":
    main()
