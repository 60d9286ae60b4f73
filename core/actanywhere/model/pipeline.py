"""ActAnywherePipeline: foreground sequence + mask + one condition image -> background video.

The stock AnimateDiffPipeline cannot drive a 9-channel UNet, and conditions on text; this one
follows the paper (arXiv 2401.10822): the VAE encodes the foreground segmentation S (subject
pixels, gray 127 elsewhere); S's latents and the mask M downsampled to latent size are
concatenated with the noisy latents (noisy 4 + mask 1 + foreground 4, as diffusers' inpainting
UNets); the condition image enters through cross-attention as CLIP features and, in models with
the spatial pathway (``concat``/``both``), also as the VAE latents of the condition moved along
the shot's camera path, 4 more input channels. Classifier-free guidance uses zeroed condition
tokens and zeroed condition latents as the unconditional input, batched with the conditional
one in a single UNet call. Shots longer than a window are denoised in overlapping windows
averaged at every step (``windows.py``), all windows sharing the same condition.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DiffusionPipeline, SchedulerMixin, UNetMotionModel
from diffusers.utils import BaseOutput
from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

from ..errors import ModelError
from . import windows
from .components import Components, ConditionProjector
from .schedulers import DEFAULT, make_scheduler

StepCallback = Callable[[int, int], None]


class Interrupted(Exception):
    """The caller's cancel event was set: sampling stopped between two steps."""


@dataclass
class ActAnywherePipelineOutput(BaseOutput):
    frames: np.ndarray  # (T, H, W, 3) float32 in [0, 1]


@dataclass
class Windows:
    plan: list[tuple[int, int]]  # (start, end) frames of each window
    weights: list[torch.Tensor]  # per window: (1, 1, frames, 1, 1) blend weights
    total: torch.Tensor  # (1, 1, T, 1, 1): the weights' sum per frame


def steps_to_run(num_inference_steps: int, init_strength: float) -> int:
    """Denoising steps left when sampling starts from a video kept by ``init_strength``."""
    if init_strength <= 0:
        return num_inference_steps
    return min(int(num_inference_steps * (1.0 - init_strength) + 1e-6), num_inference_steps)


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


