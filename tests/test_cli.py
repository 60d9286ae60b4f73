"""The real ``actanywhere`` command, run as a subprocess the way users and hosts run it."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import make_shot, output_frames, read_exr


def cli(*args, cwd=None):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "actanywhere", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


def test_generate_with_flags_and_json_progress(tmp_path):
    plate, bg = make_shot(tmp_path)
    out = tmp_path / "o" / "c.####.exr"
    r = cli("generate", "--plate", plate, "--background", bg, "-o", out, "--progress", "json",
            "--compression", "piz", "--layers", "rgba,matte")
    assert r.returncode == 0, r.stderr
    events = [json.loads(line) for line in r.stdout.splitlines()]
    frames = [e for e in events if e["stage"] == "frames"]
    assert [e["done"] for e in frames] == [0, 1, 2, 3, 4] and frames[-1]["total"] == 4
    assert all("eta_s" in e for e in frames[1:]) and events[-1]["stage"] == "done"
    _, spec = read_exr(tmp_path / "o" / "c.0004.exr")
    assert set(spec.channelnames) == {"R", "G", "B", "A", "matte.A"}
    assert spec.get_string_attribute("compression") == "piz"


def test_spec_file_with_flag_override(tmp_path):
    plate, bg = make_shot(tmp_path)
    (tmp_path / "shot.toml").write_text(
        f'[plate]\npath = "plate/plate.####.exr"\nframes = "2-3"\n[background]\npath = "{bg}"\n'
        '[output]\npath = "out/c.####.exr"\n')
    r = cli("generate", "--spec", tmp_path / "shot.toml", "--frames", "1-2", "--progress", "none")
    assert r.returncode == 0, r.stderr
    assert output_frames(tmp_path / "out") == ["c.0001.exr", "c.0002.exr"]
    r = cli("generate", "--spec", tmp_path / "shot.toml", "--print-spec")
    assert json.loads(r.stdout)["plate"]["frames"] == "2-3"


def test_generate_moves_the_background_by_motion_flags(tmp_path):
    """--motion keys with --motion-key: the background of the last frame is the first's moved
    6 px left; the flags land in the spec (--init-strength too) and the EXR says the source."""
    plate, bg = make_shot(tmp_path)
    out = tmp_path / "o" / "c.####.exr"
    r = cli("generate", "--plate", plate, "--background", bg, "-o", out, "--progress", "none",
            "--motion", "keys", "--motion-key", "1:0,0", "--motion-key", "4:-6,0",
            "--layers", "rgba,bg")
    assert r.returncode == 0, r.stderr
    first, spec1 = read_exr(tmp_path / "o" / "c.0001.exr")
    last, spec4 = read_exr(tmp_path / "o" / "c.0004.exr")
    assert spec4.get_string_attribute("actanywhere:motion") == "keys"
    bgc = [list(spec1.channelnames).index(c) for c in ("bg.R", "bg.G", "bg.B")]
    # above the subject's feet (the bg layer carries its contact shadow, which walks)
    assert np.allclose(last[:20, 4:50][..., bgc], first[:20, 10:56][..., bgc], atol=2e-3)
    assert not np.allclose(last[..., bgc], first[..., bgc], atol=2e-3)
    r = cli("generate", "--plate", plate, "--background", bg, "-o", out, "--print-spec",
            "--motion", "file", "--motion-path", tmp_path / "m.json", "--engine", "diffusion",
            "--init-strength", "0.5")
    printed = json.loads(r.stdout)
    assert printed["motion"]["source"] == "file" and printed["diffusion"]["init_strength"] == 0.5
    assert printed["motion"]["path"] == str(tmp_path / "m.json")


@pytest.mark.parametrize("args,code,text", [
    (["--output", "{t}/o.####.exr", "--compression", "lzw"], 2, "output.compression"),
    (["--output", "{t}/o.####.exr", "--frames", "7-9"], 3, "missing plate frame"),
    (["--output", "{t}/plate/plate.####.exr"], 4, "overwrite an input"),
])
def test_errors_are_one_line_with_exit_codes(tmp_path, args, code, text):
    plate, bg = make_shot(tmp_path)
    args = [a.format(t=tmp_path) for a in args]
    r = cli("generate", "--plate", plate, "--background", bg, *args)
    assert r.returncode == code, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and text in lines[0]
    assert "Traceback" not in r.stderr


def test_unknown_flag_is_usage_error(tmp_path):
    r = cli("generate", "--nope")
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_info_and_doctor(tmp_path):
    plate, _ = make_shot(tmp_path, frames=[1, 2, 4], data_inset=2)
    r = cli("info", plate, "--json")
    data = json.loads(r.stdout)
    assert data["missing"] == "3" and data["range"] == "1-4"
    assert data["display_windows"] == {"64x36+0+0": 3} and data["data_windows"] == {
        "60x32+2+2": 3}
    assert data["channels"] == {"R,G,B,A": 3} and data["consistent"] is False
    assert r.returncode == 3
    r = cli("info", tmp_path / "bg.exr")
    assert r.returncode == 0 and "128x72+0+0" in r.stdout
    r = cli("doctor", "--json")
    rep = json.loads(r.stdout)
    assert r.returncode == 0 and rep["ok"] and "openexr" in rep["oiio_formats"]
    assert rep["hf_hub_offline"] is True


@pytest.mark.parametrize("engine", ["diffusion", "composite"])
def test_demo_small(tmp_path, engine):
    args = ["--engine", engine] if engine == "composite" else []  # diffusion is the default
    r = cli("demo", "--out", tmp_path / "d", "--frames", "4", "--width", "256", "--height", "136",
            "--progress", "none", *args)
    assert r.returncode == 0, r.stderr
    d = tmp_path / "d"
    for name in ("contact_sheet.png", "preview.gif", "shot.json", "background.exr"):
        assert (d / name).stat().st_size > 0
    _, spec = read_exr(d / "plate" / "plate.1001.exr")
    assert (spec.x, spec.width) != (spec.full_x, spec.full_width)  # data window < display
    px, spec = read_exr(d / "output" / "comp.1004.exr")
    assert (spec.full_width, spec.full_height) == (256, 136)
    assert set(spec.channelnames) == {"R", "G", "B", "A", "bg.R", "bg.G", "bg.B", "matte.A"}
    assert spec.get_string_attribute("Copyright") == "ActAnywhere demo"
    recorded = json.loads(spec.get_string_attribute("actanywhere:spec"))
    assert recorded["engine"]["name"] == engine
    assert np.isfinite(px).all() and px[..., :3].max() > 1.0  # subject highlights kept
    if engine == "diffusion":
        assert recorded["engine"]["model"] is None  # the shipped model
        assert recorded["diffusion"]["resolution"] == 64


def _interrupt_after_frames(args, frames_done: int = 2):
    """Run the CLI with JSON progress, send Ctrl-C (SIGINT) once ``frames_done`` frames are
    written; (exit code, stderr)."""
    import signal

    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    # a test run started in the background by a non-interactive shell inherits SIGINT ignored,
    # and Python then installs no KeyboardInterrupt handler: the CLI gets Ctrl-C's default
    proc = subprocess.Popen([sys.executable, "-m", "actanywhere", *map(str, args),
                             "--progress", "json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        for line in proc.stdout:
            ev = json.loads(line)
            if ev["stage"] == "frames" and ev["done"] >= frames_done:
                proc.send_signal(signal.SIGINT)
                break
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, err


def test_ctrl_c_says_how_far_it_got_and_how_to_resume(tmp_path):
    plate, bg = make_shot(tmp_path, frames=range(1, 61), size=(480, 270))
    out = tmp_path / "o" / "c.####.exr"
    code, err = _interrupt_after_frames(["generate", "--plate", plate, "--background", bg,
                                         "-o", out, "--threads", "1"])
    assert code == 130, err
    line = [ln for ln in err.splitlines() if "cancelled after" in ln]
    assert line and "of 60 frames; rerun with --existing skip" in line[0], err
    written = int(line[0].split("cancelled after ")[1].split(" ")[0])
    assert written == len(output_frames(tmp_path / "o")) and 2 <= written < 60
    assert "Traceback" not in err


def test_progress_none_still_prints_warnings(tmp_path):
    plate, bg = make_shot(tmp_path, frames=[1, 2, 4])
    r = cli("generate", "--plate", plate, "--background", bg, "-o", tmp_path / "o" / "c.####.exr",
            "--frames", "1-4", "--missing", "black", "--progress", "none")
    assert r.returncode == 0, r.stderr
    assert "warning: frame 3: missing plate frame" in r.stderr
