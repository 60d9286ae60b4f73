"""ActAnywherePipeline against the stock diffusers AnimateDiffPipeline, same UNet size and steps.

    .venv/bin/python benchmarks/bench_model.py                 # full size on CUDA, tiny on CPU
    .venv/bin/python benchmarks/bench_model.py --size full --device cpu --steps 2   # slow

Random weights from the stored architecture configs (no download). For each step count it
times one 16-frame clip end to end (condition encoding, foreground VAE encode, denoising with
batched classifier-free guidance, VAE decode), after one warm-up call; the baseline is the stock
AnimateDiffPipeline with a 4-channel UNetMotionModel of the same size, the same VAE, steps,
frames, guidance and precision, fed precomputed prompt embeddings. On CUDA it also reports the
peak GPU memory of a clip at each --mem-res. Prints a table and the ratio stock / ours.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch
from diffusers import AnimateDiffPipeline, DDIMScheduler, UNetMotionModel

from actanywhere.model import components, device
from actanywhere.model.modelspace import segmentation
from actanywhere.model.pipeline import ActAnywherePipeline


def clip_inputs(frames: int, res: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    matte = np.zeros((frames, res, res), np.float32)
    for t in range(frames):
        x = res // 8 + t * res // (2 * frames)
        matte[t, res // 4 : 3 * res // 4, x : x + res // 4] = 1.0
    subject = rng.random((frames, res, res, 3), np.float32) * matte[..., None]
    return segmentation(subject, matte), 1.0 - matte, rng.random((res, res, 3), np.float32)


def stock_pipeline(parts: components.Components, arch: dict, dev, dtype) -> AnimateDiffPipeline:
    cfg = dict(arch["unet"], in_channels=4)
    unet = UNetMotionModel.from_config(cfg).to(dev, dtype).eval()
    pipe = AnimateDiffPipeline(vae=parts.vae, text_encoder=None, tokenizer=None, unet=unet,
                               motion_adapter=None,
                               scheduler=DDIMScheduler.from_config(parts.scheduler_config))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def sync(dev) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def time_ours(pipe, inputs, steps: int, frames: int, dev) -> float:
    fg, mask, cond = inputs
    sync(dev)
    t = time.perf_counter()
    pipe(fg, mask, cond, num_inference_steps=steps, guidance_scale=4.0, seed=0, window=frames,
         overlap=0, decode_chunk=frames)
    sync(dev)
    return time.perf_counter() - t


def time_stock(pipe, tokens, steps: int, frames: int, res: int, dev) -> float:
    sync(dev)
    t = time.perf_counter()
    pipe(prompt_embeds=tokens, negative_prompt_embeds=torch.zeros_like(tokens),
         num_frames=frames, height=res, width=res, num_inference_steps=steps, guidance_scale=4.0,
         generator=torch.Generator("cpu").manual_seed(0), output_type="np",
         decode_chunk_size=frames)
    sync(dev)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=components.ARCHITECTURES, default=None)
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--res", type=int, default=256)
    ap.add_argument("--steps", type=int, nargs="+", default=[25, 50])
    ap.add_argument("--mem-res", type=int, nargs="*", default=[256, 512])
    ap.add_argument("--repeat", type=int, default=1, help="best of N timed calls")
    ap.add_argument("--compile", action="store_true", help="torch.compile both UNets")
    ns = ap.parse_args()
    dev, dtype, _ = device.choose(ns.device, "auto")
    size = ns.size or ("full" if dev.type == "cuda" else "tiny")
    torch.set_grad_enabled(False)
    arch = components.architecture(size)
    parts = components.build_random(arch, seed=0)
    for m in parts.modules().values():
        m.to(dev, dtype)
    ours = ActAnywherePipeline.from_components(parts)
    stock = stock_pipeline(parts, arch, dev, dtype)
    if ns.compile:
        ours.unet = torch.compile(ours.unet)
        stock.unet = torch.compile(stock.unet)
    inputs = clip_inputs(ns.frames, ns.res)
    tokens = ours.encode_condition(inputs[2])
    name = torch.cuda.get_device_name(0) if dev.type == "cuda" else platform.processor() or "CPU"
    print(f"device {dev} ({name}), {str(dtype).removeprefix('torch.')}, architecture {size}, "
          f"{ns.frames} x {ns.res} x {ns.res}, torch {torch.__version__}")
    time_ours(ours, inputs, 2, ns.frames, dev)  # warm-up (kernels, allocator, compile)
    time_stock(stock, tokens, 2, ns.frames, ns.res, dev)
    print(f"{'steps':>6} {'ours s':>9} {'stock s':>9} {'stock/ours':>11}")
    for steps in ns.steps:
        a = min(time_ours(ours, inputs, steps, ns.frames, dev) for _ in range(ns.repeat))
        b = min(time_stock(stock, tokens, steps, ns.frames, ns.res, dev)
                for _ in range(ns.repeat))
        print(f"{steps:>6} {a:>9.3f} {b:>9.3f} {b / a:>10.2f}x")
    if dev.type == "cuda":
        for res in ns.mem_res:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            time_ours(ours, clip_inputs(ns.frames, res), 2, ns.frames, dev)
            peak = torch.cuda.max_memory_allocated() / 2**30
            print(f"peak GPU memory {ns.frames} x {res} x {res}: {peak:.2f} GiB")


if __name__ == "__main__":
    main()
