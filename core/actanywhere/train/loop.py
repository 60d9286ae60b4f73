"""`actanywhere train`: the accelerate-based training loop.

Diffusion stage (the paper's objective): frames and S are VAE-encoded (frozen VAE, the mode of
the posterior), the mask is area-downsampled to latent size, the condition frame goes through
CLIP + the projector, and with the spatial pathway the condition carried along the clip's camera
path is VAE-encoded too (both zeroed for dropped conditions, the unconditional input the
pipeline uses for guidance); the UNet predicts the noise added at a random timestep (MSE).
VAE stage: reconstruction (L1) plus a small KL term, for models whose autoencoder is ours.

Accelerate places the model, runs mixed precision on the GPU, scales and clips the gradients
and, with several processes, averages them (DDP around the loss as one module).

Exact resume: sample i of the run, the noise and the timesteps of step k are pure functions of
the seeds, and the state folder (``runfolder.py``) holds the trainable weights, the optimizer,
the EMA and the step, so stopping at step k and resuming gives the same weights as never
stopping (on the same device and library versions).
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from diffusers import DDPMScheduler
from torch import nn
from torch.utils.data import DataLoader, Sampler

from ..errors import JobCancelled, ModelError
from ..model import checkpoint
from ..model.components import Components, build_random, set_pathway
from ..model.device import pick
from ..model.pipeline import clip_input
from .config import TrainConfig
from .dataset import TrainSamples
from .runfolder import Log, Report, latest_state, load_state, save_state
from .validate import write_grid

if TYPE_CHECKING:
    from diffusers.training_utils import EMAModel


class _StepBatches(Sampler[list[int]]):
    """Batches of sample indices for steps [start, steps) of one process."""

    def __init__(self, start: int, steps: int, batch: int, world: int, rank: int) -> None:
        self.start, self.steps, self.batch, self.world, self.rank = start, steps, batch, world, rank

    def __len__(self) -> int:
        return self.steps - self.start

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start, self.steps):
            first = (step * self.world + self.rank) * self.batch
            yield list(range(first, first + self.batch))


def trainable_parameters(c: Components, cfg: TrainConfig) -> dict[str, nn.Module]:
    """Set requires_grad by ``cfg.trainable``/``cfg.stage``; the modules that hold any."""
    for module in c.modules().values():
        module.requires_grad_(False)
    if cfg.stage == "vae" and cfg.trainable == "decoder":  # the latents stay as they are
        c.vae.decoder.requires_grad_(True)
        c.vae.post_quant_conv.requires_grad_(True)
        return {"vae": c.vae}
    if cfg.stage == "vae":
        c.vae.requires_grad_(True)
        return {"vae": c.vae}
    unet = c.unet
    if cfg.trainable == "motion":
        for name, p in unet.named_parameters():
            p.requires_grad_("motion_modules" in name)
    elif cfg.trainable == "conv_in_attention":
        for name, p in unet.named_parameters():
            p.requires_grad_(name.startswith("conv_in") or ".attentions." in name
                             or "attn" in name)
    else:
        unet.requires_grad_(True)
    out: dict[str, nn.Module] = {"unet": unet}
    if cfg.trainable in ("unet_condition", "all"):
        c.image_encoder.requires_grad_(True)
        c.condition_projector.requires_grad_(True)
        out["image_encoder"] = c.image_encoder
        out["condition_projector"] = c.condition_projector
    else:
        c.condition_projector.requires_grad_(True)  # new in every ActAnywhere model
        out["condition_projector"] = c.condition_projector
    return out


def learning_rate(cfg: TrainConfig, step: int) -> float:
    """Linear warm-up, then constant or cosine decay to 10% at the last step."""
    lr = cfg.learning_rate * (min(1.0, (step + 1) / cfg.warmup) if cfg.warmup else 1.0)
    if cfg.schedule == "cosine" and step >= cfg.warmup:
        progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
        lr *= 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))
    return lr


def _step_generator(seed: int, step: int, rank: int) -> torch.Generator:
    return torch.Generator("cpu").manual_seed(seed * 1_000_003 + step * 101 + rank)


def _encode(vae: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(B, T, 3, H, W) in [0, 1] -> latents (B, 4, T, h, w), the posterior's mode."""
    b, t = x.shape[:2]
    lat = vae.encode(x.flatten(0, 1) * 2.0 - 1.0).latent_dist.mode()
    lat = lat * vae.config.scaling_factor
    return lat.unflatten(0, (b, t)).permute(0, 2, 1, 3, 4)


