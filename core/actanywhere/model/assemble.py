"""``actanywhere model init``: a complete checkpoint from parts a user downloaded themselves.

Parts are diffusers/transformers folders on local disk (``config.json`` + weights):
an SD 1.5 UNet (4 input channels) or SD 1.5 inpainting UNet (9), an AnimateDiff motion adapter,
a CLIP ViT-L/14 image encoder (``CLIPVisionModelWithProjection``, or a whole ``CLIPModel`` whose
text half is dropped) and a VAE. A folder holding a whole pipeline may be given too; the
``unet``/``vae``/``image_encoder`` subfolder is used. A 4-channel UNet's ``conv_in`` is widened
to 9 channels with zero weights for the mask and foreground inputs, so the assembled model
starts out computing exactly what the original UNet computes.
"""

from __future__ import annotations

import os
from typing import Any, Literal

import torch
from accelerate import init_empty_weights
from diffusers import AutoencoderKL, MotionAdapter, UNet2DConditionModel, UNetMotionModel
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

from ..errors import ModelError
from . import checkpoint
from .components import IN_CHANNELS as PATHWAY_CHANNELS
from .components import Components, ConditionProjector, architecture, clip_processor, widen_conv_in

IN_CHANNELS = PATHWAY_CHANNELS["crossattn"]


def _folder(path: str, sub: str) -> str:
    path = os.path.abspath(path)
    if not os.path.isdir(path):
        raise ModelError(f"{path}: no such folder; download the {sub} component first")
    if not os.path.isfile(os.path.join(path, "config.json")) and os.path.isfile(
            os.path.join(path, sub, "config.json")):
        return os.path.join(path, sub)
    return path


def _config(folder: str, what: str) -> dict[str, Any]:
    return checkpoint.read_json(os.path.join(folder, "config.json"), f"{what} config")


def _load_module(module: torch.nn.Module, state: dict[str, torch.Tensor], file: str) -> None:
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    checkpoint.check_tensors(file, {k: tuple(v.shape) for k, v in state.items()}, expected)
    module.load_state_dict(state, strict=True, assign=True)


def load_unet2d(path: str, allow_pickle: bool = False) -> tuple[UNet2DConditionModel, str]:
    """An SD 1.5 (inpainting) UNet widened to 9 input channels, and how conv_in was made."""
    folder = _folder(path, "unet")
    cfg = checkpoint.clean_config(_config(folder, "UNet"))
    file = checkpoint.weights_file(folder, "diffusion_pytorch_model.safetensors", allow_pickle)
    state = checkpoint.read_state(file, allow_pickle)
    channels = cfg.get("in_channels", 4)
    if channels == 4:
        if "conv_in.weight" not in state:
            raise ModelError(f"{file}: tensor conv_in.weight is missing; not a UNet checkpoint")
        widen_conv_in(state, IN_CHANNELS)
        how = "widened from 4 to 9 channels, extra channels zero (untrained)"
    elif channels == IN_CHANNELS:
        how = "inpainting UNet, 9 channels as trained"
    else:
        raise ModelError(f"{folder}/config.json: in_channels {channels}; expected an SD 1.5 UNet "
                         "(4) or inpainting UNet (9)")
    cfg["in_channels"] = IN_CHANNELS
    try:
        with init_empty_weights():
            unet = UNet2DConditionModel.from_config(cfg)
    except Exception as exc:
        raise ModelError(f"{folder}/config.json: not a UNet2DConditionModel config "
                         f"({exc})") from exc
    _load_module(unet, state, file)
    return unet, how


def _load_diffusers(path: str, sub: str, cls, what: str, allow_pickle: bool):
    """A diffusers model folder: config.json + weights, checked tensor by tensor."""
    folder = _folder(path, sub)
    cfg = checkpoint.clean_config(_config(folder, what))
    file = checkpoint.weights_file(folder, "diffusion_pytorch_model.safetensors", allow_pickle)
    with init_empty_weights():
        module = cls.from_config(cfg)
    _load_module(module, checkpoint.read_state(file, allow_pickle), file)
    return module


