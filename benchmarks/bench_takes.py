"""Takes: the proxies' cost against the EXR write, and the browser on 50 takes.

    .venv/bin/python benchmarks/bench_takes.py                      # 2K demo plate
    .venv/bin/python benchmarks/bench_takes.py --picture docs/takes.png

Measured in one run:
1. per 2K frame, the job's EXR write (``FrameWriter.write``: RGBA + bg + matte, zip, as the
   demo writes) against the proxies (``TakeProxies.frame`` + ``.plate``: two 480 px JPEGs
   through the OCIO view), as a ratio (target: at most 0.15); and a whole composite job on the
   demo plate with ``output.proxy`` on and off.
2. the takes browser (PySide6, offscreen) opening a folder of 50 takes: from the window made
   until the scan is in and every tile's picture is decoded (target: under 1 s); then
   scrubbing: per frame, from the slider moved to the picture decoded, uncached and cached.
``--picture``: a screenshot of the browser on four takes of the demo shot (two composite
with different backgrounds, two diffusion seeds), in wipe mode.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "core"))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

from actanywhere import spec  # noqa: E402
from actanywhere.api.takes import Take  # noqa: E402
from actanywhere.cli import demo_shot as demo  # noqa: E402
from actanywhere.media import frames, imageio, imagewrite  # noqa: E402
from actanywhere.media.color import ColorContext  # noqa: E402
from actanywhere.media.imageio import Window  # noqa: E402
from actanywhere.shot import job  # noqa: E402
from actanywhere.shot.proxy import TakeProxies  # noqa: E402
from actanywhere.shot.writer import FrameWriter  # noqa: E402


def best(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def shot_spec(p: demo.DemoPaths, out: str, engine: str = "composite", **extra) -> spec.ShotSpec:
    data = demo.build_spec(p, engine).model_dump(mode="json")
    data["output"]["path"] = out
    data["motion"] = {"source": "none"}
    for key, value in extra.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    return spec.from_dict(data)


def proxy_cost(p: demo.DemoPaths, root: str, n: int) -> None:
    shot = shot_spec(p, os.path.join(root, "cost", "comp.####.exr"))
    color = ColorContext()
    plate = imageio.read(p.plate.replace("####", f"{demo.FIRST_FRAME:04d}"))
    rgb, alpha = plate.pixels[..., :3], plate.pixels[..., 3]
    ref = plate.info
    bg = np.ascontiguousarray(rgb[:, ::-1])
    seq = frames.Sequence(shot.output.path, tuple(range(demo.FIRST_FRAME, demo.FIRST_FRAME + n)))
    writer = FrameWriter(seq, ref, "zip", {})
    proxies = TakeProxies(shot, color)
    blocks = [(["R", "G", "B"], rgb), (["A"], 1.0), (["bg.R", "bg.G", "bg.B"], bg),
              (["matte.A"], alpha)]

    def exr() -> None:
        for f in seq.frames:
            writer.write(f, blocks)

    def jpegs() -> None:
        for f in seq.frames:
            proxies.frame(f, rgb)
            proxies.plate(f + 100000, rgb)  # a new name each time: never skipped

    t_exr, t_proxy = best(exr), best(lambda: (shutil.rmtree(os.path.dirname(proxies.pattern),
                                                            ignore_errors=True), jpegs()))
    h, w = rgb.shape[:2]
    print(f"frame {w}x{h}, {n} frames, EXR RGBA+bg+matte zip vs 2 JPEG proxies "
          f"{shot.output.proxy_width} px through {proxies.view}")
    print(f"  EXR write   {1000 * t_exr / n:7.1f} ms/frame")
    print(f"  proxies     {1000 * t_proxy / n:7.1f} ms/frame  ratio {t_proxy / t_exr:.3f} "
          "(target <= 0.15)")
    on = shot_spec(p, os.path.join(root, "on", "comp.####.exr"))
    off = shot_spec(p, os.path.join(root, "off", "comp.####.exr"), output={"proxy": False})
    t_on = best(lambda: job.run(on.model_copy(update={"output": on.output.model_copy(
        update={"existing": "overwrite"})})), 2)
    t_off = best(lambda: job.run(off.model_copy(update={"output": off.output.model_copy(
        update={"existing": "overwrite"})})), 2)
    print(f"composite job, {len(frames.resolve(p.plate).frames)} frames, threads "
          f"{on.threads}: proxy on {t_on:.2f} s, off {t_off:.2f} s, ratio {t_on / t_off:.3f}")


def fifty_takes(p: demo.DemoPaths, root: str, count: int) -> None:
    from actanywhere.browser.qt import QtWidgets
    from actanywhere.browser.window import TakesBrowser

    src = os.path.join(root, "one", "take_001")
    job.run(shot_spec(p, os.path.join(src, "sh010.####.exr")))
    shots = os.path.join(root, "fifty", "sh010")
    for i in range(1, count + 1):
        dst = os.path.join(shots, f"take_{i:03d}")
        shutil.copytree(src, dst)
        Take.load(dst).update(number=i, seed=i, created=time.time() + i)
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    t0 = time.perf_counter()
    browser = TakesBrowser(os.path.join(root, "fifty"))
    browser.resize(1280, 760)
    browser.show()
    settled = browser.wait_settled(30)
    t_open = time.perf_counter() - t0
    tiles = sum(1 for i in range(browser.grid.count())
                if browser.grid.item(i).data(256 + 1))
    print(f"browser ({browser.loader.pool.maxThreadCount()} loader threads): {count} takes "
          f"open, scanned and {tiles} tiles decoded in {t_open:.3f} s (target < 1 s)"
          + ("" if settled else " NOT SETTLED"))
    browser.select("take_001", "take_002")
    browser.mode.setCurrentIndex(2)
    frames = sorted(browser.viewer.a)
    for label in ("uncached", "cached"):
        t0 = time.perf_counter()
        for f in frames:
            browser.slider.setValue(f)
            browser.wait_settled(5)
        per = (time.perf_counter() - t0) / len(frames)
        print(f"  scrub (wipe, two takes) {label}: {1000 * per:.1f} ms/frame "
              f"({1 / per:.0f} frames/s)")
    browser.close()
    app.processEvents()


def picture(p: demo.DemoPaths, root: str, path: str) -> None:
    from actanywhere.browser.qt import QtWidgets
    from actanywhere.browser.window import open_browser

    bg = imageio.read(p.background, ["R", "G", "B"]).pixels
    warm = os.path.join(root, "warm.exr")
    imagewrite.write_exr(warm, ["R", "G", "B"], bg * np.array([1.5, 0.85, 0.5], np.float32),
                      Window(0, 0, bg.shape[1], bg.shape[0]))
    shots = os.path.join(root, "pictures", "sh010")
    runs = [("composite", p.background, {}), ("composite", warm, {}),
            ("diffusion", p.background, {"seed": 0}), ("diffusion", p.background, {"seed": 7})]
    for i, (engine, background, diff) in enumerate(runs, start=1):
        s = shot_spec(p, os.path.join(shots, f"take_{i:03d}", "sh010.####.exr"), engine,
                      motion={"source": "auto"}, background={"path": background},
                      **({"diffusion": diff} if diff else {}))
        job.run(s)
    Take.load(os.path.join(shots, "take_003")).mark(starred=True, note="keeps the sun")
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    browser = open_browser(os.path.dirname(shots), ["take_003", "take_001"], "wipe",
                           frame=demo.FIRST_FRAME + 5, size=(1280, 760))
    browser.viewer.wipe = 0.55
    browser.screenshot(path)
    browser.close()
    app.processEvents()
    print(f"picture: {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=12, help="frames of the 2K demo plate")
    ap.add_argument("--takes", type=int, default=50)
    ap.add_argument("--picture", help="write a screenshot of the browser on four takes")
    ns = ap.parse_args()
    root = tempfile.mkdtemp(prefix="aa-bench-takes-")
    p = demo.paths(os.path.join(root, "demo"))
    os.makedirs(p.root)
    demo.make_background(p.background)
    demo.make_plate(p.plate, ns.frames)
    print(f"shot: demo plate 2048x1080, {ns.frames} frames; CPU, {os.cpu_count()} cores")
    proxy_cost(p, root, ns.frames)
    fifty_takes(p, root, ns.takes)
    if ns.picture:
        small = demo.paths(os.path.join(root, "small"))
        os.makedirs(small.root)
        demo.make_background(small.background)
        demo.make_plate(small.plate, 12, 1024, 540)
        picture(small, root, ns.picture)


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    os._exit(0)  # PySide's teardown at interpreter exit is not order-safe
