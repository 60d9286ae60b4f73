"""Background motion estimation (``track``) against reading the plate, on the 2K demo plate.

    .venv/bin/python benchmarks/bench_motion.py            # 2048x1080, 24 frames

    .venv/bin/python benchmarks/bench_motion.py --picture docs/images/motion_composite.png

Measured in one run: reading every plate frame (OpenImageIO, the display window, colour and
alpha as the tracker gets them) against reading them and tracking (``track.estimate`` fed as a
job feeds it): the tracking's own frames per second and its cost as a ratio of the read; and
``actanywhere motion``'s whole estimate (which also shrinks frames for the preview). Target:
tracking faster than reading, so motion never dominates a job. Then the composite engine on
the same shot with ``motion.source none`` and with the tracked motion (``file``): the cost of
moving the background per frame, as a ratio. ``--picture``: plate, still background and
moving background at three frames.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "core"))

import numpy as np  # noqa: E402

from actanywhere import spec  # noqa: E402
from actanywhere.cli import demo_shot as demo  # noqa: E402
from actanywhere.media import frames, imageio, preview, raster  # noqa: E402
from actanywhere.motion import save, track  # noqa: E402
from actanywhere.motion.shot import _frames, estimate  # noqa: E402
from actanywhere.shot import job  # noqa: E402
from actanywhere.spec import MotionSpec  # noqa: E402


def best(fn) -> float:
    """The fastest of three runs (so each reads from a warm file cache)."""
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--model", default="similarity")
    ap.add_argument("--picture", help="write plate / still / moving rows as a PNG")
    ns = ap.parse_args()
    root = tempfile.mkdtemp(prefix="aa-bench-motion-")
    pattern = os.path.join(root, "plate", "plate.####.exr")
    demo.make_plate(pattern, ns.frames)
    seq = frames.resolve(pattern)
    disp = imageio.probe(seq.path(seq.frames[0])).display

    def read() -> None:
        for _ in _frames(seq, None, "A"):
            pass

    def read_and_track() -> None:
        track.estimate(_frames(seq, None, "A"), disp.width, disp.height,
                       track.TrackSettings(model=ns.model))

    read_s = best(read)
    total_s = best(read_and_track)
    t0 = time.perf_counter()
    motion, _ = estimate(pattern, None, MotionSpec(source="track", model=ns.model))
    command_s = time.perf_counter() - t0
    track_s = max(total_s - read_s, 1e-9)
    n = len(seq.frames)
    print(f"track ({ns.model}), demo plate {motion.width}x{motion.height}, {n} frames, "
          f"OpenCV {__import__('cv2').__version__}, {os.cpu_count()} cores")
    print(f"read the plate:               {read_s:.2f} s ({n / read_s:.1f} fps)")
    print(f"read + track (as a job):      {total_s:.2f} s")
    print(f"tracking alone:               {track_s:.2f} s ({n / track_s:.1f} fps)")
    print(f"ratio tracking / read:        {track_s / read_s:.2f}x")
    print(f"actanywhere motion (preview samples, smoothing): {command_s:.2f} s")
    print(f"lowest confidence:            {min(motion.confidence.values()):.2f}")
    save(motion, os.path.join(root, "motion.json"))
    bg = os.path.join(root, "bg.exr")
    demo.make_background(bg)
    seconds = {}
    for name, section in (("still", {"source": "none"}),
                          ("moving", {"source": "file", "path": os.path.join(root,
                                                                             "motion.json")})):
        shot = spec.from_dict({"plate": {"path": pattern}, "background": {"path": bg},
                               "motion": section, "output": {
                                   "path": os.path.join(root, name, "c.####.exr"),
                                   "layers": ["rgba"]}})
        t0 = time.perf_counter()
        job.run(shot)
        seconds[name] = time.perf_counter() - t0
    print(f"composite, still background:  {seconds['still']:.2f} s "
          f"({n / seconds['still']:.1f} fps)")
    print(f"composite, moving background: {seconds['moving']:.2f} s "
          f"({n / seconds['moving']:.1f} fps)")
    print(f"ratio moving / still:         {seconds['moving'] / seconds['still']:.2f}x")
    if ns.picture:
        picks = [seq.frames[0], seq.frames[len(seq.frames) // 2], seq.frames[-1]]
        rows = []
        for folder in ("plate", "still", "moving"):
            row = []
            for f in picks:
                path = seq.path(f) if folder == "plate" else os.path.join(
                    root, folder, f"c.{f:04d}.exr")
                img = imageio.read(path)
                rgb = img.channels(imageio.rgb_names(img.info.channels, path))
                row.append(np.clip(raster.shrink(rgb, 420), 0, 1) ** (1 / 2.2))
            rows.append(row)
        preview.contact_sheet(ns.picture, rows)
        print(f"picture: {ns.picture} (rows: plate, still background, moving background)")


if __name__ == "__main__":
    main()
