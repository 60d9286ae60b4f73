"""``actanywhere train`` and ``evaluate``: train or fine-tune a model, and score it."""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer


def train(
    config: Annotated[str, typer.Option("--config", help="Training config, TOML or JSON (see docs/training.md)")],
    output: Annotated[str | None, typer.Option(help="Run folder (overrides the config's output)")] = None,
    model: Annotated[str | None, typer.Option(help="Starting checkpoint folder or architecture (overrides the config)")] = None,
    steps: Annotated[int | None, typer.Option(min=1, help="Total optimizer steps (overrides the config)")] = None,
    device: Annotated[str | None, typer.Option(help="auto|cpu|cuda (overrides the config)")] = None,
) -> None:
    """Train or fine-tune a model; run again with the same output folder to resume."""
    from ..train import config as train_config
    from ..train.loop import run as run_training

    cfg = train_config.load(config, {"output": output and os.path.abspath(output),
                                     "model": model, "steps": steps, "device": device})
    run_training(cfg, report=lambda line: typer.echo(line, err=True))


def evaluate(
    model: Annotated[str, typer.Option(help="Checkpoint folder to evaluate")],
    out: Annotated[str, typer.Option("--out", help="Folder for evaluation.json, report.png, samples.png")],
    clips: Annotated[int, typer.Option(min=1, help="Held-out clips")] = 8,
    steps: Annotated[int, typer.Option(min=1, help="Denoising steps")] = 25,
    guidance: Annotated[float, typer.Option(min=1.0, help="Guidance scale")] = 2.0,
    seed: Annotated[int, typer.Option(help="Noise seed")] = 0,
    data: Annotated[str | None, typer.Option(help="A training config whose [data] to use (default: synthetic, 8 frames, 64 px)")] = None,
    frames: Annotated[int | None, typer.Option(min=2, help="Frames per clip")] = None,
    resolution: Annotated[int | None, typer.Option(min=16, help="Clip size in pixels")] = None,
    baseline: Annotated[bool, typer.Option(help="Also score the same architecture untrained")] = True,
    clip: Annotated[str | None, typer.Option("--clip", help="Local CLIP checkpoint folder: adds CLIP_cond and CLIP_temp")] = None,
    i3d: Annotated[str | None, typer.Option("--i3d", help="Local TorchScript I3D file: adds FVD")] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda")] = "cpu",
    init_strength: Annotated[float | None, typer.Option(min=0.0, max=1.0, help="Start from the condition moved along the clip's camera path (as diffusion.init_strength); default: the model's recommended, else 0")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole result as JSON")] = False,
) -> None:
    """Score a model on held-out clips (and the untrained baseline); JSON + report PNGs."""
    from ..train import evaluate as ev
    from ..train.config import DataConfig
    from ..train.config import load as load_train

    data_cfg = load_train(data, {"output": out}).data if data else DataConfig()
    updates = {k: v for k, v in (("frames", frames), ("resolution", resolution)) if v}
    data_cfg = data_cfg.model_copy(update=updates)
    doc = ev.run(model, out, clips=clips, data=data_cfg, steps=steps, guidance=guidance,
                 seed=seed, baseline=baseline, clip_path=clip, i3d_path=i3d, device=device,
                 report=lambda line: typer.echo(line, err=True), init_strength=init_strength)
    if as_json:
        typer.echo(json.dumps(doc, indent=2))
        return
    rows = [("model", doc["model_scores"]["mean"])]
    if "untrained_scores" in doc:
        rows.append(("untrained", doc["untrained_scores"]["mean"]))
    rows.append(("truth", doc["truth_scores"]))
    keys = list(rows[0][1])
    typer.echo(f"{'':<10}" + "".join(f"{k:>17}" for k in keys))
    for name, vals in rows:
        typer.echo(f"{name:<10}" + "".join(f"{vals.get(k, float('nan')):>17.4f}" for k in keys))


def train_motion(
    output: Annotated[str, typer.Option("--output", "-o", help="The model file to write (.safetensors; a .json with its measurements beside it)")] = "subject.safetensors",
    clips: Annotated[int, typer.Option(min=1, help="Training clips (motion_clips seeds 0..N-1)")] = 2000,
    epochs: Annotated[int, typer.Option(min=1, help="Passes over the data")] = 12,
    seed: Annotated[int, typer.Option(help="Initialisation and shuffling seed")] = 0,
    width: Annotated[int, typer.Option(min=4, help="The network's first layer width")] = 16,
    eval_clips: Annotated[int, typer.Option(min=1, help="Held-out clips per kind of shot to measure on")] = 30,
    workers: Annotated[int, typer.Option(min=1, help="Processes making clips")] = 2,
) -> None:
    """Train the `subject` motion source on synthetic shots with known cameras, then measure it
    and the static and locked baselines on held-out ones (docs/motion.md)."""
    from ..motion import subject
    from ..train import subject_motion as sm

    report = lambda line: typer.echo(line, err=True)  # noqa: E731
    net = sm.train(clips, epochs, seed, width, workers, report)
    result = sm.evaluate(net, eval_clips)
    command = (f"actanywhere train-motion -o {output} --clips {clips} --epochs {epochs} "
               f"--seed {seed} --width {width} --eval-clips {eval_clips}")
    subject.save(net, output, {"command": command, "clips": clips, "epochs": epochs,
                               "seed": seed, "width": width, "eval_clips_per_kind": eval_clips,
                               "step_error_px_at_1920": result})
    typer.echo(sm.table(result))
    typer.echo(f"{output}: {os.path.getsize(output) / 1e6:.2f} MB")
