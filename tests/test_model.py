"""The ActAnywhere model on tiny configs: pipeline, windows, checkpoints, model init from parts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from diffusers import MotionAdapter, UNet2DConditionModel  # noqa: E402
from transformers import (  # noqa: E402
    CLIPConfig,
    CLIPModel,
    CLIPVisionConfig,
    CLIPVisionModelWithProjection,
)

from actanywhere.errors import ModelError  # noqa: E402
from actanywhere.model import assemble, checkpoint, components, windows  # noqa: E402
from actanywhere.model.modelspace import segmentation  # noqa: E402
from actanywhere.model.pipeline import (  # noqa: E402
    ActAnywherePipeline,
    ActAnywherePipelineOutput,
    Interrupted,
    make_scheduler,
)

T, H, W = 6, 64, 128


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny"
    checkpoint.save(components.build_random("tiny", seed=0), str(path))
    return path


@pytest.fixture(scope="module")
def pipe(tiny_dir):
    return ActAnywherePipeline.from_components(checkpoint.load(str(tiny_dir)))


def inputs(seed=0, frames=T):
    rng = np.random.default_rng(seed)
    matte = np.zeros((frames, H, W), np.float32)
    for t in range(frames):
        matte[t, 16:48, 20 + 8 * t : 52 + 8 * t] = 1.0
    subject = rng.random((frames, H, W, 3), np.float32) * matte[..., None]
    cond = rng.random((90, 160, 3), np.float32)
    return segmentation(subject, matte), 1.0 - matte, cond


def run(pipe, **kw):
    fg, mask, cond = inputs(frames=kw.pop("frames", T))
    pipe.scheduler = make_scheduler(kw.pop("scheduler", "ddim"), dict(pipe.scheduler.config))
    args = dict(num_inference_steps=3, guidance_scale=4.0, seed=1, window=16, overlap=4)
    args.update(kw)
    out = pipe(fg, mask, cond, **args)
    assert isinstance(out, ActAnywherePipelineOutput)
    return out.frames


def test_segmentation_is_subject_over_gray():
    matte = np.array([[0.0, 1.0, 0.5]], np.float32)
    subject = np.array([[[0, 0, 0], [1, 0.5, 0.25], [0.5, 0.5, 0.5]]], np.float32)
    s = segmentation(subject, matte)
    assert np.allclose(s[0, 0], 127 / 255) and np.allclose(s[0, 1], [1, 0.5, 0.25])
    assert np.allclose(s[0, 2], 0.5 + 0.5 * 127 / 255)


def test_one_scheduler_table_names_what_the_spec_allows(pipe):
    """model/schedulers.py holds the samplers: the ShotSpec allows exactly its names (default
    the first), each name builds its class, and an unknown name says which there are."""
    from typing import get_args

    from actanywhere.model.schedulers import DEFAULT, SCHEDULERS
    from actanywhere.spec import DiffusionSettings

    assert get_args(DiffusionSettings.model_fields["scheduler"].annotation) == tuple(SCHEDULERS)
    assert DiffusionSettings().scheduler == DEFAULT
    for name, (cls, _) in SCHEDULERS.items():
        assert type(make_scheduler(name, dict(pipe.scheduler.config))) is cls
    with pytest.raises(ValueError, match=r"unknown scheduler 'lms'; use ddim, dpmsolver\+\+ or "
                       "euler_a"):
        make_scheduler("lms", dict(pipe.scheduler.config))


@pytest.mark.parametrize("scheduler", ["ddim", "dpmsolver++", "euler_a"])
def test_shapes_range_and_determinism(pipe, scheduler):
    a = run(pipe, scheduler=scheduler)
    assert a.shape == (T, H, W, 3) and a.dtype == np.float32
    assert np.isfinite(a).all() and a.min() >= 0.0 and a.max() <= 1.0
    assert np.array_equal(a, run(pipe, scheduler=scheduler)), "same seed, same output"
    other = run(pipe, scheduler=scheduler, seed=2)
    assert not np.array_equal(a, other)
    # another seed is another sample of the whole clip, not a few changed pixels
    assert (np.abs(a - other).max(axis=-1) > 0.01).mean() > 0.5


def test_guidance_changes_output_and_one_equals_conditional(pipe):
    g1 = run(pipe, guidance_scale=1.0)
    assert not np.allclose(g1, run(pipe, guidance_scale=4.0), atol=1e-4)
    # the guided (batched unconditional + conditional) step at scale 1.0 is the conditional one
    fg, mask, cond = inputs()
    fg_lat, m_lat = pipe.prepare_conditioning(fg, mask, 8)
    tokens = pipe.encode_condition(cond)
    pipe.scheduler.set_timesteps(3)
    t = pipe.scheduler.timesteps[0]
    latents = pipe.prepare_latents((1, 4, T, *fg_lat.shape[-2:]),
                                   torch.Generator().manual_seed(1))
    with torch.no_grad():
        conditional = pipe.predict_window(latents, t, m_lat, fg_lat, tokens, 1.0)
        batched = pipe.predict_window(latents, t, m_lat, fg_lat,
                                      torch.cat([torch.zeros_like(tokens), tokens]), 1.0)
    assert np.allclose(conditional.numpy(), batched.numpy(), atol=2e-5)
    assert not np.allclose(conditional.numpy(), pipe.predict_window(
        latents, t, m_lat, fg_lat, torch.cat([torch.zeros_like(tokens), tokens]),
        4.0).detach().numpy(), atol=1e-4)


def test_condition_image_matters(pipe):
    fg, mask, cond = inputs()
    a = pipe(fg, mask, cond, num_inference_steps=3, seed=1).frames
    b = pipe(fg, mask, 1.0 - cond, num_inference_steps=3, seed=1).frames
    assert not np.allclose(a, b, atol=1e-4)
    assert np.abs(a - b).mean() > 1e-3  # the condition reaches every frame
    assert (np.abs(a - b).mean(axis=(1, 2, 3)) > 1e-4).all()


def test_window_covering_the_shot_equals_single_pass(pipe):
    single = run(pipe, window=T, overlap=0)
    assert np.array_equal(single, run(pipe, window=32, overlap=8))
    windowed = run(pipe, window=4, overlap=2)
    assert windowed.shape == single.shape and np.isfinite(windowed).all()
    assert not np.array_equal(windowed, single)


def test_window_larger_than_motion_modules_is_refused(pipe):
    with pytest.raises(ModelError, match="exceeds the motion modules' 32"):
        run(pipe, window=40)


def test_frame_size_must_fit_the_unet(pipe):
    fg, mask, cond = inputs()
    with pytest.raises(ValueError, match="multiple of"):
        pipe(fg[:, :60], mask[:, :60], cond, num_inference_steps=1)


def test_window_plan_covers_every_frame_once_blended():
    for frames, window, overlap in [(1, 16, 4), (16, 16, 4), (17, 16, 4), (50, 16, 4),
                                    (40, 8, 0), (33, 32, 31)]:
        plan = windows.plan(frames, window, overlap)
        assert plan[0][0] == 0 and plan[-1][1] == frames
        assert all(e - s == min(window, frames) for s, e in plan)
        covered = np.zeros(frames)
        for s, e in plan:
            covered[s:e] += windows.weights(e - s, overlap)
        assert (covered > 0).all()
        starts = [s for s, _ in plan]
        assert starts == sorted(set(starts))
    w = windows.weights(16, 4)
    assert w[0] < w[1] < w[4] == 1.0 == w[11] > w[12] > w[15] > 0


def test_save_load_round_trip_is_bit_exact(pipe, tiny_dir, tmp_path):
    again = tmp_path / "again"
    checkpoint.save(checkpoint.load(str(tiny_dir)), str(again))
    reloaded = ActAnywherePipeline.from_components(checkpoint.load(str(again)))
    for name in components.WEIGHTED:
        a, b = getattr(pipe, name).state_dict(), getattr(reloaded, name).state_dict()
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), name
    assert np.array_equal(run(pipe), run(reloaded))
    report = checkpoint.verify(str(again))
    assert report.problems == []
    assert {c.name for c in report.components} == set(components.WEIGHTED)
    mode = os.stat(again / "unet" / "diffusion_pytorch_model.safetensors").st_mode & 0o777
    assert mode & 0o044, "checkpoint files are readable by the group like other files"


def test_patch_token_condition(tmp_path):
    parts = components.build_random("tiny", seed=3, condition="patches")
    checkpoint.save(parts, str(tmp_path / "p"))
    p = ActAnywherePipeline.from_components(checkpoint.load(str(tmp_path / "p")))
    tokens = p.encode_condition(np.random.default_rng(0).random((40, 40, 3), np.float32))
    n_patches = (32 // 8) ** 2 + 1  # tiny CLIP: 32 px, 8 px patches, plus the class token
    assert tokens.shape == (1, n_patches, 32)
    assert run(p).shape == (T, H, W, 3)


# ----------------------------------------------------------------------- bad checkpoints
@pytest.fixture
def broken(tiny_dir, tmp_path):
    path = tmp_path / "broken"
    shutil.copytree(tiny_dir, path)
    return path


def test_missing_component(broken):
    shutil.rmtree(broken / "vae")
    with pytest.raises(ModelError, match=r"vae/config.json: missing vae config"):
        checkpoint.load(str(broken))


def test_truncated_weights_name_the_file(broken):
    f = broken / "unet" / "diffusion_pytorch_model.safetensors"
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match=r"unet/diffusion_pytorch_model.safetensors: damaged "
                                         r"or truncated"):
        checkpoint.load(str(broken))


def test_mismatched_config_names_the_tensor(broken):
    cfg_path = broken / "unet" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["in_channels"] = 4
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match=r"tensor conv_in.weight has shape \[32, 9, 3, 3\], the "
                                         r"config expects \[32, 4, 3, 3\]"):
        checkpoint.load(str(broken))


def test_partial_weights_name_the_missing_tensor(broken):
    from safetensors.torch import load_file, save_file

    f = broken / "vae" / "diffusion_pytorch_model.safetensors"
    state = load_file(str(f))
    state.pop("decoder.conv_out.weight")
    save_file(state, str(f))
    with pytest.raises(ModelError, match="tensor decoder.conv_out.weight is missing"):
        checkpoint.load(str(broken))


def test_pickle_weights_refused_unless_allowed(broken):
    from safetensors.torch import load_file

    f = broken / "condition_projector" / "diffusion_pytorch_model.safetensors"
    torch.save(load_file(str(f)), str(f.with_suffix(".bin")))
    f.unlink()
    with pytest.raises(ModelError, match=r"diffusion_pytorch_model.bin: pickle weights can run "
                                         r"arbitrary code and are refused"):
        checkpoint.load(str(broken))
    parts = checkpoint.load(str(broken), allow_pickle=True)
    assert parts.condition_projector.proj.weight.shape == (32, 32)


def test_verify_notices_a_changed_file(broken):
    from safetensors.torch import load_file, save_file

    f = broken / "vae" / "diffusion_pytorch_model.safetensors"
    state = load_file(str(f))
    state["decoder.conv_out.bias"] += 1.0
    save_file(state, str(f))
    problems = checkpoint.verify(str(broken)).problems
    assert len(problems) == 1 and "differs from the manifest" in problems[0]


# ------------------------------------------------------------------- model init from parts
def tiny_parts(root, whole_clip=False, unet_channels=4):
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=unet_channels, out_channels=4, block_out_channels=(32, 64),
        layers_per_block=1, norm_num_groups=8, cross_attention_dim=32, attention_head_dim=2,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"))
    unet.save_pretrained(root / "sd15" / "unet")  # a whole-pipeline folder: unet/ is found
    MotionAdapter(block_out_channels=(32, 64), motion_layers_per_block=1,
                  motion_num_attention_heads=2, motion_norm_num_groups=8,
                  motion_max_seq_length=32).save_pretrained(root / "adapter")
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=2, image_size=32, patch_size=8)
    if whole_clip:
        cfg = CLIPConfig(text_config=dict(hidden_size=32, intermediate_size=64,
                                          num_hidden_layers=1, num_attention_heads=2,
                                          vocab_size=100),
                         vision_config=vision, projection_dim=32)
        CLIPModel(cfg).save_pretrained(root / "clip")
    else:
        CLIPVisionModelWithProjection(CLIPVisionConfig(**vision, projection_dim=32)) \
            .save_pretrained(root / "clip")
    components.build_random("tiny").vae.save_pretrained(root / "vae")
    return unet


@pytest.mark.parametrize("whole_clip", [False, True])
def test_model_init_from_parts(tmp_path, whole_clip):
    tiny_parts(tmp_path, whole_clip)
    parts, trained, sources = assemble.from_parts(
        str(tmp_path / "sd15"), str(tmp_path / "adapter"), str(tmp_path / "clip"),
        str(tmp_path / "vae"))
    assert "zero (untrained)" in trained["unet"] and sources["vae"].endswith("vae")
    out = tmp_path / "model"
    checkpoint.save(parts, str(out), trained=trained, source=sources)
    loaded = checkpoint.load(str(out))
    assert loaded.unet.config.in_channels == 9
    assert checkpoint.verify(str(out)).problems == []
    p = ActAnywherePipeline.from_components(loaded)
    assert run(p, num_inference_steps=2).shape == (T, H, W, 3)
    clip = CLIPModel.from_pretrained(tmp_path / "clip") if whole_clip else \
        CLIPVisionModelWithProjection.from_pretrained(tmp_path / "clip")
    ref = clip.visual_projection.weight
    assert torch.equal(loaded.image_encoder.visual_projection.weight, ref)


def test_widened_conv_in_reproduces_the_four_channel_unet(tmp_path):
    original = tiny_parts(tmp_path).eval()
    widened, how = assemble.load_unet2d(str(tmp_path / "sd15"))
    assert "widened" in how and widened.config.in_channels == 9
    x = torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    extra = torch.zeros(2, 5, 16, 16)
    tokens = torch.randn(2, 1, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = original(x, 500, encoder_hidden_states=tokens).sample
        out = widened.eval()(torch.cat([x, extra], 1), 500, encoder_hidden_states=tokens).sample
    assert torch.allclose(ref, out, atol=1e-5)
    with torch.no_grad():  # zero weights: the new inputs have no effect until trained
        other = widened(torch.cat([x, extra + 1], 1), 500, encoder_hidden_states=tokens).sample
    assert torch.equal(out, other), "zero-initialised channels ignore their input at first"


def test_model_init_refuses_a_wrong_unet(tmp_path):
    tiny_parts(tmp_path, unet_channels=5)
    with pytest.raises(ModelError, match="in_channels 5; expected an SD 1.5 UNet"):
        assemble.from_parts(str(tmp_path / "sd15"), str(tmp_path / "adapter"),
                            str(tmp_path / "clip"), str(tmp_path / "vae"))


def test_model_cli_init_info_verify(tmp_path, capsys):
    from actanywhere.cli import main

    out = tmp_path / "m"
    assert main(["model", "init", "--random", "tiny", "--out", str(out)]) == 0
    assert main(["model", "verify", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.strip().endswith("ok") and "random (untrained)" in printed
    assert main(["model", "info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["manifest"]["architecture"]["in_channels"] == 9
    assert main(["model", "init", "--random", "tiny", "--out", str(out)]) == 5
    assert "folder exists and is not empty" in capsys.readouterr().err
    (out / "image_encoder" / "model.safetensors").write_bytes(b"\0" * 64)
    assert main(["model", "verify", str(out)]) == 5
    assert "image_encoder/model.safetensors: damaged" in capsys.readouterr().err
    # the installed console script, as users run it
    r = subprocess.run([sys.executable, "-m", "actanywhere", "model", "info", str(out)],
                       env=dict(os.environ, HF_HUB_OFFLINE="1"), capture_output=True, text=True)
    assert r.returncode == 5 and "problem: " in r.stderr


def test_doctor_checks_model_folders(tiny_dir, broken):
    from actanywhere.cli import doctor

    good = doctor.check([str(tiny_dir)])
    assert good["ok"] and good["models"][str(tiny_dir)]["components"]["unet"] > 1_000_000
    shutil.rmtree(broken / "unet")
    bad = doctor.check([str(broken)])
    assert not bad["ok"] and any("unet/config.json: missing" in p for p in bad["problems"])


def test_cancel_interrupts_between_steps_with_the_pipelines_own_exception(pipe):
    fg, mask, cond = inputs()
    cancel = threading.Event()
    seen = []

    def step(done, total):
        seen.append(done)
        if done == 2:
            cancel.set()

    with pytest.raises(Interrupted, match="cancelled at denoising step 2 of 5"):
        pipe(fg, mask, cond, num_inference_steps=5, seed=1, callback=step, cancel=cancel)
    assert seen == [1, 2]


def test_a_condition_per_frame_gives_each_window_its_own(pipe):
    fg, mask, cond = inputs()
    single = run(pipe, window=4, overlap=2)
    same = np.stack([cond] * T)
    # the same image for every frame is the single condition, exactly
    assert np.array_equal(single, pipe(fg, mask, same, num_inference_steps=3, seed=1,
                                       window=4, overlap=2).frames)
    # the second window (frames 2-5, middle frame 3) sees another image: its frames change;
    # the first window's own frames (0, 1) only by what reaches them through the shared
    # frames 2 and 3 in later steps
    moved = same.copy()
    moved[3] = 1.0 - cond
    out = pipe(fg, mask, moved, num_inference_steps=3, seed=1, window=4, overlap=2).frames
    diff = np.abs(out - single).mean(axis=(1, 2, 3))
    assert diff[4:].min() > 1e-3 and diff[:2].max() < 0.05 * diff[4:].min(), diff


def test_init_strength_starts_from_the_given_video(pipe):
    fg, mask, cond = inputs()
    start = np.random.default_rng(5).random((T, H, W, 3)).astype(np.float32)
    start = (start * 0.2 + np.linspace(0, 0.8, W)[None, None, :, None]).astype(np.float32)
    steps = []
    kept = pipe(fg, mask, cond, num_inference_steps=4, seed=0, init=start, init_strength=1.0,
                callback=lambda i, n: steps.append((i, n))).frames
    assert steps == []  # nothing left to denoise: the start's own VAE round trip
    with torch.no_grad():
        lat = pipe.encode_frames(torch.from_numpy(start).permute(0, 3, 1, 2), 8)
        trip = pipe.decode_latents(lat, 8).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(kept, trip, atol=1e-5)
    pipe(fg, mask, cond, num_inference_steps=4, seed=0, init=start, init_strength=0.5,
         callback=lambda i, n: steps.append((i, n)))
    assert steps[-1] == (2, 2)  # the last half of the steps
    # every scheduler noises the start to the right step and runs the rest (the random tiny
    # model knows nothing; that the start's layout is kept is tested on the shipped model)
    for name in ("ddim", "dpmsolver++", "euler_a"):
        pipe.scheduler = make_scheduler(name, dict(pipe.scheduler.config))
        steps.clear()
        out = pipe(fg, mask, cond, num_inference_steps=20, seed=0, init=start,
                   init_strength=0.9, callback=lambda i, n: steps.append((i, n))).frames
        assert np.isfinite(out).all() and steps[-1] == (2, 2), name
    pipe.scheduler = make_scheduler("ddim", dict(pipe.scheduler.config))


# ------------------------------------------------------------- the spatial condition pathway
def test_widening_to_the_spatial_pathway_changes_nothing_until_trained(pipe, tiny_dir):
    comps = checkpoint.load(str(tiny_dir))
    assert comps.pathway == "crossattn" and comps.unet.config.in_channels == 9
    assert components.set_pathway(comps, "both")
    assert comps.unet.config.in_channels == 13 and comps.pathway == "both"
    widened = ActAnywherePipeline.from_components(comps)
    fg, mask, cond = inputs()
    moved = np.random.default_rng(5).random((T, H, W, 3), np.float32)
    assert np.array_equal(run(pipe), run(widened, spatial=moved))
    with pytest.raises(ValueError, match="cannot become a crossattn model"):
        components.set_pathway(comps, "crossattn")


def test_spatial_condition_reaches_the_unet_and_is_saved(tmp_path):
    comps = components.build_random("tiny", seed=1, pathway="both")
    with torch.no_grad():  # a trained model's conv_in reads the moved condition
        comps.unet.conv_in.weight[:, 9:].normal_(0, 0.5)
    checkpoint.save(comps, str(tmp_path / "m"))
    assert checkpoint.manifest(str(tmp_path / "m"))["architecture"]["pathway"] == "both"
    p = ActAnywherePipeline.from_components(checkpoint.load(str(tmp_path / "m")))
    rng = np.random.default_rng(2)
    a = run(p, spatial=rng.random((T, H, W, 3), np.float32))
    b = run(p, spatial=rng.random((T, H, W, 3), np.float32))
    assert np.abs(a - b).mean() > 1e-3
    # one image for every frame is the same as it repeated
    one = rng.random((H, W, 3), np.float32)
    assert np.allclose(run(p, spatial=one), run(p, spatial=np.repeat(one[None], T, 0)),
                       atol=1e-5)
    with pytest.raises(ValueError, match="give it at the frame size"):
        run(p, spatial=one[:32])


def test_concat_pathway_has_no_condition_tokens():
    comps = components.build_random("tiny", seed=1, pathway="concat")
    p = ActAnywherePipeline.from_components(comps)
    tokens = p.encode_condition(np.random.default_rng(0).random((40, 40, 3), np.float32))
    assert tokens.shape == (1, 1, 32) and not tokens.any()


def test_a_pathway_that_does_not_match_the_unet_names_the_file(broken):
    cfg_file = broken / "condition_projector" / "config.json"
    cfg = json.loads(cfg_file.read_text())
    cfg["pathway"] = "both"
    cfg_file.write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match=r"unet/config.json: in_channels 9.*pathway 'both'"):
        checkpoint.load(str(broken))
