"""sam2 matte tracking at 2K: a real-size SAM 2.1 hiera-tiny and a real-size EdgeTAM (random
weights) tracked through a shot with the model's memory, against the v1 ``sam`` path
(vit_b-sized random weights, flow + re-segmentation per frame) measured in the same run, and
the process's memory over a long shot.

    .venv/bin/python benchmarks/bench_sam2.py                      # CPU: 20 frames, v1 on 2
    .venv/bin/python benchmarks/bench_sam2.py --frames 200 --v1-frames 0 --models sam2 \
        --matte-mb 0                                               # memory over a long shot
    .venv/bin/python benchmarks/bench_sam2.py --device cuda --frames 200

No weights can be downloaded here: both models are built from their configs with random
weights, which do the same work as trained ones (the masks are meaningless; v1 tracking runs
with min_agreement 0 as benchmarks/bench_matte.py does). The hiera-tiny config is written out
below: transformers' Sam2VideoConfig / Sam2VisionConfig / Sam2HieraDetConfig defaults, which
transformers documents as facebook/sam2.1-hiera-tiny; EdgeTAM is EdgeTamVideoConfig's defaults
with timm's RepViT-M1 (documented as yonigozlan/EdgeTAM-hf). The plate is the demo shot at 2048x1080
(``--unique`` frames rendered, then played back and forth, so a long shot costs no disk and no
memory of its own). Memory: the resident set after each frame, and the same less the mattes
the matte store holds in memory (float16 at 2K, 4.4 MB a frame) up to ``--matte-mb`` (the
matte stage's ``matte.memory_mb``; the rest go to a temporary file), as the matte stage does.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "core"))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
os.environ["HF_HUB_OFFLINE"] = "1"

from actanywhere.cli import demo_shot as demo  # noqa: E402
from actanywhere.matte import sam, store, track  # noqa: E402
from actanywhere.media import imageio  # noqa: E402
from actanywhere.media.color import ColorContext  # noqa: E402
from actanywhere.spec import KeyFrame, MatteSpec, SamSettings, TrackSettings  # noqa: E402

#: facebook/sam2.1-hiera-tiny as transformers documents it (its configuration defaults)
HIERA_TINY = dict(
    backbone=dict(hidden_size=96, num_attention_heads=1, num_channels=3, image_size=[1024, 1024],
                  patch_kernel_size=[7, 7], patch_stride=[4, 4], patch_padding=[3, 3],
                  query_stride=[2, 2], window_positional_embedding_background_size=[7, 7],
                  num_query_pool_stages=3, blocks_per_stage=[1, 2, 7, 2],
                  embed_dim_per_stage=[96, 192, 384, 768],
                  num_attention_heads_per_stage=[1, 2, 4, 8],
                  window_size_per_stage=[8, 4, 14, 7], global_attention_blocks=[5, 7, 9],
                  mlp_ratio=4.0),
    vision=dict(backbone_channel_list=[768, 384, 192, 96],
                backbone_feature_sizes=[[256, 256], [128, 128], [64, 64]], fpn_hidden_size=256,
                fpn_top_down_levels=[2, 3], num_feature_levels=3),
    prompt=dict(hidden_size=256, image_size=1024, patch_size=16, mask_input_channels=16,
                num_point_embeddings=4),
    decoder=dict(hidden_size=256, mlp_dim=2048, num_hidden_layers=2, num_attention_heads=8,
                 attention_downsample_rate=2, num_multimask_outputs=3, iou_head_depth=3,
                 iou_head_hidden_dim=256, dynamic_multimask_via_stability=True),
    video=dict(num_maskmem=7, image_size=1024, sigmoid_scale_for_mem_enc=20.0,
               sigmoid_bias_for_mem_enc=-10.0, max_object_pointers_in_encoder=16,
               max_cond_frame_num=-1, memory_attention_hidden_size=256,
               memory_attention_num_layers=4, memory_attention_num_attention_heads=1,
               memory_attention_feed_forward_hidden_size=2048,
               memory_attention_rope_feat_sizes=[64, 64], memory_encoder_hidden_size=256,
               memory_encoder_output_channels=64, mask_downsampler_embed_dim=256,
               memory_fuser_embed_dim=256, memory_fuser_intermediate_dim=1024))

VIT_B = sam.Arch(embed_dim=768, depth=12, num_heads=12, global_attn=(2, 5, 8, 11),
                 window_size=14, img_size=1024, patch_size=16, mlp_ratio=4.0, out_chans=256,
                 mask_in_chans=16, decoder_depth=2, decoder_mlp=2048, multimask=3, iou_depth=3,
                 iou_hidden=256)


def hiera_tiny_folder(path: str) -> str:
    """A random SAM 2.1 hiera-tiny saved as a model folder (safetensors + processor)."""
    import sam2_tiny
    import torch
    from transformers import (
        Sam2HieraDetConfig,
        Sam2VideoConfig,
        Sam2VideoModel,
        Sam2VisionConfig,
    )

    c = HIERA_TINY
    vision = Sam2VisionConfig(backbone_config=Sam2HieraDetConfig(**c["backbone"]), **c["vision"])
    config = Sam2VideoConfig(vision_config=vision, prompt_encoder_config=c["prompt"],
                             mask_decoder_config=c["decoder"], **c["video"])
    torch.manual_seed(0)
    Sam2VideoModel(config).save_pretrained(path, safe_serialization=True)
    sam2_tiny._processor(1024).save_pretrained(path)
    return path


def edgetam_folder(path: str) -> str:
    """A random EdgeTAM (transformers' EdgeTamVideoConfig defaults with its RepViT-M1 image
    encoder from timm: 13.9 M parameters, EdgeTAM's published size) saved as a model folder."""
    import sam2_tiny
    import torch
    from transformers import (
        EdgeTamVideoConfig,
        EdgeTamVideoModel,
        EdgeTamVisionConfig,
        TimmWrapperConfig,
    )

    backbone = TimmWrapperConfig(architecture="repvit_m1", model_args={
        "in_chans": 3, "features_only": True, "out_indices": [0, 1, 2, 3]})
    config = EdgeTamVideoConfig(vision_config=EdgeTamVisionConfig(backbone_config=backbone))
    torch.manual_seed(0)
    EdgeTamVideoModel(config).save_pretrained(path, safe_serialization=True)
    sam2_tiny._processor(1024).save_pretrained(path)
    return path


MODELS = {"sam2": ("SAM 2.1 hiera-tiny", "sam2.1-hiera-tiny-random", hiera_tiny_folder),
          "edgetam": ("EdgeTAM", "edgetam-random", edgetam_folder)}


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def track_shot(name: str, ns: argparse.Namespace, tmp: str, image, key: KeyFrame
               ) -> float | None:
    """Track the shot with one model (random weights); prints speed and memory; its fps."""
    from actanywhere.matte.sam2 import loader
    from actanywhere.matte.sam2.segmenter import Sam2Segmenter

    label, sub, build = MODELS[name]
    if name == "edgetam" and importlib.util.find_spec("timm") is None:
        print("EdgeTAM: skipped (its image encoder needs timm, which is not installed)")
        return None
    t = time.perf_counter()
    folder = build(os.path.join(tmp, sub))
    print(f"\n{label}: build + save a random folder: {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    vm = loader.load(folder, device=ns.device)
    settings = SamSettings(max_memory_frames=ns.memory_frames)
    seg = Sam2Segmenter(vm, image, ref=None, settings=settings)
    print(f"load through the project's loader (checks included): "
          f"{time.perf_counter() - t:.1f} s; {vm.describe()}; working size "
          f"{vm.info.image_size} px; memory {seg.keep} tracked frames; batch {seg.batch}")
    n = ns.frames
    rss: list[float] = []
    held: list[float] = []
    times: list[float] = []
    last = [time.perf_counter()]

    def advance(i: int) -> None:
        now = time.perf_counter()
        times.append(now - last[0])
        last[0] = now
        rss.append(rss_mb())
        held.append(rss[-1] - budget.used / 2**20)

    t = time.perf_counter()
    last[0] = t
    with store.limit(ns.matte_mb) as budget:
        mattes = seg.propagate(list(range(1001, 1001 + n)), {0: key},
                               key_matte=lambda i, k: seg.key(i, k), advance=advance)
    total = time.perf_counter() - t
    fps = (n - 1) / sum(times[1:])
    full = times[1 + vm.model.config.num_maskmem:]  # once the mask memory is full
    print(f"{label} tracking: {n} frames in {total:.1f} s (key frame {times[0]:.2f} s); tracked "
          f"frames {fps:.3f} fps ({1 / fps:.2f} s a frame); {seg.last.encoded} encodings; "
          f"at most {seg.last.peak} tracked frames held by the session")
    if full:
        print(f"  with the mask memory full (frame {n - len(full) + 1} on): "
              f"{np.mean(full):.2f} s a frame")
    marks = sorted({0, min(seg.keep + 1, n - 1), n // 2, n - 1})
    print(f"matte store: {n - mattes.spilled} mattes in memory ({budget.used / 2**20:.0f} MB, "
          f"matte.memory_mb {ns.matte_mb:g}), {mattes.spilled} in its temporary file")
    print("resident memory (MB) after frame: " + ", ".join(
        f"{i + 1}: {rss[i]:.0f} (less mattes in memory {held[i]:.0f})" for i in marks))
    start = seg.keep + 1  # the session holds its most tracked frames from here on
    if n > start + 1:
        print(f"growth from frame {start + 1} (session full) to {n}: "
              f"{rss[-1] - rss[start]:+.0f} MB; less the mattes in memory "
              f"{held[-1] - held[start]:+.0f} MB")
    print(f"peak resident set: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    if ns.objects > 1:
        objects_in_one_session(seg, ns.objects, n, key, total)
    return fps


def objects_in_one_session(seg, count: int, n: int, key: KeyFrame, alone: float) -> None:
    """``count`` objects keyed on the same frame tracked in one session, against ``count`` times
    the one-object run just measured. Each key is a painted box (the box moved sideways for
    each): random weights may find nothing in a box prompt, which a painted key cannot."""
    from actanywhere.spec import MatteObject

    h, w = seg.image(0).shape[:2]
    x0, y0, x1, y1 = (int(v) for v in key.boxes[0])
    step = (x1 - x0) // (2 * count)
    boxes = {}
    for j in range(count):
        boxes[f"o{j}"] = m = np.zeros((h, w), np.float32)
        m[y0:y1, x0 + j * step:x1 + j * step] = 1.0
    objects = [MatteObject(name=name, keys=[KeyFrame(frame=key.frame, matte=name)])
               for name in boxes]
    t = time.perf_counter()
    with store.limit(0):
        seg.propagate_objects(list(range(1001, 1001 + n)), objects,
                              painted=lambda k: boxes[k.matte])
    took = time.perf_counter() - t
    print(f"{count} objects in one session: {n} frames in {took:.1f} s "
          f"({seg.last.encoded} encodings) against {count} x {alone:.1f} s one at a time: "
          f"{count * alone / took:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=20, help="sam2 shot length")
    ap.add_argument("--models", default="sam2,edgetam",
                    help="video models tracked, comma-separated: sam2 (SAM 2.1 hiera-tiny), "
                    "edgetam")
    ap.add_argument("--v1-frames", type=int, default=2, help="v1 sam shot length (0: skip)")
    ap.add_argument("--objects", type=int, default=1,
                    help="also track this many objects in one session (matte.objects)")
    ap.add_argument("--unique", type=int, default=12, help="demo frames rendered")
    ap.add_argument("--width", type=int, default=2048)
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--matte-mb", type=float, default=MatteSpec.model_fields["memory_mb"].default,
                    help="matte.memory_mb: the shot's mattes kept in memory (MB)")
    ap.add_argument("--memory-frames", type=int, default=None,
                    help="matte.sam.max_memory_frames (default: what the model reads)")
    ns = ap.parse_args()
    import torch

    tmp = tempfile.mkdtemp(prefix="aa-bench-sam2-")
    pattern = os.path.join(tmp, "plate", "plate.####.exr")
    unique = max(2, min(ns.unique, ns.frames))
    demo.make_plate(pattern, nframes=unique, width=ns.width, height=ns.height)
    cc = ColorContext()
    plates = [imageio.read(pattern.replace("####", f"{1001 + i:04d}")) for i in range(unique)]
    base = [(cc.to_model(p.channels(["R", "G", "B"])) * 255 + 0.5).astype(np.uint8)
            for p in plates]
    alpha0 = plates[0].channel("A")
    del plates
    period = 2 * unique - 2

    def image(i: int) -> np.ndarray:  # the demo frames played back and forth
        j = i % period
        return base[j if j < unique else period - j]

    ys, xs = np.nonzero(alpha0 > 0.5)
    box = (float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()))
    key = KeyFrame(frame=1001, boxes=[box])
    print(f"plate: demo shot {ns.width}x{ns.height} ({unique} frames rendered, played back and "
          f"forth); device {ns.device}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")

    fps = {name: track_shot(name, ns, tmp, image, key) for name in ns.models.split(",")}
    fps = {name: fps[name] for name in fps if fps[name] is not None}

    # ------------------------------------------------------------------ v1 sam
    if ns.v1_frames >= 2:
        m = ns.v1_frames
        torch.manual_seed(0)
        ckpt = os.path.join(tmp, "sam_vit_b_random.pth")
        torch.save(sam.build(VIT_B).state_dict(), ckpt)
        model = sam.load(ckpt, "vit_b", ns.device)
        v1 = sam.SamSegmenter(model, image, sam.EmbeddingCache(None), batch=4, count=m)
        t = time.perf_counter()
        anchor = v1.key(0, key)
        t_key = time.perf_counter() - t
        t = time.perf_counter()
        track.propagate(m, {0: key}, image, v1, TrackSettings(min_agreement=0.0),
                        key_matte=lambda i, k: anchor)
        t_track = time.perf_counter() - t
        v1fps = (m - 1) / t_track
        print(f"v1 sam (vit_b, flow + re-segmentation): key frame {t_key:.2f} s; tracked frames "
              f"{v1fps:.3f} fps ({1 / v1fps:.2f} s a frame)")
        for name, f in fps.items():
            print(f"{MODELS[name][0]} vs v1 vit_b, tracked frames: {f / v1fps:.1f}x the speed")


if __name__ == "__main__":
    main()
