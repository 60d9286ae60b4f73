"""Training data, the training loop (loss falls, exact resume), the CLI train/evaluate commands."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from conftest import REPO, write_exr
from safetensors.torch import load_file

from actanywhere.cli import main as cli_main
from actanywhere.errors import InputError
from actanywhere.model.modelspace import GRAY
from actanywhere.train import loop
from actanywhere.train.config import DataConfig, from_dict
from actanywhere.train.dataset import TrainSamples, heldout_clip_seed, train_clip_seed
from actanywhere.train.synthetic import make_clip

NO_AUG = {"mask_cutout": 0.0, "mask_morph": 0.0, "mask_blur": 0.0}


def test_synthetic_clip_is_a_function_of_its_seed():
    a, b = make_clip(5, 4, 32, 48), make_clip(5, 4, 32, 48)
    assert a.frames.shape == (4, 32, 48, 3) and a.mattes.shape == (4, 32, 48)
    assert np.array_equal(a.frames, b.frames)
    assert not np.array_equal(a.frames, make_clip(6, 4, 32, 48).frames)
    assert a.frames.min() >= 0.0 and a.frames.max() <= 1.0
    # a subject is there, it moves, and outside it the frame is the (shadowed) background
    assert (a.mattes > 0.5).sum(axis=(1, 2)).min() > 20
    assert not np.array_equal(a.mattes[0], a.mattes[-1])
    out = a.mattes < 1e-4
    assert np.all(a.frames[out] <= a.backgrounds[out] + 1e-6)


def test_training_and_heldout_clips_never_share_a_seed():
    train = {train_clip_seed(0, i) for i in range(2000)}
    held = {heldout_clip_seed(0, i) for i in range(2000)}
    assert not train & held
    assert all(s % 2 == 0 for s in train) and all(s % 2 == 1 for s in held)


def test_sample_shapes_gray_background_and_condition_from_same_clip():
    cfg = DataConfig(frames=6, resolution=32, flip=False, clean_condition=0.0, **NO_AUG)
    data = TrainSamples(cfg, 10)
    for i in range(4):
        s = data[i]
        assert s["frames"].shape == (6, 3, 32, 32) and s["mask"].shape == (6, 1, 32, 32)
        assert s["condition"].shape == (3, 32, 32)
        bg = s["matte"][:, 0] == 0
        fg = s["foreground"].permute(0, 2, 3, 1)
        assert torch.allclose(fg[bg], torch.full_like(fg[bg], GRAY), atol=1e-6)
        solid = s["matte"][:, 0] == 1
        assert torch.allclose(fg[solid], s["frames"].permute(0, 2, 3, 1)[solid], atol=1e-6)
        # without augmentation the mask is exactly 1 - the true matte
        assert torch.equal(s["mask"], 1 - s["matte"])
        # the condition is a frame of the same clip
        clip = make_clip(train_clip_seed(0, i), frames=6 + 3, height=32, width=32)
        want = clip.frames[int(s["condition_index"])]
        assert np.allclose(s["condition"].permute(1, 2, 0).numpy(), want, atol=1e-6)


def test_clean_condition_is_the_background_without_subject():
    cfg = DataConfig(frames=4, resolution=32, flip=False, clean_condition=1.0, **NO_AUG)
    s = TrainSamples(cfg, 2)[0]
    clip = make_clip(train_clip_seed(0, 0), frames=4 + 2, height=32, width=32)
    assert bool(s["condition_clean"])
    want = clip.backgrounds[int(s["condition_index"])]
    assert np.allclose(s["condition"].permute(1, 2, 0).numpy(), want, atol=1e-6)


def test_mask_augmentations_change_only_what_the_model_is_given():
    cfg = DataConfig(frames=4, resolution=32, mask_cutout=1.0, mask_morph=1.0, mask_blur=1.0,
                     flip=False)
    changed = 0
    for i in range(6):
        s = TrainSamples(cfg, 6)[i]
        if not torch.allclose(s["mask"], 1 - s["matte"], atol=1e-3):
            changed += 1
        clip = make_clip(train_clip_seed(0, i), frames=4 + 2, height=32, width=32)
        # the frames to produce are untouched by the augmentation
        assert any(np.allclose(s["frames"].permute(0, 2, 3, 1).numpy(), clip.frames[k : k + 4])
                   for k in range(3))
        assert float(s["mask"].min()) >= 0.0 and float(s["mask"].max()) <= 1.0
    assert changed == 6


def test_condition_dropout_rate_is_as_configured():
    cfg = DataConfig(frames=1, resolution=16, condition_dropout=0.25)
    data = TrainSamples(cfg, 400)
    rate = np.mean([bool(data[i]["drop_condition"]) for i in range(400)])
    assert 0.18 < rate < 0.32
    assert not any(bool(TrainSamples(cfg, 50, heldout=True)[i]["drop_condition"])
                   for i in range(50))


def test_flips_and_crops_apply_to_frames_mask_and_condition_alike():
    cfg = DataConfig(frames=2, resolution=32, flip=True, clean_condition=0.0, **NO_AUG)
    data = TrainSamples(cfg, 20)
    flipped = 0
    for i in range(20):
        s = data[i]
        clip = make_clip(train_clip_seed(0, i), frames=2 + 1, height=32, width=32)
        plain = any(np.allclose(s["frames"][0].permute(1, 2, 0).numpy(), f) for f in clip.frames)
        mirrored = any(np.allclose(s["frames"][0].permute(1, 2, 0).numpy(), f[:, ::-1])
                       for f in clip.frames)
        assert plain or mirrored
        if mirrored and not plain:
            flipped += 1
            cond = s["condition"].permute(1, 2, 0).numpy()
            assert any(np.allclose(cond, f[:, ::-1]) for f in clip.frames)
    assert 4 <= flipped <= 16


def _sequence_clip(root, n=6, size=(40, 24), separate_matte=False):
    w, h = size
    for f in range(1, n + 1):
        rgba = np.zeros((h, w, 4), np.float32)
        rgba[..., :3] = [0.1, 0.2, 0.05 * f]
        rgba[6:18, 4 + 3 * f : 14 + 3 * f] = [0.8, 0.4, 0.2, 1.0]
        if separate_matte:
            write_exr(root / f"clip.{f:04d}.exr", rgba[..., :3], ("R", "G", "B"))
            write_exr(root / f"matte.{f:04d}.exr", rgba[..., 3:], ("Y",))
        else:
            write_exr(root / f"clip.{f:04d}.exr", rgba)


@pytest.mark.parametrize("separate", [False, True])
def test_real_exr_clips_load_in_model_space(tmp_path, separate):
    _sequence_clip(tmp_path, separate_matte=separate)
    matte = str(tmp_path / "matte.####.exr") if separate else "alpha"
    cfg = DataConfig(source="clips", frames=4, resolution=24, flip=False, **NO_AUG,
                     clips=[{"frames": str(tmp_path / "clip.####.exr"), "matte": matte}])
    s = TrainSamples(cfg, 3)[0]
    assert s["frames"].shape == (4, 3, 24, 24)
    m = s["matte"][:, 0]
    assert float(m.max()) > 0.95 and float(m.min()) < 0.05
    # linear 0.8 in the EXR is about 0.906 in model sRGB (the OCIO encode, below the knee)
    subject = s["frames"].permute(0, 2, 3, 1)[m > 0.99]
    assert abs(float(subject[:, 0].mean()) - 0.906) < 0.03


def test_real_clip_errors_name_the_file(tmp_path):
    _sequence_clip(tmp_path, n=3)
    cfg = DataConfig(source="clips", frames=8, resolution=24,
                     clips=[{"frames": str(tmp_path / "clip.####.exr"), "matte": "alpha"}])
    with pytest.raises(InputError, match=r"clip\.####\.exr: 3 frames, a sample needs 8"):
        TrainSamples(cfg, 1)[0]
    cfg = DataConfig(source="clips", frames=2, resolution=24,
                     clips=[{"frames": str(tmp_path / "clip.####.exr"), "matte": "mask.A"}])
    with pytest.raises(InputError, match="no channel mask.A"):
        TrainSamples(cfg, 1)[0]


def test_video_clips_are_read_with_pyav(tmp_path):
    av = pytest.importorskip("av")
    clip = make_clip(3, 6, 32, 32)
    # QuickTime movies with the PNG codec: lossless RGB, as some renders are delivered
    for name, arrays in (("clip.mov", clip.frames), ("matte.mov", clip.mattes[..., None]
                                                     .repeat(3, axis=-1))):
        with av.open(str(tmp_path / name), "w") as out:
            stream = out.add_stream("png", rate=24)
            stream.width = stream.height = 32
            stream.pix_fmt = "rgb24"
            for frame in arrays:
                vf = av.VideoFrame.from_ndarray((frame * 255).round().astype(np.uint8), "rgb24")
                for packet in stream.encode(vf):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)
    cfg = DataConfig(source="clips", frames=6, resolution=32, flip=False, crop=1.0, **NO_AUG,
                     clips=[{"frames": str(tmp_path / "clip.mov"),
                             "matte": str(tmp_path / "matte.mov")}])
    s = TrainSamples(cfg, 1)[0]
    got = s["frames"].permute(0, 2, 3, 1).numpy()
    assert got.shape == clip.frames.shape
    assert np.abs(got - clip.frames).max() < 0.003  # 8-bit quantisation only
    assert np.abs(s["matte"][:, 0].numpy() - clip.mattes).max() < 0.003


# ------------------------------------------------------------------------------ the loop
def _cfg(tmp_path, name, **kw):
    base = {"model": "tiny", "output": str(tmp_path / name), "steps": 6, "batch_size": 2,
            "learning_rate": 1e-3, "checkpoint_every": 3, "log_every": 1, "tensorboard": False,
            "data": {"frames": 4, "resolution": 32}, "validation": {"clips": 1, "steps": 2}}
    base.update(kw)
    return from_dict(base)


def _fixed_loss(model_dir, cfg, batches=3):
    from diffusers import DDPMScheduler

    from actanywhere.model import checkpoint

    comps = checkpoint.load(model_dir) if isinstance(model_dir, str) else model_dir
    sched = DDPMScheduler.from_config(comps.scheduler_config)
    held = TrainSamples(cfg.data, batches * 2, heldout=True)
    total = 0.0
    with torch.no_grad():
        for b in range(batches):
            items = [held[2 * b], held[2 * b + 1]]
            batch = {k: torch.stack([it[k] for it in items]) for k in items[0]}
            g = torch.Generator().manual_seed(b)
            total += loop.diffusion_loss(comps, sched, batch, g, torch.float32).item()
    return total / batches


def test_a_few_steps_reduce_the_loss(tmp_path):
    from actanywhere.model.components import build_random

    cfg = _cfg(tmp_path, "run", steps=30, checkpoint_every=30)
    before = _fixed_loss(build_random("tiny", seed=0), cfg)
    out = loop.run(cfg, report=lambda _: None)
    after = _fixed_loss(out, cfg)
    assert after < 0.8 * before, (before, after)
    assert os.path.isfile(tmp_path / "run" / "validation" / "step-00000030.png")
    rows = (tmp_path / "run" / "log.csv").read_text().splitlines()
    assert rows[0].startswith("step,loss") and len(rows) == 31


@pytest.mark.parametrize("stage", ["diffusion", "vae"])
def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path, stage):
    kw = {"stage": stage, "ema": 0.9, "trainable": "all"}
    straight = loop.run(_cfg(tmp_path, "a", **kw), report=lambda _: None)
    cfg_b = _cfg(tmp_path, "b", **kw)
    assert loop.run(cfg_b, report=lambda _: None, stop_at=3) == ""
    assert loop.latest_state(cfg_b.output).endswith("step-00000003")
    lines = []
    resumed = loop.run(cfg_b, report=lines.append)
    assert any("resuming" in line and "step 3" in line for line in lines)
    part = "vae" if stage == "vae" else "unet"
    for name in (part, "condition_projector"):
        folder = os.path.join(straight, name)
        file = [f for f in os.listdir(folder) if f.endswith(".safetensors")][0]
        a = load_file(os.path.join(folder, file))
        b = load_file(os.path.join(resumed, name, file))
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), f"{name}/{k} differs after resume"
    with open(os.path.join(resumed, "actanywhere.json")) as fh:
        manifest = json.load(fh)
    assert "actanywhere train" in manifest["files"][f"{part}/diffusion_pytorch_model.safetensors"][
        "trained"]


def test_trainable_choices_select_parameters(tmp_path):
    from actanywhere.model.components import build_random

    comps = build_random("tiny")
    for choice, expect_all_unet in (("unet", True), ("motion", False),
                                    ("conv_in_attention", False)):
        loop.trainable_parameters(comps, _cfg(tmp_path, "x", trainable=choice))
        flags = {n: p.requires_grad for n, p in comps.unet.named_parameters()}
        assert all(flags.values()) == expect_all_unet and any(flags.values())
        if choice == "motion":
            assert all(v == ("motion_modules" in n) for n, v in flags.items())
        if choice == "conv_in_attention":
            assert flags["conv_in.weight"] and not flags["conv_out.weight"]
        assert not any(p.requires_grad for p in comps.vae.parameters())


def test_cli_train_and_evaluate(tmp_path, capsys):
    config = tmp_path / "tiny.toml"
    config.write_text('model = "tiny"\nsteps = 4\nbatch_size = 1\nlog_every = 2\n'
                      'checkpoint_every = 2\ntensorboard = true\n'
                      '[data]\nframes = 4\nresolution = 32\n[validation]\nclips = 1\nsteps = 2\n')
    assert cli_main(["train", "--config", str(config), "--output", str(tmp_path / "run")]) == 0
    model = tmp_path / "run" / "model"
    assert (model / "actanywhere.json").is_file()
    assert any(f.name.startswith("events.out.tfevents") for f in
               (tmp_path / "run" / "tensorboard").iterdir())
    assert cli_main(["evaluate", "--model", str(model), "--out", str(tmp_path / "ev"),
                     "--clips", "2", "--steps", "2", "--frames", "4", "--resolution", "32"]) == 0
    doc = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    assert set(doc) >= {"model_scores", "untrained_scores", "truth_scores"}
    assert len(doc["model_scores"]["clips"]) == 2
    assert (tmp_path / "ev" / "samples.png").is_file()
    assert (tmp_path / "ev" / "report.png").stat().st_size > 1000
    out = capsys.readouterr().out
    assert "untrained" in out and "subject_psnr" in out
    # a bad config is a one-line error with exit code 2
    bad = tmp_path / "bad.toml"
    bad.write_text('model = "tiny"\nsteps = 0\n')
    assert cli_main(["train", "--config", str(bad), "--output", str(tmp_path / "r2")]) == 2
    assert "steps" in capsys.readouterr().err


def test_training_doc_lists_every_config_field():
    from actanywhere.spec_files import reference_markdown
    from actanywhere.train.config import TrainConfig

    doc = (REPO / "docs" / "training.md").read_text()
    assert reference_markdown(TrainConfig) in doc, "regenerate the table in docs/training.md"


def test_synthetic_clips_know_their_camera_path():
    """Clip.camera is the background's true motion: frame 0's background carried through it
    is frame t's background (where frame t sees what frame 0 saw)."""
    import cv2

    from actanywhere.train.synthetic import make_clip

    # seeds whose camera moves several pixels (a near-still clip's bilinear resampling error
    # is comparable to its motion, which is not what this measures)
    for seed, t in ((12, 3), (12, 7), (17, 3), (17, 7), (25, 7)):
        clip = make_clip(seed, frames=8, height=96, width=128)
        assert clip.camera.shape == (8, 3, 3) and np.allclose(clip.camera[0], np.eye(3))
        h = clip.camera[t]
        moved = cv2.warpPerspective(clip.backgrounds[0], h, (128, 96), flags=cv2.INTER_LINEAR,
                                    borderValue=(-1, -1, -1))
        seen = (moved[..., 0] >= 0)
        seen = cv2.erode(seen.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        assert seen.mean() > 0.3
        err = np.abs(moved - clip.backgrounds[t])[seen].mean()
        still = np.abs(clip.backgrounds[0] - clip.backgrounds[t])[seen].mean()
        assert err < 0.01 and err < 0.25 * still, (t, err, still)


def test_moved_condition_follows_the_clips_camera_path():
    """The spatial pathway's input: a clean condition carried along the true camera path is
    each frame's background (where the frame sees what the condition frame saw)."""
    cfg = DataConfig(frames=6, resolution=64, flip=False, clean_condition=1.0, **NO_AUG)
    moved_err, still_err = [], []
    for i in range(4):
        s = TrainSamples(cfg, 4)[i]
        assert s["moved_condition"].shape == (6, 3, 64, 64)
        clip = make_clip(train_clip_seed(0, i), frames=6 + 3, height=64, width=64)
        picks = [k for k in range(4) if np.allclose(
            s["frames"][0].permute(1, 2, 0).numpy(), clip.frames[k])]
        truth = clip.backgrounds[picks[0] : picks[0] + 6]
        moved = s["moved_condition"].permute(0, 2, 3, 1).numpy()
        inner = np.s_[:, 8:-8, 8:-8]  # away from edges the condition frame never saw
        moved_err.append(np.abs(moved - truth)[inner].mean())
        still = np.repeat(s["condition"].permute(1, 2, 0).numpy()[None], 6, 0)
        still_err.append(np.abs(still - truth)[inner].mean())
    assert np.mean(moved_err) < 0.02 and np.mean(moved_err) < 0.5 * np.mean(still_err), (
        moved_err, still_err)


def test_training_widens_a_checkpoint_to_the_spatial_pathway(tmp_path):
    from actanywhere.model import checkpoint
    from actanywhere.model.components import build_random

    checkpoint.save(build_random("tiny", seed=0), str(tmp_path / "start"))
    out = loop.run(_cfg(tmp_path, "w", model=str(tmp_path / "start"), pathway="both",
                        steps=2, checkpoint_every=2), report=lambda _: None)
    comps = checkpoint.load(out)
    assert comps.pathway == "both" and comps.unet.config.in_channels == 13
    # it learned to read the new channels (they started at zero)
    assert comps.unet.conv_in.weight[:, 9:].abs().sum() > 0
    trained = checkpoint.manifest(out)["files"]["unet/diffusion_pytorch_model.safetensors"]
    assert "crossattn -> both" in trained["trained"]


def test_decoder_training_keeps_the_latents_and_the_denoisers_settings(tmp_path):
    from actanywhere.model import checkpoint
    from actanywhere.model.components import build_random

    start = tmp_path / "start"
    checkpoint.save(build_random("tiny", seed=0), str(start),
                    recommended={"resolution": 64, "frames_per_window": 8, "guidance": 2.0,
                                 "init_strength": 0.5})
    cfg = _cfg(tmp_path, "dec", stage="vae", trainable="decoder", steps=4, model=str(start))
    out = loop.run(cfg, report=lambda _: None)
    before, after = checkpoint.load(str(start)), checkpoint.load(out)
    for name, p in before.vae.named_parameters():
        q = dict(after.vae.named_parameters())[name]
        trained = name.startswith(("decoder.", "post_quant_conv."))
        assert torch.equal(p, q) != trained, name  # the decoder moved, nothing else
    assert after.vae.config.scaling_factor == before.vae.config.scaling_factor
    assert checkpoint.manifest(out)["recommended"]["init_strength"] == 0.5


def test_evaluation_starting_from_the_moved_condition_keeps_it_at_strength_one():
    from actanywhere.model.components import build_random
    from actanywhere.train.validate import generate, reconstruct

    comps = build_random("tiny", seed=0)
    sample = TrainSamples(DataConfig(frames=4, resolution=32), 1, heldout=True)[0]
    kept = generate(comps, sample, steps=4, guidance=2.0, init_strength=1.0)
    assert np.allclose(kept, reconstruct(comps, sample["moved_condition"]), atol=2e-3)
    fresh = generate(comps, sample, steps=4, guidance=2.0)
    assert np.abs(fresh - kept).mean() > 0.05  # from noise it is another picture
