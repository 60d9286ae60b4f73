"""The model's parts, built from the JSON architecture configs in ``configs/``.

- ``unet``: diffusers ``UNetMotionModel`` (an SD 1.5 sized UNet with AnimateDiff motion modules)
  with 9 input channels: noisy latents (4), background mask (1), foreground latents (4), the
  order of diffusers' inpainting UNets; 13 with the spatial condition pathway, whose 4 more
  are the VAE latents of the condition image moved along the shot's camera path.
- ``vae``: diffusers ``AutoencoderKL`` (latents at 1/8 of the image size).
- ``image_encoder``: transformers ``CLIPVisionModelWithProjection`` for the condition image.
- ``condition_projector``: ours; turns CLIP features into the UNet's cross-attention tokens,
  either the projected embedding as one token (``embed``) or the patch tokens through a learned
  projection (``patches``). Its config also records the condition ``pathway``: ``crossattn``
  (the paper's: CLIP tokens only), ``concat`` (moved condition latents only) or ``both``.
- ``feature_extractor``: CLIP preprocessing (size, mean, std), applied in torch.
- ``scheduler``: DDIM with linear betas as in the paper (others built from the same config).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Literal

import torch
from diffusers import AutoencoderKL, UNetMotionModel
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils import logging as diffusers_logging
from torch import nn
from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

diffusers_logging.set_verbosity_error()  # dtype-cast notices are not for artists

CONFIG_DIR = os.path.join(os.path.dirname(__file__), "configs")
ARCHITECTURES = ("tiny", "small", "full")
Pathway = Literal["crossattn", "concat", "both"]
PATHWAYS: tuple[str, ...] = ("crossattn", "concat", "both")
#: UNet input channels per pathway: noisy 4 + mask 1 + S 4 (+ moved condition 4)
IN_CHANNELS = {"crossattn": 9, "concat": 13, "both": 13}


class ConditionProjector(ModelMixin, ConfigMixin):
    """CLIP image features -> cross-attention tokens for the UNet.

    ``embed``: the projected image embedding (B, in_dim) as one token, through a linear layer
    that starts as the identity when the sizes match. ``patches``: the encoder's patch tokens
    (B, N, patch_dim) through LayerNorm + Linear, N tokens. With ``pathway`` ``concat`` the
    condition reaches the UNet only as moved latents: the tokens are one zero token.
    """

    @register_to_config
    def __init__(self, mode: Literal["embed", "patches"] = "embed", in_dim: int = 768,
                 patch_dim: int = 1024, out_dim: int = 768, pathway: Pathway = "crossattn"
                 ) -> None:
        super().__init__()
        if mode not in ("embed", "patches"):
            raise ValueError(f"condition_projector.mode must be embed or patches, not {mode!r}")
        if pathway not in PATHWAYS:
            raise ValueError(f"condition_projector.pathway must be one of {', '.join(PATHWAYS)}, "
                             f"not {pathway!r}")
        if mode == "embed":
            self.proj = nn.Linear(in_dim, out_dim)
            if in_dim == out_dim:
                with torch.no_grad():
                    self.proj.weight.copy_(torch.eye(out_dim))
                    self.proj.bias.zero_()
        else:
            self.norm = nn.LayerNorm(patch_dim)
            self.proj = nn.Linear(patch_dim, out_dim)

    @property
    def tokens(self) -> bool:
        """Whether the condition enters through cross-attention."""
        return self.config.pathway != "concat"

    @property
    def latents(self) -> bool:
        """Whether the moved condition's latents are concatenated to the UNet input."""
        return self.config.pathway != "crossattn"

    def forward(self, image_embeds: torch.Tensor, patch_tokens: torch.Tensor) -> torch.Tensor:
        if not self.tokens:
            return image_embeds.new_zeros(image_embeds.shape[0], 1, self.config.out_dim)
        if self.config.mode == "embed":
            return self.proj(image_embeds)[:, None, :]
        return self.proj(self.norm(patch_tokens))


#: name -> (class, weights file, config file); the order is the order of loading
WEIGHTED = {
    "unet": (UNetMotionModel, "diffusion_pytorch_model.safetensors", "config.json"),
    "vae": (AutoencoderKL, "diffusion_pytorch_model.safetensors", "config.json"),
    "image_encoder": (CLIPVisionModelWithProjection, "model.safetensors", "config.json"),
    "condition_projector": (ConditionProjector, "diffusion_pytorch_model.safetensors",
                            "config.json"),
}
SCHEDULER_CONFIG = "scheduler/scheduler_config.json"
PREPROCESSOR_CONFIG = "feature_extractor/preprocessor_config.json"


