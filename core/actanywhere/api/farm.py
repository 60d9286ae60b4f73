"""Send takes to the farm from a host (standard library only): the ShotSpecs a host built,
exported as a job bundle by the ActAnywhere install's own ``actanywhere farm export``; the
host shows the submit command (docs/farm.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass


@dataclass
class FarmBundle:
    folder: str
    submit: str  # e.g. ``deadline bundle submit <folder>``
    run_locally: str  # ``openjd run ...`` ("" for OpenCue: it has no local runner)
    message: str  # the exporter's summary line


class FarmError(Exception):
    """The export failed; the message is one line for the artist."""


def send_to_farm(specs: list[dict], out: str, output_root: str,
                 wedge: dict[str, list] | None = None, python: str | None = None,
                 chunk: int = 10, timeout: float = 300.0, split: int = 0,
                 split_overlap: int = 8, fmt: str = "openjd") -> FarmBundle:
    """Write a job bundle for ``specs`` (ShotSpec dicts, one per shot) times ``wedge``
    (field -> values) into ``out``; ``python``: the ActAnywhere venv's interpreter (default
    ``$ACTANYWHERE_PYTHON``, else this one). ``split``: diffusion shots longer than this
    are generated in overlapping parts; ``fmt``: openjd or opencue (``job.xml``; then
    ``run_locally`` is empty)."""
    python = python or os.environ.get("ACTANYWHERE_PYTHON") or sys.executable
    with tempfile.TemporaryDirectory(prefix="actanywhere-farm-") as tmp:
        paths = []
        for i, spec in enumerate(specs):
            path = os.path.join(tmp, f"shot_{i:03d}.json")
            with open(path, "w") as fh:
                json.dump(spec, fh)
            paths.append(path)
        cmd = [python, "-m", "actanywhere", "farm", "export", *paths, "--out", out,
               "--output-root", output_root, "--chunk", str(chunk), "--split", str(split),
               "--split-overlap", str(split_overlap), "--format", fmt]
        for field, values in (wedge or {}).items():
            cmd += ["--wedge", f"{field}={','.join(str(v) for v in values)}"]
        env = dict(os.environ, HF_HUB_OFFLINE="1")
        if python != sys.executable:
            env.pop("PYTHONPATH", None)  # a host's PYTHONPATH is not for the venv
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise FarmError(f"{python}: farm export did not run ({exc})") from None
    lines = r.stdout.strip().splitlines()
    if r.returncode != 0 or len(lines) < 3:
        err = (r.stderr.strip().splitlines() or [f"exit code {r.returncode}"])[-1]
        raise FarmError(f"farm export failed: {err}")
    local = lines[2].split(":", 1)[1].strip()
    return FarmBundle(os.path.abspath(out), lines[1].split(":", 1)[1].strip(),
                      "" if fmt == "opencue" else local, lines[0])
