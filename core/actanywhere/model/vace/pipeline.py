"""One VACE window through diffusers' ``WanVACEPipeline``, with what the pipeline lacks.

- The prompt is encoded once per job (``encode``) and its embeddings passed to every window;
  the text encoder then leaves the GPU.
- ``init_strength`` (img2img): the pipeline has no strength argument. ``window`` hands it a
  scheduler of the folder's own class whose ``set_timesteps`` keeps the last
  ``round(steps * (1 - strength))`` steps (timesteps and sigmas cut alike, so multistep solvers
  such as UniPC see a whole, shorter schedule) and starting latents
  ``sigma * noise + (1 - sigma) * x0``, the flow-matching forward process at the first kept
  sigma, with ``x0`` the moved background (and the reference image in its leading latent
  frame) through the VAE. Only flow-matching schedulers (what Wan ships) are accepted.
- Progress per denoising step, and cancel between steps (``Interrupted`` from the step
  callback; the pipeline's offload hooks are freed either way).

Arrays in and out are display-referred RGB in [0, 1], frames first: (F, H, W, 3).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import PIL.Image
import torch

from ...errors import ModelError

MAX_TOKENS = 512  # the pipeline's own prompt length


class Interrupted(Exception):
    """Cancel asked between two denoising steps."""


@dataclass
class Prompts:
    embeds: torch.Tensor
    negative: torch.Tensor | None  # None: no text guidance (guidance 1)


def encode(pipe, *, prompt: str, negative_prompt: str, guidance: float,
           device: torch.device) -> Prompts:
    """The prompt's (and the negative prompt's) umT5 embeddings, once for the whole job."""
    with torch.no_grad():
        pos, neg = pipe.encode_prompt(prompt=prompt, negative_prompt=negative_prompt,
                                      do_classifier_free_guidance=guidance > 1.0,
                                      max_sequence_length=MAX_TOKENS, device=device)
    return Prompts(pos, neg)


def is_flow(scheduler) -> bool:
    cfg = scheduler.config
    return bool(getattr(cfg, "use_flow_sigmas", False)) or \
        getattr(cfg, "prediction_type", "") == "flow_prediction" or \
        "FlowMatch" in type(scheduler).__name__


def steps_run(steps: int, strength: float) -> int:
    """Denoising steps a window runs: all from noise; from the moved background, the last
    ``1 - strength`` of the schedule (none at 1: the background as the VAE gives it back)."""
    return steps if strength <= 0 else max(0, min(steps, round(steps * (1.0 - strength))))


def partial_scheduler(scheduler, keep: int):
    """A fresh scheduler of ``scheduler``'s class and config whose schedules keep only their
    last ``keep`` steps."""
    base = type(scheduler)

    class Partial(base):  # type: ignore[misc, valid-type]
        def set_timesteps(self, *args, **kwargs):
            super().set_timesteps(*args, **kwargs)
            cut = max(0, len(self.timesteps) - keep)
            self.timesteps = self.timesteps[cut:]
            self.sigmas = self.sigmas[cut:]
            if hasattr(self, "num_inference_steps"):
                self.num_inference_steps = len(self.timesteps)

    Partial.__name__ = base.__name__
    return Partial.from_config(scheduler.config)


def _normalised(pipe, latents: torch.Tensor) -> torch.Tensor:
    cfg = pipe.vae.config
    mean = torch.tensor(cfg.latents_mean, dtype=torch.float32,
                        device=latents.device).view(1, cfg.z_dim, 1, 1, 1)
    std = torch.tensor(cfg.latents_std, dtype=torch.float32,
                       device=latents.device).view(1, cfg.z_dim, 1, 1, 1)
    return (latents.float() - mean) / std


def _encode_video(pipe, frames: np.ndarray, device: torch.device) -> torch.Tensor:
    """(F, H, W, 3) in [0, 1] -> normalised VAE latents (1, z, f, h, w), float32."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2)[None] * 2.0 - 1.0
    x = x.to(device=device, dtype=pipe.vae.dtype)
    with torch.no_grad():
        dist = pipe.vae.encode(x).latent_dist
    return _normalised(pipe, dist.mode())


def start_latents(pipe, *, moved: np.ndarray, reference: np.ndarray, sigma: float,
                  generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """Latents at noise level ``sigma`` over the moved background (``moved`` (F, H, W, 3)),
    the reference image's latent frame first, as the pipeline lays them out."""
    x0 = torch.cat([_encode_video(pipe, reference[None], device),
                    _encode_video(pipe, moved, device)], dim=2)
    noise = torch.randn(x0.shape, generator=generator, dtype=torch.float32,
                        device=generator.device).to(device)
    return sigma * noise + (1.0 - sigma) * x0


def window(pipe, *, video: np.ndarray, mask: np.ndarray, reference: np.ndarray,
           prompts: Prompts, steps: int, guidance: float, guidance_2: float | None,
           conditioning_scale: float, seed: int, device: torch.device,
           moved: np.ndarray | None = None, init_strength: float = 0.0,
           on_step: Callable[[int], None] | None = None,
           cancel: threading.Event | None = None) -> np.ndarray:
    """Generate one window: ``video`` (F, H, W, 3), ``mask`` (F, H, W) with 1 = generate,
    ``reference`` (H, W, 3) the background; returns (F, H, W, 3) in [0, 1]."""
    count, height, width = video.shape[:3]
    generator = torch.Generator("cpu").manual_seed(int(seed))
    original = pipe.scheduler
    latents = None
    if moved is not None and init_strength > 0:
        if not is_flow(original):
            raise ModelError(f"vace.init_strength: the model's scheduler "
                             f"{type(original).__name__} is not a flow-matching one; set "
                             "vace.init_strength 0")
        pipe.scheduler = partial_scheduler(original, steps_run(steps, init_strength))
        pipe.scheduler.set_timesteps(steps, device=device)
        sigma = float(pipe.scheduler.sigmas[0])
        latents = start_latents(pipe, moved=moved, reference=reference, sigma=sigma,
                                generator=generator, device=device)

    def step_end(_pipe, i, _t, kwargs):
        if on_step is not None:
            on_step(i + 1)
        if cancel is not None and cancel.is_set():
            raise Interrupted("cancelled between denoising steps")
        return kwargs

    ref = PIL.Image.fromarray(np.round(np.clip(reference, 0, 1) * 255).astype(np.uint8))
    try:
        out = pipe(video=video[None].astype(np.float32),
                   mask=np.repeat(mask[None, ..., None], 3, axis=-1).astype(np.float32),
                   reference_images=[ref], conditioning_scale=conditioning_scale,
                   height=height, width=width, num_frames=count,
                   num_inference_steps=steps, guidance_scale=guidance,
                   guidance_scale_2=(guidance_2 if guidance_2 is not None else guidance)
                   if pipe.config.boundary_ratio is not None else None,
                   generator=generator, latents=latents,
                   prompt_embeds=prompts.embeds, negative_prompt_embeds=prompts.negative,
                   output_type="np", callback_on_step_end=step_end)
    finally:
        pipe.scheduler = original
        pipe.maybe_free_model_hooks()
    return np.asarray(out.frames[0], dtype=np.float32)
