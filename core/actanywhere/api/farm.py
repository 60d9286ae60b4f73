"""Send takes to the farm from a host (standard library only): the ShotSpecs a host built,
exported as a job bundle by the ActAnywhere install's own ``actanywhere farm export``, then
submitted with the Deadline Cloud CLI (``deadline bundle submit``) where it is installed and
configured, else the host shows the submit command (docs/farm.md). The take folders the
export reserves hold a record saying ``queued`` (with no job: queued on the farm) until the
farm's frames and record arrive.

A host calls ``send`` on a thread of its own: the export and the submit run subprocesses
(each with a timeout: nothing here waits for ever)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field


@dataclass
class FarmBundle:
    folder: str
    submit: str  # e.g. ``deadline bundle submit <folder>``
    run_locally: str  # ``openjd run ...`` ("" for OpenCue: it has no local runner)
    message: str  # the exporter's summary line
    #: the take folders the export reserved (``queued`` on the farm), from its bundle.json
    takes: list[str] = field(default_factory=list)
    #: what ``deadline bundle submit`` said (its last line), "" when it was not submitted
    submitted: str = ""
    #: why it was not submitted ("" when it was): Deadline Cloud's CLI missing or unset
    not_submitted: str = ""


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
                      "" if fmt == "opencue" else local, lines[0], reserved(out))


def reserved(folder: str) -> list[str]:
    """The take folders the bundle in ``folder`` reserved (its ``bundle.json``)."""
    try:
        with open(os.path.join(folder, "bundle.json"), encoding="utf-8") as fh:
            takes = json.load(fh).get("takes", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [str(t) for t in takes] if isinstance(takes, list) else []


def bundle_folder(root: str, name: str) -> str:
    """A new folder for one send's bundle: ``<root>/<name>_<YYYYmmdd_HHMMSS>`` (``_2``, ...
    when taken), so a later send never replaces an earlier one's queued takes."""
    safe = "".join(c if c.isalnum() or c in "_-" else "_" for c in name) or "take"
    base = os.path.join(root, f"{safe}_{time.strftime('%Y%m%d_%H%M%S')}")
    path, n = base, 1
    while os.path.exists(path):
        n += 1
        path = f"{base}_{n}"
    return path


def deadline_ready(timeout: float = 15.0) -> tuple[str | None, str]:
    """(the ``deadline`` CLI, "") when Deadline Cloud's CLI is installed and has a default
    farm and queue set; else (None, why not, one line). Never waits beyond ``timeout``."""
    exe = shutil.which("deadline")
    if exe is None:
        return None, "the Deadline Cloud CLI (deadline) is not installed here"
    for setting in ("defaults.farm_id", "defaults.queue_id"):
        try:
            r = subprocess.run([exe, "config", "get", setting], capture_output=True,
                               text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return None, f"deadline config get {setting} did not answer ({exc})"
        value = r.stdout.strip().splitlines()[-1].strip() if r.stdout.strip() else ""
        if r.returncode != 0 or not value or value.lower() in ("none", "null"):
            return None, (f"Deadline Cloud has no {setting.split('.')[1].replace('_', ' ')} "
                          "set (deadline config gui, or deadline config set " + setting + ")")
    return exe, ""


def submit_deadline(exe: str, folder: str, name: str = "", timeout: float = 300.0) -> str:
    """``deadline bundle submit --yes FOLDER``: the CLI's last line (it names the job);
    FarmError (one line) when it fails or takes longer than ``timeout``."""
    cmd = [exe, "bundle", "submit", "--yes", *(["--name", name] if name else []), folder]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FarmError(f"deadline bundle submit did not finish ({exc}); submit it yourself: "
                        f"deadline bundle submit {folder}") from None
    said = (r.stdout.strip() or r.stderr.strip()).splitlines()
    if r.returncode != 0:
        err = (r.stderr.strip().splitlines() or said or [f"exit code {r.returncode}"])[-1]
        raise FarmError(f"deadline bundle submit failed: {err}")
    return said[-1] if said else "submitted"


def send(specs: list[dict], out: str, output_root: str, *, python: str | None = None,
         name: str = "", submit: bool = True, timeout: float = 300.0) -> FarmBundle:
    """``send_to_farm``, then (``submit``) the bundle submitted to Deadline Cloud when its CLI
    is installed and configured (``deadline_ready``); else ``not_submitted`` says why and
    the host shows ``submit``, the command to run. FarmError for an export that failed; a
    submit that failed is said in ``not_submitted`` (the bundle and its takes stay)."""
    bundle = send_to_farm(specs, out, output_root, python=python, timeout=timeout)
    if not submit:
        bundle.not_submitted = "not submitted"
        return bundle
    exe, why = deadline_ready()
    if exe is None:
        bundle.not_submitted = why
        return bundle
    try:
        bundle.submitted = submit_deadline(exe, bundle.folder, name, timeout)
    except FarmError as exc:
        bundle.not_submitted = str(exc)
    return bundle
