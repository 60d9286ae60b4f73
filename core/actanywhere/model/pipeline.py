"""ActAnywherePipeline: foreground sequence + mask + one condition image -> background video.

The stock AnimateDiffPipeline cannot drive a 9-channel UNet, and conditions on text; this one
follows the paper (arXiv 2401.10822): the VAE encodes the foreground segmentation S (subject
pixels, gray 127 elsewhere); S's latents and the mask M downsampled to latent size are
concatenated with the noisy latents (noisy 4 + mask 1 + foreground 4, as diffusers' inpainting
UNets); the condition image enters through cross-attention as CLIP features. Classifier-free
guidance uses zeroed condition tokens as the unconditional input, batched with the conditional
one in a single UNet call. Shots longer than a window are denoised in overlapping windows
averaged at every step (``windows.py``), all windows sharing the same condition.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import (
    AutoencoderKL,
    DDIMScheduler,
    DiffusionPipeline,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    UNetMotionModel,
)
from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

from ..errors import JobCancelled, ModelError
from . import windows
from .components import Components, ConditionProjector

GRAY = 127.0 / 255.0
SchedulerName = Literal["ddim", "dpmsolver++", "euler_a"]
StepCallback = Callable[[int, int], None]


def segmentation(subject: np.ndarray, matte: np.ndarray) -> np.ndarray:
    """The paper's S: premultiplied subject colour over gray 127 (model space, [0, 1])."""
    return (subject + GRAY * (1.0 - matte[..., None])).astype(np.float32)


