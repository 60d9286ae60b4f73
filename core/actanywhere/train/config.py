"""TrainConfig: everything one training run needs, from a TOML or JSON file."""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from ..errors import SpecError
from ..spec import Strict, format_errors
from ..spec_files import load as load_file


class ClipSource(Strict):
    frames: str = Field(description="Frame sequence (clip.####.exr/png/jpg) or a video file "
                        "(.mp4/.mov/.mkv/.avi)")
    matte: str = Field("alpha", description="'alpha' or a channel name (A, matte.A) of the "
                       "frames, or a matte sequence / video path")
    colorspace: str | None = Field(None, description="OCIO colourspace of the frames; default by "
                                   "format (EXR: scene-linear, others: sRGB)")


class DataConfig(Strict):
    source: Literal["synthetic", "clips"] = Field(
        "synthetic", description="synthetic: the procedural generator; clips: `clips` below")
    clips: list[ClipSource] = Field(default_factory=list, description="Clips (source=clips)")
    seed: int = Field(0, description="Data seed: sample i of the run is a function of (seed, i)")
    frames: int = Field(8, ge=1, le=32, description="Frames per sample (N)")
    stride: int = Field(1, ge=1, description="Frame stride within a clip")
    resolution: int = Field(64, ge=16, description="Sample size in pixels (square, multiple of 8)")
    condition_dropout: float = Field(0.1, ge=0, le=1, description="Probability of an empty "
                                     "condition (classifier-free guidance)")
    clean_condition: float = Field(0.3, ge=0, le=1, description="Synthetic data: probability "
                                   "that the condition is the background without the subject")
    mask_cutout: float = Field(0.25, ge=0, le=1, description="Probability of random rectangular "
                               "cut-outs in the mask")
    mask_morph: float = Field(0.5, ge=0, le=1, description="Probability of eroding or dilating "
                              "the mask by 1-3 px")
    mask_blur: float = Field(0.25, ge=0, le=1, description="Probability of blurring the mask")
    crop: float = Field(0.8, gt=0, le=1, description="Smallest random crop, as a fraction of "
                        "the clip's shorter side (1: no crop)")
    flip: bool = Field(True, description="Random horizontal flips")
    workers: int = Field(0, ge=0, description="Data loader worker processes")

    @model_validator(mode="after")
    def _check(self) -> DataConfig:
        if self.resolution % 8:
            raise ValueError("data.resolution must be a multiple of 8")
        if self.source == "clips" and not self.clips:
            raise ValueError("data.source is clips but data.clips is empty")
        return self


class ValidationConfig(Strict):
    every: int = Field(0, ge=0, description="Write a validation grid every N steps (0: only at "
                       "the end)")
    clips: int = Field(2, ge=1, description="Validation clips (held out: seeds after the data "
                       "seed's range)")
    steps: int = Field(20, ge=1, description="Denoising steps for validation samples")
    guidance: float = Field(2.0, ge=1, description="Guidance scale for validation samples")


class TrainConfig(Strict):
    model: str = Field("tiny", description="Starting point: an architecture (tiny, small, full, "
                       "or a JSON file) with random weights, or a checkpoint folder")
    output: str = Field(description="Run folder: logs, state/, validation/, model/")
    stage: Literal["diffusion", "vae"] = Field(
        "diffusion", description="diffusion: the denoiser; vae: the autoencoder alone")
    trainable: Literal["unet", "motion", "conv_in_attention", "unet_condition", "all",
                       "decoder"] = Field(
        "unet", description="What trains (diffusion stage): the whole UNet, only its motion "
        "modules, conv_in + attention, the UNet plus the condition encoder and projector, or all "
        "but the VAE; vae stage: decoder trains only the VAE's decoder (the latents, and so a "
        "trained denoiser, stay as they are), anything else the whole VAE")
    pathway: Literal["crossattn", "concat", "both"] | None = Field(
        None, description="How the condition reaches the UNet: crossattn (CLIP tokens, the "
        "paper's), concat (its latents moved along the camera path, as 4 more input channels) "
        "or both; unset: the starting checkpoint's (crossattn for a new model). A checkpoint "
        "without the spatial pathway is widened with zero weights")
    steps: int = Field(1000, ge=1, description="Optimizer steps in total")
    batch_size: int = Field(4, ge=1, description="Samples per step per process")
    learning_rate: float = Field(1e-4, gt=0)
    weight_decay: float = Field(1e-2, ge=0)
    warmup: int = Field(0, ge=0, description="Linear warm-up steps")
    schedule: Literal["constant", "cosine"] = Field(
        "constant", description="Learning rate after warm-up: constant, or cosine decay to 10%")
    grad_clip: float = Field(1.0, gt=0)
    kl_weight: float = Field(1e-6, ge=0, description="VAE stage: KL weight")
    mixed_precision: Literal["no", "fp16", "bf16"] = Field("no", description="GPU only")
    gradient_checkpointing: bool = False
    ema: float | None = Field(None, gt=0, lt=1, description="EMA decay (e.g. 0.999); the "
                              "exported model uses the EMA weights")
    seed: int = Field(0, description="Seed of weights, noise and timesteps")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    checkpoint_every: int = Field(500, ge=1, description="Save resumable state every N steps")
    log_every: int = Field(10, ge=1)
    tensorboard: bool = Field(True, description="Also log to TensorBoard (if installed)")
    data: DataConfig = Field(default_factory=DataConfig)
    validation: ValidationConfig = Field(default_factory=ValidationConfig)


MEDIA_SUFFIXES = (".exr", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".dpx", ".mp4", ".mov",
                  ".mkv", ".avi", ".webm")


def is_path(value: object) -> bool:
    """A matte/frames value that names a file (not a channel such as ``matte.A``)."""
    return isinstance(value, str) and (os.sep in value or value.lower().endswith(MEDIA_SUFFIXES))


def load(path: str, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """A TrainConfig from a TOML/JSON file; relative paths are relative to the file."""
    data = load_file(path)
    base = os.path.dirname(os.path.abspath(path))
    for key in ("output", "model"):
        value = data.get(key)
        if isinstance(value, str) and (os.sep in value or value.startswith(".")):
            data[key] = os.path.join(base, value)
    for clip in (data.get("data") or {}).get("clips") or []:
        for key in ("frames", "matte"):
            if isinstance(clip, dict) and is_path(clip.get(key)):
                clip[key] = os.path.join(base, clip[key])
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return from_dict(data, path)


def from_dict(data: dict[str, Any], where: str = "train config") -> TrainConfig:
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as exc:
        raise SpecError(f"{where}: {format_errors(exc)}") from exc