def diffusion_loss(c: Components, noise_sched: DDPMScheduler, batch: dict[str, torch.Tensor],
                   g: torch.Generator, dtype: torch.dtype) -> torch.Tensor:
    device = batch["frames"].device
    with torch.no_grad():
        lat = _encode(c.vae, batch["frames"].to(c.vae.dtype)).float()
        fg = _encode(c.vae, batch["foreground"].to(c.vae.dtype)).to(dtype)
        b, t, _, h, w = batch["mask"].shape
        m = F.interpolate(batch["mask"].flatten(0, 1), size=lat.shape[-2:], mode="area")
        m = m.unflatten(0, (b, t)).permute(0, 2, 1, 3, 4).to(dtype)
    pixels = clip_input(batch["condition"], c.feature_extractor).to(c.image_encoder.dtype)
    enc = c.image_encoder(pixel_values=pixels)
    tokens = c.condition_projector(enc.image_embeds, enc.last_hidden_state)
    keep = (~batch["drop_condition"]).to(tokens.dtype).view(-1, 1, 1)
    tokens = (tokens * keep).to(dtype)
    extra = []
    if c.condition_projector.latents:
        with torch.no_grad():
            moved = _encode(c.vae, batch["moved_condition"].to(c.vae.dtype)).to(dtype)
        extra.append(moved * keep.view(-1, 1, 1, 1, 1).to(dtype))
    noise = torch.randn(lat.shape, generator=g).to(device)
    steps = torch.randint(0, noise_sched.config.num_train_timesteps, (b,), generator=g).to(device)
    noisy = noise_sched.add_noise(lat, noise, steps)
    x = torch.cat([noisy.to(dtype), m, fg, *extra], dim=1)
    pred = c.unet(x, steps, encoder_hidden_states=tokens.repeat_interleave(t, dim=0)).sample
    return F.mse_loss(pred.float(), noise)


def vae_loss(c: Components, batch: dict[str, torch.Tensor], g: torch.Generator, kl_weight: float
             ) -> torch.Tensor:
    """L1 reconstruction through the posterior's mean (the mode the pipeline encodes with) plus
    ``kl_weight`` x KL. Sampling the posterior from the start makes a small VAE trained from
    scratch collapse to the mean image; the KL term keeps the latents near unit scale."""
    del g  # deterministic: no posterior sampling
    x = batch["frames"].flatten(0, 1) * 2.0 - 1.0
    post = c.vae.encode(x.to(c.vae.dtype)).latent_dist
    rec = c.vae.decode(post.mean).sample.float()
    return F.l1_loss(rec, x) + kl_weight * post.kl().mean()


@torch.no_grad()
def latent_scale(c: Components, data: TrainSamples, count: int = 8) -> float:
    """1 / std of the VAE's latents over ``count`` samples: the scaling_factor that gives the
    diffusion model unit-variance latents (how SD's 0.18215 was chosen)."""
    lats = [_encode(c.vae, data[i]["frames"][None].to(c.vae.device, c.vae.dtype)) /
            c.vae.config.scaling_factor for i in range(count)]
    return float(1.0 / torch.cat([x.flatten() for x in lats]).float().std())


# ------------------------------------------------------------------------------------- run
def _components(cfg: TrainConfig) -> tuple[Components, dict[str, str], str | None]:
    """The starting model, given the configured condition pathway (a checkpoint without the
    spatial pathway is widened: zero weights for the new input channels), how each part was
    trained before, and a note when the UNet was widened."""
    if os.path.isdir(cfg.model):
        trained = {k: v.get("trained", "unknown") for k, v in
                   checkpoint.manifest(cfg.model).get("files", {}).items()}
        comps = checkpoint.load(cfg.model)
        before = {k.split("/")[0]: v for k, v in trained.items()}
        if cfg.pathway is not None:
            was = comps.pathway
            try:
                changed = set_pathway(comps, cfg.pathway)
            except ValueError as exc:
                raise ModelError(f"pathway: {cfg.model}: {exc}") from exc
            if changed:
                return comps, before, f"condition pathway {was} -> {cfg.pathway} (new " \
                    "conv_in channels started at zero)"
        return comps, before, None
    try:
        return build_random(cfg.model, seed=cfg.seed, pathway=cfg.pathway or "crossattn"), \
            {}, None
    except FileNotFoundError as exc:
        raise ModelError(f"model {cfg.model!r}: neither a checkpoint folder nor an architecture "
                         "(tiny, small, full or a JSON file)") from exc


