"""N takes of one shot through the farm path, against cold CLI runs and an in-process loop.

    .venv/bin/python benchmarks/bench_farm.py          # 3 takes, the shipped model, CPU

In one run, the same N diffusion takes (seeds 1..N of a 12-frame 192x108 shot, the shipped
small model, 10 steps) three ways:
1. ``openjd run`` of an exported bundle: one session, one warm worker (the step environment),
   N tasks submitting to it;
2. N separate cold ``actanywhere generate`` processes (each imports torch, loads the model);
3. one in-process loop of ``job.run`` (no process start, the model loaded per run as the
   CLI does: the floor the other two are compared with).
Printed: seconds, and the ratios (warm-worker gain = cold / openjd; overhead = openjd / loop).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "core"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pathlib import Path  # noqa: E402

from conftest import make_shot  # noqa: E402

from actanywhere import spec  # noqa: E402
from actanywhere.shot import job  # noqa: E402

BIN = os.path.dirname(sys.executable)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--takes", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ns = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="aa-bench-farm-"))
    plate, bg = make_shot(root / "sh010", frames=range(1, 13), size=(192, 108))
    data = {"plate": {"path": str(plate)}, "background": {"path": str(bg)},
            "output": {"path": str(root / "unused" / "c.####.exr")},
            "engine": {"name": "diffusion", "device": "cpu"},
            "diffusion": {"steps": ns.steps}}
    spec_path = root / "sh010.json"
    spec_path.write_text(json.dumps(data))
    seeds = ",".join(str(s) for s in range(1, ns.takes + 1))
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    act = os.path.join(BIN, "actanywhere")
    subprocess.run([act, "farm", "export", str(spec_path), "--out", str(root / "bundle"),
                    "--output-root", str(root / "renders"), "--wedge",
                    f"diffusion.seed={seeds}"], check=True, env=env, capture_output=True)
    openjd = shutil.which("openjd", path=BIN) or "openjd"
    t0 = time.perf_counter()
    r = subprocess.run([openjd, "run", str(root / "bundle" / "template.yaml"), "-p",
                        f"file://{root / 'bundle' / 'openjd_parameters.json'}"],
                       env=env, capture_output=True, text=True)
    t_openjd = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(r.stdout[-2000:])
    loads = [ln.split("stopped the worker")[1] for ln in r.stdout.splitlines()
             if "stopped the worker" in ln]
    t0 = time.perf_counter()
    for s in range(1, ns.takes + 1):
        subprocess.run([act, "generate", "--spec", str(spec_path), "--seed", str(s), "-o",
                        str(root / "cold" / f"t{s}" / "c.####.exr"), "--progress", "none"],
                       check=True, env=env, capture_output=True)
    t_cold = time.perf_counter() - t0
    import torch  # noqa: F401 - imported before the loop, as a long-lived process has it

    t0 = time.perf_counter()
    for s in range(1, ns.takes + 1):
        d = json.loads(json.dumps(data))
        d["diffusion"]["seed"] = s
        d["output"]["path"] = str(root / "loop" / f"t{s}" / "c.####.exr")
        job.run(spec.from_dict(d))
    t_loop = time.perf_counter() - t0
    version = sys.modules["torch"].__version__
    print(f"{ns.takes} diffusion takes of a 12-frame 192x108 shot, shipped model, "
          f"{ns.steps} steps, CPU ({os.cpu_count()} cores), torch {version}")
    worker = loads[0] if loads else ""
    print(f"  openjd run (one session, warm worker) {t_openjd:7.1f} s  worker{worker}")
    print(f"  {ns.takes} cold generate processes       {t_cold:7.1f} s  "
          f"warm-worker gain {t_cold / t_openjd:.2f}x")
    print(f"  in-process job.run loop               {t_loop:7.1f} s  "
          f"openjd overhead {t_openjd / t_loop:.2f}x")


if __name__ == "__main__":
    main()
