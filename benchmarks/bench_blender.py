"""The Blender add-on's cost against the generation it asks for, composite engine, 2K plate.

    .venv/bin/python benchmarks/bench_blender.py                  # 2048x1152, 8 frames
    .venv/bin/python benchmarks/bench_blender.py --frames 24 --bpy .venv-bpy-4.5/bin/python

Runs the extension in Blender's real Python module (``bpy`` from a venv ``install.py test``
makes), its timer function driven at the interval it asks for (as Blender's timers would),
against a real worker the add-on starts from its preferences and a first take warms. Measured
in one run, second take: press Generate -> the take's strip in the sequencer, against the
generation itself (the worker's ``run_s`` for the same take); the difference is what the
add-on, the job handle and the worker's queue add.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "core"))
sys.path.insert(0, os.path.join(REPO, "blender_addon"))

import build as addon_build  # noqa: E402 - blender_addon/build.py

from actanywhere.api import Client, WorkerError  # noqa: E402
from actanywhere.cli import demo_shot as demo  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--width", type=int, default=2048)
    ap.add_argument("--height", type=int, default=1152)
    ap.add_argument("--bpy", default=os.path.join(REPO, ".venv-bpy-5.0", "bin", "python"),
                    help="a Python with bpy (default: the venv install.py test makes)")
    ap.add_argument("--picture", default=None,
                    help="also write PNG: the sequencer at the middle frame, plate | take")
    ns = ap.parse_args()
    if not os.path.isfile(ns.bpy):
        raise SystemExit(f"{ns.bpy}: no such Python; run python3 install.py test (it makes "
                         ".venv-bpy-5.0) or pass --bpy")
    root = tempfile.mkdtemp(prefix="aa-bench-blender-")
    state = os.path.join(root, "state")
    demo.make_background(os.path.join(root, "bg.exr"), ns.width, ns.height)
    demo.make_plate(os.path.join(root, "plate", "plate.####.exr"), ns.frames, ns.width,
                    ns.height)
    os.makedirs(os.path.join(root, "edit"))
    cfg = {"zip": addon_build.build(os.path.join(root, "dist"), python=sys.executable),
           "plate_dir": os.path.join(root, "plate"), "bg": os.path.join(root, "bg.exr"),
           "blend": os.path.join(root, "edit", "bench.blend"),
           "picture": os.path.join(root, "render") if ns.picture else None}
    cfg_path, result_path = os.path.join(root, "cfg.json"), os.path.join(root, "result.json")
    with open(cfg_path, "w") as fh:
        json.dump(cfg, fh)
    env = dict(os.environ, BLENDER_USER_RESOURCES=os.path.join(root, "blender-user"),
               ACTANYWHERE_STATE_DIR=state, HF_HUB_OFFLINE="1")
    try:
        proc = subprocess.run([ns.bpy, os.path.join(REPO, "tests", "blender_driver.py"),
                               "bench", cfg_path, result_path], env=env, capture_output=True,
                              text=True)
        if proc.returncode:
            raise SystemExit(proc.stdout[-3000:] + proc.stderr[-3000:])
    finally:
        with contextlib.suppress(WorkerError):
            Client.from_state(state).shutdown()
    with open(result_path) as fh:
        result = json.load(fh)
    warm = result["takes"][1]
    n = warm["frames"]
    print(f"engine composite, plate {ns.width}x{ns.height}, {n} frames, Blender "
          f"{result['version']} (bpy module), timer every {result['interval']} s, warm "
          f"worker, {os.cpu_count()} cores")
    print(f"Generate itself on the main thread:        {warm['pressed_s'] * 1000:.0f} ms")
    print(f"press Generate -> job running:             {warm['running_s']:.3f} s")
    print(f"press Generate -> strip in the sequencer:  {warm['strip_s']:.3f} s")
    print(f"generation (worker run_s):                 {warm['run_s']:.3f} s "
          f"({warm['run_s'] / n * 1000:.0f} ms/frame)")
    print(f"added by the add-on, handle and queue:     {warm['strip_s'] - warm['run_s']:.3f} s")
    print(f"ratio strip-shown / generation:            {warm['strip_s'] / warm['run_s']:.2f}x")
    cold = result["takes"][0]
    print(f"first take (worker started by the add-on): {cold['strip_s']:.3f} s to the strip")
    if ns.picture:
        _side_by_side([os.path.join(root, f"render_{n}.png") for n in ("plate", "take")],
                      ns.picture)
        print(f"picture: {ns.picture}")


def _side_by_side(paths: list[str], out: str) -> None:
    import numpy as np
    import OpenImageIO as oiio

    images = [oiio.ImageBuf(p).get_pixels(oiio.FLOAT)[..., :3] for p in paths]
    gap = np.ones((images[0].shape[0], 6, 3), np.float32)
    row = np.concatenate([images[0], gap, images[1]], axis=1)
    spec = oiio.ImageSpec(row.shape[1], row.shape[0], 3, oiio.UINT8)
    buf = oiio.ImageBuf(spec)
    buf.set_pixels(oiio.ROI(), row)
    if not buf.write(out):
        raise SystemExit(f"{out}: {buf.geterror()}")


if __name__ == "__main__":
    main()
