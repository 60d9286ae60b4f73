"""Wan VACE in memory: putting a loaded pipeline (``load``) on the device with
offload / fp8 / VAE tiling (``place``), which model a config is, the reference configs, an
estimate of the GPU memory a job needs (``vram_estimate``) and ``describe``. Import these from
``folder`` (which re-exports them); torch and diffusers are imported inside functions.

Reference configs (checked against public copies, see benchmarks/bench_vace.py): the 1.3B
transformer is diffusers' ``scripts/convert_wan_to_diffusers.py`` "Wan-VACE-1.3B" entry and the
transformer/config.json mirrored from Wan-AI/Wan2.1-VACE-1.3B-diffusers (30 layers, 12 x 128,
ffn 8960, vace_layers 0, 2, ..., 28, vace_in_channels 96, text_dim 4096, freq_dim 256, patch
1x2x2, rms_norm_across_heads, eps 1e-6, rope_max_seq_len 1024); the 14B one is the mirrored
Wan-AI/Wan2.1-VACE-14B-diffusers config (40 layers, 40 x 128, ffn 13824, vace_layers 0, 5, ...,
35); the VAE is that repo's vae/config.json (base_dim 96, z_dim 16, dim_mult 1 2 4 4, 2 res
blocks, temporal downsampling in the last two stages).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ...errors import ModelError, SpecError

OFFLOADS = ("none", "model", "group")
GiB = 2**30

WAN21_VACE_1_3B: dict[str, Any] = dict(
    patch_size=(1, 2, 2), num_attention_heads=12, attention_head_dim=128, in_channels=16,
    out_channels=16, text_dim=4096, freq_dim=256, ffn_dim=8960, num_layers=30,
    cross_attn_norm=True, qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024,
    vace_layers=list(range(0, 30, 2)), vace_in_channels=96)
WAN21_VACE_14B: dict[str, Any] = dict(
    WAN21_VACE_1_3B, num_attention_heads=40, ffn_dim=13824, num_layers=40,
    vace_layers=list(range(0, 40, 5)))
WAN_VAE: dict[str, Any] = dict(base_dim=96, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2,
                               temperal_downsample=[False, True, True])
#: google/umt5-xxl encoder as the Wan repos hold it (5.7 B params)
UMT5_XXL: dict[str, Any] = dict(d_model=4096, num_layers=24, num_heads=64, d_kv=64, d_ff=10240,
                                vocab_size=256384)

#: (transformer width, layers, two experts) -> (name, size, native (width, height))
KNOWN = {
    (1536, 30, False): ("Wan2.1 VACE 1.3B", "1.3B", (832, 480)),
    (5120, 40, False): ("Wan2.1 VACE 14B", "14B", (1280, 720)),
    (5120, 40, True): ("Wan2.2 VACE-Fun A14B (two experts)", "A14B", (1280, 720)),
}

#: bytes per transformer weight by dtype ("fp8": float8 storage, bf16 compute)
WEIGHT_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2, "fp8": 1}
RESERVE = GiB  # CUDA context, cuBLAS workspaces, allocator fragmentation
TEXT_TOKENS = 512  # the pipeline's max_sequence_length
VAE_TILE = 256  # AutoencoderKLWan tile_sample_min_height/width when tiling is on
VAE_CHUNK = 4  # frames the Wan VAE decodes at once (one latent frame)


def identify(dim: int, layers: int, two_experts: bool) -> tuple[str, str, tuple[int, int]]:
    """(name, size, native (width, height)) of a VACE transformer of this width and depth."""
    if (dim, layers, two_experts) in KNOWN:
        return KNOWN[(dim, layers, two_experts)]
    two = ", two experts" if two_experts else ""
    return (f"Wan VACE (unrecognised size: {dim} wide, {layers} layers{two})", "custom",
            (832, 480) if dim <= 1536 else (1280, 720))


def one_line(exc: BaseException, longest: int = 240) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= longest else text[:longest] + "..."


def vram_estimate(info: Any, *, height: int, width: int, frames: int, dtype: str = "bf16",
                  offload: str = "none", vae_tiling: bool = True) -> int:
    """ESTIMATED peak GPU bytes of one job (not measured; expect +-25 %).

    Weights (parameter counts from the folder): transformer(s) in ``dtype`` ("fp8": float8
    storage), text encoder in bf16 (fp32 if ``dtype`` is fp32), VAE in fp32. Resident by
    offload: "none" all of them; "model" the largest (model + its activations) of text encoder,
    one transformer, VAE; "group" the VAE plus three transformer blocks (current, prefetched,
    embeddings) or the text encoder's embedding plus three of its blocks.
    Transformer activations, per call (classifier-free guidance runs the two calls one after
    the other, batch 1): tokens = (latent frames + 1 reference) x (h/16) x (w/16), times
    (dim x (VACE blocks + 10) + 2 x ffn_dim) x 2 bytes: hidden and control states, the VACE
    hints all kept for the whole forward, q/k/v/out and fp32 norm copies, the FFN; SDPA
    (flash / memory-efficient kernels) keeps no tokens x tokens matrix.
    VAE: 8 full-resolution feature maps of base_dim channels x 4 frames per tile (256 x 256
    when tiled) in fp32, plus the input, control and decoded videos in fp32.
    Plus ``RESERVE`` (1 GiB)."""
    if offload not in OFFLOADS:
        raise ValueError(f"offload {offload!r}: use one of {', '.join(OFFLOADS)}")
    if dtype not in WEIGHT_BYTES:
        raise ValueError(f"dtype {dtype!r}: use one of {', '.join(WEIGHT_BYTES)}")
    t, parts = info.transformer, info.parts
    act = 4 if dtype == "fp32" else 2
    experts = [p for n, p in parts.items() if n.startswith("transformer")]
    tr_w = max(p.parameters for p in experts) * WEIGHT_BYTES[dtype]
    te_w = parts["text_encoder"].parameters * act
    vae_w = parts["vae"].parameters * 4
    per = info.vae_scale_spatial * info.patch_size[1], info.vae_scale_spatial * info.patch_size[2]
    tokens = (info.latent_frames(frames) + 1) * (height // per[0]) * (width // per[1])
    hints = len(t["vace_layers"])
    tr_act = tokens * act * (t["dim"] * (hints + 10) + 2 * t["ffn_dim"])
    te_act = TEXT_TOKENS * max(info.text_encoder["d_model"], 1) * 4 * 16
    px = min(height, VAE_TILE) * min(width, VAE_TILE) if vae_tiling else height * width
    vae_act = 8 * info.vae_base_dim * VAE_CHUNK * px * 4 + 3 * frames * 3 * height * width * 4
    if offload == "none":
        peak = te_w + tr_w * len(experts) + vae_w + max(tr_act, vae_act, te_act)
    elif offload == "model":
        peak = max(te_w + te_act, tr_w + tr_act, vae_w + vae_act)
    else:
        tr_res = 3 * tr_w // (t["num_layers"] + hints)
        emb = info.text_encoder["vocab_size"] * info.text_encoder["d_model"] * act
        te_res = emb + 3 * max(te_w - emb, 0) // max(info.text_encoder["num_layers"], 1)
        peak = vae_w + max(te_res + te_act, tr_res + tr_act, vae_act)
    return int(peak + RESERVE)


def vram_table(info: Any, frames: int = 81) -> list[str]:
    """Lines of estimated GPU memory at 480p and 720p for each offload mode, bf16 and fp8."""
    sizes = ((832, 480), (1280, 720))
    cols = [(w, h, d) for d in ("bf16", "fp8") for w, h in sizes]
    head = "".join(f"{f'{w}x{h} {d}':>16}" for w, h, d in cols)
    lines = [f"  GPU memory, ESTIMATED for {frames} frames + 1 reference, VAE tiled, "
             f"+{RESERVE / GiB:.0f} GiB reserve (offload: none | model | group):",
             f"    {'offload':<8}{head}"]
    for off in OFFLOADS:
        row = "".join(f"{vram_estimate(info, height=h, width=w, frames=frames, dtype=d, offload=off) / GiB:>12.1f} GiB"  # noqa: E501
                      for w, h, d in cols)
        lines.append(f"    {off:<8}{row}")
    return lines


def describe(info: Any) -> list[str]:
    """Lines for ``actanywhere model info``: model, parts, frame rules and a VRAM table."""
    t = info.transformer
    lines = [info.path,
             f"  {info.kind}: {info.name}, native {info.native_width}x{info.native_height}, "
             f"{info.parameters / 1e9:.2f} B params, {info.bytes / 2**30:.2f} GiB on disk",
             f"  transformer {t['dim']} wide ({t['heads']} heads x {t['head_dim']}), "
             f"{t['num_layers']} layers, {len(t['vace_layers'])} VACE blocks, patch "
             f"{'x'.join(map(str, info.patch_size))}"
             + (f"; two experts, boundary_ratio {info.boundary_ratio}" if info.two_experts else ""),
             f"  scheduler {info.scheduler}, flow_shift {info.flow_shift}; VAE /"
             f"{info.vae_scale_spatial} space, /{info.vae_scale_temporal} time: height and width "
             f"multiples of {info.frame_multiple}, frames 4k+1 (81 -> {info.latent_frames(81)} "
             "latent frames)"]
    for p in info.parts.values():
        if p.format:
            lines.append(f"  {p.name:<14} {p.class_name:<27} {p.parameters / 1e6:10.1f} M params "
                         f"{','.join(p.dtypes):<9} {p.bytes / 2**20:10.1f} MiB  {len(p.files)} "
                         f"file{'s' if len(p.files) > 1 else ''} ({p.format})")
        else:
            lines.append(f"  {p.name:<14} {p.class_name}")
    return lines + vram_table(info)


# ----------------------------------------------------------------------------- load, place
@contextmanager
def offline() -> Iterator[None]:
    """HF_HUB_OFFLINE on (env and the flag huggingface_hub read at import) for the block."""
    import huggingface_hub.constants as hub

    old_env, old_flag = os.environ.get("HF_HUB_OFFLINE"), hub.HF_HUB_OFFLINE
    os.environ["HF_HUB_OFFLINE"], hub.HF_HUB_OFFLINE = "1", True
    try:
        yield
    finally:
        hub.HF_HUB_OFFLINE = old_flag
        if old_env is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = old_env


def _torch_dtype(dtype: Any):
    import torch

    if isinstance(dtype, torch.dtype):
        return dtype
    names = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16,
             "float16": torch.float16, "fp32": torch.float32, "float32": torch.float32}
    if str(dtype) not in names:
        raise SpecError(f"dtype {dtype!r}: use bf16, fp16 or fp32")
    return names[str(dtype)]


def _main_dtype(module) -> Any:
    count: dict[Any, int] = {}
    for p in module.parameters():
        count[p.dtype] = count.get(p.dtype, 0) + p.numel()
    return max(count, key=lambda d: count[d])


def place(pipe, *, device: Any, offload: str = "none", fp8: bool = False,
          vae_tiling: bool = True) -> None:
    """Put a loaded pipeline on ``device``: offload "none" (all there), "model" (one model at
    a time, diffusers model CPU offload) or "group" (transformer and text-encoder blocks
    streamed in one at a time); ``fp8`` stores the transformer weights as float8_e4m3fn and
    computes in their loaded dtype; ``vae_tiling`` decodes in tiles. Offload is a no-op on
    the CPU."""
    import torch

    if offload not in OFFLOADS:
        raise SpecError(f"offload {offload!r}: use one of {', '.join(OFFLOADS)}")
    dev = torch.device(device)
    experts = [t for t in (pipe.transformer, getattr(pipe, "transformer_2", None)) if t is not None]
    if fp8:
        for t in experts:
            t.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn,
                                       compute_dtype=_main_dtype(t))
    if vae_tiling:
        pipe.vae.enable_tiling()
    if dev.type == "cpu" or offload == "none":
        pipe.to(dev)
    else:
        _offload(pipe, dev, offload)


def _offload(pipe, dev, offload: str) -> None:
    """Offload hooks onto ``dev`` (tests call this with the CPU to run the real hooks)."""
    import torch
    from diffusers.hooks import apply_group_offloading

    if offload == "model":
        pipe.enable_model_cpu_offload(device=dev)
        return
    cpu, stream = torch.device("cpu"), dev.type == "cuda"
    experts = [t for t in (pipe.transformer, getattr(pipe, "transformer_2", None)) if t is not None]
    big = sum(p.numel() * p.element_size() for t in experts for p in t.parameters()) > 24 * 2**30
    for t in experts:  # pinned copies for stream prefetch unless that would pin > 24 GiB
        t.enable_group_offload(onload_device=dev, offload_device=cpu, offload_type="block_level",
                               num_blocks_per_group=1, use_stream=stream, low_cpu_mem_usage=big)
    if pipe.text_encoder is not None:  # its blocks live in .encoder.block
        apply_group_offloading(pipe.text_encoder, onload_device=dev, offload_device=cpu,
                               offload_type="block_level", num_blocks_per_group=1,
                               block_modules=["encoder"], use_stream=stream,
                               low_cpu_mem_usage=True)
    pipe.vae.to(dev)


def expected_tensors(folder: str, library: str, class_name: str,
                     config: dict) -> tuple[dict, set, list]:
    """(tensor shapes, optional names, ignorable-name patterns) of the part's module built
    from its config on the meta device (free: no memory, no weights)."""
    from accelerate import init_empty_weights

    try:
        with offline(), init_empty_weights():
            if library == "diffusers":
                import diffusers

                cls = getattr(diffusers, class_name)
                module = cls.from_config({k: v for k, v in config.items()
                                          if not k.startswith("_")})
            else:
                import transformers

                cls = getattr(transformers, class_name)
                module = cls(transformers.AutoConfig.from_pretrained(folder,
                                                                     local_files_only=True))
    except Exception as exc:  # a config that cannot build its class
        raise ModelError(f"{folder}/config.json: not a valid {class_name} config "
                         f"({one_line(exc)}); re-download it") from exc
    shapes = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    tied = getattr(module, "all_tied_weights_keys", None) or getattr(module, "_tied_weights_keys",
                                                                     None) or {}
    optional = {k for k in shapes if any(re.fullmatch(t, k) for t in tied)}
    for pattern in getattr(module, "_keys_to_ignore_on_load_missing", None) or []:
        optional |= {k for k in shapes if re.search(pattern, k)}
    ignored = [re.compile(p) for p in
               getattr(module, "_keys_to_ignore_on_load_unexpected", None) or []]
    return shapes, optional, ignored
