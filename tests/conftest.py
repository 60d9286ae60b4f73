"""Shared test helpers: real EXR files written with OpenImageIO directly (not our writer)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest

from actanywhere.api import Client, WorkerError

# Qt widgets (the takes browser) render offscreen: no display on CI
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("ACTANYWHERE_EXR_CORPUS", REPO.parent / "shared" / "exr-corpus"))


def write_exr(path, pixels, channels=("R", "G", "B", "A"), display=None, data_origin=(0, 0),
              fmt="half", attrs=None):
    """Write ``pixels`` (H, W, C) as the data window at ``data_origin``; display (x, y, w, h)."""
    pixels = np.ascontiguousarray(pixels, np.float32)
    h, w, c = pixels.shape
    spec = oiio.ImageSpec(w, h, c, fmt)
    spec.channelnames = tuple(channels)
    spec.x, spec.y = data_origin
    if display is not None:
        spec.full_x, spec.full_y, spec.full_width, spec.full_height = display
    for k, v in (attrs or {}).items():
        spec.attribute(k, v)
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec), oiio.geterror()
    assert out.write_image(pixels)
    out.close()


def read_exr(path):
    """(pixels in the data window, spec) read with OpenImageIO directly."""
    inp = oiio.ImageInput.open(str(path))
    assert inp, oiio.geterror()
    spec = inp.spec()
    px = inp.read_image(0, 0, 0, spec.nchannels, "float")
    inp.close()
    return np.asarray(px), spec


def make_shot(root: Path, frames=range(1, 5), size=(64, 36), premult=False, attrs=None,
              data_inset=0):
    """A tiny plate sequence: a bright square subject moving right over a grey set."""
    w, h = size
    plate = root / "plate"
    plate.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        rgba = np.zeros((h, w, 4), np.float32)
        rgba[..., :3] = 0.2  # the set
        x0 = 8 + 4 * i
        rgba[10:26, x0 : x0 + 12, :3] = [0.9, 0.3, 2.5]  # subject, blue above 1
        rgba[10:26, x0 : x0 + 12, 3] = 1.0
        if premult:
            rgba[..., :3] *= rgba[..., 3:4]
        d = data_inset
        write_exr(plate / f"plate.{f:04d}.exr", rgba[d : h - d, d : w - d], display=(0, 0, w, h),
                  data_origin=(d, d), attrs=attrs)
    bg = np.zeros((h * 2, w * 2, 3), np.float32)
    bg[..., 0] = np.linspace(0, 1, w * 2)[None, :]
    bg[..., 1] = 0.5
    bg[..., 2] = np.linspace(0, 1, h * 2)[:, None]
    write_exr(root / "bg.exr", bg, channels=("R", "G", "B"))
    return plate / "plate.####.exr", root / "bg.exr"


@pytest.fixture
def shot(tmp_path):
    plate, bg = make_shot(tmp_path, attrs={"Copyright": "test studio", "capDate": "2026:01:01"})
    return tmp_path, plate, bg


def corpus(sub: str) -> Path:
    path = CORPUS / sub
    if not path.is_dir():
        pytest.skip(f"EXR corpus not present at {path}")
    return path


# ------------------------------------------------------------------------------ the worker
def start_worker(state, idle=120, *extra, preexec_fn=None, env=None):
    """A real worker process (``actanywhere serve``) on loopback; (process, client).
    ``preexec_fn``: run in the child before the worker starts (e.g. a lower file limit);
    ``env``: its environment (default this one, offline, one thread)."""
    env = env or dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "actanywhere", "serve", "--state-dir",
                             str(state), "--idle-timeout", str(idle), *extra], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=preexec_fn)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode()
        try:
            client = Client.from_state(str(state))
            if client.pid == proc.pid:
                return proc, client
        except WorkerError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("worker did not start")


def stop_worker(proc, client=None):
    if proc.poll() is None and client is not None:
        try:
            client.shutdown()
            proc.wait(timeout=20)
        except (WorkerError, subprocess.TimeoutExpired):
            pass
    if proc.poll() is None:
        proc.kill()
        proc.wait()


@pytest.fixture
def worker(tmp_path):
    proc, client = start_worker(tmp_path / "state")
    yield client
    stop_worker(proc, client)




#: what a job writes beside its frames (output.proxy, the default): proxies and the record
TAKE_EXTRAS = {"proxy", "take.json"}


def output_frames(folder) -> list[str]:
    """The frame files in an output folder, sorted; fails on anything there but the frames,
    the take's proxies and its record (a partial frame, a temporary file)."""
    names = set(os.listdir(folder))
    frames = sorted(n for n in names if n not in TAKE_EXTRAS)
    assert all(n.endswith(".exr") and not n.startswith(".") for n in frames), frames
    return frames
