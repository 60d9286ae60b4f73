"""The small model shipped in the package: present, intact, small, and really trained.

The comparison is computed here, on held-out synthetic clips (odd seeds of another data seed
than training used), against the same architecture with fresh random weights; nothing is read
from the committed evaluation report. Margins are stated in docs/training.md.
"""

from __future__ import annotations

import os

import pytest

from actanywhere.model import SHIPPED, checkpoint
from actanywhere.train.config import DataConfig
from actanywhere.train.evaluate import evaluate, heldout_samples, untrained_like

#: the margins this test holds the shipped model to (docs/training.md states the same;
#: measured on these clips: +4.3 dB, +9.7 dB, 0.32x, 8.5x, 0.21x; the 0.1 model (cross-attention
#: only) measured 12.2 dB background PSNR, structure 0.235, sensitivity 0.37 on them)
SUBJECT_PSNR_GAIN_DB = 2.0
BACKGROUND_PSNR_GAIN_DB = 6.0
FLICKER_RATIO = 0.5
#: the background follows the condition: swapping it changes the output more than a new seed
#: (measured 3.9; the 0.1 model 0.37) and keeps its structure (measured 0.92)
CONDITION_SENSITIVITY = 2.0
STRUCTURE = 0.6


def test_shipped_model_is_complete_small_and_trained():
    report = checkpoint.verify(SHIPPED)
    assert not report.problems, report.problems
    total = sum(os.path.getsize(os.path.join(root, f))
                for root, _, files in os.walk(SHIPPED) for f in files if f.endswith(".safetensors"))
    assert total <= 25 * 2**20
    assert checkpoint.manifest(SHIPPED)["architecture"]["pathway"] == "both"
    trained = {c.name: c.trained for c in report.components}
    assert all("actanywhere train" in trained[name] for name in
               ("unet", "vae", "image_encoder", "condition_projector")), trained


@pytest.fixture(scope="module")
def scores():
    comps = checkpoint.load(SHIPPED)
    samples = heldout_samples(DataConfig(seed=1, frames=8, resolution=64), 4)
    model, _ = evaluate(comps, samples, steps=20, guidance=2.0)
    base, _ = evaluate(untrained_like(comps, seed=0), samples, steps=20, guidance=2.0,
                       sensitivity=False)
    return model["mean"], base["mean"]


def test_shipped_model_keeps_the_subject_far_better_than_untrained(scores):
    model, base = scores
    assert model["subject_psnr"] >= base["subject_psnr"] + SUBJECT_PSNR_GAIN_DB, (model, base)


def test_shipped_model_follows_the_condition_far_better_than_untrained(scores):
    model, base = scores
    assert model["background_psnr"] >= base["background_psnr"] + BACKGROUND_PSNR_GAIN_DB
    assert model["structure"] > base["structure"], (model, base)
    assert model["colour_error"] < base["colour_error"], (model, base)


def test_shipped_model_background_follows_the_condition_more_than_the_seed(scores):
    model, _ = scores
    assert model["condition_sensitivity"] >= CONDITION_SENSITIVITY, model
    assert model["structure"] >= STRUCTURE, model


def test_shipped_model_flickers_less_than_untrained(scores):
    model, base = scores
    assert model["flicker"] <= FLICKER_RATIO * base["flicker"], (model, base)


