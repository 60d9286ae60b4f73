"""Does the diffusion engine follow the background it is given, at plate resolution?

Shots made from real HDR photographs (the OpenEXR corpus's Backgrounds): each photograph moved
along a held-out camera path (``train/motion_clips.photo_shot``) with a walking figure over it,
written as an RGBA EXR plate at 384x216. ``generate`` (diffusion engine, the true camera path
as a motion file) runs four times per shot: the shot's own photograph as the background with
seeds 0 and 1, another photograph (seed 0), and the own photograph with ``detail model``. The
``bg`` layer, read back, is scored outside the subject against the truth (the photograph as
the shot moved it), in the model's display-referred colour:

- condition sensitivity: mean |bg(own) - bg(other)| / mean |bg(seed 0) - bg(seed 1)|
- PSNR against the truth (dB); colour error (mean/std per channel) and structure (SSIM at 1/4
  resolution) against the truth frame by frame; flicker (second difference at 1/4 resolution)
- highest value of the bg layer (linear) beside the truth's: highlights above 1 survive?

Each model given is measured the same way in the same run (``--baseline`` for a side by side).

    .venv/bin/python benchmarks/bench_condition.py
    .venv/bin/python benchmarks/bench_condition.py --baseline /tmp/shipped-0.1 --steps 20
"""

from __future__ import annotations

import argparse
import glob
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
from actanywhere.media.color import ColorContext  # noqa: E402
from actanywhere.media.imageio import Window  # noqa: E402
from actanywhere.model import SHIPPED  # noqa: E402
from actanywhere.motion import Motion, save  # noqa: E402
from actanywhere.shot import job  # noqa: E402
from actanywhere.train import metrics  # noqa: E402
from actanywhere.train import subject_motion as sm  # noqa: E402
from actanywhere.train.motion_clips import photo_shot  # noqa: E402

CORPUS = os.path.join(os.path.dirname(HERE), "..", "shared", "exr-corpus", "Backgrounds")
KINDS = ("held", "push", "follow", "tilt", "standing")
W, H = 384, 216


def generate(root: str, model: str, background: str, seed: int, detail: str, steps: int,
             frames: list[int], steady: float | None = None) -> np.ndarray:
    """The bg layer (T, H, W, 3), linear, of one generate run."""
    out = os.path.join(root, f"out-{abs(hash((model, background, seed, detail)))}",
                       "comp.####.exr")
    data = {
        "plate": {"path": os.path.join(root, "plate", "p.####.exr")},
        "background": {"path": background},
        "engine": {"name": "diffusion", "device": "cpu", "model": model},
        "diffusion": {"resolution": 64, "steps": steps, "frames_per_window": len(frames),
                      "overlap": 0, "seed": seed, "detail": detail,
                      **({} if steady is None else {"steady": steady})},
        "motion": {"source": "file", "path": os.path.join(root, "truth.json")},
        "output": {"path": out, "existing": "overwrite"},
    }
    job.run(spec.from_dict(data), lambda _e: None)
    bg = ["bg.R", "bg.G", "bg.B"]
    return np.stack([imageio.read(out.replace("####", str(f)), bg).channels(bg)
                     for f in frames])


def score(color: ColorContext, runs: dict[str, np.ndarray], truth: np.ndarray,
          mattes: np.ndarray) -> dict[str, float]:
    disp = {k: color.to_model(v) for k, v in runs.items()}
    true = color.to_model(truth)
    mask = (mattes < 0.5).astype(np.float32)
    bg = mask > 0.5
    own = disp["own"]
    spread = np.abs(own - disp["seed"])[bg].mean()
    out = {"sensitivity": float(np.abs(own - disp["other"])[bg].mean() / max(spread, 1e-6))}
    for name, video in (("plate", own), ("model", disp["model"])):
        out[f"psnr_{name}"] = metrics.psnr(video, true, np.broadcast_to(bg[..., None],
                                                                        video.shape))
    out["colour"] = float(np.mean([metrics.colour_error(own[t:t + 1], true[t], mask[t:t + 1])
                                   for t in range(len(own))]))
    out["structure"] = float(np.mean([metrics.structure(own[t:t + 1], true[t], mask[t:t + 1])
                                      for t in range(len(own))]))
    out["flicker"] = metrics.flicker(own, mask)
    out["max"] = float(runs["own"].max())
    out["max_truth"] = float(truth.max())
    return out


