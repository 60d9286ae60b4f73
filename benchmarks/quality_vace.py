"""Score a Wan VACE model folder on held-out shots with the ``evaluate`` metrics.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/quality_vace.py --model DIR --device cuda
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/quality_vace.py --tiny   # the mechanics only

For whoever has the weights and a GPU: this project has never seen a real VACE picture
(docs/vace.md). Each held-out sample of the synthetic data (``train/dataset.py``, a
different seed from training) becomes a shot on disk: the subject's frames with their
matte as an EXR plate, the sample's condition (the clean background) as the background
still. Each shot is generated through the real engine (``actanywhere.shot.job``) three times:
seed 0, seed 1 (the spread a seed alone gives) and seed 0 with another sample's background
(how much the take follows the background). Scored on the ``bg`` layer in display colour,
against the condition, where the model generated: colour error, structure (SSIM at 1/4),
flicker, condition sensitivity (background swap over reseed: above 1 the background given
matters more than the seed), and the comp's PSNR inside the subject (the recomposite makes it
exact, so this checks the pipeline, not the model). ``--tiny`` runs the same on a random tiny
model built here: numbers that only prove the script runs.
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

import numpy as np  # noqa: E402
from conftest import read_exr, write_exr  # noqa: E402

from actanywhere import spec  # noqa: E402
from actanywhere.media.color import ColorContext  # noqa: E402
from actanywhere.shot import job  # noqa: E402
from actanywhere.train import metrics  # noqa: E402
from actanywhere.train.config import DataConfig  # noqa: E402
from actanywhere.train.evaluate import heldout_samples  # noqa: E402
from actanywhere.train.validate import hwc  # noqa: E402


def write_shot(root: str, sample, color: ColorContext) -> tuple[str, str, np.ndarray]:
    """The sample as an EXR plate (linear RGBA, the matte as alpha) and background."""
    frames = hwc(sample["frames"])  # (N, H, W, 3) display-referred [0, 1]
    matte = sample["matte"][:, 0].numpy()
    os.makedirs(os.path.join(root, "plate"), exist_ok=True)
    for i, (rgb, a) in enumerate(zip(frames, matte, strict=True)):
        linear = color.from_model(np.ascontiguousarray(rgb, np.float32))
        write_exr(os.path.join(root, "plate", f"plate.{i + 1:04d}.exr"),
                  np.concatenate([linear * a[..., None], a[..., None]], axis=2))
    cond = sample["condition"].permute(1, 2, 0).numpy()
    write_exr(os.path.join(root, "bg.exr"), color.from_model(np.ascontiguousarray(
        cond, np.float32)), channels=("R", "G", "B"))
    return os.path.join(root, "plate", "plate.####.exr"), os.path.join(root, "bg.exr"), cond


def render(root: str, name: str, plate: str, bg: str, args, seed: int, color: ColorContext,
           count: int) -> tuple[np.ndarray, np.ndarray]:
    """(bg layer, comp) of one take in display colour, (N, H, W, 3) each."""
    out = os.path.join(root, name, "c.####.exr")
    job.run(spec.from_dict({
        "plate": {"path": plate}, "background": {"path": bg},
        "engine": {"name": "vace", "model": args.model, "device": args.device},
        "vace": {"seed": seed, "steps": args.steps, "resolution": args.resolution,
                 "frames_per_window": args.window, "overlap": min(8, args.window - 5)},
        "output": {"path": out, "proxy": False}}))
    bgs, comps = [], []
    for f in range(1, count + 1):
        px = read_exr(out.replace("####", f"{f:04d}"))[0]
        comps.append(color.to_model(np.ascontiguousarray(px[..., :3])))
        bgs.append(color.to_model(np.ascontiguousarray(px[..., 4:7])))
    return np.stack(bgs), np.stack(comps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="a Wan VACE diffusers folder")
    ap.add_argument("--tiny", action="store_true", help="a random tiny model built here")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--shots", type=int, default=4)
    ap.add_argument("--frames", type=int, default=17, help="frames per shot (4k+1)")
    ap.add_argument("--size", type=int, default=256, help="sample size in pixels")
    ap.add_argument("--resolution", type=int, default=480)
    ap.add_argument("--window", type=int, default=17)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--out", default=None, help="write the scores here as JSON")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="quality_vace_")
    if args.tiny:
        import vace_tiny

        args.model = vace_tiny.build(os.path.join(tmp, "tiny-vace"))
        args.device, args.steps, args.resolution = "cpu", 2, 32
        args.frames = args.window = 5
        args.size = 32
    if not args.model:
        ap.error("give --model DIR (or --tiny)")
    color = ColorContext()
    data = DataConfig(seed=12345, frames=args.frames, resolution=args.size)
    samples = heldout_samples(data, args.shots + 1)
    print(f"engine vace, model {args.model}, device {args.device}, {args.shots} shot(s) of "
          f"{args.frames} frames at {args.size}px, resolution {args.resolution}, window "
          f"{args.window}, {args.steps} steps")
    rows, start = [], time.monotonic()
    for i in range(args.shots):
        root = os.path.join(tmp, f"shot{i}")
        plate, bg, cond = write_shot(root, samples[i], color)
        other = write_shot(os.path.join(tmp, f"other{i}"), samples[i + 1], color)[1]
        mask = samples[i]["mask"][:, 0].numpy()
        matte = samples[i]["matte"][:, 0].numpy()
        frames = hwc(samples[i]["frames"])
        a, comp = render(root, "a", plate, bg, args, 0, color, args.frames)
        b, _ = render(root, "b", plate, bg, args, 1, color, args.frames)
        c, _ = render(root, "c", plate, other, args, 0, color, args.frames)
        rows.append({
            "colour_error": metrics.colour_error(a, cond, mask),
            "structure": metrics.structure(a, cond, mask),
            "flicker": metrics.flicker(a, mask),
            "condition_sensitivity": metrics.condition_sensitivity(a, b, c, mask),
            "subject_psnr": metrics.subject_fidelity(comp, frames, matte),
        })
        print(f"shot {i}: " + ", ".join(f"{k} {v:.4f}" for k, v in rows[-1].items()))
    mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    print("mean: " + ", ".join(f"{k} {v:.4f}" for k, v in mean.items()) +
          f" ({time.monotonic() - start:.0f} s)")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"model": args.model, "rows": rows, "mean": mean}, fh, indent=2)


if __name__ == "__main__":
    main()
