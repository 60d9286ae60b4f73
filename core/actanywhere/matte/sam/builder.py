"""An untrained Sam module of a given architecture (segment-anything's ``_build_sam``, with
every size read from the checkpoint instead of a registry of three)."""

from __future__ import annotations

from functools import partial

from .arch import Arch
from .deps import need


def build(arch: Arch):
    """An (untrained) Sam module of the given architecture."""
    d = need()
    torch, Encoder, Decoder, Prompt = d.torch, d.ImageEncoderViT, d.MaskDecoder, d.PromptEncoder
    Sam, Transformer = d.Sam, d.TwoWayTransformer
    emb = arch.img_size // arch.patch_size
    return Sam(
        image_encoder=Encoder(
            depth=arch.depth, embed_dim=arch.embed_dim, img_size=arch.img_size,
            mlp_ratio=arch.mlp_ratio, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            num_heads=arch.num_heads, patch_size=arch.patch_size, qkv_bias=True,
            use_rel_pos=True, global_attn_indexes=arch.global_attn,
            window_size=arch.window_size, out_chans=arch.out_chans),
        prompt_encoder=Prompt(embed_dim=arch.out_chans, image_embedding_size=(emb, emb),
                              input_image_size=(arch.img_size, arch.img_size),
                              mask_in_chans=arch.mask_in_chans),
        mask_decoder=Decoder(
            num_multimask_outputs=arch.multimask,
            transformer=Transformer(depth=arch.decoder_depth, embedding_dim=arch.out_chans,
                                    mlp_dim=arch.decoder_mlp, num_heads=8),
            transformer_dim=arch.out_chans, iou_head_depth=arch.iou_depth,
            iou_head_hidden_dim=arch.iou_hidden),
        pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375],
    ).eval()
