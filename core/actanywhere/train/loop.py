"""`actanywhere train`: the accelerate-based training loop.

Diffusion stage (the paper's objective): frames and S are VAE-encoded (frozen VAE, the mode of
the posterior), the mask is area-downsampled to latent size, the condition frame goes through
CLIP + the projector, and with the spatial pathway the condition carried along the clip's camera
path is VAE-encoded too (both zeroed for dropped conditions, the unconditional input the
pipeline uses for guidance); the UNet predicts the noise added at a random timestep (MSE).
VAE stage: reconstruction (L1) plus a small KL term, for models whose autoencoder is ours.

Exact resume: sample i of the run, the noise and the timesteps of step k are pure functions of
the seeds, and the state folder holds the trainable weights, the optimizer, the EMA and the
step, so stopping at step k and resuming gives the same weights as never stopping (on the same
device and library versions).
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from diffusers import DDPMScheduler
from safetensors.torch import load_file
from torch import nn
from torch.utils.data import DataLoader, Sampler

from ..errors import JobCancelled, ModelError
from ..model import checkpoint
from ..model.components import Components, build_random, set_pathway
from ..model.device import pick
from ..model.pipeline import clip_input
from .config import TrainConfig
from .dataset import TrainSamples
from .validate import write_grid

Report = Callable[[str], None]
STATE = "state"


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


# ------------------------------------------------------------------------------ state files
def _state_dir(output: str) -> str:
    return os.path.join(output, STATE)


def latest_state(output: str) -> str | None:
    root = _state_dir(output)
    if not os.path.isdir(root):
        return None
    done = sorted(d for d in os.listdir(root) if d.startswith("step-")
                  and os.path.isfile(os.path.join(root, d, "meta.json")))
    return os.path.join(root, done[-1]) if done else None


def save_state(output: str, step: int, modules: dict[str, nn.Module], optimizer, ema,
               config_json: str, keep: int = 2) -> str:
    """Resumable state at ``step``, written to a temp folder and renamed (never half-written)."""
    root = _state_dir(output)
    final = os.path.join(root, f"step-{step:08d}")
    with checkpoint.atomic_folder(final, ".step-") as tmp:
        for name, module in modules.items():
            checkpoint.save_weights(module, os.path.join(tmp, f"{name}.safetensors"))
        torch.save(optimizer.state_dict(), os.path.join(tmp, "optimizer.pt"))
        if ema is not None:
            torch.save(ema.state_dict(), os.path.join(tmp, "ema.pt"))
        with open(os.path.join(tmp, "meta.json"), "w") as fh:
            json.dump({"step": step, "config": json.loads(config_json)}, fh, indent=2)
    older = sorted(d for d in os.listdir(root) if d.startswith("step-"))[:-keep]
    for d in older:
        shutil.rmtree(os.path.join(root, d), ignore_errors=True)
    return final


def load_state(folder: str, modules: dict[str, nn.Module], optimizer, ema) -> int:
    with open(os.path.join(folder, "meta.json")) as fh:
        step = int(json.load(fh)["step"])
    for name, module in modules.items():
        module.load_state_dict(load_file(os.path.join(folder, f"{name}.safetensors")))
    # our own file, written by save_state: full unpickling is needed for optimizer state
    optimizer.load_state_dict(torch.load(os.path.join(folder, "optimizer.pt"),
                                         weights_only=False))
    if ema is not None:
        ema.load_state_dict(torch.load(os.path.join(folder, "ema.pt"), weights_only=False))
    return step


# ------------------------------------------------------------------------------------ logs
class _Log:
    def __init__(self, output: str, tensorboard: bool, report: Report) -> None:
        self.path = os.path.join(output, "log.csv")
        new = not os.path.exists(self.path)
        self.fh = open(self.path, "a", newline="")  # noqa: SIM115 - closed in close()
        self.csv = csv.writer(self.fh)
        if new:
            self.csv.writerow(["step", "loss", "lr", "seconds_per_step", "elapsed"])
        self.tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
                self.tb = SummaryWriter(os.path.join(output, "tensorboard"))
            except ImportError:
                report("tensorboard is not installed: logging to log.csv only "
                       "(pip install tensorboard)")

    def write(self, step: int, loss: float, lr: float, sps: float, elapsed: float) -> None:
        self.csv.writerow([step, f"{loss:.6f}", f"{lr:.3g}", f"{sps:.3f}", f"{elapsed:.1f}"])
        self.fh.flush()
        if self.tb is not None:
            self.tb.add_scalar("train/loss", loss, step)
            self.tb.add_scalar("train/lr", lr, step)

    def close(self) -> None:
        self.fh.close()
        if self.tb is not None:
            self.tb.close()


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


def run(cfg: TrainConfig, report: Report = print, stop_at: int | None = None,
        cancel: Any = None) -> str:
    """Train as configured (resuming from the run folder's latest state); returns the folder
    of the exported model. ``stop_at`` stops after that step with state saved (tests)."""
    os.makedirs(cfg.output, exist_ok=True)
    config_json = cfg.model_dump_json(indent=2)
    with open(os.path.join(cfg.output, "train_config.json"), "w") as fh:
        fh.write(config_json)
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
    # Only the optimizer is prepared (mixed-precision scaling); the modules are called
    # directly, so with several processes the gradients are averaged by hand below.
    optimizer = acc.prepare(optimizer)
    noise_sched = DDPMScheduler.from_config(
        {k: v for k, v in comps.scheduler_config.items() if not k.startswith("_")})

    world, rank = acc.num_processes, acc.process_index
    data = TrainSamples(cfg.data, cfg.steps * cfg.batch_size * world)
    loader = DataLoader(data, batch_sampler=_StepBatches(start, cfg.steps, cfg.batch_size,
                                                         world, rank),
                        num_workers=cfg.data.workers)
    log = _Log(cfg.output, cfg.tensorboard and acc.is_main_process, report)
    last = min(cfg.steps, stop_at) if stop_at is not None else cfg.steps
    t_start = time.perf_counter()
    t_last, running, count = t_start, 0.0, 0
    step = start
    try:
        for step, batch in zip(range(start, last), loader, strict=False):
            if cancel is not None and cancel.is_set():
                raise JobCancelled(f"training cancelled at step {step}")
            batch = {k: v.to(acc.device) for k, v in batch.items()}
            lr = learning_rate(cfg, step)
            for group in optimizer.param_groups:
                group["lr"] = lr
            g = _step_generator(cfg.seed, step, rank)
            with acc.autocast():
                if cfg.stage == "vae":
                    loss = vae_loss(comps, batch, g, cfg.kl_weight)
                else:
                    loss = diffusion_loss(comps, noise_sched, batch, g, comps.unet.dtype)
            if not torch.isfinite(loss):
                raise ModelError(f"loss became {loss.item()} at step {step}; lower "
                                 "learning_rate or use mixed_precision = 'bf16' / 'no'")
            acc.backward(loss)
            if world > 1:
                for p in params:
                    if p.grad is not None:
                        p.grad = acc.reduce(p.grad, reduction="mean")
            acc.clip_grad_norm_(params, cfg.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if ema is not None:
                ema.step(params)
            running += loss.item()
            count += 1
            done = step + 1
            if done % cfg.log_every == 0 or done == last:
                now = time.perf_counter()
                log.write(done, running / count, lr, (now - t_last) / count, now - t_start)
                report(f"step {done}/{cfg.steps} loss {running / count:.4f} "
                       f"({(now - t_last) / count:.2f} s/step)")
                t_last, running, count = now, 0.0, 0
            if acc.is_main_process and (done % cfg.checkpoint_every == 0 or done == last):
                save_state(cfg.output, done, modules, optimizer, ema, config_json)
            if (acc.is_main_process and cfg.validation.every
                    and done % cfg.validation.every == 0 and done < cfg.steps):
                write_grid(comps, cfg, done, ema, params)
                for module in modules.values():
                    module.train()
            step = done
    finally:
        log.close()
    if step < cfg.steps:
        report(f"stopped at step {step} of {cfg.steps}; run again to resume")
        return ""
    if not acc.is_main_process:
        return ""
    if ema is not None:
        ema.copy_to(params)
    for module in comps.modules().values():
        module.eval()
    if cfg.stage == "vae" and cfg.trainable != "decoder":  # new latents: a new scale
        scale = latent_scale(comps, TrainSamples(cfg.data, 8, heldout=True))
        comps.vae.register_to_config(scaling_factor=scale)
        report(f"latent scaling_factor set to {scale:.5f}")
    write_grid(comps, cfg, cfg.steps, None, params)
    note = f"actanywhere train ({cfg.stage}, {cfg.steps} steps, seed {cfg.seed})"
    trained = dict(trained_before)
    trained.update({name: note for name in modules})
    if widened:
        trained["unet"] = f"{trained['unet']}; {widened}"
    frames = cfg.data.frames
    recommended = {"resolution": max(64, round(cfg.data.resolution / 64) * 64),
                   "frames_per_window": frames, "overlap": min(2, frames - 1) if frames > 1 else 0,
                   "guidance": cfg.validation.guidance}
    if cfg.stage == "vae" and os.path.isdir(cfg.model):  # the denoiser's settings stand
        recommended = checkpoint.manifest(cfg.model).get("recommended") or recommended
    out = checkpoint.save(comps, os.path.join(cfg.output, "model"), trained=trained,
                          source={"train_config": json.loads(config_json)}, overwrite=True,
                          recommended=recommended)
    report(f"model written to {out}")
    return out