def architecture(name: str) -> dict[str, Any]:
    """The stored architecture config ``tiny`` or ``full`` (or a path to such a JSON file)."""
    path = name if name.endswith(".json") else os.path.join(CONFIG_DIR, f"{name}.json")
    with open(path) as fh:
        cfg = json.load(fh)
    cfg.pop("_comment", None)
    return cfg


def build_module(name: str, config: dict[str, Any]) -> nn.Module:
    """One weighted component from its config dict (random weights)."""
    cls = WEIGHTED[name][0]
    if cls is CLIPVisionModelWithProjection:
        return cls(CLIPVisionConfig(**config))
    return cls.from_config(config)


def clip_processor(size: int) -> CLIPImageProcessor:
    """CLIP preprocessing at ``size`` (224 for ViT-L/14) with OpenAI's mean and std."""
    return CLIPImageProcessor(size={"shortest_edge": size},
                              crop_size={"height": size, "width": size})


@dataclass
class Components:
    unet: UNetMotionModel
    vae: AutoencoderKL
    image_encoder: CLIPVisionModelWithProjection
    condition_projector: ConditionProjector
    feature_extractor: CLIPImageProcessor
    scheduler_config: dict[str, Any]

    def modules(self) -> dict[str, nn.Module]:
        return {name: getattr(self, name) for name in WEIGHTED}

    @property
    def pathway(self) -> str:
        return str(self.condition_projector.config.pathway)


def widen_conv_in(state: dict[str, torch.Tensor], channels: int) -> None:
    """Grow ``conv_in.weight`` to ``channels`` inputs; the new ones get zero weights."""
    w = state["conv_in.weight"]
    extra = torch.zeros(w.shape[0], channels - w.shape[1], *w.shape[2:], dtype=w.dtype,
                        device=w.device)
    state["conv_in.weight"] = torch.cat([w, extra], dim=1)


def set_pathway(comps: Components, pathway: Pathway) -> bool:
    """Give the model the condition ``pathway``, widening the UNet's ``conv_in`` with zero
    weights for the moved-condition latents when it has none, so the model computes exactly
    what it did before (as ``model init`` widens an SD UNet for the mask and S). Narrowing is
    refused: it would throw trained weights away. Returns whether anything changed."""
    if pathway not in PATHWAYS:
        raise ValueError(f"pathway must be one of {', '.join(PATHWAYS)}, not {pathway!r}")
    unet, want = comps.unet, IN_CHANNELS[pathway]
    have = int(unet.config.in_channels)
    if have > want:
        raise ValueError(f"the UNet takes {have} input channels (a {comps.pathway} model); it "
                         f"cannot become a {pathway} model, which takes {want}")
    changed = pathway != comps.pathway
    if have < want:
        old = unet.conv_in
        new = nn.Conv2d(want, old.out_channels, old.kernel_size, old.stride, old.padding,
                        device=old.weight.device, dtype=old.weight.dtype)
        state = {"conv_in.weight": old.weight.detach()}
        widen_conv_in(state, want)
        with torch.no_grad():
            new.weight.copy_(state["conv_in.weight"])
            new.bias.copy_(old.bias)
        unet.conv_in = new
        unet.register_to_config(in_channels=want)
        changed = True
    comps.condition_projector.register_to_config(pathway=pathway)
    return changed


def build_random(arch: str | dict[str, Any], seed: int = 0,
                 condition: Literal["embed", "patches"] | None = None,
                 pathway: Pathway = "crossattn") -> Components:
    """Every part of the architecture with random weights (seeded), no download."""
    cfg = architecture(arch) if isinstance(arch, str) else arch
    proj = {**cfg["condition_projector"], "pathway": pathway}
    if condition:
        proj["mode"] = condition
    unet = {**cfg["unet"], "in_channels": IN_CHANNELS[pathway]}
    torch.manual_seed(seed)
    parts = {name: build_module(name, proj if name == "condition_projector" else
                                unet if name == "unet" else cfg[name])
             for name in WEIGHTED}
    for module in parts.values():
        module.eval()
    return Components(**parts, feature_extractor=clip_processor(cfg["feature_extractor"]["size"]),
                      scheduler_config=dict(cfg["scheduler"]))
