"""The background motion sources against the truth: the learned ``subject`` source and the
baselines on held-out synthetic shots, every source on real photographs moved along known
paths, and the ``subject`` source's speed at 2K against reading the plate.

    .venv/bin/python benchmarks/bench_subject_motion.py                 # 30 clips a kind
    .venv/bin/python benchmarks/bench_subject_motion.py --clips 10 --frames 24

Error: the mean end-point error of each frame-to-frame background step, in pixels at 1920 px
width (``train/subject_motion.step_error``), for ``subject`` (the shipped model, as generate
runs it), ``static`` (no camera move) and ``locked`` (the background moves with the subject's
foot point and height). Held-out clips: seeds never trained on (``train/motion_clips``).
Real photographs: OpenEXR's Backgrounds (../shared/exr-corpus, when present) panned and zoomed
along a clip's camera path at 960x540, that clip's walker over them (``photo_shot``); ``track``
also runs there (it sees the photograph). Speed: a 2048x1080 green-screen plate written as
EXRs, read as ``actanywhere motion`` reads it, with and without the ``subject`` estimate.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "core"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from bench_motion import best  # noqa: E402

from actanywhere.media import frames, imageio, imagewrite  # noqa: E402
from actanywhere.motion import subject, track  # noqa: E402
from actanywhere.motion.shot import _frames  # noqa: E402
from actanywhere.motion.smooth import smooth  # noqa: E402
from actanywhere.train import subject_motion as sm  # noqa: E402
from actanywhere.train.motion_clips import make_motion_clip, photo_shot  # noqa: E402

CORPUS = os.path.join(ROOT, "..", "shared", "exr-corpus", "Backgrounds")
PHOTOS = (("Garden", "held"), ("Desk", "push"), ("Carrots", "standing"), ("Cannon", "follow"),
          ("CandleGlass", "tilt"))


def held_out(clips: int) -> None:
    t0 = time.perf_counter()
    result = sm.evaluate(subject.load(), clips)
    print(f"held-out synthetic shots: {clips} a kind, 16 frames, 192x128 "
          f"({time.perf_counter() - t0:.0f} s)")
    print(sm.table(result))
    held, every = result["held"], result["all"]
    print(f"walkers held in frame: subject / static {held['subject'] / held['static']:.2f}x "
          "(target <= 0.5x)")
    print(f"every kind: subject / best baseline "
          f"{every['subject'] / min(every['static'], every['locked']):.2f}x (target <= 0.7x)")


def photographs(frames_n: int) -> None:
    if not os.path.isdir(CORPUS):
        print(f"real photographs: skipped ({CORPUS} is not here)")
        return
    net = subject.load()
    w, h = 960, 540
    print(f"\nreal photographs, {frames_n} frames at {w}x{h} (px a step at 1920 width)")
    print(f"{'photo':<13}{'kind':<10}{'track':>8}{'subject':>9}{'static':>8}{'locked':>8}")
    for name, kind in PHOTOS:
        img = imageio.read(os.path.join(CORPUS, f"{name}.exr"))
        photo = img.channels(imageio.rgb_names(img.info.channels, name))
        clip = photo_shot(photo, 7, kind, frames_n, w, h)
        seq = [(1001 + i, f, m)
               for i, (f, m) in enumerate(zip(clip.frames, clip.mattes, strict=True))]
        rows = []
        try:
            tracked = track.estimate(seq, w, h, track.TrackSettings())
            rows.append(sm.step_error([tracked.frames[f] for f in sorted(tracked.frames)],
                                      clip.camera, w, h))
        except Exception as exc:  # a refusal is a result here
            print(f"  track refused: {exc}")
            rows.append(float("nan"))
        est = subject.estimate(seq, w, h, net)
        path = smooth(est.frames, 2, est.confidence)
        rows.append(sm.step_error([path[f] for f in sorted(path)], clip.camera, w, h))
        rows.append(sm.step_error([np.eye(3)] * frames_n, clip.camera, w, h))
        rows.append(sm.step_error(sm.locked(clip.mattes), clip.camera, w, h))
        print(f"{name:<13}{kind:<10}{rows[0]:>8.2f}{rows[1]:>9.2f}{rows[2]:>8.2f}{rows[3]:>8.2f}")


def write_plate(pattern: str, mattes: np.ndarray) -> None:
    """A green screen with the subject's matte in A (half-float EXRs, zip)."""
    screen = np.array([0.05, 0.6, 0.08], np.float32)
    h, w = mattes.shape[1:]
    for i, m in enumerate(mattes):
        rgb = screen * (1 - m[..., None]) + 0.4 * m[..., None]
        imagewrite.write_exr(pattern.replace("####", f"{1001 + i:04d}"), ["R", "G", "B", "A"],
                          np.dstack([rgb, m]), imageio.Window(0, 0, w, h))


def speed(frames_n: int) -> None:
    root = tempfile.mkdtemp(prefix="aa-bench-subject-")
    pattern = os.path.join(root, "gs.####.exr")
    clip = make_motion_clip(sm.HELD_OUT + 7, "held", frames_n, height=1080, width=2048,
                            mattes_only=True)
    write_plate(pattern, clip.mattes)
    seq = frames.resolve(pattern)
    net = subject.load()

    def read() -> None:
        for _ in _frames(seq, None, "A"):
            pass

    def read_and_estimate() -> None:
        subject.estimate(_frames(seq, None, "A"), 2048, 1080, net)

    read_s, total_s = best(read), best(read_and_estimate)
    own = max(total_s - read_s, 1e-9)
    print(f"\nspeed: subject on a 2048x1080 green-screen plate, {frames_n} frames, torch "
          f"{torch.__version__} on the CPU ({torch.get_num_threads()} threads), "
          f"{os.cpu_count()} cores")
    print(f"read the plate:          {read_s:.2f} s ({frames_n / read_s:.1f} fps)")
    print(f"read + subject estimate: {total_s:.2f} s")
    print(f"subject alone:           {own:.2f} s ({frames_n / own:.1f} fps)")
    print(f"ratio subject / read:    {own / read_s:.2f}x (target < 1)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=30, help="held-out clips a kind")
    ap.add_argument("--frames", type=int, default=24, help="frames of the photo and 2K shots")
    ns = ap.parse_args()
    held_out(ns.clips)
    photographs(ns.frames)
    speed(ns.frames)


if __name__ == "__main__":
    main()