def load_motion_adapter(path: str, allow_pickle: bool = False) -> MotionAdapter:
    return _load_diffusers(path, "motion_adapter", MotionAdapter, "motion adapter", allow_pickle)


def load_image_encoder(path: str, allow_pickle: bool = False) -> CLIPVisionModelWithProjection:
    """A CLIP vision tower with its projection, from a vision-only or a whole CLIP folder."""
    folder = _folder(path, "image_encoder")
    cfg = checkpoint.clean_config(_config(folder, "image encoder"))
    whole = cfg.get("model_type") == "clip"
    vision = dict(cfg.get("vision_config", {})) if whole else cfg
    if whole:
        vision["projection_dim"] = cfg.get("projection_dim", vision.get("projection_dim", 512))
    vision.pop("model_type", None)
    file = checkpoint.weights_file(folder, "model.safetensors", allow_pickle)
    state = checkpoint.read_state(file, allow_pickle)
    if whole:
        state = {k: v for k, v in state.items()
                 if k.startswith(("vision_model.", "visual_projection."))}
    state.pop("vision_model.embeddings.position_ids", None)  # a buffer older exports include
    with init_empty_weights():
        encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(**{
            k: v for k, v in vision.items() if not k.startswith("_")}))
    _load_module(encoder, state, file)
    return encoder


def load_vae(path: str, allow_pickle: bool = False) -> AutoencoderKL:
    return _load_diffusers(path, "vae", AutoencoderKL, "VAE", allow_pickle)


def from_parts(unet: str, motion_adapter: str, image_encoder: str, vae: str, *,
               condition: Literal["embed", "patches"] = "embed",
               allow_pickle: bool = False) -> tuple[Components, dict[str, str], dict[str, str]]:
    """Components, what each part's weights are (trained or not), and their sources."""
    unet2d, conv_in = load_unet2d(unet, allow_pickle)
    adapter = load_motion_adapter(motion_adapter, allow_pickle)
    try:
        motion = UNetMotionModel.from_unet2d(unet2d, adapter)
    except ValueError as exc:
        raise ModelError(f"{motion_adapter}: motion adapter does not fit the UNet ({exc}); use an "
                         "AnimateDiff adapter made for SD 1.5") from exc
    encoder = load_image_encoder(image_encoder, allow_pickle)
    autoencoder = load_vae(vae, allow_pickle)
    cross = motion.config.cross_attention_dim
    proj_dim, hidden = encoder.config.projection_dim, encoder.config.hidden_size
    projector = ConditionProjector(mode=condition, in_dim=proj_dim, patch_dim=hidden,
                                   out_dim=cross)
    if condition == "embed" and proj_dim != cross:
        projector_state = "random linear map (untrained): CLIP projection_dim " \
            f"{proj_dim} differs from the UNet's cross_attention_dim {cross}"
    else:
        projector_state = ("identity (untrained)" if condition == "embed"
                           else "random (untrained)")
    latent = autoencoder.config.latent_channels
    if latent != motion.config.out_channels:
        raise ModelError(f"{vae}: VAE has {latent} latent channels, the UNet predicts "
                         f"{motion.config.out_channels}; use the SD 1.5 VAE")
    parts = Components(unet=motion.eval(), vae=autoencoder.eval(), image_encoder=encoder.eval(),
                       condition_projector=projector.eval(),
                       feature_extractor=clip_processor(encoder.config.image_size),
                       scheduler_config=dict(architecture("full")["scheduler"]))
    trained = {
        "unet": f"spatial layers from the SD UNet; motion modules from the adapter; conv_in "
                f"{conv_in}",
        "vae": "pretrained", "image_encoder": "pretrained", "condition_projector": projector_state,
    }
    sources = {"unet": os.path.abspath(unet), "motion_adapter": os.path.abspath(motion_adapter),
               "image_encoder": os.path.abspath(image_encoder), "vae": os.path.abspath(vae)}
    return parts, trained, sources