def sheet(path: str, color: ColorContext, clip, runs: dict[str, np.ndarray]) -> None:
    """Rows of three frames (first, middle, last): the plate; the bg layer with detail model;
    with detail plate; with another photograph as the background; the truth."""
    from actanywhere.media.preview import contact_sheet

    picks = [0, len(clip.frames) // 2, len(clip.frames) - 1]
    rows = [clip.frames, runs["model"], runs["own"], runs["other"], clip.backgrounds]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    contact_sheet(path, [[color.to_model(r[i]) for i in picks] for r in rows])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=SHIPPED)
    ap.add_argument("--baseline", default=None, help="another model folder, measured alike")
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--pictures", default=None, help="write PNG sheets of each shot here")
    ap.add_argument("--steady", type=float, default=None,
                    help="diffusion.steady (default: the engine's; 0: the frames unsteadied)")
    ns = ap.parse_args()
    photos = sorted(glob.glob(os.path.join(CORPUS, "*.exr")))
    if len(photos) < 2:
        sys.exit(f"needs the OpenEXR corpus's Backgrounds in {os.path.abspath(CORPUS)}")
    models = [("model", ns.model)] + ([("baseline", ns.baseline)] if ns.baseline else [])
    print(f"diffusion engine on the CPU, resolution 64, {ns.steps} DDIM steps, {ns.frames} "
          f"frames at {W}x{H}, steady {'default' if ns.steady is None else ns.steady}; bg "
          "layer outside the subject vs the moved photograph")
    color = ColorContext()
    table: dict[str, list[dict[str, float]]] = {name: [] for name, _ in models}
    t0 = time.perf_counter()
    for i, photo in enumerate(photos):
        root = tempfile.mkdtemp(prefix="aa-bench-cond-")
        img = imageio.read(photo)
        rgb = img.channels(imageio.rgb_names(img.info.channels, photo))
        rgb = np.repeat(rgb, 3, axis=-1) if rgb.shape[-1] == 1 else rgb  # luminance-only
        clip = photo_shot(rgb, sm.HELD_OUT + 700 + i, KINDS[i % len(KINDS)], ns.frames, W, H)
        frames = list(range(1001, 1001 + ns.frames))
        os.makedirs(os.path.join(root, "plate"))
        for f, (img, m) in zip(frames, zip(clip.frames, clip.mattes, strict=True), strict=True):
            imagewrite.write_exr(os.path.join(root, "plate", f"p.{f}.exr"), ["R", "G", "B", "A"],
                              np.dstack([img, m]), Window(0, 0, W, H))
        save(Motion("truth", W, H, 1001, dict(zip(frames, clip.camera, strict=True)),
                    {f: 1.0 for f in frames}), os.path.join(root, "truth.json"))
        other = photos[(i + 1) % len(photos)]
        for name, model in models:
            runs = {"own": generate(root, model, photo, 0, "plate", ns.steps, frames,
                                    ns.steady),
                    "seed": generate(root, model, photo, 1, "plate", ns.steps, frames,
                                    ns.steady),
                    "other": generate(root, model, other, 0, "plate", ns.steps, frames,
                                    ns.steady),
                    "model": generate(root, model, photo, 0, "model", ns.steps, frames,
                                    ns.steady)}
            row = score(color, runs, clip.backgrounds, clip.mattes)
            if ns.pictures:
                sheet(os.path.join(ns.pictures, f"{os.path.basename(photo)[:-4]}-{name}.png"),
                      color, clip, runs)
            table[name].append(row)
            print(f"{os.path.basename(photo):<16} {name:<9}" + " ".join(
                f"{k} {v:.3f}" for k, v in row.items()), flush=True)
    keys = ("sensitivity", "psnr_plate", "psnr_model", "colour", "structure", "flicker")
    print(f"\n{'mean':<9}" + "".join(f"{k:>12}" for k in keys))
    for name, rows in table.items():
        print(f"{name:<9}" + "".join(f"{np.mean([r[k] for r in rows]):>12.3f}" for k in keys))
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
