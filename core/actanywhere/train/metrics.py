"""Evaluation metrics. Frames are (T, H, W, 3) float arrays in model space [0, 1].

Weight-free: subject fidelity, background adherence (colour statistics and structure against
the condition, PSNR against the truth when there is one) and temporal flicker. With local
weights: the paper's CLIP_cond and CLIP_temp (a CLIP checkpoint folder) and FVD (an I3D
feature extractor saved as TorchScript). Nothing here downloads anything.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ModelError

LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)


def _box(a: np.ndarray, k: int, channels: bool = False) -> np.ndarray:
    """Downsample (..., H, W) -- or (..., H, W, C) with ``channels`` -- by k (block means)."""
    if k <= 1:
        return a
    if channels:
        return np.moveaxis(_box(np.moveaxis(a, -1, 0), k), 0, -1)
    h, w = a.shape[-2] // k * k, a.shape[-1] // k * k
    a = a[..., :h, :w]
    return a.reshape(*a.shape[:-2], h // k, k, w // k, k).mean((-3, -1))


def psnr(a: np.ndarray, b: np.ndarray, where: np.ndarray | None = None) -> float:
    """PSNR in dB for signals in [0, 1], over the pixels where ``where`` is true."""
    err = (a.astype(np.float64) - b.astype(np.float64)) ** 2
    if where is not None:
        err = err[where]
    mse = float(err.mean()) if err.size else 0.0
    return 99.0 if mse <= 1e-10 else float(10 * np.log10(1.0 / mse))


def subject_fidelity(generated: np.ndarray, frames: np.ndarray, matte: np.ndarray) -> float:
    """PSNR of the generated frames against the input inside the solid subject (matte > 0.99),
    before any recomposite: how well the model keeps the subject it was given."""
    return psnr(generated, frames, matte > 0.99)


def colour_error(generated: np.ndarray, condition: np.ndarray, mask: np.ndarray,
                 condition_mask: np.ndarray | None = None) -> float:
    """Mean absolute difference of per-channel mean and standard deviation between the
    generated background (mask > 0.5) and the condition (its background, if its mask is given).
    0 = the same colour statistics."""
    g = generated[mask > 0.5]
    c = condition[condition_mask > 0.5] if condition_mask is not None else \
        condition.reshape(-1, 3)
    if not len(g) or not len(c):
        return float("nan")
    return float(np.abs(g.mean(0) - c.mean(0)).mean() + np.abs(g.std(0) - c.std(0)).mean())


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Global SSIM of two single-channel images in [0, 1] (Wang et al. constants)."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    c1, c2 = 0.01**2, 0.03**2
    ma, mb = a.mean(), b.mean()
    va, vb = a.var(), b.var()
    cov = ((a - ma) * (b - mb)).mean()
    return float(((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2)))


def structure(generated: np.ndarray, condition: np.ndarray, mask: np.ndarray,
              factor: int = 4) -> float:
    """Mean SSIM of each generated frame's luminance with the condition's, at 1/``factor``
    resolution (tolerant of small camera moves), with the subject area (mask <= 0.5) filled
    with the condition's own values so that only the background is compared."""
    cond_y = condition @ LUMA
    scores = []
    for frame, m in zip(generated, mask, strict=True):
        y = np.where(m > 0.5, frame @ LUMA, cond_y)
        scores.append(ssim(_box(y, factor), _box(cond_y, factor)))
    return float(np.mean(scores))


def flicker(generated: np.ndarray, mask: np.ndarray, factor: int = 4) -> float:
    """Temporal flicker of the background: mean |x(t+1) - 2 x(t) + x(t-1)| at 1/``factor``
    resolution over pixels that are background in all three frames. A steady camera move
    leaves little second difference at low resolution; frame-to-frame noise leaves a lot."""
    if len(generated) < 3:
        return 0.0
    x = _box(generated, factor, channels=True)
    m = _box(mask.astype(np.float32), factor) > 0.99
    second = np.abs(x[2:] - 2 * x[1:-1] + x[:-2]).mean(-1)
    valid = m[2:] & m[1:-1] & m[:-2]
    return float(second[valid].mean()) if valid.any() else 0.0


def condition_sensitivity(generated: np.ndarray, reseeded: np.ndarray, swapped: np.ndarray,
                          mask: np.ndarray) -> float:
    """How much the background follows the condition: the mean change of the background
    (mask > 0.5) when the condition is swapped for another scene, divided by the change when
    only the seed is. Below 1 the seed matters more than the background given."""
    bg = np.broadcast_to((mask > 0.5)[..., None], generated.shape)
    spread = float(np.abs(generated - reseeded)[bg].mean())
    return float(np.abs(generated - swapped)[bg].mean() / max(spread, 1e-6))


