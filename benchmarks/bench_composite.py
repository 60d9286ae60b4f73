"""End-to-end ``generate --engine composite`` against the OpenImageIO I/O floor.

    .venv/bin/python benchmarks/bench_composite.py [--frames 24] [--threads 2] [--repeat 2]

Makes a 2K (2048x1080) half-float RGBA plate of N frames (the demo generator), then times, in
the same run and with the same number of threads:
  floor      plain OIIO read of each plate frame + write of the same RGBA frame (half, zip)
  floor8     the same, but writing the 8 channels generate writes by default
  generate   actanywhere's job.run with the composite engine, default layers (rgba, bg, matte)
  generate4  the same with --layers rgba (the floor's output layout)
and prints seconds (best of --repeat) and the ratios of generate to the floor with the same
output layout (target: at most 1.5x).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import OpenImageIO as oiio

from actanywhere.cli import demo_shot as demo
from actanywhere.shot import job


def io_floor(paths: list[str], out_dir: str, threads: int, nchannels: int) -> None:
    def one(path: str) -> None:
        inp = oiio.ImageInput.open(path)
        spec = inp.spec()
        px = inp.read_image(0, 0, 0, spec.nchannels, "float")
        inp.close()
        if nchannels > spec.nchannels:
            extra = np.repeat(px[..., :1], nchannels - spec.nchannels, axis=-1)
            px = np.concatenate([px, extra], axis=-1)
        out_spec = oiio.ImageSpec(spec.full_width, spec.full_height, nchannels, "half")
        out_spec.channelnames = tuple(list(spec.channelnames) +
                                      [f"x.c{i}" for i in range(nchannels - spec.nchannels)])
        out_spec.attribute("compression", "zip")
        full = np.zeros((spec.full_height, spec.full_width, nchannels), np.float32)
        full[spec.y : spec.y + spec.height, spec.x : spec.x + spec.width] = px
        out = oiio.ImageOutput.create(os.path.join(out_dir, os.path.basename(path)))
        out.open(os.path.join(out_dir, os.path.basename(path)), out_spec)
        out.write_image(full)
        out.close()

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, paths))


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--keep", help="folder to keep the shot in (default: a temp folder)")
    ns = ap.parse_args()
    root = ns.keep or tempfile.mkdtemp(prefix="aa-bench-")
    p = demo.paths(root)
    os.makedirs(p.root, exist_ok=True)
    if not os.path.exists(p.background):
        demo.make_background(p.background)
        demo.make_plate(p.plate, ns.frames, threads=ns.threads)
    # the demo's spec runs the diffusion engine with a tracked camera: pin the engine this
    # benchmark measures, and a still background (the tracker is bench_motion's subject)
    spec = demo.build_spec(p)
    spec = spec.model_copy(update={"engine": spec.engine.model_copy(update={"name": "composite"}),
                                   "motion": spec.motion.model_copy(update={"source": "none"}),
                                   "threads": ns.threads})
    plates = [p.plate.replace("####", f"{f:04d}") for f in
              range(demo.FIRST_FRAME, demo.FIRST_FRAME + ns.frames)]
    scratch = os.path.join(root, "floor")
    os.makedirs(scratch, exist_ok=True)
    oiio.attribute("threads", ns.threads)
    t_floor = best(lambda: io_floor(plates, scratch, ns.threads, 4), ns.repeat)
    t_floor8 = best(lambda: io_floor(plates, scratch, ns.threads, 8), ns.repeat)
    t_gen = best(lambda: job.run(spec), ns.repeat)
    rgba_only = spec.model_copy(deep=True)
    rgba_only.output.layers = ["rgba"]
    rgba_only.output.path = os.path.join(root, "output_rgba", "comp.####.exr")
    t_gen4 = best(lambda: job.run(rgba_only), ns.repeat)
    n = ns.frames
    ran = oiio.ImageInput.open(spec.output.path.replace("####", f"{demo.FIRST_FRAME:04d}"))
    engine = ran.spec().get_string_attribute("actanywhere:engine")
    ran.close()
    assert engine == "composite", f"the benchmark ran the {engine} engine"
    print(f"shot: {n} frames 2048x1080 half RGBA, threads={ns.threads}, cores={os.cpu_count()}, "
          f"engine {engine} (read back from the output), harmonize "
          f"{spec.composite.harmonize}, shadow {spec.composite.shadow}")
    print(f"floor    (read + write RGBA)      {t_floor:7.2f} s  {n / t_floor:6.2f} fps")
    print(f"floor8   (read + write 8 ch)      {t_floor8:7.2f} s  {n / t_floor8:6.2f} fps")
    print(f"generate (composite, 8 ch)        {t_gen:7.2f} s  {n / t_gen:6.2f} fps")
    print(f"generate (composite, RGBA only)   {t_gen4:7.2f} s  {n / t_gen4:6.2f} fps")
    print(f"ratio generate 8 ch / floor8      = {t_gen / t_floor8:.2f}x  (same output layout)")
    print(f"ratio generate RGBA / floor       = {t_gen4 / t_floor:.2f}x  (same output layout)")
    print(f"ratio generate 8 ch / floor RGBA  = {t_gen / t_floor:.2f}x  (default layers vs copy)")
    if not ns.keep:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
