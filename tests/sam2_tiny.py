"""Tiny random SAM 2 video models saved as transformers model folders (config.json,
model.safetensors, processor_config.json), for the sam2 matte tests and benchmark. Built here
from transformers' configuration classes, the sizes after transformers' own model tests
(tests/models/sam2/test_modeling_sam2.py: 128 px images, a 4-stage Hiera 12-96 wide); nothing
is downloaded.

Two constraints of transformers' video models shape the sizes: the memory attention's
cross-attention reads 64-channel memories (``kv_in_dim=64``), so ``memory_encoder_output_
channels`` stays 64; and object pointers are split into memory-sized tokens only when the
model is wider than its memories, so the prompt/decoder/memory-attention width is 128. The
object-score head is biased to "present": random weights would otherwise often say "no
object" and give empty mattes, which tests of the tracking plumbing do not want.
"""

from __future__ import annotations

import os

SIZE = 128  # the model's working size (pixels, square)


def _processor(size: int):
    from transformers import Sam2VideoProcessor
    from transformers.models.sam2.image_processing_sam2 import Sam2ImageProcessor
    from transformers.models.sam2_video.video_processing_sam2_video import (
        Sam2VideoVideoProcessor,
    )

    square = {"height": size, "width": size}
    return Sam2VideoProcessor(
        image_processor=Sam2ImageProcessor(size=square,
                                           mask_size={"height": size // 4, "width": size // 4}),
        video_processor=Sam2VideoVideoProcessor(size=square))


def _common(size: int) -> dict:
    """Prompt encoder, mask decoder and memory sizes shared by SAM 2.1 and EdgeTAM."""
    grid = size // 16
    return dict(
        prompt_encoder_config=dict(hidden_size=128, image_size=size, patch_size=16,
                                   mask_input_channels=8),
        mask_decoder_config=dict(hidden_size=128, mlp_dim=64, num_hidden_layers=2,
                                 num_attention_heads=4, iou_head_hidden_dim=32),
        image_size=size, memory_attention_hidden_size=128, memory_attention_num_layers=1,
        memory_attention_rope_feat_sizes=[grid, grid], memory_encoder_hidden_size=128,
        memory_encoder_output_channels=64, mask_downsampler_embed_dim=128)


def sam2_config(size: int = SIZE):
    """A tiny Sam2VideoConfig (about 1.2 M parameters)."""
    from transformers import Sam2HieraDetConfig, Sam2VideoConfig, Sam2VisionConfig

    f = size // 4
    backbone = Sam2HieraDetConfig(
        hidden_size=12, image_size=size, blocks_per_stage=[1, 1, 2, 1],
        embed_dim_per_stage=[12, 24, 48, 96], num_attention_heads_per_stage=[1, 1, 2, 2],
        global_attention_blocks=[3], window_size_per_stage=[8, 4, 4, 4])
    vision = Sam2VisionConfig(backbone_config=backbone, backbone_channel_list=[96, 48, 24, 12],
                              backbone_feature_sizes=[[f, f], [f // 2, f // 2], [f // 4, f // 4]],
                              fpn_hidden_size=128)
    return Sam2VideoConfig(vision_config=vision, memory_fuser_embed_dim=128,
                           memory_fuser_intermediate_dim=64,
                           memory_attention_feed_forward_hidden_size=64, **_common(size))


def edgetam_config(size: int = SIZE):
    """A tiny EdgeTamVideoConfig; its RepViT image encoder is a timm model (needs timm)."""
    from transformers import EdgeTamVideoConfig, EdgeTamVisionConfig, TimmWrapperConfig

    f = size // 4
    backbone = TimmWrapperConfig(architecture="repvit_m1", model_args={
        "in_chans": 3, "features_only": True, "out_indices": [0, 1, 2, 3],
        "embed_dim": [12, 24, 48, 96]})
    vision = EdgeTamVisionConfig(backbone_config=backbone,
                                 backbone_channel_list=[96, 48, 24, 12],
                                 backbone_feature_sizes=[[f, f], [f // 2, f // 2],
                                                         [f // 4, f // 4]],
                                 fpn_hidden_size=128)
    return EdgeTamVideoConfig(vision_config=vision, memory_attention_mlp_hidden_size=64,
                              memory_fuser_embed_dim=128, memory_fuser_intermediate_dim=64,
                              perceiver_resampler_num_latents=16,
                              perceiver_resampler_num_latents_2d=(size // 32) ** 2,
                              memory_attention_rope_k_sizes=[size // 32, size // 32],
                              perceiver_resampler_mlp_intermediate_size=64, **_common(size))


def save(folder: str, kind: str = "sam2", *, seed: int = 0, size: int = SIZE) -> str:
    """A random model of ``kind`` (sam2 | edgetam) saved to ``folder`` with safetensors and
    its processor; returns the folder."""
    import torch
    from transformers import EdgeTamVideoModel, Sam2VideoModel

    torch.manual_seed(seed)
    if kind == "sam2":
        model = Sam2VideoModel(sam2_config(size))
    else:
        model = EdgeTamVideoModel(edgetam_config(size))
    with torch.no_grad():  # "an object is present" (see the module's docstring)
        model.mask_decoder.pred_obj_score_head.proj_out.bias.fill_(10.0)
    os.makedirs(folder, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    _processor(size).save_pretrained(folder)
    return folder
