"""Tiny random SAM 3 video models saved as transformers model folders (config.json,
model.safetensors, processor_config.json, tokenizer files), for the sam3 matte tests. Built here
from transformers' configuration classes; the tokenizer is a ``CLIPTokenizer`` over a few
dozen letters and words (SAM 3's text encoder is CLIP's); nothing is downloaded.

Sizes: 112 px images in 14 px patches (an 8 x 8 grid), a 2-layer ViT 32 wide, a 2-layer CLIP
text encoder 32 wide, DETR encoder/decoder of one layer and 8 queries; the tracker (a SAM 2
style memory model) keeps 64-channel memories like the real one. The detector's presence and
score heads are biased to "found", else random weights rarely detect anything.
"""

from __future__ import annotations

import os

SIZE = 112  # the model's working size (pixels, square)
PATCH = 14
W = 128  # the width of the features every head reads (the real model: 256)
WORDS = ("person", "car", "dog", "ball", "a", "the")


def tokenizer():
    """A CLIPTokenizer over letters and ``WORDS`` (byte-pair merges none: whole words are
    vocabulary entries)."""
    from transformers import CLIPTokenizer

    specials = ["<|startoftext|>", "<|endoftext|>"]
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    vocab = {t: i for i, t in enumerate([*specials, *letters, *(c + "</w>" for c in letters),
                                         *(w + "</w>" for w in WORDS)])}
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=32)


def _processor(size: int):
    from transformers import Sam3VideoProcessor
    from transformers.models.sam2_video.video_processing_sam2_video import (
        Sam2VideoVideoProcessor,
    )
    from transformers.models.sam3.image_processing_sam3 import Sam3ImageProcessor

    square = {"height": size, "width": size}
    return Sam3VideoProcessor(
        image_processor=Sam3ImageProcessor(size=square,
                                           mask_size={"height": size // 4, "width": size // 4}),
        video_processor=Sam2VideoVideoProcessor(size=square), tokenizer=tokenizer(),
        target_size=size)


def config(size: int = SIZE):
    """A tiny Sam3VideoConfig."""
    from transformers import Sam3Config, Sam3TrackerVideoConfig, Sam3VideoConfig

    g = size // PATCH
    feats = [[4 * g, 4 * g], [2 * g, 2 * g], [g, g]]
    backbone = dict(model_type="sam3_vit_model", hidden_size=32, intermediate_size=64,
                    num_hidden_layers=2, num_attention_heads=2, image_size=size,
                    patch_size=PATCH, window_size=4, global_attn_indexes=[1],
                    pretrain_image_size=size)
    vision = dict(backbone_config=backbone, fpn_hidden_size=W, backbone_feature_sizes=feats)
    small = dict(hidden_size=W, num_layers=1, num_attention_heads=2, intermediate_size=64)
    detector = Sam3Config(
        vision_config=vision,
        text_config=dict(model_type="clip_text_model", vocab_size=len(tokenizer()),
                         hidden_size=32, intermediate_size=64, projection_dim=32,
                         num_hidden_layers=2, num_attention_heads=2,
                         max_position_embeddings=32, bos_token_id=0, eos_token_id=1,
                         pad_token_id=1),
        geometry_encoder_config=small, detr_encoder_config=small,
        detr_decoder_config=dict(small, num_queries=8),
        mask_decoder_config=dict(hidden_size=W, num_attention_heads=2))
    tracker = Sam3TrackerVideoConfig(
        vision_config=dict(model_type="sam3_vision_model", **vision),
        prompt_encoder_config=dict(hidden_size=128, image_size=size, patch_size=PATCH,
                                   mask_input_channels=8),
        mask_decoder_config=dict(hidden_size=128, mlp_dim=64, num_hidden_layers=2,
                                 num_attention_heads=4, iou_head_hidden_dim=32),
        image_size=size, memory_attention_hidden_size=128, memory_attention_num_layers=1,
        memory_attention_feed_forward_hidden_size=64,
        memory_attention_rope_feat_sizes=[g, g], memory_encoder_hidden_size=128,
        memory_encoder_output_channels=64, mask_downsampler_embed_dim=128,
        memory_fuser_embed_dim=128, memory_fuser_intermediate_dim=64)
    return Sam3VideoConfig(detector_config=detector, tracker_config=tracker,
                           low_res_mask_size=4 * g, hotstart_delay=0,
                           score_threshold_detection=0.3, new_det_thresh=0.3)


def save(folder: str, *, seed: int = 0, size: int = SIZE) -> str:
    """A random SAM 3 video model saved to ``folder`` with safetensors, its processor and
    tokenizer; returns the folder."""
    import torch
    from transformers import Sam3VideoModel

    torch.manual_seed(seed)
    model = Sam3VideoModel(config(size))
    with torch.no_grad():  # "the concept is present", "an object is present" (module docstring)
        model.detector_model.detr_decoder.presence_head.layer3.bias.fill_(10.0)
        model.tracker_model.mask_decoder.pred_obj_score_head.proj_out.bias.fill_(10.0)
    os.makedirs(folder, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    _processor(size).save_pretrained(folder)
    return folder