def cosine_pairs(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.cosine_similarity(a.float(), b.float(), dim=-1)


def clip_cond(frame_embeds: torch.Tensor, condition_embed: torch.Tensor) -> float:
    """The paper's CLIP_cond: mean cosine similarity of each frame to the condition image."""
    return float(cosine_pairs(frame_embeds, condition_embed.expand_as(frame_embeds)).mean())


def clip_temp(frame_embeds: torch.Tensor) -> float:
    """The paper's CLIP_temp: mean cosine similarity of consecutive frames."""
    if frame_embeds.shape[0] < 2:
        return 1.0
    return float(cosine_pairs(frame_embeds[1:], frame_embeds[:-1]).mean())


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to feature sets (N, D) (FVD's formula)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a = np.atleast_2d(np.cov(a, rowvar=False)) if len(a) > 1 else np.zeros((a.shape[1],) * 2)
    cov_b = np.atleast_2d(np.cov(b, rowvar=False)) if len(b) > 1 else np.zeros((b.shape[1],) * 2)
    # Tr(sqrt(A B)): the eigenvalues of A B are real and non-negative for PSD A, B.
    eig = np.linalg.eigvals(cov_a @ cov_b)
    tr_sqrt = float(np.sqrt(np.clip(eig.real, 0, None)).sum())
    diff = mu_a - mu_b
    return float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2 * tr_sqrt)


# ------------------------------------------------------------------ feature extractors
class ClipEmbedder:
    """Image embeddings from a local CLIP checkpoint folder (a whole CLIPModel or a
    CLIPVisionModelWithProjection), read only from disk."""

    def __init__(self, path: str, device: str = "cpu") -> None:
        from transformers import (
            AutoConfig,
            CLIPImageProcessor,
            CLIPModel,
            CLIPVisionModelWithProjection,
        )

        if not os.path.isfile(os.path.join(path, "config.json")):
            raise ModelError(f"{path}: no config.json; --clip needs a local CLIP checkpoint folder "
                             "(e.g. openai/clip-vit-large-patch14 downloaded elsewhere); this "
                             "tool never downloads (HF_HUB_OFFLINE)")
        kind = AutoConfig.from_pretrained(path, local_files_only=True).model_type
        if kind == "clip":
            self.model = CLIPModel.from_pretrained(path, local_files_only=True)
            self.full = True
        elif kind == "clip_vision_model":
            self.model = CLIPVisionModelWithProjection.from_pretrained(path, local_files_only=True)
            self.full = False
        else:
            raise ModelError(f"{path}: a {kind} checkpoint; --clip needs a CLIP model")
        self.model.to(device).eval()
        self.device = device
        if os.path.isfile(os.path.join(path, "preprocessor_config.json")):
            self.processor = CLIPImageProcessor.from_pretrained(path, local_files_only=True)
        else:
            from ..model.components import clip_processor
            self.processor = clip_processor(int(self.model.config.vision_config.image_size
                                                if self.full else self.model.config.image_size))

    @torch.no_grad()
    def __call__(self, images: np.ndarray) -> torch.Tensor:
        """(N, H, W, 3) in [0, 1] -> (N, D) embeddings."""
        from ..model.pipeline import clip_input

        x = torch.from_numpy(np.ascontiguousarray(images, np.float32)).permute(0, 3, 1, 2)
        x = clip_input(x.to(self.device), self.processor)
        if self.full:
            out = self.model.get_image_features(pixel_values=x)
            return out if isinstance(out, torch.Tensor) else out.pooler_output
        return self.model(pixel_values=x).image_embeds


class I3DFeatures:
    """Video features for FVD from a TorchScript I3D (the ``i3d_torchscript.pt`` commonly used
    for FVD: input (B, 3, T, 224, 224) in [-1, 1], 400-d features)."""

    def __init__(self, path: str, device: str = "cpu", size: int = 224) -> None:
        if not os.path.isfile(path):
            raise ModelError(f"{path}: no such file; --i3d needs a local TorchScript I3D file")
        try:
            with warnings.catch_warnings():  # TorchScript is deprecated but is what I3D ships as
                warnings.simplefilter("ignore", DeprecationWarning)
                self.model = torch.jit.load(path, map_location=device).eval()
        except RuntimeError as exc:
            raise ModelError(f"{path}: not a TorchScript module ({str(exc).splitlines()[0]})"
                             ) from exc
        self.device, self.size = device, size

    @torch.no_grad()
    def __call__(self, video: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(video, np.float32)).permute(0, 3, 1, 2)
        x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        x = (x * 2 - 1).permute(1, 0, 2, 3)[None].to(self.device)
        try:
            feats = self.model(x, rescale=False, resize=False, return_features=True)
        except RuntimeError:
            feats = self.model(x)
        return feats.reshape(1, -1).float().cpu().numpy()[0]


Embedder = Callable[[np.ndarray], torch.Tensor]
