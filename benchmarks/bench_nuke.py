"""The Nuke node's own cost against the generation it asks for, composite engine, 2K plate.

    .venv/bin/python benchmarks/bench_nuke.py                 # 2048x1152, 8 frames
    .venv/bin/python benchmarks/bench_nuke.py --frames 16 --width 4096 --height 2160

Nuke cannot be installed here: the node's real plugin code runs on the test double of the
``nuke`` module (tests/fake_nuke), whose ``nuke.execute`` renders with OpenImageIO, not with
Nuke's engine. Measured in one run, on a worker warmed by a first take:

1. press Generate -> the job running in the worker (first progress event), plate used direct
2. Nuke-side work per frame: the plate input rendered by a temporary Write (a Grade in front
   of the Read) + the take's Read updated when the job ends, against
3. the generation per frame (the worker's own ``run_s`` for the same take).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
for sub in ("core", os.path.join("tests", "fake_nuke"), "nuke_plugin"):
    sys.path.insert(0, os.path.join(REPO, sub))

import nuke  # noqa: E402 - the test double

from actanywhere.api import Client  # noqa: E402
from actanywhere.cli import demo_shot as demo  # noqa: E402


def _pump_until(done, timeout=1800.0) -> None:
    end = time.monotonic() + timeout
    while not done():
        nuke._pump(0.01)
        if time.monotonic() > end:
            raise SystemExit("timed out")
    nuke._pump()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--width", type=int, default=2048)
    ap.add_argument("--height", type=int, default=1152)
    ns = ap.parse_args()
    root = tempfile.mkdtemp(prefix="aa-bench-nuke-")
    os.environ["ACTANYWHERE_STATE_DIR"] = os.path.join(root, "state")
    os.environ["ACTANYWHERE_PYTHON"] = sys.executable
    os.environ["HF_HUB_OFFLINE"] = "1"
    demo.make_background(os.path.join(root, "bg.exr"), ns.width, ns.height)
    demo.make_plate(os.path.join(root, "plate", "plate.####.exr"), ns.frames, ns.width,
                    ns.height)
    for script in ("init.py", "menu.py"):
        path = os.path.join(REPO, "nuke_plugin", script)
        with open(path) as fh:
            exec(compile(fh.read(), path, "exec"), {})
    import actanywhere_nuke.node as plugin

    first, last = 1001, 1000 + ns.frames
    with nuke.root():
        plate = nuke.nodes.Read(file=os.path.join(root, "plate", "plate.####.exr"),
                                first=first, last=last)
        bg = nuke.nodes.Read(file=os.path.join(root, "bg.exr"))
        grade = nuke.nodes.Grade(white=1.0001)
    grade.setInput(0, plate)
    nuke.scriptSaveAs(os.path.join(root, "bench.nk"))
    node = nuke.createNode("ActAnywhere")
    node.setInput(1, bg)

    def take(src) -> dict:
        node.setInput(0, src)
        t0 = time.monotonic()
        plugin.generate(node)
        pressed = time.monotonic() - t0  # Generate's own time on the main thread
        run = plugin.RUNS[node.fullName()]
        _pump_until(lambda: node.fullName() not in plugin.RUNS)
        h = run.handle
        if h.status != "done":
            raise SystemExit(f"take {h.status}: {h.error}")
        t1 = time.monotonic()
        plugin.refresh(node)  # what the end callback does to the node
        update = time.monotonic() - t1
        return {"pressed": pressed, "to_running": h.times["running"] - t0,
                "run": h.job["timings"]["run_s"], "update": update}

    try:
        take(plate)  # warms the worker (started from ACTANYWHERE_PYTHON)
        direct = take(plate)
        rendered = take(grade)
    finally:
        Client.from_state().shutdown()
    n = ns.frames
    print(f"engine composite, plate {ns.width}x{ns.height}, {n} frames, fake nuke (OIIO "
          f"renders), warm worker, {os.cpu_count()} cores")
    print(f"press Generate -> job running (plate direct):     {direct['to_running']:.3f} s "
          f"(Generate itself {direct['pressed'] * 1000:.0f} ms on the main thread)")
    print(f"press Generate -> job running (plate rendered):   {rendered['to_running']:.3f} s")
    side = (rendered["pressed"] + rendered["update"]) / n
    gen = rendered["run"] / n
    print(f"Nuke-side per frame (input render + Read update): {side * 1000:.1f} ms")
    print(f"generation per frame (worker run_s):              {gen * 1000:.1f} ms")
    print(f"ratio Nuke-side / generation:                     {side / gen:.2f}x")
    print(f"Read update alone per take:                       {rendered['update'] * 1000:.1f} ms")


if __name__ == "__main__":
    main()