def clip_input(images: torch.Tensor, fe: CLIPImageProcessor) -> torch.Tensor:
    """(B, 3, H, W) images in [0, 1] -> CLIP pixel values, as CLIPImageProcessor makes them
    (shortest edge, centre crop, mean/std), in torch: on the GPU, batched, differentiable."""
    size = int(fe.crop_size["height"])
    h, w = images.shape[-2:]
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    x = F.interpolate(images.float(), size=(nh, nw), mode="bicubic", align_corners=False,
                      antialias=True)
    top, left = (nh - size) // 2, (nw - size) // 2
    x = x[..., top : top + size, left : left + size].clamp(0, 1)
    mean = torch.tensor(fe.image_mean, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(fe.image_std, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def make_scheduler(name: SchedulerName, config: dict):
    """DDIM (default), DPM-Solver++ or Euler-ancestral from the checkpoint's scheduler config."""
    cfg = {k: v for k, v in config.items() if not k.startswith("_")}
    if name == "ddim":
        return DDIMScheduler.from_config(cfg)
    if name == "dpmsolver++":
        return DPMSolverMultistepScheduler.from_config(cfg, algorithm_type="dpmsolver++")
    if name == "euler_a":
        return EulerAncestralDiscreteScheduler.from_config(cfg)
    raise ValueError(f"unknown scheduler {name!r}; use ddim, dpmsolver++ or euler_a")


class ActAnywherePipeline(DiffusionPipeline):
    model_cpu_offload_seq = "image_encoder->condition_projector->unet->vae"

    def __init__(self, unet: UNetMotionModel, vae: AutoencoderKL,
                 image_encoder: CLIPVisionModelWithProjection,
                 condition_projector: ConditionProjector,
                 feature_extractor: CLIPImageProcessor, scheduler: DDIMScheduler) -> None:
        super().__init__()
        self.register_modules(unet=unet, vae=vae, image_encoder=image_encoder,
                              condition_projector=condition_projector,
                              feature_extractor=feature_extractor, scheduler=scheduler)
        self.vae_scale = 2 ** (len(vae.config.block_out_channels) - 1)
        #: run the unconditional branch even at guidance 1.0 (tests compare the two paths)
        self.always_batch_guidance = False

    @classmethod
    def from_components(cls, c: Components) -> ActAnywherePipeline:
        return cls(c.unet, c.vae, c.image_encoder, c.condition_projector, c.feature_extractor,
                   DDIMScheduler.from_config(c.scheduler_config))

    @property
    def max_frames(self) -> int:
        return int(self.unet.config.motion_max_seq_length)

    # ------------------------------------------------------------------------- conditioning
    @torch.no_grad()
    def encode_condition(self, image: np.ndarray) -> torch.Tensor:
        """(H, W, 3) image in [0, 1] -> cross-attention tokens (1, N, D).

        CLIP preprocessing as CLIPImageProcessor does it (shortest edge, centre crop, mean/std),
        in torch so it runs on the GPU and needs no PIL round trip."""
        x = torch.from_numpy(np.ascontiguousarray(image, np.float32)).permute(2, 0, 1)[None]
        x = clip_input(x.to(self.device), self.feature_extractor).to(self.image_encoder.dtype)
        out = self.image_encoder(pixel_values=x, output_hidden_states=False)
        tokens = self.condition_projector(out.image_embeds, out.last_hidden_state)
        return tokens.to(self.unet.dtype)

    @torch.no_grad()
    def encode_frames(self, frames: torch.Tensor, chunk: int) -> torch.Tensor:
        """(T, 3, H, W) in [0, 1] -> latents (1, 4, T, H/8, W/8), deterministic (the mode)."""
        out = []
        for i in range(0, frames.shape[0], chunk):
            x = frames[i : i + chunk].to(self.device, self.vae.dtype) * 2.0 - 1.0
            out.append(self.vae.encode(x).latent_dist.mode())
        lat = torch.cat(out) * self.vae.config.scaling_factor
        return lat.permute(1, 0, 2, 3)[None]

    @torch.no_grad()
    def decode_latents(self, latents: torch.Tensor, chunk: int) -> torch.Tensor:
        """(1, 4, T, h, w) -> (T, 3, H, W) in [0, 1], ``chunk`` frames at a time; on CUDA
        out-of-memory the chunk halves until one frame at a time."""
        lat = latents[0].permute(1, 0, 2, 3) / self.vae.config.scaling_factor
        while True:
            try:
                out = [self.vae.decode(lat[i : i + chunk].to(self.vae.dtype)).sample.float()
                       for i in range(0, lat.shape[0], chunk)]
                return ((torch.cat(out) + 1.0) / 2.0).clamp(0, 1)
            except torch.cuda.OutOfMemoryError:
                if chunk <= 1:
                    raise
                chunk = max(1, chunk // 2)
                torch.cuda.empty_cache()

    # ------------------------------------------------------------------------------ sampling
    @torch.no_grad()
    def __call__(self, foreground: np.ndarray, mask: np.ndarray, condition: np.ndarray, *,
                 num_inference_steps: int = 25, guidance_scale: float = 4.0,
                 scheduler: SchedulerName = "ddim", generator: torch.Generator | None = None,
                 seed: int | None = None, window: int = 16, overlap: int = 4,
                 decode_chunk: int = 8, callback: StepCallback | None = None,
                 cancel: threading.Event | None = None) -> np.ndarray:
        """Generate the background video.

        foreground: (T, H, W, 3) segmentation S in [0, 1] (gray 127 outside the subject);
        mask: (T, H, W), 1 = background to generate, 0 = subject; condition: (h, w, 3) in
        [0, 1]. H and W must be multiples of 8 times the UNet's downsampling (64 is safe).
        Returns (T, H, W, 3) float32 in [0, 1].
        """
        t_frames, height, width = mask.shape
        if foreground.shape != (t_frames, height, width, 3):
            raise ValueError(f"foreground {foreground.shape} does not match mask {mask.shape}")
        if window > self.max_frames:
            raise ModelError(f"window of {window} frames exceeds the motion modules' "
                             f"{self.max_frames}; lower diffusion.frames_per_window")
        factor = self.vae_scale * 2 ** (len(self.unet.config.block_out_channels) - 1)
        if height % factor or width % factor:
            raise ValueError(f"frame size {width}x{height} must be a multiple of {factor}")
        if generator is None:
            generator = torch.Generator("cpu").manual_seed(0 if seed is None else seed)
        device, dtype = self.device, self.unet.dtype

        sched = make_scheduler(scheduler, dict(self.scheduler.config))
        sched.set_timesteps(num_inference_steps, device=device)
        fg = torch.from_numpy(np.ascontiguousarray(foreground, np.float32)).permute(0, 3, 1, 2)
        fg_lat = self.encode_frames(fg, decode_chunk).to(dtype)
        lh, lw = fg_lat.shape[-2:]
        m = torch.from_numpy(np.ascontiguousarray(mask, np.float32))[:, None]
        m_lat = F.interpolate(m, size=(lh, lw), mode="area").permute(1, 0, 2, 3)[None]
        m_lat = m_lat.to(device, dtype)

        cond = self.encode_condition(condition)
        guided = guidance_scale != 1.0 or self.always_batch_guidance
        tokens = torch.cat([torch.zeros_like(cond), cond]) if guided else cond

        # Noise drawn on the CPU from the seed: the same on every device.
        shape = (1, self.unet.config.out_channels, t_frames, lh, lw)
        latents = torch.randn(shape, generator=generator, dtype=torch.float32)
        latents = (latents * sched.init_noise_sigma).to(device)
        plan = windows.plan(t_frames, window, overlap)
        # Blend weights per window, and their per-frame sum, made once for all steps.
        weights = [torch.tensor(windows.weights(e - s, overlap), device=device)
                   .view(1, 1, -1, 1, 1) for s, e in plan]
        blend = torch.zeros(1, 1, t_frames, 1, 1, device=device)
        for (s, e), w in zip(plan, weights, strict=True):
            blend[:, :, s:e] += w

        steps = len(sched.timesteps)
        for i, t in enumerate(sched.timesteps):
            if cancel is not None and cancel.is_set():
                raise JobCancelled(f"cancelled at denoising step {i} of {steps}")
            eps_sum = torch.zeros_like(latents)
            for (s, e), w in zip(plan, weights, strict=True):
                lat = sched.scale_model_input(latents[:, :, s:e], t).to(dtype)
                x = torch.cat([lat, m_lat[:, :, s:e], fg_lat[:, :, s:e]], dim=1)
                if guided:
                    x = torch.cat([x, x])
                # the UNet wants one token set per frame, batch-major (as AnimateDiff does)
                per_frame = tokens.repeat_interleave(e - s, dim=0)
                eps = self.unet(x, t, encoder_hidden_states=per_frame).sample.float()
                if guided:
                    uncond, conditional = eps.chunk(2)
                    eps = uncond + guidance_scale * (conditional - uncond)
                if len(plan) == 1:  # one window: its prediction as is, no blending arithmetic
                    eps_sum = eps
                    break
                eps_sum[:, :, s:e] += eps * w
            eps = eps_sum if len(plan) == 1 else eps_sum / blend
            latents = sched.step(eps, t, latents, generator=generator,
                                 return_dict=True).prev_sample
            if callback is not None:
                callback(i + 1, steps)

        video = self.decode_latents(latents, decode_chunk)
        return video.permute(0, 2, 3, 1).cpu().numpy().astype(np.float32)