class _Objective(nn.Module):
    """The stage's loss on one batch, as one module holding the trainable parts: what
    ``Accelerator.prepare`` wraps (with several processes, DDP averages their gradients)."""

    def __init__(self, comps: Components, cfg: TrainConfig, trainable: dict[str, nn.Module]
                 ) -> None:
        super().__init__()
        self.parts = nn.ModuleDict(trainable)
        self.comps, self.stage, self.kl_weight = comps, cfg.stage, cfg.kl_weight
        self.noise = DDPMScheduler.from_config(
            {k: v for k, v in comps.scheduler_config.items() if not k.startswith("_")})

    def forward(self, batch: dict[str, torch.Tensor], g: torch.Generator) -> torch.Tensor:
        if self.stage == "vae":
            return vae_loss(self.comps, batch, g, self.kl_weight)
        return diffusion_loss(self.comps, self.noise, batch, g, self.comps.unet.dtype)


@dataclass(kw_only=True)
class _Trainer:
    """One run, ready to step: the model, the objective and optimizer prepared by accelerate,
    the EMA, the step it starts at and what the export says of the starting model."""

    cfg: TrainConfig
    acc: Accelerator
    comps: Components
    modules: dict[str, nn.Module]  # the trainable ones, by component name
    params: list[nn.Parameter]
    objective: nn.Module
    optimizer: torch.optim.Optimizer
    ema: EMAModel | None
    start: int
    trained_before: dict[str, str]
    widened: str | None


def _prepare(cfg: TrainConfig, report: Report) -> _Trainer:
    """The starting model on the device, its optimizer and EMA, resumed from the run folder's
    latest state, then prepared by accelerate (device, mixed precision, processes)."""
    use_cuda = pick(cfg.device, "device").type == "cuda"
    acc = Accelerator(cpu=not use_cuda,
                      mixed_precision=cfg.mixed_precision if use_cuda else "no")
    comps, trained_before, widened = _components(cfg)
    modules = trainable_parameters(comps, cfg)
    if cfg.gradient_checkpointing and "unet" in modules:
        comps.unet.enable_gradient_checkpointing()
    for module in comps.modules().values():
        module.to(acc.device)
        module.eval()
    for module in modules.values():
        module.train()
    params = [p for m in modules.values() for p in m.parameters() if p.requires_grad]
    if not params:
        raise ModelError(f"trainable={cfg.trainable!r} selects no parameters of this model")
    optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    ema = None
    if cfg.ema is not None:
        from diffusers.training_utils import EMAModel
        ema = EMAModel(params, decay=cfg.ema)
    start = 0
    state = latest_state(cfg.output)
    if state is not None:
        start = load_state(state, modules, optimizer, ema)
        report(f"resuming {cfg.output} at step {start}")
    objective, optimizer = acc.prepare(_Objective(comps, cfg, modules), optimizer)
    return _Trainer(cfg=cfg, acc=acc, comps=comps, modules=modules, params=params,
                    objective=objective, optimizer=optimizer, ema=ema, start=start,
                    trained_before=trained_before, widened=widened)


def _step(t: _Trainer, step: int, batch: dict[str, torch.Tensor]) -> tuple[float, float]:
    """One optimizer step on ``batch``; (its loss, its learning rate)."""
    cfg, acc = t.cfg, t.acc
    lr = learning_rate(cfg, step)
    for group in t.optimizer.param_groups:
        group["lr"] = lr
    with acc.accumulate(t.objective):
        loss = t.objective(batch, _step_generator(cfg.seed, step, acc.process_index))
        if not torch.isfinite(loss):
            raise ModelError(f"loss became {loss.item()} at step {step}; lower "
                             "learning_rate or use mixed_precision = 'bf16' / 'no'")
        acc.backward(loss)
        if acc.sync_gradients:
            acc.clip_grad_norm_(t.params, cfg.grad_clip)
        t.optimizer.step()
        t.optimizer.zero_grad(set_to_none=True)
    if t.ema is not None and acc.sync_gradients:
        t.ema.step(t.params)
    return loss.item(), lr


