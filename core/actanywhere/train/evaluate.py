"""`actanywhere evaluate`: a model on held-out clips, against the same architecture untrained.

Held-out synthetic clips (odd seeds, never used for training) or real clips from a train
config; for each clip the model generates the background video from S, the mask and the
condition, and the metrics of ``metrics.py`` are computed on the raw output (no recomposite).
The truth's own scores are reported as the reference a perfect model would reach. Writes
``evaluation.json``, ``report.png`` (metric bars) and ``samples.png`` (contact sheet).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ..api import atomic
from ..media.preview import contact_sheet
from ..model import checkpoint
from ..model.components import Components, build_module
from . import metrics, validate
from .config import DataConfig
from .dataset import TrainSamples
from .validate import hwc, zoom

#: metric -> (label, higher is better)
METRICS = {
    "subject_psnr": ("subject fidelity, PSNR dB", True),
    "background_psnr": ("background vs truth, PSNR dB", True),
    "colour_error": ("background colour error vs condition", False),
    "structure": ("background structure vs condition, SSIM", True),
    "flicker": ("background flicker", False),
    "condition_sensitivity": ("change with another background / with another seed", True),
    "clip_cond": ("CLIP_cond", True),
    "clip_temp": ("CLIP_temp", True),
}


def untrained_like(comps: Components, seed: int = 0) -> Components:
    """The same architecture (every config as in ``comps``) with fresh random weights."""
    torch.manual_seed(seed)
    parts = {}
    for name, module in comps.modules().items():
        parts[name] = build_module(name, checkpoint.module_config(module)).eval()
    return Components(**parts, feature_extractor=comps.feature_extractor,
                      scheduler_config=dict(comps.scheduler_config))


def heldout_samples(data: DataConfig, count: int) -> list[dict[str, torch.Tensor]]:
    samples = TrainSamples(data, count, heldout=True)
    return [samples[i] for i in range(count)]


def score_clip(out: np.ndarray, sample: dict[str, torch.Tensor],
               clip: metrics.Embedder | None = None) -> dict[str, float]:
    frames = hwc(sample["frames"])
    matte = sample["matte"][:, 0].numpy()
    mask = sample["mask"][:, 0].numpy()
    cond = sample["condition"].permute(1, 2, 0).numpy()
    bg = np.broadcast_to((mask > 0.5)[..., None], out.shape)
    scores = {
        "subject_psnr": metrics.subject_fidelity(out, frames, matte),
        "background_psnr": metrics.psnr(out, frames, bg),
        "colour_error": metrics.colour_error(out, cond, mask),
        "structure": metrics.structure(out, cond, mask),
        "flicker": metrics.flicker(out, mask),
    }
    if clip is not None:
        emb = clip(out)
        scores["clip_cond"] = metrics.clip_cond(emb, clip(cond[None]))
        scores["clip_temp"] = metrics.clip_temp(emb)
    return scores


def _mean(rows: list[dict[str, float]]) -> dict[str, float]:
    keys = rows[0].keys()
    return {k: float(np.mean([r[k] for r in rows if not math.isnan(r[k])])) for k in keys}


def evaluate(comps: Components, samples: list[dict[str, torch.Tensor]], steps: int = 25,
             guidance: float = 2.0, seed: int = 0, clip: metrics.Embedder | None = None,
             i3d: Callable[[np.ndarray], np.ndarray] | None = None, sensitivity: bool = True,
             init_strength: float = 0.0) -> tuple[dict[str, Any], list[np.ndarray]]:
    """Generate every sample and score it: ({"mean": ..., "clips": [...]}, outputs).
    ``sensitivity``: also the condition sensitivity (two more generations a clip);
    ``init_strength``: start from the moved condition (``validate.generate``)."""
    rows, outputs, feats = [], [], []

    def generate(sample: dict[str, torch.Tensor], seed: int) -> np.ndarray:
        return validate.generate(comps, sample, steps, guidance, seed, init_strength)

    for i, sample in enumerate(samples):
        out = generate(sample, seed)
        outputs.append(out)
        rows.append(score_clip(out, sample, clip))
        if sensitivity and len(samples) > 1:  # the next clip's background (its own motion)
            other = samples[(i + 1) % len(samples)]
            swapped = {**sample, "condition": other["condition"],
                       "moved_condition": other["moved_condition"]}
            rows[-1]["condition_sensitivity"] = metrics.condition_sensitivity(
                out, generate(sample, seed + 1),
                generate(swapped, seed), sample["mask"][:, 0].numpy())
        if i3d is not None:
            feats.append(i3d(out))
    result: dict[str, Any] = {"mean": _mean(rows), "clips": rows}
    if i3d is not None:
        real = [i3d(hwc(s["frames"])) for s in samples]
        result["mean"]["fvd"] = metrics.frechet_distance(np.stack(real), np.stack(feats))
    return result, outputs


def truth_scores(samples: list[dict[str, torch.Tensor]], clip: metrics.Embedder | None = None
                 ) -> dict[str, float]:
    """What a perfect model would score (the truth frames as the output)."""
    return _mean([score_clip(hwc(s["frames"]), s, clip) for s in samples])


def run(model: str, output: str, clips: int = 8, data: DataConfig | None = None,
        steps: int = 25, guidance: float = 2.0, seed: int = 0, baseline: bool = True,
        clip_path: str | None = None, i3d_path: str | None = None, device: str = "cpu",
        report: Callable[[str], None] = print, init_strength: float | None = None
        ) -> dict[str, Any]:
    """Evaluate the checkpoint ``model``; write the JSON, plots and samples under ``output``.
    ``init_strength`` None: the model's recommended one (its manifest), else 0."""
    t0 = time.perf_counter()
    data = data or DataConfig()
    if init_strength is None:
        init_strength = float((checkpoint.manifest(model).get("recommended") or {})
                              .get("init_strength", 0.0))
    comps = checkpoint.load(model, device=device)
    samples = heldout_samples(data, clips)
    clip = metrics.ClipEmbedder(clip_path, device) if clip_path else None
    i3d = metrics.I3DFeatures(i3d_path, device) if i3d_path else None
    report(f"evaluating {model} on {clips} held-out clips ({steps} steps, guidance {guidance}, "
           f"init_strength {init_strength:g})")
    result, outputs = evaluate(comps, samples, steps, guidance, seed, clip, i3d,
                               init_strength=init_strength)
    doc: dict[str, Any] = {
        "model": os.path.abspath(model),
        "settings": {"clips": clips, "steps": steps, "guidance": guidance, "seed": seed,
                     "init_strength": init_strength,
                     "data": data.model_dump(), "clip": clip_path, "i3d": i3d_path},
        "model_scores": result,
        "truth_scores": truth_scores(samples, clip),
    }
    base_outputs = None
    if baseline:
        report("evaluating the same architecture untrained (the baseline)")
        base, base_outputs = evaluate(untrained_like(comps), samples, steps, guidance, seed,
                                      clip, i3d, init_strength=init_strength)
        doc["untrained_scores"] = base
    doc["seconds"] = round(time.perf_counter() - t0, 1)
    os.makedirs(output, exist_ok=True)
    path = os.path.join(output, "evaluation.json")
    atomic.write_json(path, doc)
    _samples_sheet(os.path.join(output, "samples.png"), samples, outputs, base_outputs)
    _plot(os.path.join(output, "report.png"), doc, report)
    report(f"wrote {path}")
    return doc


