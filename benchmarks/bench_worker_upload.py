"""What sending a take costs when the worker does not share the client's disks: upload of the
inputs and download of the take, per 2K EXR frame (2048x1080 half RGBA, ZIP: the demo plate),
against the take's own run with the test engine ``flat`` (tests/fake_engine.py), over TLS on
this machine.

    .venv/bin/python benchmarks/bench_worker_upload.py                  # 8 frames, 3 takes
    .venv/bin/python benchmarks/bench_worker_upload.py --frames 24 --takes 5 --json f.json

One TLS worker (certificate from `serve --make-cert`, a tokens file). Each round runs the same
shot twice, alternating: once with ``transfer: shared`` (the worker reads the client's files:
the baseline, submit to done), once with ``transfer: upload``, timed in three parts: send
(hashing every input with sha256, opening the upload, the chunks), the run on the worker
(submit to done), fetch (frames, proxies and record, each checked). Every upload is removed
after its round, so each round sends everything again. The first round is not counted.
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
sys.path.insert(0, HERE)

from bench_worker_remote import _env, _serve  # noqa: E402

from actanywhere.api import Client, remote  # noqa: E402
from actanywhere.cli import demo_shot as demo  # noqa: E402
from actanywhere.worker import tokens  # noqa: E402


def _spec(root: str, out: str) -> dict:
    return {"plate": {"path": os.path.join(root, "plate", "plate.####.exr")},
            "background": {"path": os.path.join(root, "background.exr")},
            "engine": {"name": "flat"}, "threads": 2,
            "output": {"path": os.path.join(root, out, "c.####.exr")}}


def _shared(client: Client, root: str, out: str) -> float:
    t0 = time.perf_counter()
    final = client.wait(client.submit(_spec(root, out)), poll=5.0, timeout=600)
    if final["status"] != "done":
        raise SystemExit(f"{out}: {final['status']}: {final.get('error')}")
    return time.perf_counter() - t0


def _uploaded(client: Client, root: str, out: str) -> dict[str, float]:
    t0 = time.perf_counter()
    job = client.submit(_spec(root, out))
    t1 = time.perf_counter()
    sent = client._sent.pop(job)  # wait without the fetch, to time it on its own
    final = client.wait(job, poll=5.0, timeout=600)
    if final["status"] != "done":
        raise SystemExit(f"{out}: {final['status']}: {final.get('error')}")
    t2 = time.perf_counter()
    client._sent[job] = sent
    fetched = client.fetch(job)
    t3 = time.perf_counter()
    client._request("DELETE", f"/v1/uploads/{sent.upload_id}")
    return {"send": t1 - t0, "run": t2 - t1, "fetch": t3 - t2, "sent_bytes": sent.sent_bytes,
            "fetched_files": fetched["upload"]["files"]}


def _med(values: list[float]) -> float:
    return round(statistics.median(values), 4)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--takes", type=int, default=3, help="timed rounds (one more untimed)")
    ap.add_argument("--json", help="also write the figures to this file")
    ns = ap.parse_args()
    base = tempfile.mkdtemp(prefix="aa-bench-upload-")
    shot = os.path.join(base, "shot")
    demo.make_background(os.path.join(shot, "background.exr"), 2048, 1080)
    demo.make_plate(os.path.join(shot, "plate", "plate.####.exr"), ns.frames, 2048, 1080)
    plate_bytes = sum(os.path.getsize(os.path.join(shot, "plate", n))
                      for n in os.listdir(os.path.join(shot, "plate")))
    bg_bytes = os.path.getsize(os.path.join(shot, "background.exr"))
    certs = os.path.join(base, "certs")
    subprocess.run([sys.executable, "-m", "actanywhere", "serve", "--make-cert", certs,
                    "--host", "127.0.0.1"], check=True, env=_env(), capture_output=True)
    token_file = os.path.join(base, "tokens.json")
    token = tokens.add(token_file, "artist")
    cert = os.path.join(certs, "worker.crt")
    proc, admin = _serve(os.path.join(base, "state"), "--listen", "127.0.0.1:0", "--tls-cert",
                         cert, "--tls-key", os.path.join(certs, "worker.key"), "--tokens",
                         token_file)
    try:
        shared = Client.remote(remote.Remote(admin.url, token, cert))
        upload = Client.remote(remote.Remote(admin.url, token, cert, transfer="upload"))
        rounds: list[dict[str, float]] = []
        for i in range(ns.takes + 1):
            row = {"shared": _shared(shared, shot, f"shared_{i:02d}"),
                   **_uploaded(upload, shot, f"upload_{i:02d}")}
            if i:
                rounds.append(row)
            print(f"round {i}{' (not counted)' if not i else ''}: "
                  + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                              for k, v in row.items()), flush=True)
    finally:
        try:
            admin.shutdown()
            proc.wait(timeout=20)
        except Exception:  # noqa: BLE001
            proc.kill()
    n = ns.frames
    out_bytes = sum(os.path.getsize(os.path.join(folder, f)) for folder, _, names in
                    os.walk(os.path.join(shot, "upload_01")) for f in names)
    med = {k: _med([r[k] for r in rounds]) for k in ("shared", "send", "run", "fetch")}
    per_frame = {k: round(v / n * 1000, 1) for k, v in med.items()}
    overhead = med["send"] + med["fetch"]
    figures = {
        "engine": "flat (tests/fake_engine.py), threads 2, proxies on (default)",
        "frames": n, "size": "2048x1080 half RGBA ZIP (demo plate)",
        "plate_mb_per_frame": round(plate_bytes / n / 2**20, 2),
        "background_mb": round(bg_bytes / 2**20, 2),
        "take_output_mb_per_frame": round(out_bytes / n / 2**20, 2),
        "median_s": med, "median_ms_per_frame": per_frame,
        "overhead_over_generation": round(overhead / med["shared"], 3),
        "upload_mb_s": round((plate_bytes + bg_bytes) / 2**20 / med["send"], 1),
        "chunk_bytes": upload.chunk_bytes, "python": sys.version.split()[0],
    }
    print(f"engine {figures['engine']}; {n} frames {figures['size']}, "
          f"{figures['plate_mb_per_frame']} MB a frame, background {figures['background_mb']} "
          f"MB; TLS on 127.0.0.1; chunks of {upload.chunk_bytes >> 20} MiB; median of "
          f"{len(rounds)} rounds:")
    print(f"  shared storage, submit to done: {per_frame['shared']:8.1f} ms a frame")
    print(f"  upload: send (sha256 + chunks): {per_frame['send']:8.1f} ms a frame "
          f"({figures['upload_mb_s']} MB/s)")
    print(f"          run on the worker:      {per_frame['run']:8.1f} ms a frame")
    print(f"          fetch (frames, proxies, record; {figures['take_output_mb_per_frame']} MB "
          f"a frame): {per_frame['fetch']:8.1f} ms a frame")
    print(f"  (send + fetch) / generation: {figures['overhead_over_generation']:.3f}")
    if ns.json:
        with open(ns.json, "w") as fh:
            json.dump(figures, fh, indent=2)


if __name__ == "__main__":
    main()
