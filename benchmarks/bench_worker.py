"""A second take on a warm worker vs a cold one-shot CLI run of the same job.

    .venv/bin/python benchmarks/bench_worker.py                 # shipped model, CPU
    .venv/bin/python benchmarks/bench_worker.py --model M --device cuda --frames 16

Measured in one run: (1) the cold CLI (`actanywhere generate`, a new process: Python, torch,
model load, generation, exit); (2) the generation itself, in-process with the model already
loaded (the floor); (3) a second take through a warm worker, timed by the client from submit
to the final status. Target (issue #6): the warm take costs at most 10% more than (2).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "core"))

from actanywhere import spec  # noqa: E402
from actanywhere.api import Client  # noqa: E402
from actanywhere.cli import demo_shot as demo  # noqa: E402
from actanywhere.shot import job  # noqa: E402


def shot_spec(root: str, model: str | None, device: str, seed: int, out: str) -> dict:
    data = {"plate": {"path": os.path.join(root, "plate", "plate.####.exr")},
            "background": {"path": os.path.join(root, "background.exr")},
            "engine": {"name": "diffusion", "model": model, "device": device},
            "diffusion": {"seed": seed},
            "output": {"path": os.path.join(root, out, "comp.####.exr"), "existing": "overwrite"}}
    return data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="checkpoint folder (default: shipped model)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument("--height", type=int, default=540)
    ns = ap.parse_args()
    root = tempfile.mkdtemp(prefix="aa-bench-worker-")
    demo.make_background(os.path.join(root, "background.exr"), ns.width, ns.height)
    demo.make_plate(os.path.join(root, "plate", "plate.####.exr"), ns.frames, ns.width,
                    ns.height)
    env = dict(os.environ, HF_HUB_OFFLINE="1")

    # (1) cold one-shot CLI
    spec_file = os.path.join(root, "cold.json")
    with open(spec_file, "w") as fh:
        json.dump(shot_spec(root, ns.model, ns.device, 1, "cold"), fh)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "actanywhere", "generate", "--spec", spec_file,
                    "--progress", "none"], check=True, env=env)
    cold = time.perf_counter() - t0

    # (2) the generation itself, model already loaded (in-process, warm cache)
    from actanywhere.model import cache

    cache.enable(16 * 2**30)
    job.run(spec.from_dict(shot_spec(root, ns.model, ns.device, 1, "inproc1")))
    t0 = time.perf_counter()
    job.run(spec.from_dict(shot_spec(root, ns.model, ns.device, 2, "inproc2")))
    generation = time.perf_counter() - t0

    # (3) a warm worker: first take loads the model, the second is timed
    state = os.path.join(root, "state")
    proc = subprocess.Popen([sys.executable, "-m", "actanywhere", "serve", "--state-dir", state],
                            env=env, stderr=subprocess.DEVNULL)
    try:
        client = None
        for _ in range(600):
            try:
                client = Client.from_state(state)
                break
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.1)
        assert client is not None, "worker did not start"
        first = client.wait(client.submit(shot_spec(root, ns.model, ns.device, 1, "take1")))
        assert first["status"] == "done", first["error"]
        t0 = time.perf_counter()
        second = client.wait(client.submit(shot_spec(root, ns.model, ns.device, 2, "take2")),
                             poll=1.0)
        warm = time.perf_counter() - t0
        assert second["status"] == "done", second["error"]
        client.shutdown()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()

    print(f"shot: {ns.frames} frames {ns.width}x{ns.height}, model "
          f"{ns.model or 'shipped'}, device {ns.device}")
    print(f"cold one-shot CLI            {cold:8.2f} s")
    print(f"generation (in-process warm) {generation:8.2f} s")
    print(f"warm worker, second take     {warm:8.2f} s")
    print(f"warm take / generation       {warm / generation:8.3f}  (target <= 1.10)")
    print(f"cold CLI / warm take         {cold / warm:8.2f}x")


if __name__ == "__main__":
    main()
