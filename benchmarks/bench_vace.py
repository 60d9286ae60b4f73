"""Wan2.1 VACE 1.3B at its real size, random weights: seconds per denoising step, VAE encode and
decode seconds, peak memory; the baseline measured in the same run.

    .venv/bin/python benchmarks/bench_vace.py         # CPU: 5 x 64 x 112, bf16 baseline vs fp32
    .venv/bin/python benchmarks/bench_vace.py --device cuda --frames 81 --height 480 --width 832 \\
        [--offload none|model|group] [--fp8] [--compile]

What runs: the real diffusers WanVACETransformer3DModel built from the Wan2.1-VACE-1.3B config
(actanywhere.model.vace.memory.WAN21_VACE_1_3B: 30 layers, 12 x 128 = 1536 wide, ffn 8960,
VACE blocks at layers 0, 2, ..., 28, vace_in_channels 96, text_dim 4096, freq_dim 256, patch
1x2x2, rms_norm_across_heads, eps 1e-6, rope_max_seq_len 1024; checked against diffusers'
scripts/convert_wan_to_diffusers.py "Wan-VACE-1.3B" entry and a public mirror of the repo's
transformer/config.json) and the real AutoencoderKLWan (base_dim 96, z_dim 16, dim_mult 1 2 4 4,
2 res blocks, temporal downsampling [False, True, True]; the mirrored Wan2.1-VACE vae/config.json),
random weights (slices of one seeded N(0, 0.02) draw), placed by
actanywhere.model.vace.folder.place (the engine's own offload / fp8 / VAE-tiling code),
parameters kept in float32 where diffusers keeps them.
NOT run: the 5.7 B umT5-xxl text encoder (once per job, not per step); a random (1, 512, 4096)
embedding stands in for the prompt and for the negative prompt.

One denoising step = two transformer calls, conditional then unconditional, batch 1, as
WanVACEPipeline runs classifier-free guidance, on (latent frames + 1 reference frame) latents
with the 96-channel VACE control input. VAE: one encode of the clip and one decode of its latents.
Peak memory: CUDA max_memory_allocated per phase; on the CPU the process RSS sampled every 10 ms.

Baseline, same run, same size: bf16, offload none, no fp8, no compile. Measured: the flags given
(on the CPU with none given: fp32). Ratio = measured step seconds / baseline step seconds.
CPU defaults take about 4 minutes on 2 cores (a bf16 step is slow on CPUs without bf16 units).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import threading
import time
from contextlib import contextmanager

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "core"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from actanywhere.model.vace import folder as vace_folder  # noqa: E402
from actanywhere.model.vace.memory import WAN21_VACE_1_3B, WAN_VAE  # noqa: E402

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
TEXT = (1, 512, 4096)  # umT5-xxl output for one prompt padded to max_sequence_length


def build_transformer(dtype: torch.dtype, seed: int = 0, config: dict | None = None):
    """The real-size VACE transformer with random weights, made directly in ``dtype`` (the
    modules diffusers keeps in float32 stay float32): no float32 copy of the whole model."""
    from accelerate import init_empty_weights
    from accelerate.utils import set_module_tensor_to_device
    from diffusers import WanVACETransformer3DModel

    with init_empty_weights():
        model = WanVACETransformer3DModel(**(config or WAN21_VACE_1_3B))
    keep = model._keep_in_fp32_modules or []
    params = list(model.named_parameters())
    # one seeded N(0, 0.02) pool, each matrix a slice of it at its own offset: drawing 2 B
    # normals on 2 cores takes a minute, copying slices a few seconds; speed is unaffected
    big = max(p.numel() for _, p in params)
    gen = torch.Generator().manual_seed(seed)
    base = torch.randn(big + 2**20, generator=gen) * 0.02
    pool = {dt: base.to(dt) for dt in (dtype, torch.float32)}
    for i, (name, p) in enumerate(params):
        dt = torch.float32 if any(k in name.split(".") for k in keep) else dtype
        if p.ndim >= 2:  # matrices, convolutions, the modulation table
            start = (i * 7919) % (2**20)
            value = pool[dt][start:start + p.numel()].view(p.shape).clone()
        else:  # 1-D: norm weights 1, biases 0
            value = (torch.ones if name.endswith("weight") else torch.zeros)(p.shape, dtype=dt)
        set_module_tensor_to_device(model, name, "cpu", value=value, dtype=dt)
    return model.eval()


def build_vae(seed: int = 0):
    from diffusers import AutoencoderKLWan

    torch.manual_seed(seed)
    return AutoencoderKLWan(**WAN_VAE).eval()


class Peak:
    """Peak memory over a block: CUDA allocated bytes, or the CPU process RSS (sampled)."""

    def __init__(self, dev: torch.device):
        self.dev, self.peak, self._stop = dev, 0, threading.Event()

    def __enter__(self):
        if self.dev.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            return self
        import psutil

        proc = psutil.Process()

        def sample():
            while not self._stop.is_set():
                self.peak = max(self.peak, proc.memory_info().rss)
                time.sleep(0.01)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.dev.type == "cuda":
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated()
        else:
            self._stop.set()
            self._thread.join()


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "CPU"


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def call_inputs(frames: int, height: int, width: int, refs: int, dtype, dev,
                text_len: int = TEXT[1]):
    t = (frames - 1) // 4 + 1
    g = torch.Generator().manual_seed(1)
    latents = torch.randn(1, 16, t + refs, height // 8, width // 8, generator=g)
    control = torch.randn(1, WAN21_VACE_1_3B["vace_in_channels"], t + refs, height // 8,
                          width // 8, generator=g)
    text = torch.randn(TEXT[0], text_len, TEXT[2], generator=g) * 0.1
    return [x.to(dev, dtype) for x in (latents, control, text, torch.zeros_like(text))]


def step(model, inputs, timestep: float, guidance: float = 5.0) -> torch.Tensor:
    """One denoising step's model work: conditional and unconditional calls, combined."""
    latents, control, text, negative = inputs
    ts = torch.tensor([timestep], device=latents.device)
    cond = model(hidden_states=latents, timestep=ts, encoder_hidden_states=text,
                 control_hidden_states=control, return_dict=False)[0]
    uncond = model(hidden_states=latents, timestep=ts, encoder_hidden_states=negative,
                   control_hidden_states=control, return_dict=False)[0]
    return uncond + guidance * (cond - uncond)


