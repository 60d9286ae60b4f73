"""The diffusion engine end to end: ShotSpec -> tiny model -> EXR frames on disk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")

from conftest import make_shot, output_frames, read_exr  # noqa: E402

from actanywhere import spec  # noqa: E402
from actanywhere.errors import JobCancelled, ModelError  # noqa: E402
from actanywhere.model import checkpoint, components  # noqa: E402
from actanywhere.shot import job  # noqa: E402

FRAMES = range(1, 7)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("dmodel") / "tiny"
    checkpoint.save(components.build_random("tiny", seed=0), str(path))
    return str(path)


@pytest.fixture
def dshot(tmp_path):
    plate, bg = make_shot(tmp_path, frames=FRAMES, size=(96, 54))
    return tmp_path, plate, bg


def diffusion_spec(root, plate, bg, model_dir, out="out/comp.####.exr", **diffusion):
    settings = {"resolution": 64, "steps": 3, "frames_per_window": 4, "overlap": 2}
    settings.update(diffusion)
    return spec.from_dict({
        "plate": {"path": str(plate)}, "background": {"path": str(bg)},
        "engine": {"name": "diffusion", "model": model_dir, "device": "cpu"},
        "diffusion": settings, "output": {"path": str(root / out)},
    })


def frame(root, f, out="out"):
    px, s = read_exr(root / out / f"comp.{f:04d}.exr")
    return px, list(s.channelnames)


def test_generate_writes_frames_with_the_subject_kept(dshot, model_dir):
    root, plate, bg = dshot
    events = []
    result = job.run(diffusion_spec(root, plate, bg, model_dir), events.append)
    assert len(result.written) == len(FRAMES)
    assert any("CPU" in e.message for e in events if e.stage == "warning")
    denoise = [e for e in events if e.stage == "denoise"]
    assert denoise[-1].done == denoise[-1].total == 3
    for i, f in enumerate(FRAMES):
        px, names = frame(root, f)
        assert names == ["R", "G", "B", "A", "bg.R", "bg.G", "bg.B", "matte.A"]
        assert px.shape == (54, 96, 8) and np.isfinite(px).all()
        plate_px, _ = read_exr(plate.parent / f"plate.{f:04d}.exr")
        solid = plate_px[..., 3] == 1.0
        assert np.allclose(px[..., :3][solid], plate_px[..., :3][solid], atol=2e-3), \
            "recomposite puts the original subject back exactly"
        x0 = 8 + 4 * i
        assert (px[..., 7][10:26, x0 : x0 + 12] == 1.0).all()
        bg_layer = px[..., 4:7]
        assert bg_layer.std() > 0 and (bg_layer >= 0).all()


def test_same_seed_same_frames_and_resume_matches(dshot, model_dir):
    root, plate, bg = dshot
    job.run(diffusion_spec(root, plate, bg, model_dir, out="a/comp.####.exr"))
    job.run(diffusion_spec(root, plate, bg, model_dir, out="b/comp.####.exr"))
    for f in FRAMES:
        assert np.array_equal(frame(root, f, "a")[0], frame(root, f, "b")[0])
    # a stopped job: delete the last frames and resume with existing=skip
    for f in (5, 6):
        os.remove(root / "b" / f"comp.{f:04d}.exr")
    resumed = diffusion_spec(root, plate, bg, model_dir, out="b/comp.####.exr")
    resumed.output.existing = "skip"
    result = job.run(resumed)
    assert sorted(result.skipped) == [1, 2, 3, 4] and len(result.written) == 2
    for f in (5, 6):
        assert np.array_equal(frame(root, f, "a")[0], frame(root, f, "b")[0])
    other = diffusion_spec(root, plate, bg, model_dir, out="c/comp.####.exr", seed=7)
    job.run(other)
    (a, names), (c, _) = frame(root, 1, "a"), frame(root, 1, "c")
    assert not np.array_equal(a, c)
    # another seed regenerates the background and keeps the subject: where the matte is
    # solid the comp is the plate's subject in both takes, the background behind it moved
    rgb, bg, m = [names.index(n) for n in ("R", "G", "B")], \
        [names.index(n) for n in ("bg.R", "bg.G", "bg.B")], a[..., names.index("matte.A")]
    assert np.array_equal(a[m == 1][:, rgb], c[m == 1][:, rgb])
    assert np.abs(a[..., bg] - c[..., bg]).mean() > 0.01


def test_no_recomposite_and_composite_condition(dshot, model_dir):
    root, plate, bg = dshot
    s = diffusion_spec(root, plate, bg, model_dir, condition="composite", condition_frame=3)
    s.output.recomposite = False
    job.run(s)
    px, _ = frame(root, 2)
    assert np.array_equal(px[..., :3], px[..., 4:7]), "without recomposite the comp is the " \
        "generated frame"
    s = diffusion_spec(root, plate, bg, model_dir, out="x/c.####.exr", condition="composite",
                       condition_frame=99)
    with pytest.raises(ModelError, match="condition_frame 99 is not in the shot"):
        job.run(s)


def test_cancel_during_denoising_writes_nothing(dshot, model_dir):
    root, plate, bg = dshot
    cancel = threading.Event()

    def report(ev):
        if ev.stage == "denoise" and ev.done == 1:
            cancel.set()

    with pytest.raises(JobCancelled):
        job.run(diffusion_spec(root, plate, bg, model_dir), report, cancel)
    assert output_frames(root / "out") == []  # no frame: only the take's record (and the
    # plate proxies read so far), which says it was cancelled
    assert json.loads((root / "out" / "take.json").read_text())["status"] == "cancelled"


def test_model_errors(dshot, model_dir, tmp_path):
    root, plate, bg = dshot
    s = diffusion_spec(root, plate, bg, str(tmp_path / "nowhere"))
    with pytest.raises(ModelError, match="no such model folder"):
        job.run(s)
    import torch

    if not torch.cuda.is_available():
        s = diffusion_spec(root, plate, bg, model_dir)
        s.engine.device = "cuda"
        with pytest.raises(ModelError, match="no CUDA GPU is visible"):
            job.run(s)
    with pytest.raises(Exception, match="overlap 4 must be smaller than frames_per_window 4"):
        diffusion_spec(root, plate, bg, model_dir, overlap=4)


def test_cli_generate_diffusion(tmp_path, model_dir, capsys):
    plate, bg = make_shot(tmp_path, frames=range(1, 4), size=(64, 36))
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    cmd = [sys.executable, "-m", "actanywhere", "generate", "--plate", str(plate),
           "--background", str(bg), "-o", str(tmp_path / "o" / "c.####.exr"),
           "--engine", "diffusion", "--model", model_dir, "--resolution", "64", "--steps", "2",
           "--window", "2", "--overlap", "1", "--scheduler", "euler_a", "--progress", "json"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert '"stage": "denoise"' in r.stdout and len(output_frames(tmp_path / "o")) == 3
    from actanywhere.cli import main

    code = main(cmd[3:] + ["--model", str(tmp_path / "nope"), "--existing", "overwrite"])
    err = capsys.readouterr().err.strip()
    assert code == 5 and err.startswith("error: ") and "no such model folder" in err
    assert len(err.splitlines()) == 1


def test_model_recommended_settings_fill_only_unset_fields():
    from actanywhere.engines.diffusion import with_recommended
    from actanywhere.spec import DiffusionSettings

    manifest = {"recommended": {"resolution": 64, "frames_per_window": 8, "overlap": 2,
                                "guidance": 2.0, "not_a_setting": 1}}
    events = []
    got = with_recommended(DiffusionSettings(guidance=5.0), manifest, events.append)
    assert (got.resolution, got.frames_per_window, got.overlap, got.guidance) == (64, 8, 2, 5.0)
    assert events and "resolution 64" in events[0].message
    # an explicit overlap that the recommended window does not fit: nothing is applied
    got = with_recommended(DiffusionSettings(overlap=2),
                           {"recommended": {"frames_per_window": 2, "resolution": 64}},
                           events.append)
    assert (got.resolution, got.frames_per_window, got.overlap) == (256, 16, 2)
    assert with_recommended(DiffusionSettings(), {}, events.append) == DiffusionSettings()


def test_frames_kept_from_the_read_pass_write_what_reading_again_writes(dshot, model_dir,
                                                                        monkeypatch):
    """Output frames are read and matted once (their inputs kept from the read pass); with
    no memory for that they are read again: both give the same frames bit for bit."""
    root, plate, bg = dshot
    job.run(diffusion_spec(root, plate, bg, model_dir, out="kept/comp.####.exr"))
    monkeypatch.setattr(job, "KEEP_INPUTS_BYTES", 0)
    job.run(diffusion_spec(root, plate, bg, model_dir, out="reread/comp.####.exr"))
    for f in FRAMES:
        assert np.array_equal(frame(root, f, "kept")[0], frame(root, f, "reread")[0])


def test_the_shipped_model_keeps_the_camera_path_with_motion_and_init_strength(dshot):
    """motion keys (a 24 px pan) + init_strength: every window's condition and start is the
    background moved to its frames; the generated bg layer follows the pan."""
    import cv2
    from conftest import write_exr
    from test_motion import _texture

    root, plate, _ = dshot
    bg = root / "texture.exr"
    write_exr(bg, _texture(108, 192, seed=2), channels=("R", "G", "B"))
    data = diffusion_spec(root, plate, bg, None, steps=10, init_strength=0.85).model_dump()
    data["engine"]["model"] = None  # the shipped model
    data["motion"] = {"source": "keys", "keys": ["1:0,0", "6:-24,0"]}
    events = []
    job.run(spec.from_dict(data), events.append)
    assert any("from the moved background (0.85)" in (e.message or "") for e in events)
    first, names = frame(root, 1)
    bgc = [names.index(c) for c in ("bg.R", "bg.G", "bg.B")]
    ref = np.ascontiguousarray(first[..., bgc].mean(axis=2))
    _, s = read_exr(root / "out" / "comp.0006.exr")
    assert s.get_string_attribute("actanywhere:motion") == "keys"

    def shift(a, b, r=30):
        """The horizontal shift (whole pixels) that best maps ``a`` onto ``b``."""
        a, b = cv2.GaussianBlur(a, (0, 0), 1.5), cv2.GaussianBlur(b, (0, 0), 1.5)
        w = a.shape[1]
        errs = {dx: np.mean((b[8:-8, r + dx : w - r + dx] - a[8:-8, r : w - r]) ** 2)
                for dx in range(-r, r + 1)}
        return min(errs, key=errs.get)

    for f in FRAMES:
        px, _ = frame(root, f)
        got = shift(ref, np.ascontiguousarray(px[..., bgc].mean(axis=2)))
        want = -24 * (f - 1) / 5
        assert abs(got - want) <= 1.5, (f, got, want)


def test_plate_detail_keeps_the_plates_texture_and_highlights(tmp_path):
    """diffusion.detail plate (default): the shipped model's 64 px frame takes the moved
    plate's own detail and its values above 1 where it kept the plate's content; detail model
    is the enlarged model frame (soft, highlights at the roll-off's ceiling)."""
    from conftest import write_exr
    from test_motion import _texture

    plate, _ = make_shot(tmp_path, frames=range(1, 5), size=(384, 216))
    texture = _texture(216, 384, seed=3)
    texture[40:46, 300:306] = 30.0  # a lamp: far above the model's ceiling
    bg = tmp_path / "texture.exr"
    write_exr(bg, texture, channels=("R", "G", "B"))
    layers = {}
    for how in ("plate", "model"):
        data = diffusion_spec(tmp_path, plate, bg, None, out=f"{how}/comp.####.exr", steps=8,
                              detail=how).model_dump()
        data["engine"]["model"] = None  # the shipped model
        job.run(spec.from_dict(data), lambda _e: None)
        px, names = read_exr(tmp_path / how / "comp.0002.exr")
        layers[how] = px[..., [list(names.channelnames).index(c) for c in ("bg.R", "bg.G",
                                                                           "bg.B")]]

    def fine(a):  # pixel-to-pixel variation, away from the subject (rows 10-26)
        return float(np.abs(np.diff(a[60:], axis=1)).mean())

    # measured: plate 0.0131, model 0.0081, the texture itself 0.0231 (the model's shading,
    # darker than the plate here, scales the plate's detail with it)
    assert fine(layers["plate"]) > 1.3 * fine(layers["model"]), (fine(layers["plate"]),
                                                                 fine(layers["model"]))
    assert fine(layers["model"]) < 0.4 * fine(texture), (fine(layers["model"]), fine(texture))
    assert layers["plate"][40:46, 300:306].max() > 10.0
    assert layers["model"].max() < 4.0
