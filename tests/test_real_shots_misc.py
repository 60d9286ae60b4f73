"""Issue 33, shots and commands as artists run them: ``motion.source auto`` on a CG element
over black, the takes browser with no display, farm names and refused exports, a CLI whose
stdout is closed early, and ``--help`` at 80 columns."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import yaml
from conftest import make_shot, read_exr, write_exr

from actanywhere import spec
from actanywhere.cli import main

BIN = os.path.dirname(sys.executable)


def _cli(*args, env=None, **kw):
    return subprocess.run([sys.executable, "-m", "actanywhere", *map(str, args)],
                          capture_output=True, text=True, timeout=300,
                          env=env or dict(os.environ, HF_HUB_OFFLINE="1"), **kw)


# --------------------------------------------------------- 5. auto on a CG element over black
def _cg_element(root, n=12, w=320, h=180):
    """A shaded sphere rendered over black (premultiplied, alpha), growing a little each
    frame: nothing to track, no camera in the header, a rigid subject."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for i in range(n):
        r = 30 + 2 * i
        m = np.clip(r - np.hypot(xx - w / 2, yy - h / 2) + 0.5, 0, 1)
        shade = np.clip(((w / 2 - xx) * 0.5 + (h / 2 - yy) * 0.7) / r + 0.8, 0.1, 1)
        rgb = np.dstack([shade * 0.8, shade * 0.5, shade * 0.3]) * m[..., None]
        write_exr(root / f"cg.{1001 + i:04d}.exr", np.dstack([rgb, m]))
    rng = np.random.default_rng(0)
    write_exr(root / "bg.exr", rng.uniform(0, 1, (h, w, 3)), channels=("R", "G", "B"))
    return root / "cg.####.exr", root / "bg.exr"