@contextmanager
def quiet():
    import diffusers

    level = diffusers.utils.logging.get_verbosity()
    diffusers.utils.logging.set_verbosity_error()
    try:
        yield
    finally:
        diffusers.utils.logging.set_verbosity(level)


def measure(label: str, ns, dev, dtype: str, offload: str, fp8: bool, compile_: bool, vae):
    """(step seconds, peak bytes) of one setting; the transformer is built, placed, freed."""
    from diffusers import UniPCMultistepScheduler, WanVACEPipeline

    t0 = time.perf_counter()
    with quiet():
        model = build_transformer(DTYPES[dtype], seed=0)
    built = time.perf_counter() - t0
    pipe = WanVACEPipeline(tokenizer=None, text_encoder=None, vae=vae, transformer=model,
                           scheduler=UniPCMultistepScheduler(prediction_type="flow_prediction",
                                                             use_flow_sigmas=True,
                                                             flow_shift=3.0))
    with quiet():
        vace_folder.place(pipe, device=dev, offload=offload, fp8=fp8,
                          vae_tiling=not ns.no_vae_tiling)
    if compile_:
        pipe.transformer.compile_repeated_blocks(fullgraph=True)
    inputs = call_inputs(ns.frames, ns.height, ns.width, ns.refs, DTYPES[dtype], dev)
    times = []
    with torch.inference_mode(), Peak(dev) as peak:
        for i in range(ns.warmup + ns.steps):
            sync(dev)
            t = time.perf_counter()
            out = step(pipe.transformer, inputs, 999.0 - 50 * i)
            sync(dev)
            if i >= ns.warmup:
                times.append(time.perf_counter() - t)
    assert torch.isfinite(out.float()).all(), f"{label}: non-finite output"
    sec = sorted(times)[len(times) // 2]
    print(f"  {label:<34} {sec:>9.2f} s  {peak.peak / 2**20:>10.0f} MiB   (built in {built:.0f} s)",
          flush=True)
    pipe.transformer = None
    del pipe, model, out
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    return sec, peak.peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    ap.add_argument("--frames", type=int, default=None, help="4k+1 (CPU 5, CUDA 81)")
    ap.add_argument("--height", type=int, default=None, help="multiple of 16 (CPU 64, CUDA 480)")
    ap.add_argument("--width", type=int, default=None, help="multiple of 16 (CPU 112, CUDA 832)")
    ap.add_argument("--refs", type=int, default=1, help="reference latent frames (the plate's "
                    "background still)")
    ap.add_argument("--dtype", choices=list(DTYPES), default=None,
                    help="measured weights dtype (CPU default fp32, CUDA bf16)")
    ap.add_argument("--offload", choices=["none", "model", "group"], default="none")
    ap.add_argument("--fp8", action="store_true", help="transformer weights stored as float8")
    ap.add_argument("--compile", action="store_true", help="compile the repeated blocks")
    ap.add_argument("--no-vae-tiling", action="store_true")
    ap.add_argument("--steps", type=int, default=None, help="timed steps (CPU 1, CUDA 3)")
    ap.add_argument("--warmup", type=int, default=None,
                    help="untimed steps first (CPU 0: a bf16 step can take minutes; CUDA 1)")
    ns = ap.parse_args()
    cuda = ns.device == "cuda" or (ns.device == "auto" and torch.cuda.is_available())
    dev = torch.device("cuda" if cuda else "cpu")
    ns.frames = ns.frames or (81 if cuda else 5)
    ns.height, ns.width = ns.height or (480 if cuda else 64), ns.width or (832 if cuda else 112)
    ns.steps = ns.steps or (3 if cuda else 1)
    ns.warmup = (1 if cuda else 0) if ns.warmup is None else ns.warmup
    plain = not (ns.offload != "none" or ns.fp8 or ns.compile or ns.dtype not in (None, "bf16"))
    dtype = ns.dtype or ("bf16" if cuda or not plain else "fp32")
    if (ns.frames - 1) % 4 or ns.height % 16 or ns.width % 16:
        ap.error("frames must be 4k+1 and height/width multiples of 16")
    torch.set_grad_enabled(False)
    import diffusers

    name = torch.cuda.get_device_name(0) if cuda else f"{cpu_name()}, " \
        f"{torch.get_num_threads()} threads"
    lat = (ns.frames - 1) // 4 + 1
    tokens = (lat + ns.refs) * (ns.height // 16) * (ns.width // 16)
    print(f"bench_vace: Wan2.1 VACE 1.3B transformer (real size, random weights) + Wan VAE; "
          f"umT5-xxl not run (random {TEXT} embedding)")
    print(f"device {dev} ({name}), torch {torch.__version__}, diffusers {diffusers.__version__}")
    print(f"clip {ns.frames} frames x {ns.height} x {ns.width}: {lat} + {ns.refs} latent frames, "
          f"{tokens} tokens per transformer call, 2 calls per step (CFG), median of {ns.steps} "
          f"step(s) after {ns.warmup} warm-up")
    vae = build_vae()
    n_vae = sum(p.numel() for p in vae.parameters())
    print(f"  {'setting':<34} {'s/step':>11}  {'peak GPU alloc' if cuda else 'peak RSS':>14}")
    base_s, _ = measure("baseline bf16, offload none", ns, dev, "bf16", "none", False, False, vae)
    label = f"measured {dtype}, offload {ns.offload}" + (", fp8" if ns.fp8 else "") + \
        (", compile" if ns.compile else "")
    meas_s, _ = measure(label, ns, dev, dtype, ns.offload, ns.fp8, ns.compile, vae)
    print(f"ratio measured / baseline step time: {meas_s / base_s:.2f}x (the measured setting is "
          f"{'slower' if meas_s > base_s else 'faster'} than bf16 without offload)")
    with torch.inference_mode():
        vae.to(dev)
        if not ns.no_vae_tiling:
            vae.enable_tiling()
        video = torch.rand(1, 3, ns.frames, ns.height, ns.width, device=dev) * 2 - 1
        with Peak(dev) as pe:
            sync(dev)
            t = time.perf_counter()
            latents = vae.encode(video).latent_dist.mode()
            sync(dev)
            enc = time.perf_counter() - t
        with Peak(dev) as pd:
            t = time.perf_counter()
            frames = vae.decode(latents).sample
            sync(dev)
            dec = time.perf_counter() - t
    assert frames.shape[2] == ns.frames, frames.shape
    what = "peak GPU alloc" if cuda else "peak process RSS"
    print(f"VAE fp32 ({n_vae / 1e6:.1f} M params, tiling {'off' if ns.no_vae_tiling else 'on'}): "
          f"encode {enc:.2f} s ({what} {pe.peak / 2**20:.0f} MiB), decode {dec:.2f} s "
          f"({what} {pd.peak / 2**20:.0f} MiB), latents {tuple(latents.shape)}")


if __name__ == "__main__":
    main()
