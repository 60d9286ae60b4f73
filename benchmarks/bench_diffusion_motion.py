"""Does the diffusion engine's background follow the shot's camera? Held-out synthetic shots
(``train/motion_clips``, seeds never trained on) run through ``generate`` with the shipped
model three ways: no motion; the true motion as the per-window condition only
(``init_strength`` 0); the true motion with ``init_strength`` 0.85. The generated background
layer (``bg``) is then tracked (``motion track``, outside the plate's matte) and its
frame-to-frame steps compared with the truth: mean end-point error in pixels at 1920 px width
(``train/subject_motion.step_error``), beside the static camera's.

    .venv/bin/python benchmarks/bench_diffusion_motion.py            # 5 shots, 8 frames
    .venv/bin/python benchmarks/bench_diffusion_motion.py --shots 10 --steps 20
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "core"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

from actanywhere import spec  # noqa: E402
from actanywhere.media import imageio, imagewrite  # noqa: E402
from actanywhere.media.imageio import Window  # noqa: E402
from actanywhere.motion import Motion, save, track  # noqa: E402
from actanywhere.shot import job  # noqa: E402
from actanywhere.train import subject_motion as sm  # noqa: E402
from actanywhere.train.motion_clips import make_motion_clip  # noqa: E402

KINDS = ("held", "standing", "push", "tilt", "follow")


def run_shot(root: str, clip, steps: int, how: str) -> float:
    """Generate the shot ``how`` (none | condition | init) and return the bg layer's step
    error against the truth (nan if the tracker refuses it)."""
    n, h, w = clip.mattes.shape
    frames = list(range(1001, 1001 + n))
    motion_file = os.path.join(root, "truth.json")
    truth = dict(zip(frames, clip.camera, strict=True))
    save(Motion("truth", w, h, 1001, truth, {f: 1.0 for f in frames}), motion_file)
    out = os.path.join(root, how, "comp.####.exr")
    data = {
        "plate": {"path": os.path.join(root, "plate", "p.####.exr")},
        "background": {"path": os.path.join(root, "bg.exr")},
        "engine": {"name": "diffusion", "device": "cpu"},
        "diffusion": {"resolution": 64, "steps": steps, "frames_per_window": 8, "overlap": 0,
                      "seed": 0, "init_strength": 0.85 if how == "init" else 0.0},
        "motion": {"source": "none"} if how == "none" else {"source": "file",
                                                            "path": motion_file},
        "output": {"path": out, "existing": "overwrite"},
    }
    job.run(spec.from_dict(data), lambda _e: None)
    bg = ["bg.R", "bg.G", "bg.B"]
    seq = [(f, imageio.read(out.replace("####", str(f)), bg).channels(bg), m)
           for f, m in zip(frames, clip.mattes, strict=True)]
    try:
        got = track.estimate(seq, w, h, track.TrackSettings(min_features=8))
    except Exception:  # the generated background too flat to track: reported, not hidden
        return float("nan")
    return sm.step_error([got.frames[f] for f in frames], clip.camera, w, h)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shots", type=int, default=5)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--steps", type=int, default=10)
    ns = ap.parse_args()
    print(f"shipped diffusion model, CPU, resolution 64, {ns.steps} steps, {ns.frames} frames "
          "at 192x128; px a step at 1920 width (nan: the tracker refused the output)")
    print(f"{'shot':<12}" + "".join(f"{h:>11}" for h in ("static", "none", "condition",
                                                         "init 0.85")))
    rows = []
    t0 = time.perf_counter()
    for i in range(ns.shots):
        kind = KINDS[i % len(KINDS)]
        clip = make_motion_clip(sm.HELD_OUT + 500 + i, kind, ns.frames)
        root = tempfile.mkdtemp(prefix="aa-bench-dmotion-")
        os.makedirs(os.path.join(root, "plate"))
        h, w = clip.mattes.shape[1:]
        for j, (rgb, m) in enumerate(zip(clip.frames, clip.mattes, strict=True)):
            imagewrite.write_exr(os.path.join(root, "plate", f"p.{1001 + j}.exr"),
                              ["R", "G", "B", "A"], np.dstack([rgb ** 2.2, m]),
                              Window(0, 0, w, h))
        imagewrite.write_exr(os.path.join(root, "bg.exr"), ["R", "G", "B"],
                          clip.backgrounds[0] ** 2.2, Window(0, 0, w, h))
        row = [sm.step_error([np.eye(3)] * ns.frames, clip.camera, w, h)]
        row += [run_shot(root, clip, ns.steps, how) for how in ("none", "condition", "init")]
        rows.append(row)
        print(f"{kind + ' ' + str(i):<12}" + "".join(f"{v:>11.2f}" for v in row))
    mean = np.nanmean(rows, axis=0)
    print(f"{'mean':<12}" + "".join(f"{v:>11.2f}" for v in mean))
    print(f"init 0.85 / none: {mean[3] / mean[1]:.2f}x; condition / none: "
          f"{mean[2] / mean[1]:.2f}x ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