def _samples_sheet(path: str, samples, outputs, base_outputs, count: int = 3) -> None:
    rows = []
    for i in range(min(count, len(samples))):
        s = samples[i]
        cond = s["condition"].permute(1, 2, 0).numpy()
        rows.append([cond, *hwc(s["foreground"])])
        rows.append([cond, *outputs[i]])
        if base_outputs is not None:
            rows.append([cond, *base_outputs[i]])
        rows.append([cond, *hwc(s["frames"])])
    contact_sheet(path, [[zoom(img) for img in row] for row in rows])


def _plot(path: str, doc: dict[str, Any], report: Callable[[str], None]) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        report("matplotlib is not installed: no report.png (pip install matplotlib)")
        return
    model = doc["model_scores"]["mean"]
    keys = [k for k in METRICS if k in model]
    series = [("model", model), ("truth", doc["truth_scores"])]
    if "untrained_scores" in doc:
        series.insert(1, ("untrained", doc["untrained_scores"]["mean"]))
    fig, axes = plt.subplots(1, len(keys), figsize=(2.6 * len(keys), 3.2))
    for ax, key in zip(np.atleast_1d(axes), keys, strict=True):
        label, higher = METRICS[key]
        values = [s.get(key, float("nan")) for _, s in series]  # truth: no sensitivity
        colours = ["#3b7dd8", "#c8553d", "#7a7a7a"][: len(values)]
        ax.bar([n for n, _ in series], values, color=colours)
        ax.set_title(f"{label}\n({'higher' if higher else 'lower'} is better)", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    with atomic.replacing(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)