def test_overlapping_windows_leave_no_seam_where_a_hard_cut_leaves_one():
    """windows.py's promise, measured: frame-to-frame change of a 16-frame clip denoised in
    8-frame windows, against the same clip in one window. Windows that share 4 frames and
    blend at every step change no more at their joins than inside; windows that only meet
    (overlap 0) jump at the join, which shows the measure can see a seam."""
    import numpy as np

    from actanywhere.model.pipeline import ActAnywherePipeline

    pipe = ActAnywherePipeline.from_components(checkpoint.load(SHIPPED))
    s = heldout_samples(DataConfig(seed=1, frames=16, resolution=64), 1)[0]
    fg = s["foreground"].permute(0, 2, 3, 1).numpy()
    mask, cond = s["mask"][:, 0].numpy(), s["condition"].permute(1, 2, 0).numpy()

    def change(window: int, overlap: int) -> np.ndarray:
        out = pipe(fg, mask, cond, num_inference_steps=6, guidance_scale=2.0, seed=1,
                   window=window, overlap=overlap).frames
        return np.abs(np.diff(out, axis=0)).mean(axis=(1, 2, 3))

    single = change(16, 0)
    blended = change(8, 4) / single  # windows (0, 8), (4, 12), (8, 16)
    cut = change(8, 0) / single  # windows (0, 8), (8, 16): they meet between frames 7 and 8
    # a seam, as seen by this measure: the join is the cut clip's largest step in its first 12
    # (the 0.1 model jumped 3.3x there; this one, anchored on every frame by the condition's
    # latents, 1.54x against a median of 1.13x)
    assert cut[7] == cut[:12].max() and cut[7] > 1.25 * np.median(cut), cut
    assert blended.max() < 1.6, blended  # none where windows blend


def test_init_strength_keeps_the_moved_background_with_the_shipped_model():
    """Starting from a given video (the background moved with the camera) keeps it (mean
    difference to its VAE round trip, against a condition unlike it)."""
    import numpy as np
    import torch

    from actanywhere.model.modelspace import segmentation
    from actanywhere.model.pipeline import ActAnywherePipeline

    pipe = ActAnywherePipeline.from_components(checkpoint.load(SHIPPED))
    t, h, w = 6, 64, 128
    matte = np.zeros((t, h, w), np.float32)
    matte[:, 16:48, 40:70] = 1.0
    fg = segmentation(np.full((t, h, w, 3), 0.6, np.float32) * matte[..., None], matte)
    start = np.random.default_rng(5).random((t, h, w, 3)).astype(np.float32)
    start = (start * 0.2 + np.linspace(0, 0.8, w)[None, None, :, None]).astype(np.float32)
    with torch.no_grad():
        lat = pipe.encode_frames(torch.from_numpy(start).permute(0, 3, 1, 2), 8)
        trip = pipe.decode_latents(lat, 8).permute(0, 2, 3, 1).numpy()
    err = {}
    for strength in (0.0, 0.5, 0.9):
        out = pipe(fg, 1.0 - matte, start[0], num_inference_steps=20, seed=0, init=start,
                   init_strength=strength).frames
        err[strength] = float(np.abs(out - trip).mean())
    # measured 0.076 from noise (the 0.1 model: 0.184; this one already follows the condition,
    # which is start[0]), 0.028 at 0.5, 0.017 at 0.9 (0.3's decoder: 0.5 keeps more than
    # 0.2's 0.035 did, so 0.9 gains less over it: 0.62x, was 0.51x)
    assert err[0.5] < 0.6 * err[0.0] and err[0.9] < 0.75 * err[0.5], err
    assert err[0.9] < 0.3 * err[0.0], err


def test_the_recommended_start_from_the_moved_background_reaches_the_issue_goals():
    """With its recommended settings (init_strength 0.5: sampling starts from the condition
    moved along the camera path, as the engine starts from the moved plate) the shipped model
    reaches the background goals on these clips (measured: PSNR 24.3 dB, colour error 0.026,
    flicker 0.018; from noise 20.0, 0.060, 0.044)."""
    rec = checkpoint.manifest(SHIPPED)["recommended"]
    assert rec["init_strength"] == 0.5
    comps = checkpoint.load(SHIPPED)
    samples = heldout_samples(DataConfig(seed=1, frames=8, resolution=64), 4)
    model, _ = evaluate(comps, samples, steps=20, guidance=rec["guidance"], sensitivity=False,
                        init_strength=rec["init_strength"])
    m = model["mean"]
    assert m["background_psnr"] >= 22.0 and m["colour_error"] <= 0.04, m
    assert m["flicker"] <= 0.02 and m["structure"] >= 0.5, m
