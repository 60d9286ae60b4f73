"""A tiny Wan VACE model built offline, saved as the diffusers folder the hub repos hold.

Real classes only (``WanVACETransformer3DModel``, ``AutoencoderKLWan``, ``UMT5EncoderModel``,
``UniPCMultistepScheduler`` with flow sigmas as Wan2.1 ships it, a ``T5TokenizerFast`` made
here with the ``tokenizers`` library), random weights from a fixed seed: nothing downloaded.
``build(folder)`` writes what ``WanVACEPipeline.save_pretrained`` writes; ``two_experts``
adds ``transformer_2`` and ``boundary_ratio`` (the Wan2.2 VACE-Fun layout).
"""

from __future__ import annotations

import os

#: words the tiny tokenizer knows (anything else is <unk>)
WORDS = ("a", "the", "street", "forest", "beach", "city", "night", "day", "sunset", "rain",
         "snow", "room", "sky", "road", "background", "scene", "natural", "light",
         "blurry", "distorted", "low", "quality", "static", "photo", "camera", "moving")

TRANSFORMER = dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12,
                   in_channels=16, out_channels=16, text_dim=32, freq_dim=32, ffn_dim=32,
                   num_layers=3, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
                   rope_max_seq_len=32, vace_layers=[0, 2], vace_in_channels=96)
VAE = dict(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
           temperal_downsample=[False, True, True])


def tokenizer():
    """A T5-style Unigram tokenizer (<pad> 0, </s> 1, <unk> 2; words, else letters)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import T5TokenizerFast

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    pieces += [("\u2581" + w, -1.0 - i / 100) for i, w in enumerate(WORDS)]
    pieces += [(c, -5.0) for c in "abcdefghijklmnopqrstuvwxyz\u2581"]
    tok = Tokenizer(models.Unigram(pieces, unk_id=2, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>",
                                                      special_tokens=[("</s>", 1)])
    return T5TokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>",
                           unk_token="<unk>", extra_ids=0)


def build(folder: str, *, two_experts: bool = False, seed: int = 0) -> str:
    """Save a tiny VACE pipeline to ``folder`` (safetensors); returns the folder."""
    import torch
    from diffusers import (
        AutoencoderKLWan,
        UniPCMultistepScheduler,
        WanVACEPipeline,
        WanVACETransformer3DModel,
    )
    from transformers import UMT5Config, UMT5EncoderModel

    torch.manual_seed(seed)
    vae = AutoencoderKLWan(**VAE)
    transformer = WanVACETransformer3DModel(**TRANSFORMER)
    transformer_2 = WanVACETransformer3DModel(**TRANSFORMER) if two_experts else None
    tok = tokenizer()
    text_encoder = UMT5EncoderModel(UMT5Config(
        vocab_size=len(tok), d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
        relative_attention_num_buckets=8, relative_attention_max_distance=16,
        feed_forward_proj="gated-gelu", pad_token_id=0, eos_token_id=1,
        decoder_start_token_id=0))
    scheduler = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True,
                                        num_train_timesteps=1000, flow_shift=3.0)
    pipe = WanVACEPipeline(tokenizer=tok, text_encoder=text_encoder, vae=vae,
                           scheduler=scheduler, transformer=transformer,
                           transformer_2=transformer_2,
                           boundary_ratio=0.875 if two_experts else None)
    os.makedirs(folder, exist_ok=True)
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder
