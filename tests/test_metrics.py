"""Evaluation metrics on constructed cases where the answer is known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from actanywhere.errors import ModelError
from actanywhere.train import metrics


def _video(seed=0, t=6, h=32, w=32):
    return np.random.default_rng(seed).random((t, h, w, 3)).astype(np.float32)


def test_psnr_and_subject_fidelity():
    a = _video()
    assert metrics.psnr(a, a) == 99.0
    b = np.clip(a + 0.1, 0, 1)
    assert 15 < metrics.psnr(a, b) < 21
    matte = np.zeros(a.shape[:3], np.float32)
    matte[:, 8:16, 8:16] = 1.0
    worse = a.copy()
    worse[:, :8] = 0.0  # damage outside the subject only
    assert metrics.subject_fidelity(worse, a, matte) == 99.0
    worse[:, 10, 10] = 1 - a[:, 10, 10]
    assert metrics.subject_fidelity(worse, a, matte) < 40


def test_colour_error_is_zero_for_the_same_statistics_and_grows_with_a_shift():
    cond = _video(1, t=1)[0]
    gen = np.stack([cond[:, ::-1]] * 4)  # same pixels, other arrangement
    mask = np.ones(gen.shape[:3], np.float32)
    assert metrics.colour_error(gen, cond, mask) == pytest.approx(0.0, abs=1e-6)
    shifted = np.clip(gen * 0.5, 0, 1)
    assert metrics.colour_error(shifted, cond, mask) > 0.2


def test_ssim_and_structure():
    y = _video(2, t=1)[0, ..., 0]
    assert metrics.ssim(y, y) == pytest.approx(1.0)
    assert metrics.ssim(y, 1 - y) < 0
    cond = np.repeat(np.linspace(0, 1, 32, dtype=np.float32)[None, :, None], 32, 0).repeat(3, 2)
    same = np.stack([cond] * 3)
    mask = np.ones(same.shape[:3], np.float32)
    assert metrics.structure(same, cond, mask) == pytest.approx(1.0)
    assert metrics.structure(same[:, :, ::-1], cond, mask) < 0.0


def test_flicker_ignores_steady_change_and_sees_noise():
    t = np.arange(8, dtype=np.float32)[:, None, None, None]
    base = np.full((8, 16, 16, 3), 0.2, np.float32)
    mask = np.ones((8, 16, 16), np.float32)
    assert metrics.flicker(base, mask) == 0.0
    assert metrics.flicker(base + 0.05 * t, mask) == pytest.approx(0.0, abs=1e-6)  # steady fade
    noisy = base + 0.1 * (t % 2)  # alternating frames
    assert metrics.flicker(noisy, mask) == pytest.approx(0.2, abs=1e-6)
    # pixels that are subject in any frame are not counted
    mask[:, :, :8] = 0.0
    noisy[:, :, :8] += np.random.default_rng(0).random((8, 16, 8, 3)).astype(np.float32)
    assert metrics.flicker(noisy, mask) == pytest.approx(0.2, abs=1e-6)


def test_clip_scores_of_identical_frames_are_one():
    e = torch.randn(1, 16).repeat(5, 1)
    assert metrics.clip_temp(e) == pytest.approx(1.0, abs=1e-6)
    assert metrics.clip_cond(e, e[:1]) == pytest.approx(1.0, abs=1e-6)
    assert metrics.clip_cond(e, -e[:1]) == pytest.approx(-1.0, abs=1e-6)
    assert metrics.clip_temp(torch.eye(4)) == pytest.approx(0.0, abs=1e-6)


def test_frechet_distance():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200, 4))
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    # same covariance, mean shifted by 3 along one axis: distance = 9
    assert metrics.frechet_distance(a, a + [3, 0, 0, 0]) == pytest.approx(9.0, rel=1e-6)
    # identity vs 4 x identity covariance (exactly): 4 * (1 + 4 - 2 * 2) = 4
    eye = np.concatenate([np.eye(4), -np.eye(4)]) * np.sqrt(4)
    assert metrics.frechet_distance(eye, 2 * eye) == pytest.approx(
        4 * (np.cov(eye, rowvar=False)[0, 0]) * (1 + 4 - 4), rel=1e-6)


def test_clip_embedder_reads_a_local_checkpoint(tmp_path):
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    model = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
        image_size=32, patch_size=8, projection_dim=16))
    model.save_pretrained(tmp_path / "clip")
    embed = metrics.ClipEmbedder(str(tmp_path / "clip"))
    frames = np.repeat(_video(3, t=1), 4, axis=0)
    e = embed(frames)
    assert e.shape == (4, 16)
    assert metrics.clip_temp(e) == pytest.approx(1.0, abs=1e-5)
    assert metrics.clip_cond(e, embed(frames[:1])) == pytest.approx(1.0, abs=1e-5)
    assert metrics.clip_temp(embed(_video(4, t=4))) < 0.9999
    with pytest.raises(ModelError, match="never downloads"):
        metrics.ClipEmbedder(str(tmp_path / "nothing"))


class _TinyI3D(torch.nn.Module):
    """Stands in for the FVD I3D: a real TorchScript module with the same call signature."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(3, 8)

    def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = False,
                return_features: bool = True) -> torch.Tensor:
        return self.proj(x.mean(dim=(2, 3, 4)))


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_i3d_features_from_torchscript_and_fvd(tmp_path):
    path = tmp_path / "i3d.pt"
    torch.jit.script(_TinyI3D()).save(str(path))
    i3d = metrics.I3DFeatures(str(path), size=32)
    vids = [_video(s, t=4) for s in range(6)]
    feats = np.stack([i3d(v) for v in vids])
    assert feats.shape == (6, 8)
    assert metrics.frechet_distance(feats, feats) == pytest.approx(0.0, abs=1e-5)
    darker = np.stack([i3d(v * 0.2) for v in vids])
    assert metrics.frechet_distance(feats, darker) > 0.01
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not torchscript")
    with pytest.raises(ModelError, match="not a TorchScript module"):
        metrics.I3DFeatures(str(bad))
