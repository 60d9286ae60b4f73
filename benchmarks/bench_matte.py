"""Matte speed at 2K: SAM tracking (vit_b-sized random weights), a re-click on a cached frame
vs a fresh one, and the model-free sources (flow-only tracking, GrabCut, keyer) for context.

    .venv/bin/python benchmarks/bench_matte.py                    # CPU, 2048x1080, 4 frames
    .venv/bin/python benchmarks/bench_matte.py --device cuda --frames 24

SAM weights are random (no checkpoint can be downloaded here): the image encoder and mask
decoder do the same work as with trained weights; the masks are meaningless, so tracking runs
with min_agreement 0 (every SAM answer accepted). Target (issue #3): a re-click on a cached
frame at least 10x faster than on a fresh frame.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "core"))

from actanywhere.cli import demo_shot as demo  # noqa: E402
from actanywhere.matte import keyer, sam, track  # noqa: E402
from actanywhere.matte.grabcut import GrabCut  # noqa: E402
from actanywhere.media import imageio  # noqa: E402
from actanywhere.media.color import ColorContext  # noqa: E402
from actanywhere.spec import KeyerSettings, KeyFrame, TrackSettings  # noqa: E402

VIT_B = sam.Arch(embed_dim=768, depth=12, num_heads=12, global_attn=(2, 5, 8, 11),
                 window_size=14, img_size=1024, patch_size=16, mlp_ratio=4.0, out_chans=256,
                 mask_in_chans=16, decoder_depth=2, decoder_mlp=2048, multimask=3, iou_depth=3,
                 iou_hidden=256)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--width", type=int, default=2048)
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--clicks", type=int, default=5, help="re-clicks timed")
    ns = ap.parse_args()
    import torch

    tmp = tempfile.mkdtemp(prefix="aa-bench-matte-")
    pattern = os.path.join(tmp, "plate", "plate.####.exr")
    demo.make_plate(pattern, nframes=ns.frames, width=ns.width, height=ns.height)
    cc = ColorContext()
    plates = [imageio.read(pattern.replace("####", f"{1001 + i:04d}")) for i in range(ns.frames)]
    linear = [p.channels(["R", "G", "B"]) for p in plates]
    truth = [p.channel("A") for p in plates]
    imgs = [(cc.to_model(x) * 255 + 0.5).astype(np.uint8) for x in linear]
    ys, xs = np.nonzero(truth[0] > 0.5)
    box = (float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()))
    n = ns.frames
    print(f"shot: {n} frames {ns.width}x{ns.height}, device {ns.device}, "
          f"torch threads {torch.get_num_threads()}")

    torch.manual_seed(0)
    ckpt = os.path.join(tmp, "sam_vit_b_random.pth")
    torch.save(sam.build(VIT_B).state_dict(), ckpt)
    t = time.perf_counter()
    model = sam.load(ckpt, "vit_b", ns.device)
    print(f"load vit_b-sized SAM: {time.perf_counter() - t:.2f} s")

    def tracked(segmenter, settings):
        t = time.perf_counter()
        track.propagate(n, {0: KeyFrame(frame=0, boxes=[box])}, lambda i: imgs[i], segmenter,
                        settings, key_matte=lambda i, k: truth[i])
        return time.perf_counter() - t

    seg = sam.SamSegmenter(model, lambda i: imgs[i], sam.EmbeddingCache(None), batch=4, count=n)
    s_sam = tracked(seg, TrackSettings(min_agreement=0.0))
    print(f"SAM tracking: {n - 1} tracked frames in {s_sam:.2f} s = {(n - 1) / s_sam:.2f} fps "
          f"({seg.encoded} encodings)")
    s_flow = tracked(None, TrackSettings(mode="flow"))
    print(f"flow-only tracking: {(n - 1) / s_flow:.2f} fps")
    s_gc = tracked(GrabCut(lambda i: imgs[i]), TrackSettings())
    print(f"GrabCut tracking: {(n - 1) / s_gc:.2f} fps")
    t = time.perf_counter()
    for x in linear:
        keyer.key(x, KeyerSettings(screen_color=(0.05, 0.45, 0.08)))
    print(f"keyer: {n / (time.perf_counter() - t):.2f} fps")

    # re-click: a new prompt on a frame whose embedding is cached vs a fresh frame
    cache = sam.EmbeddingCache(None)
    warm = sam.SamSegmenter(model, lambda i: imgs[i], cache, count=n)
    warm.key(0, KeyFrame(frame=0, boxes=[box]))
    cached, fresh = [], []
    for c in range(ns.clicks):
        click = KeyFrame(frame=0, boxes=[box], points=[(box[0] + 10 * c + 20, box[1] + 100, 1)])
        t = time.perf_counter()
        warm.key(0, click)
        cached.append(time.perf_counter() - t)
        cold = sam.SamSegmenter(model, lambda i: imgs[i], sam.EmbeddingCache(None), count=n)
        t = time.perf_counter()
        cold.key(0, click)
        fresh.append(time.perf_counter() - t)
    c_ms, f_ms = 1000 * float(np.median(cached)), 1000 * float(np.median(fresh))
    print(f"re-click on a cached frame: {c_ms:.1f} ms; on a fresh frame: {f_ms:.1f} ms; "
          f"{f_ms / c_ms:.1f}x faster (target >= 10x: {'met' if f_ms / c_ms >= 10 else 'MISSED'})")


if __name__ == "__main__":
    main()
