"""A SAM architecture, read from a checkpoint's own tensors (no model type to trust)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ...errors import ModelError

KNOWN = {"vit_b": (768, 12), "vit_l": (1024, 24), "vit_h": (1280, 32)}
SIZES = {"vit_b": "about 375 MB", "vit_l": "about 1.2 GB", "vit_h": "about 2.6 GB"}
HINT = ("expected an official Segment Anything checkpoint (sam_vit_b_01ec64.pth, "
        "sam_vit_l_0b3195.pth or sam_vit_h_4b8939.pth, from the segment-anything project)")


@dataclass(frozen=True)
class Arch:
    """Everything needed to build a Sam matching a state dict."""

    embed_dim: int
    depth: int
    num_heads: int
    global_attn: tuple[int, ...]
    window_size: int
    img_size: int
    patch_size: int
    mlp_ratio: float
    out_chans: int
    mask_in_chans: int
    decoder_depth: int
    decoder_mlp: int
    multimask: int
    iou_depth: int
    iou_hidden: int

    @property
    def kind(self) -> str:
        for name, (dim, depth) in KNOWN.items():
            if (self.embed_dim, self.depth) == (dim, depth):
                return name
        return f"custom (width {self.embed_dim}, depth {self.depth})"


def infer_arch(sd: dict, path: str) -> Arch:
    """Read the architecture from a SAM state dict; ModelError naming what is missing."""
    need = ["image_encoder.patch_embed.proj.weight", "image_encoder.pos_embed",
            "image_encoder.neck.0.weight", "prompt_encoder.mask_downscaling.3.weight",
            "mask_decoder.mask_tokens.weight", "mask_decoder.transformer.layers.0.mlp.lin1.weight"]
    missing = [k for k in need if k not in sd]
    if missing:
        raise ModelError(f"{path}: not a Segment Anything checkpoint (no {missing[0]}); {HINT}")
    embed, _, patch, _ = sd["image_encoder.patch_embed.proj.weight"].shape
    grid = sd["image_encoder.pos_embed"].shape[1]
    blocks = sorted({int(m.group(1)) for k in sd
                     if (m := re.match(r"image_encoder\.blocks\.(\d+)\.", k))})
    global_attn, window, head_dim = [], 0, None
    for b in blocks:
        rel = sd.get(f"image_encoder.blocks.{b}.attn.rel_pos_h")
        if rel is None:
            raise ModelError(f"{path}: block {b} has no relative position table; {HINT}")
        size = (rel.shape[0] + 1) // 2
        head_dim = rel.shape[1]
        if size == grid:
            global_attn.append(b)
        else:
            window = size
    layers = {int(m.group(1)) for k in sd
              if (m := re.match(r"mask_decoder\.transformer\.layers\.(\d+)\.", k))}
    iou_layers = {int(m.group(1)) for k in sd
                  if (m := re.match(r"mask_decoder\.iou_prediction_head\.layers\.(\d+)\.", k))}
    return Arch(
        embed_dim=int(embed), depth=len(blocks), num_heads=int(embed // head_dim),
        global_attn=tuple(global_attn), window_size=int(window), img_size=int(grid * patch),
        patch_size=int(patch),
        mlp_ratio=sd["image_encoder.blocks.0.mlp.lin1.weight"].shape[0] / embed,
        out_chans=int(sd["image_encoder.neck.0.weight"].shape[0]),
        mask_in_chans=int(sd["prompt_encoder.mask_downscaling.3.weight"].shape[0]),
        decoder_depth=len(layers),
        decoder_mlp=int(sd["mask_decoder.transformer.layers.0.mlp.lin1.weight"].shape[0]),
        multimask=int(sd["mask_decoder.mask_tokens.weight"].shape[0] - 1),
        iou_depth=len(iou_layers),
        iou_hidden=int(sd["mask_decoder.iou_prediction_head.layers.0.weight"].shape[0]),
    )
