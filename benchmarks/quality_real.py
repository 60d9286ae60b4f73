"""The shipped model's background on real photographs against the composite engine's (issue 33).

    .venv/bin/python benchmarks/quality_real.py --before --picture steady.png
    .venv/bin/python benchmarks/quality_real.py --backgrounds Garden.exr --frames 24

Each shot: the demo's walking figure (its own RGBA, the alpha as matte) as the plate, a
photograph of ``../shared/exr-corpus/Backgrounds`` as the new background, once with a still
camera (``motion.source none``) and once with a pan (``motion.keys``: 4 plate pixels a frame
to the left). Each shot is generated with the ``composite`` engine (the background moved with
the camera, nothing invented) and the ``diffusion`` engine (the shipped model, its
recommended settings), both writing the ``bg`` layer. On the ``bg`` layer in display colour
(sRGB curve of the linear values, clipped to 0..1):

- ``flicker``: ``evaluate``'s flicker (mean |x(t+1) - 2x(t) + x(t-1)| at 1/4 resolution): a
  steady pan leaves little, boiling leaves a lot. Target: the model's at most 2x the
  composite's (the composite's resampling floor) or 0.001, whichever is larger.
- ``colour_error``: ``evaluate``'s colour error of the model's ``bg`` against the composite's
  (the moved plate) per frame: per-channel mean and spread. Target at most 0.02.
- ``hue_shift``: the mean per-pixel chroma difference against the moved plate (each pixel's
  RGB minus its luma, at 1/4 resolution): a purple cast shows here. Target at most 0.02.
- ``luma_change``: mean |luma difference| against the moved plate (the shading the model
  adds, contact shadow included): reported, no target.

Prints one row per shot and engine, and a JSON line with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "core"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import OpenImageIO as oiio  # noqa: E402

from actanywhere import spec as spec_mod  # noqa: E402
from actanywhere.cli.demo_shot import SHIPPED_SETTINGS, _figure  # noqa: E402
from actanywhere.media import imagewrite  # noqa: E402
from actanywhere.media.imageio import Window  # noqa: E402
from actanywhere.shot import job  # noqa: E402
from actanywhere.train import metrics  # noqa: E402

CORPUS = os.path.join(os.path.dirname(ROOT), "shared", "exr-corpus", "Backgrounds")
LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)


def make_plate(folder: str, frames: int, width: int, height: int) -> str:
    """The walking figure alone (premultiplied RGBA EXR, alpha = matte), frames 1..N."""
    os.makedirs(folder, exist_ok=True)
    for i in range(frames):
        colour, alpha, _ = _figure(height, width, i / frames, frames)
        rgba = np.concatenate([colour, alpha[..., None]], axis=-1).astype(np.float32)
        imagewrite.write_exr(os.path.join(folder, f"plate.{i + 1:04d}.exr"),
                             ["R", "G", "B", "A"], rgba, Window(0, 0, width, height), {})
    return os.path.join(folder, "plate.####.exr")


def read_bg(pattern: str, frames: int) -> np.ndarray:
    """The ``bg`` layer of every output frame, display colour (T, H, W, 3)."""
    out = []
    for f in range(1, frames + 1):
        buf = oiio.ImageBuf(pattern.replace("####", f"{f:04d}"))
        names = list(buf.spec().channelnames)
        px = buf.get_pixels(oiio.FLOAT)
        rgb = px[..., [names.index(f"bg.{c}") for c in "RGB"]]
        out.append(np.clip(rgb, 0.0, 1.0) ** (1 / 2.2))
    return np.stack(out).astype(np.float32)


def step_of(ref: np.ndarray, most: int = 12) -> int:
    """The camera's horizontal step per frame (plate pixels) that best aligns the reference's
    consecutive frames."""
    errs = {s: float(np.abs(shifted(ref[1:], s) - shifted(ref[:-1], 0)).mean())
            for s in range(-most, most + 1)}
    return min(errs, key=errs.get)


def shifted(x: np.ndarray, s: int, margin: int = 16) -> np.ndarray:
    """Columns ``margin + s`` .. ``-margin + s`` of (..., H, W, C) ``x``."""
    w = x.shape[-2]
    return x[..., :, margin + s: w - margin + s, :]


def flicker(x: np.ndarray, step: int) -> float:
    """``evaluate``'s flicker (at 1/4 resolution) after the camera's move: frames t-1 and
    t+1 shifted onto frame t."""
    if len(x) < 3:
        return 0.0
    a, b, c = (metrics._box(shifted(v, s), 4, channels=True)
               for v, s in ((x[:-2], -step), (x[1:-1], 0), (x[2:], step)))
    return float(np.abs(c - 2 * b + a).mean())


def scores(bg: np.ndarray, ref: np.ndarray, step: int) -> dict[str, float]:
    small = metrics._box(bg, 4, channels=True)
    small_ref = metrics._box(ref, 4, channels=True)
    y, y_ref = small @ LUMA, small_ref @ LUMA
    chroma = np.abs((small - y[..., None]) - (small_ref - y_ref[..., None])).mean()
    colour = np.mean([metrics.colour_error(b, r, np.ones(b.shape[:2]))
                      for b, r in zip(bg, ref, strict=True)])
    return {"flicker": flicker(bg, step), "colour_error": float(colour),
            "hue_shift": float(chroma), "luma_change": float(np.abs(y - y_ref).mean())}


def run_shot(root: str, *, plate: str, background: str, frames: int, pan: bool,
             engine: str, diffusion: dict | None = None) -> tuple[np.ndarray, float]:
    tag = "_".join(f"{k}{v}" for k, v in (diffusion or {}).items())
    out = os.path.join(root, f"{engine}_{'pan' if pan else 'still'}{tag}", "o.####.exr")
    motion = {"source": "keys", "keys": ["1:0,0", f"{frames}:{-4 * (frames - 1)},0"]} \
        if pan else {"source": "none"}
    data = {"plate": {"path": plate}, "matte": {"source": "alpha"},
            "background": {"path": background}, "engine": {"name": engine},
            "motion": motion, "output": {"path": out, "layers": ["rgba", "bg"],
                                         "proxy": False}}
    if engine == "diffusion":
        data["diffusion"] = {**SHIPPED_SETTINGS, **(diffusion or {})}
    start = time.monotonic()
    job.run(spec_mod.ShotSpec.model_validate(data))
    return read_bg(out, frames), time.monotonic() - start


def picture(path: str, takes: list[np.ndarray], frame: int = 5) -> None:
    """Frame ``frame`` of each take side by side, over each take's change to the next frame
    (eight times brighter)."""
    top = np.concatenate([t[frame] for t in takes], axis=1)
    bottom = np.concatenate([np.clip(8 * np.abs(t[frame + 1] - t[frame]), 0, 1) for t in takes],
                            axis=1)
    img = np.ascontiguousarray(np.concatenate([top, bottom], axis=0), np.float32)
    buf = oiio.ImageBuf(oiio.ImageSpec(img.shape[1], img.shape[0], 3, oiio.UINT8))
    buf.set_pixels(oiio.ROI(), img)
    if not buf.write(path):
        sys.exit(f"{path}: {buf.geterror()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backgrounds", nargs="+", default=["Garden.exr", "Carrots.exr", "Desk.exr"])
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=360)
    ap.add_argument("--before", action="store_true",
                    help="also the diffusion engine with steady 0 (the frames as they were)")
    ap.add_argument("--picture", help="write a PNG: frame 6 of the first still shot, the "
                    "composite's bg | steady 0 | default, and the change frame 6 -> 7 x8")
    args = ap.parse_args()
    if not os.path.isdir(CORPUS):
        sys.exit(f"{CORPUS}: the EXR corpus is not here")
    print(f"engines composite, diffusion (shipped model, {SHIPPED_SETTINGS}); plate "
          f"{args.width}x{args.height}, {args.frames} frames; bg layer in display colour")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        plate = make_plate(os.path.join(tmp, "plate"), args.frames, args.width, args.height)
        for name in args.backgrounds:
            for pan in (False, True):
                root = os.path.join(tmp, name, "pan" if pan else "still")
                kw = dict(plate=plate, background=os.path.join(CORPUS, name),
                          frames=args.frames, pan=pan)
                ref, t_ref = run_shot(root, engine="composite", **kw)
                bg, t_bg = run_shot(root, engine="diffusion", **kw)
                runs = [("composite", ref, t_ref), ("diffusion", bg, t_bg)]
                if args.before or (args.picture and not rows):
                    old, t_old = run_shot(root, engine="diffusion", diffusion={"steady": 0}, **kw)
                    runs.insert(1, ("steady 0", old, t_old))
                if args.picture and not rows:
                    picture(args.picture, [r[1] for r in runs])
                step = step_of(ref)
                for engine, px, t in runs:
                    row = {"background": name, "camera": "pan" if pan else "still",
                           "engine": engine, "seconds": round(t, 1), **scores(px, ref, step)}
                    rows.append(row)
                    print(f"{name:14s} {row['camera']:5s} {engine:9s} "
                          f"flicker {row['flicker']:.5f}  colour {row['colour_error']:.4f}  "
                          f"hue {row['hue_shift']:.4f}  luma {row['luma_change']:.4f}  "
                          f"({t:.1f} s)", flush=True)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