def test_auto_keeps_a_still_camera_on_a_cg_element_over_black(tmp_path, capsys):
    """Before: auto fell to ``subject``, invented a push-in and warned that the background
    is enlarged past 1.5x. Now a still camera, said in one line, and no soft background."""
    pytest.importorskip("torch")
    plate, bg = _cg_element(tmp_path)
    out = tmp_path / "out" / "c.####.exr"
    code = main(["generate", "--plate", str(plate), "--background", str(bg), "--engine",
                 "composite", "--motion", "auto", "-o", str(out), "--progress", "none",
                 "--no-proxy"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "enlarges the background" not in err
    said = [line for line in err.splitlines() if "motion: auto" in line]
    assert len(said) == 1 and "using a static camera" in said[0], err
    assert "rigid element" in said[0]
    meta = read_exr(tmp_path / "out" / "c.1012.exr")[1]
    assert meta.getattribute("actanywhere:motion") == "none"


def test_auto_refuses_a_subject_move_that_would_soften_the_background():
    """A walker held in frame (the cue ``subject`` reads) over a long pan: following it
    would enlarge a background of the plate's size past 1.5x, so auto keeps a still camera
    and says so; ``motion.source subject`` still follows it."""
    pytest.importorskip("torch")
    from actanywhere.motion import choose
    from actanywhere.motion.backdrop import Backdrop
    from actanywhere.train import subject_motion as sm
    from actanywhere.train.motion_clips import make_motion_clip

    clip = make_motion_clip(sm.HELD_OUT + 99, "held", frames=40, height=128, width=192,
                            mattes_only=True)
    frames = list(range(1001, 1041))

    def pictures():
        for f, m in zip(frames, clip.mattes, strict=True):
            yield f, np.zeros((*m.shape, 3), np.float32), m

    def run(source):
        notes: list[str] = []
        motion = choose.estimate(spec.MotionSpec(source=source), frames=frames, width=192,
                                 height=128, pixel_aspect=1.0, headers=lambda f: {},
                                 pictures=pictures, note=notes.append)
        return motion, notes

    followed, _ = run("subject")
    plate_sized = Backdrop(np.zeros((128, 192, 3), np.float32), 192, 128, "cover",
                           motion=followed)
    assert any("enlarges the background more than 1.5x" in w for w in plate_sized.warnings)
    motion, notes = run("auto")
    assert motion.source == "none"
    assert len(notes) == 1 and "using a static camera" in notes[0]
    assert re.search(r"enlarge a background of the plate's size \d\.\d\dx", notes[0])


# ------------------------------------------------------------- 6. the browser with no display
def _no_display():
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    for key in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        env.pop(key, None)
    return env


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="DISPLAY is X11/Wayland")
def test_the_takes_browser_without_a_display_screenshots_or_says_so(tmp_path):
    pytest.importorskip("PySide6")
    (tmp_path / "takes").mkdir()
    png = tmp_path / "shot.png"
    r = _cli("takes", tmp_path / "takes", "--screenshot", png, env=_no_display())
    assert r.returncode == 0, r.stderr
    assert png.stat().st_size > 1000
    r = _cli("takes", tmp_path / "takes", env=_no_display())
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no display"), r.stderr
    assert "--screenshot" in lines[0]


# ---------------------------------------------------------------------------- 9. farm export
def _farm_spec(tmp_path, output, frames=range(1, 5), **extra):
    plate, bg = make_shot(tmp_path / "A001C003", frames=frames, size=(64, 36))
    data = {"plate": {"path": str(plate)}, "background": {"path": str(bg)},
            "output": {"path": str(output)}, "composite": {"harmonize": 0.0}, **extra}
    path = tmp_path / f"spec_{len(list(tmp_path.glob('spec_*')))}.json"
    path.write_text(json.dumps(data))
    return path


def _export(tmp_path, *args):
    return _cli("farm", "export", *args, "--out", tmp_path / "bundle", "--output-root",
                tmp_path / "renders", "--command", os.path.join(BIN, "actanywhere"))


def test_a_farm_shot_and_its_frames_follow_the_spec_s_output_name(tmp_path):
    named = _farm_spec(tmp_path, tmp_path / "comp" / "sh010_comp_v001.####.exr")
    generic = _farm_spec(tmp_path, tmp_path / "out" / "comp.####.exr")
    r = _export(tmp_path, named, generic)
    assert r.returncode == 0, r.stderr
    tmpl = yaml.safe_load((tmp_path / "bundle" / "template.yaml").read_text())
    steps = {s["name"]: s["script"]["actions"]["onRun"]["args"] for s in tmpl["steps"]}
    assert set(steps) == {"sh010_comp_v001", "A001C003"}  # comp: the plate's folder
    out = steps["sh010_comp_v001"][steps["sh010_comp_v001"].index("--output") + 1]
    assert out.endswith("/sh010_comp_v001/{{Task.Param.Take}}/sh010_comp_v001.####.exr")
    out = steps["A001C003"][steps["A001C003"].index("--output") + 1]
    assert out.endswith("/A001C003/{{Task.Param.Take}}/A001C003.####.exr")
    assert (tmp_path / "renders" / "sh010_comp_v001" / "take_001" / "take.json").is_file()
    assert (tmp_path / "bundle" / "specs" / "sh010_comp_v001" / "take_001.json").is_file()


def test_a_refused_export_leaves_nothing_behind(tmp_path):
    """A refused --split (motion track needs the whole shot): no bundle, no output root,
    no take folder; a second shot's refusal undoes the first shot's reservation; a folder
    that was there before stays, with its files."""
    split = _farm_spec(tmp_path, tmp_path / "o" / "sh020.####.exr", frames=range(1, 13),
                       engine={"name": "diffusion", "model": str(tmp_path / "nomodel")},
                       motion={"source": "track"})
    r = _export(tmp_path, split, "--split", "8", "--split-overlap", "2")
    assert r.returncode == 2 and "motion.source track needs" in r.stderr, r.stderr
    assert not (tmp_path / "bundle").exists() and not (tmp_path / "renders").exists()

    fine = _farm_spec(tmp_path, tmp_path / "o" / "sh010.####.exr")
    (tmp_path / "renders" / "sh010").mkdir(parents=True)
    (tmp_path / "renders" / "sh010" / "notes.txt").write_text("mine")
    (tmp_path / "bundle").mkdir()
    r = _export(tmp_path, fine, split, "--split", "8", "--split-overlap", "2")
    assert r.returncode == 2, r.stderr
    assert sorted(p.name for p in (tmp_path / "renders").rglob("*")) == ["notes.txt", "sh010"]
    assert list((tmp_path / "bundle").iterdir()) == []


# ------------------------------------------------------------ 10b. stdout closed by the reader
def test_generate_finishes_when_its_stdout_is_closed_early(tmp_path):
    plate, bg = make_shot(tmp_path, frames=range(1, 9), size=(64, 36))
    out = tmp_path / "out" / "c.####.exr"
    proc = subprocess.Popen(
        [sys.executable, "-m", "actanywhere", "generate", "--plate", str(plate),
         "--background", str(bg), "--engine", "composite", "-o", str(out), "--progress",
         "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=dict(os.environ, HF_HUB_OFFLINE="1"))
    first = proc.stdout.readline()  # `| head -1`: one line read, then the pipe is closed
    proc.stdout.close()
    err = proc.stderr.read().decode()
    code = proc.wait(timeout=300)
    assert json.loads(first)["stage"] == "prepare"
    assert code == 0, err
    assert "Broken pipe" not in err and "Traceback" not in err, err
    record = json.loads((tmp_path / "out" / "take.json").read_text())
    assert record["status"] == "done", record
    assert len(list((tmp_path / "out").glob("c.*.exr"))) == 8


# --------------------------------------------------------------------- 10c. --help at 80 columns
def test_help_at_80_columns_shows_every_flag_name_whole():
    env = dict(os.environ, COLUMNS="80", TERMINAL_WIDTH="80")
    r = _cli("generate", "--help", env=env)
    assert r.returncode == 0, r.stderr
    assert max(len(line) for line in r.stdout.splitlines()) <= 80
    assert "…" not in r.stdout
    flags = ["--negative-prompt", "--background-colorspace", "--plate-colorspace",
             "--output-colorspace", "--matte-source", "--motion-path", "--motion-key",
             "--init-strength", "--recomposite", "--no-recomposite", "--print-spec",
             "--state-dir", "--sam-checkpoint", "--allow-pickle", "--key-matte"]
    words = set(re.findall(r"--[a-z][a-z-]*", r.stdout))
    assert set(flags) <= words, set(flags) - words
    r = _cli("farm", "export", "--help", env=env)
    words = set(re.findall(r"--[a-z][a-z-]*", r.stdout))
    assert {"--output-root", "--split-overlap", "--gpu-memory"} <= words, r.stdout
