"""What a remote take costs over a loopback one: the same worker code, once as today's local
worker (plain HTTP on 127.0.0.1, its own token) and once as a shared worker (TLS with a
certificate from `serve --make-cert`, a tokens file, the client's path maps), both on this
machine, driven by the same stdlib client.

    .venv/bin/python benchmarks/bench_worker_remote.py            # 20 takes each, 4 frames
    .venv/bin/python benchmarks/bench_worker_remote.py --takes 50 --json figures.json

A take is timed by the client from submit to its final status (``Client.submit`` then
``Client.wait``), with the test engine ``flat`` (tests/fake_engine.py: no model, a few ms a
frame), so what differs is the transport: TLS handshakes (the client opens a connection per
request), token lookup, the path check at submit and the path maps. Takes alternate between
the two workers so both see the same load; the first two of each are not counted. Also timed:
a bare ``GET /v1/health``, the floor of every request.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "core"))

from actanywhere.api import Client, remote  # noqa: E402
from actanywhere.api.pathmap import Rule  # noqa: E402
from actanywhere.cli import demo_shot as demo  # noqa: E402
from actanywhere.worker import tokens  # noqa: E402

TESTS = os.path.join(HERE, "..", "tests")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTANYWHERE_")}
    env.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", ACTANYWHERE_ENGINES="fake_engine",
               PYTHONPATH=os.pathsep.join([TESTS, *filter(None, [env.get("PYTHONPATH")])]))
    return env


def _serve(state: str, *flags: str) -> tuple[subprocess.Popen, Client]:
    proc = subprocess.Popen([sys.executable, "-m", "actanywhere", "serve", "--state-dir", state,
                             *flags], env=_env(), stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            client = Client.from_state(state)
            if client.pid == proc.pid:
                return proc, client
        except Exception:  # noqa: BLE001 - still starting
            pass
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("the worker did not start")


def _take(client: Client, root: str, out: str) -> float:
    data = {"plate": {"path": os.path.join(root, "plate", "plate.####.exr")},
            "background": {"path": os.path.join(root, "background.exr")},
            "engine": {"name": "flat"}, "threads": 1,
            "output": {"path": os.path.join(root, out, "c.####.exr"), "proxy": False}}
    t0 = time.perf_counter()
    final = client.wait(client.submit(data), poll=5.0, timeout=300)
    took = time.perf_counter() - t0
    if final["status"] != "done":
        raise SystemExit(f"take {out}: {final['status']}: {final.get('error')}")
    return took


def _summary(times: list[float]) -> dict[str, float]:
    ms = sorted(t * 1000 for t in times)
    return {"median_ms": round(statistics.median(ms), 1), "mean_ms": round(statistics.mean(ms), 1),
            "p90_ms": round(ms[int(0.9 * (len(ms) - 1))], 1), "n": len(ms)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--takes", type=int, default=20, help="timed takes on each worker")
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--height", type=int, default=144)
    ap.add_argument("--json", help="also write the figures to this file")
    ns = ap.parse_args()
    base = tempfile.mkdtemp(prefix="aa-bench-remote-")
    worker_root = os.path.join(base, "mnt", "show")  # the worker's mount ...
    client_root = os.path.join(base, "Volumes", "show")  # ... and the client's, the same files
    demo.make_background(os.path.join(worker_root, "background.exr"), ns.width, ns.height)
    demo.make_plate(os.path.join(worker_root, "plate", "plate.####.exr"), ns.frames, ns.width,
                    ns.height)
    os.makedirs(os.path.dirname(client_root))
    os.symlink(worker_root, client_root)
    certs = os.path.join(base, "certs")
    subprocess.run([sys.executable, "-m", "actanywhere", "serve", "--make-cert", certs,
                    "--host", "127.0.0.1"], check=True, env=_env(), capture_output=True)
    token_file = os.path.join(base, "tokens.json")
    token = tokens.add(token_file, "artist")
    cert = os.path.join(certs, "worker.crt")

    local_proc, local = _serve(os.path.join(base, "s-local"))
    remote_proc, admin = _serve(os.path.join(base, "s-remote"), "--listen", "127.0.0.1:0",
                                "--tls-cert", cert, "--tls-key",
                                os.path.join(certs, "worker.key"), "--tokens", token_file)
    try:
        far = Client.remote(remote.Remote(admin.url, token, cert,
                                          (Rule(client_root, worker_root),)))
        health: dict[str, list[float]] = {"loopback": [], "remote": []}
        for _ in range(50):
            for name, client in (("loopback", local), ("remote", far)):
                t0 = time.perf_counter()
                client.health()
                health[name].append(time.perf_counter() - t0)
        takes: dict[str, list[float]] = {"loopback": [], "remote": []}
        for i in range(ns.takes + 2):
            for name, client, root in (("loopback", local, worker_root),
                                       ("remote", far, client_root)):
                took = _take(client, root, f"{name}_{i:03d}")
                if i >= 2:
                    takes[name].append(took)
    finally:
        for proc, client in ((local_proc, local), (remote_proc, admin)):
            try:
                client.shutdown()
                proc.wait(timeout=20)
            except Exception:  # noqa: BLE001
                proc.kill()
    figures = {
        "takes": {k: _summary(v) for k, v in takes.items()},
        "health": {k: _summary(v) for k, v in health.items()},
        "frames": ns.frames, "size": f"{ns.width}x{ns.height}", "python": sys.version.split()[0],
    }
    lo, re_ = figures["takes"]["loopback"]["median_ms"], figures["takes"]["remote"]["median_ms"]
    figures["ratio"] = round(re_ / lo, 3)
    figures["added_ms"] = round(re_ - lo, 1)
    print(f"submit-to-done, median of {ns.takes} takes ({ns.frames} frames "
          f"{ns.width}x{ns.height}, engine flat):")
    for name in ("loopback", "remote"):
        t, h = figures["takes"][name], figures["health"][name]
        print(f"  {name:9s} {t['median_ms']:8.1f} ms  (mean {t['mean_ms']:.1f}, p90 "
              f"{t['p90_ms']:.1f}; GET /v1/health median {h['median_ms']:.1f} ms)")
    print(f"  remote / loopback: {figures['ratio']:.3f} ({figures['added_ms']:+.1f} ms a take)")
    if ns.json:
        with open(ns.json, "w") as fh:
            json.dump(figures, fh, indent=2)


if __name__ == "__main__":
    main()