class ActAnywherePipeline(DiffusionPipeline):
    model_cpu_offload_seq = "image_encoder->condition_projector->unet->vae"

    def __init__(self, unet: UNetMotionModel, vae: AutoencoderKL,
                 image_encoder: CLIPVisionModelWithProjection,
                 condition_projector: ConditionProjector,
                 feature_extractor: CLIPImageProcessor, scheduler: SchedulerMixin) -> None:
        super().__init__()
        self.register_modules(unet=unet, vae=vae, image_encoder=image_encoder,
                              condition_projector=condition_projector,
                              feature_extractor=feature_extractor, scheduler=scheduler)
        self.vae_scale = 2 ** (len(vae.config.block_out_channels) - 1)

    @classmethod
    def from_components(cls, c: Components) -> ActAnywherePipeline:
        """The pipeline over a model's parts, with the default scheduler (``schedulers.py``)."""
        return cls(c.unet, c.vae, c.image_encoder, c.condition_projector, c.feature_extractor,
                   make_scheduler(DEFAULT, c.scheduler_config))

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

    # ------------------------------------------------------------------------------ steps
    def check_inputs(self, foreground: np.ndarray, mask: np.ndarray, window: int,
                     span: tuple[int, int] | None = None) -> None:
        """Shapes agree, the window fits the motion modules, the frame fits the UNet, the
        frames fit in the ``span``'s shot."""
        t_frames, height, width = mask.shape
        if foreground.shape != (t_frames, height, width, 3):
            raise ValueError(f"foreground {foreground.shape} does not match mask {mask.shape}")
        if window > self.max_frames:
            raise ModelError(f"window of {window} frames exceeds the motion modules' "
                             f"{self.max_frames}; lower diffusion.frames_per_window")
        factor = self.vae_scale * 2 ** (len(self.unet.config.block_out_channels) - 1)
        if height % factor or width % factor:
            raise ValueError(f"frame size {width}x{height} must be a multiple of {factor}")
        if span is not None and not (span[0] >= 0 and span[0] + t_frames <= span[1]):
            raise ModelError(f"span {span}: {t_frames} frames from frame {span[0]} do "
                             f"not fit in a shot of {span[1]}")

    @torch.no_grad()
    def prepare_conditioning(self, foreground: np.ndarray, mask: np.ndarray, chunk: int
                             ) -> tuple[torch.Tensor, torch.Tensor]:
        """The paper's S encoded by the VAE, and M at latent size: (1, 4, T, h, w) and
        (1, 1, T, h, w), in the UNet's dtype."""
        dtype = self.unet.dtype
        fg = torch.from_numpy(np.ascontiguousarray(foreground, np.float32)).permute(0, 3, 1, 2)
        fg_lat = self.encode_frames(fg, chunk).to(dtype)
        m = torch.from_numpy(np.ascontiguousarray(mask, np.float32))[:, None]
        m_lat = F.interpolate(m, size=fg_lat.shape[-2:], mode="area").permute(1, 0, 2, 3)[None]
        return fg_lat, m_lat.to(self.device, dtype)

    @torch.no_grad()
    def prepare_spatial(self, spatial: np.ndarray, t_frames: int, size: tuple[int, int],
                        chunk: int) -> torch.Tensor | None:
        """The spatial pathway's input: the moved condition, (T, H, W, 3) or one (H, W, 3) for
        every frame, at the frames' size, as latents (1, 4, T, h, w); None for a model
        without the pathway."""
        if not self.condition_projector.latents:
            return None
        if spatial.shape[-3:-1] != size:
            raise ValueError(f"the condition for the spatial pathway is "
                             f"{spatial.shape[-2]}x{spatial.shape[-3]}, the frames "
                             f"{size[1]}x{size[0]}; give it at the frame size (spatial=)")
        frames = spatial if spatial.ndim == 4 else spatial[None]
        if len(frames) not in (1, t_frames):
            raise ValueError(f"{len(frames)} spatial condition frames for {t_frames} frames")
        x = torch.from_numpy(np.ascontiguousarray(frames, np.float32)).permute(0, 3, 1, 2)
        lat = self.encode_frames(x, chunk)
        return lat.expand(-1, -1, t_frames, -1, -1).to(self.unet.dtype)

    def prepare_timesteps(self, num_inference_steps: int, init_strength: float
                          ) -> torch.Tensor:
        """The steps to run: all of them from noise, or the last ``1 - init_strength`` of them
        when sampling starts from a given video (img2img, as diffusers' ``get_timesteps``)."""
        self.scheduler.set_timesteps(num_inference_steps, device=self.device)
        if init_strength <= 0:
            return self.scheduler.timesteps
        start = num_inference_steps - steps_to_run(num_inference_steps, init_strength)
        order = getattr(self.scheduler, "order", 1)
        if hasattr(self.scheduler, "set_begin_index"):
            self.scheduler.set_begin_index(start * order)
        return self.scheduler.timesteps[start * order :]

    def prepare_latents(self, shape: tuple[int, ...], generator: torch.Generator,
                        init: np.ndarray | None = None, timestep: torch.Tensor | None = None,
                        chunk: int = 8, span: tuple[int, int] | None = None) -> torch.Tensor:
        """Initial noise, drawn on the CPU from the seed (the same on every device); with
        ``init`` (T, H, W, 3) in [0, 1], its latents noised to ``timestep`` (None: none left
        to run, the latents as they are). ``span`` (first, total): the noise is the whole
        shot's, drawn for ``total`` frames, of which these are ``first``... (a part of a
        shot generated on its own draws the same noise as the whole shot has there)."""
        if span is None:
            noise = torch.randn(shape, generator=generator, dtype=torch.float32)
        else:
            first, total = span
            whole = torch.randn((*shape[:2], total, *shape[3:]), generator=generator,
                                dtype=torch.float32)
            noise = whole[:, :, first : first + shape[2]].contiguous()
        if init is None:
            return (noise * self.scheduler.init_noise_sigma).to(self.device)
        frames = torch.from_numpy(np.ascontiguousarray(init, np.float32)).permute(0, 3, 1, 2)
        start = self.encode_frames(frames, chunk).float()
        if timestep is None:
            return start
        # the scheduler noises frame-major batches: (T, C, h, w) and back
        flat = start[0].permute(1, 0, 2, 3)
        noisy = self.scheduler.add_noise(flat, noise[0].permute(1, 0, 2, 3).to(self.device),
                                         timestep.reshape(1))
        return noisy.permute(1, 0, 2, 3)[None]

    def prepare_tokens(self, condition: np.ndarray, guidance_scale: float, win: Windows
                       ) -> list[torch.Tensor]:
        """Cross-attention tokens per window: one condition image (H, W, 3) for all, or one
        per frame (T, H, W, 3) of which each window takes its middle frame's (a background
        moved with the camera). Guided: (unconditional zeros, conditional) batched."""
        cache: dict[int, torch.Tensor] = {}
        tokens = []
        for s, e in win.plan:
            key = -1 if condition.ndim == 3 else (s + e - 1) // 2
            if key not in cache:
                cond = self.encode_condition(condition if key < 0 else condition[key])
                cache[key] = torch.cat([torch.zeros_like(cond), cond]) \
                    if guidance_scale != 1.0 else cond
            tokens.append(cache[key])
        return tokens

    def prepare_windows(self, t_frames: int, window: int, overlap: int,
                        span: tuple[int, int] | None = None) -> Windows:
        """The overlapping windows (``windows.py``), their blend weights and per-frame sums;
        with ``span`` (first, total), the whole shot's windows cut to these frames."""
        first, shot_frames = span or (0, t_frames)
        cut = windows.cut(windows.plan(shot_frames, window, overlap), first, first + t_frames)
        plan = [(s - first, e - first) for s, e, _ in cut]
        weights = []
        for s, e, (ws, we) in cut:  # a cut window keeps its whole ramp's weights
            ramp = windows.weights(we - ws, overlap)[s - ws : e - ws]
            weights.append(torch.tensor(ramp, device=self.device).view(1, 1, -1, 1, 1))
        total = torch.zeros(1, 1, t_frames, 1, 1, device=self.device)
        for (s, e), w in zip(plan, weights, strict=True):
            total[:, :, s:e] += w
        return Windows(plan, weights, total)

    def predict_window(self, latents: torch.Tensor, t: torch.Tensor, mask: torch.Tensor,
                       foreground: torch.Tensor, tokens: torch.Tensor,
                       guidance_scale: float, spatial: torch.Tensor | None = None
                       ) -> torch.Tensor:
        """Noise prediction for one window. ``tokens`` holds one condition set, or two
        (unconditional, conditional) for classifier-free guidance, batched in one UNet call;
        ``spatial``: the moved condition's latents (zeros in the unconditional half)."""
        lat = self.scheduler.scale_model_input(latents, t).to(self.unet.dtype)
        x = torch.cat([lat, mask, foreground], dim=1)
        guided = tokens.shape[0] == 2
        if spatial is None:
            x = torch.cat([x, x]) if guided else x
        elif guided:
            x = torch.cat([torch.cat([x, torch.zeros_like(spatial)], dim=1),
                           torch.cat([x, spatial], dim=1)])
        else:
            x = torch.cat([x, spatial], dim=1)
        # the UNet wants one token set per frame, batch-major (as AnimateDiff does)
        per_frame = tokens.repeat_interleave(latents.shape[2], dim=0)
        eps = self.unet(x, t, encoder_hidden_states=per_frame).sample.float()
        if guided:
            uncond, conditional = eps.chunk(2)
            eps = uncond + guidance_scale * (conditional - uncond)
        return eps

    def predict_noise(self, latents: torch.Tensor, t: torch.Tensor, mask: torch.Tensor,
                      foreground: torch.Tensor, tokens: list[torch.Tensor],
                      guidance_scale: float, win: Windows,
                      spatial: torch.Tensor | None = None) -> torch.Tensor:
        """Noise prediction for the whole shot: every window's (with its own condition
        tokens and moved condition latents), blended where they overlap."""
        if len(win.plan) == 1:  # one window: its prediction as is, no blending arithmetic
            return self.predict_window(latents, t, mask, foreground, tokens[0], guidance_scale,
                                       spatial)
        eps = torch.zeros_like(latents)
        for (s, e), w, tok in zip(win.plan, win.weights, tokens, strict=True):
            eps[:, :, s:e] += w * self.predict_window(
                latents[:, :, s:e], t, mask[:, :, s:e], foreground[:, :, s:e], tok,
                guidance_scale, None if spatial is None else spatial[:, :, s:e])
        return eps / win.total

    # ------------------------------------------------------------------------------ sampling
    @torch.no_grad()
    def __call__(self, foreground: np.ndarray, mask: np.ndarray, condition: np.ndarray, *,
                 num_inference_steps: int = 25, guidance_scale: float = 4.0,
                 generator: torch.Generator | None = None, seed: int | None = None,
                 window: int = 16, overlap: int = 4, decode_chunk: int = 8,
                 init: np.ndarray | None = None, init_strength: float = 0.0,
                 spatial: np.ndarray | None = None, callback: StepCallback | None = None,
                 cancel: threading.Event | None = None, span: tuple[int, int] | None = None
                 ) -> ActAnywherePipelineOutput:
        """Generate the background video with ``self.scheduler``.

        foreground: (T, H, W, 3) segmentation S in [0, 1] (gray 127 outside the subject);
        mask: (T, H, W), 1 = background to generate, 0 = subject; condition: (h, w, 3) in
        [0, 1], or (T, h, w, 3), one per frame (each window takes its middle frame's).
        init: (T, H, W, 3) in [0, 1] to start from, kept by ``init_strength`` (0: start from
        noise, 1: keep it as is). spatial: for models with the spatial pathway, the condition
        moved to each frame, (T, H, W, 3) or (H, W, 3) at the frame size (default: the
        condition itself, which must then be frame-sized). H and W must be multiples of 8
        times the UNet's downsampling (64 is safe). ``cancel`` set between steps raises
        ``Interrupted``. span: (first, total) when these T frames are a part of a longer shot
        generated in parts (farm splits): the noise and the windows are the whole shot's, so
        parts agree with each other and with a single pass where they overlap.
        """
        # 1. Check inputs
        self.check_inputs(foreground, mask, window, span)

        # 2. Define call parameters: the noise's generator, how much of ``init`` is kept
        if generator is None:
            generator = torch.Generator("cpu").manual_seed(0 if seed is None else seed)
        if init is None:
            init_strength = 0.0
        t_frames = mask.shape[0]

        # 3. Prepare timesteps
        timesteps = self.prepare_timesteps(num_inference_steps, init_strength)

        # 4. Encode the conditioning: S and M, each window's condition tokens, the moved
        # condition (spatial pathway)
        fg_lat, m_lat = self.prepare_conditioning(foreground, mask, decode_chunk)
        win = self.prepare_windows(t_frames, window, overlap, span)
        tokens = self.prepare_tokens(condition, guidance_scale, win)
        moved = self.prepare_spatial(condition if spatial is None else spatial, t_frames,
                                     mask.shape[1:], decode_chunk)

        # 5. Prepare latent variables
        latents = self.prepare_latents(
            (1, self.unet.config.out_channels, t_frames, *fg_lat.shape[-2:]), generator,
            init if init_strength > 0 else None, timesteps[0] if len(timesteps) else None,
            decode_chunk, span)

        # 6. Denoising loop
        steps = len(timesteps)
        for i, t in enumerate(timesteps):
            if cancel is not None and cancel.is_set():
                raise Interrupted(f"cancelled at denoising step {i} of {steps}")
            eps = self.predict_noise(latents, t, m_lat, fg_lat, tokens, guidance_scale, win,
                                     moved)
            latents = self.scheduler.step(eps, t, latents, generator=generator,
                                          return_dict=True).prev_sample
            if callback is not None:
                callback(i + 1, steps)

        # 7. Decode the latents to frames
        video = self.decode_latents(latents, decode_chunk)

        # 8. Offload all models (after ``enable_model_cpu_offload``)
        self.maybe_free_model_hooks()
        return ActAnywherePipelineOutput(
            frames=video.permute(0, 2, 3, 1).cpu().numpy().astype(np.float32))
