"""Validation grids written during training: held-out samples through the current weights."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..media.preview import contact_sheet

if TYPE_CHECKING:
    from ..model.components import Components
    from .config import TrainConfig


def hwc(x: torch.Tensor) -> np.ndarray:
    """(T, C, H, W) tensor -> (T, H, W, C) float32 array."""
    return x.permute(0, 2, 3, 1).float().cpu().numpy()


def zoom(img: np.ndarray, min_size: int = 128) -> np.ndarray:
    """A small sample enlarged (nearest pixel) to at least ``min_size`` for a grid."""
    k = max(1, -(-min_size // img.shape[0]))
    return np.repeat(np.repeat(img, k, axis=0), k, axis=1)


def generate(comps: Components, sample: dict[str, torch.Tensor], steps: int, guidance: float,
             seed: int = 0, init_strength: float = 0.0) -> np.ndarray:
    """The pipeline's output (T, H, W, 3) for one dataset sample; ``init_strength`` > 0
    starts from the condition moved along the clip's camera path, as the diffusion engine
    does from the moved background plate (``diffusion.init_strength``)."""
    from ..model.pipeline import ActAnywherePipeline

    pipe = ActAnywherePipeline.from_components(comps)
    t = sample["frames"].shape[0]
    moved = hwc(sample["moved_condition"])
    return pipe(hwc(sample["foreground"]), sample["mask"][:, 0].numpy(),
                sample["condition"].permute(1, 2, 0).numpy(), num_inference_steps=steps,
                guidance_scale=guidance, seed=seed, window=t, overlap=0, spatial=moved,
                init=moved if init_strength > 0 else None, init_strength=init_strength).frames


def reconstruct(comps: Components, frames: torch.Tensor) -> np.ndarray:
    """VAE round trip of (T, 3, H, W) frames in [0, 1] -> (T, H, W, 3)."""
    vae = comps.vae
    with torch.no_grad():
        x = frames.to(vae.device, vae.dtype) * 2.0 - 1.0
        rec = vae.decode(vae.encode(x).latent_dist.mode()).sample
    return hwc(((rec + 1.0) / 2.0).clamp(0, 1))


def write_grid(comps: Components, cfg: TrainConfig, step: int, ema=None, params=None) -> str:
    """``validation/step-N.png``: per held-out clip, rows condition+S / generated / truth
    (diffusion) or truth / reconstruction (VAE). EMA weights are used when there are some."""
    from .dataset import TrainSamples

    if ema is not None:
        ema.store(params)
        ema.copy_to(params)
    modes = {name: m.training for name, m in comps.modules().items()}
    for m in comps.modules().values():
        m.eval()
    try:
        data = TrainSamples(cfg.data, cfg.validation.clips, heldout=True)
        rows: list[list[np.ndarray]] = []
        for i in range(len(data)):
            sample = data[i]
            truth = hwc(sample["frames"])
            if cfg.stage == "vae":
                rows += [list(truth), list(reconstruct(comps, sample["frames"]))]
                continue
            out = generate(comps, sample, cfg.validation.steps, cfg.validation.guidance)
            cond = sample["condition"].permute(1, 2, 0).numpy()
            rows += [[cond, *hwc(sample["foreground"])], [cond, *out], [cond, *truth]]
        rows = [[zoom(img) for img in row] for row in rows]
        folder = os.path.join(cfg.output, "validation")
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f"step-{step:08d}.png")
        contact_sheet(path, rows)
        return path
    finally:
        for name, m in comps.modules().items():
            m.train(modes[name])
        if ema is not None:
            ema.restore(params)