def _train(t: _Trainer, *, last: int, config_json: str, report: Report,
           cancel: threading.Event | None) -> int:
    """Steps from ``t.start`` up to ``last``: logged, state saved every ``checkpoint_every``
    and at ``last``, validation grids every ``validation.every``; returns the step reached."""
    cfg, acc = t.cfg, t.acc
    world, rank = acc.num_processes, acc.process_index
    data = TrainSamples(cfg.data, cfg.steps * cfg.batch_size * world)
    # each process reads its own samples of each step (exact resume), so the loader is not
    # prepared: accelerate would shard it again
    loader = DataLoader(data, batch_sampler=_StepBatches(t.start, cfg.steps, cfg.batch_size,
                                                         world, rank),
                        num_workers=cfg.data.workers)
    log = Log(cfg, cfg.tensorboard and acc.is_main_process, report)
    step = t.start
    try:
        for step, batch in zip(range(t.start, last), loader, strict=False):
            if cancel is not None and cancel.is_set():
                raise JobCancelled(f"training cancelled at step {step}")
            loss, lr = _step(t, step, {k: v.to(acc.device) for k, v in batch.items()})
            done = step + 1
            log.add(done, loss, lr, last)
            if acc.is_main_process and (done % cfg.checkpoint_every == 0 or done == last):
                save_state(cfg.output, done, t.modules, t.optimizer, t.ema, config_json)
            if (acc.is_main_process and cfg.validation.every
                    and done % cfg.validation.every == 0 and done < cfg.steps):
                write_grid(t.comps, cfg, done, t.ema, t.params)
                for module in t.modules.values():
                    module.train()
            step = done
    finally:
        log.close()
    return step


def _recommended(cfg: TrainConfig) -> dict[str, Any]:
    """The generation settings the exported model recommends: the data's size and window,
    or for a VAE trained under a checkpoint's denoiser, the checkpoint's (they stand)."""
    frames = cfg.data.frames
    recommended = {"resolution": max(64, round(cfg.data.resolution / 64) * 64),
                   "frames_per_window": frames, "overlap": min(2, frames - 1) if frames > 1 else 0,
                   "guidance": cfg.validation.guidance}
    if cfg.stage == "vae" and os.path.isdir(cfg.model):
        recommended = checkpoint.manifest(cfg.model).get("recommended") or recommended
    return recommended


def _export(t: _Trainer, config_json: str, report: Report) -> str:
    """``<output>/model``: the trained model (the EMA weights when kept), its final
    validation grid, and in its manifest what trained each part."""
    cfg, comps = t.cfg, t.comps
    if t.ema is not None:
        t.ema.copy_to(t.params)
    for module in comps.modules().values():
        module.eval()
    if cfg.stage == "vae" and cfg.trainable != "decoder":  # new latents: a new scale
        scale = latent_scale(comps, TrainSamples(cfg.data, 8, heldout=True))
        comps.vae.register_to_config(scaling_factor=scale)
        report(f"latent scaling_factor set to {scale:.5f}")
    write_grid(comps, cfg, cfg.steps, None, t.params)
    note = f"actanywhere train ({cfg.stage}, {cfg.steps} steps, seed {cfg.seed})"
    trained = dict(t.trained_before)
    trained.update({name: note for name in t.modules})
    if t.widened:
        trained["unet"] = f"{trained['unet']}; {t.widened}"
    out = checkpoint.save(comps, os.path.join(cfg.output, "model"), trained=trained,
                          source={"train_config": json.loads(config_json)}, overwrite=True,
                          recommended=_recommended(cfg))
    report(f"model written to {out}")
    return out


def run(cfg: TrainConfig, *, report: Report = print, stop_at: int | None = None,
        cancel: threading.Event | None = None) -> str:
    """Train as configured (resuming from the run folder's latest state); returns the folder
    of the exported model. ``stop_at`` stops after that step with state saved (tests)."""
    # 1. The run folder and its config
    os.makedirs(cfg.output, exist_ok=True)
    config_json = cfg.model_dump_json(indent=2)
    with open(os.path.join(cfg.output, "train_config.json"), "w") as fh:
        fh.write(config_json)
    # 2. The model, optimizer and EMA, resumed and prepared
    t = _prepare(cfg, report)
    # 3. Train up to stop_at
    last = min(cfg.steps, stop_at) if stop_at is not None else cfg.steps
    step = _train(t, last=last, config_json=config_json, report=report, cancel=cancel)
    if step < cfg.steps:
        report(f"stopped at step {step} of {cfg.steps}; run again to resume")
        return ""
    # 4. Export the model (the main process)
    if not t.acc.is_main_process:
        return ""
    return _export(t, config_json, report)
