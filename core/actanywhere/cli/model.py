"""``actanywhere model init | info | verify``: build, inspect and check checkpoints."""

from __future__ import annotations

import json
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, help="Build, inspect and check model checkpoints.")


@app.command("init")
def model_init(
    out: Annotated[str, typer.Option("--out", help="Checkpoint folder to create")],
    unet: Annotated[str | None, typer.Option(help="SD 1.5 (or SD 1.5 inpainting) UNet folder")] = None,
    motion_adapter: Annotated[str | None, typer.Option(help="AnimateDiff motion adapter folder")] = None,
    image_encoder: Annotated[str | None, typer.Option(help="CLIP ViT-L/14 folder (vision-only or whole CLIP)")] = None,
    vae: Annotated[str | None, typer.Option(help="SD VAE folder")] = None,
    random: Annotated[str | None, typer.Option(help="Instead of parts: random weights for the stored architecture tiny|small|full (tests, benchmarks)")] = None,
    condition: Annotated[str, typer.Option(help="Condition tokens: embed (one projected CLIP token) or patches")] = "embed",
    seed: Annotated[int, typer.Option(help="Seed for random weights")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing checkpoint folder")] = False,
    allow_pickle: Annotated[bool, typer.Option("--allow-pickle", help="Accept pickle (.bin/.ckpt) weights you trust")] = False,
) -> None:
    """Assemble a complete, loadable checkpoint from local parts (never downloads)."""
    from ..model.init import init

    path = init(out, unet=unet, motion_adapter=motion_adapter, image_encoder=image_encoder,
                vae=vae, random=random, condition=condition, seed=seed, overwrite=overwrite,
                allow_pickle=allow_pickle)
    typer.echo(f"wrote {path}")


def _print_report(report, as_json: bool) -> None:
    from dataclasses import asdict

    if as_json:
        typer.echo(json.dumps({"path": report.path, "manifest": report.manifest,
                               "components": [asdict(c) for c in report.components],
                               "problems": report.problems}, indent=2))
        return
    arch = report.manifest.get("architecture", {})
    typer.echo(f"{report.path}")
    if arch:
        typer.echo("  " + ", ".join(f"{k} {v}" for k, v in arch.items()))
    for c in report.components:
        sha = f" sha256 {c.sha256[:16]}" if c.sha256 else ""
        typer.echo(f"  {c.name:<20} {c.parameters / 1e6:9.2f} M params  {c.tensors:5d} tensors  "
                   f"{','.join(c.dtypes)}  {c.bytes / 2**20:8.1f} MiB{sha}")
        typer.echo(f"  {'':<20} {c.trained}")
    for p in report.problems:
        typer.echo(f"problem: {p}", err=True)


def _check_vace(path: str, hashes: bool, as_json: bool) -> None:
    """A Wan (VACE) diffusers folder: checked from its JSON and safetensors headers; a
    problem is one line (ModelError, exit 5)."""
    from ..model.vace import folder as vace_folder

    info = vace_folder.inspect(path)
    digests, problems = vace_folder.hashes(info) if hashes else ({}, [])
    if as_json:
        typer.echo(json.dumps({**info.to_dict(), "sha256": digests, "problems": problems},
                              indent=2))
    else:
        for line in vace_folder.describe(info):
            typer.echo(line)
        for rel, digest in digests.items():
            typer.echo(f"  {rel:<60} sha256 {digest[:16]}")
    for p in problems:
        typer.echo(f"problem: {p}", err=True)
    if problems:
        raise typer.Exit(5)
    if hashes and not as_json:
        typer.echo("ok")


def _check_model(path: str, hashes: bool, as_json: bool) -> None:
    from ..model import checkpoint
    from ..model.vace import folder as vace_folder

    if vace_folder.is_wan_folder(path):
        _check_vace(path, hashes, as_json)
        return

    report = checkpoint.verify(path, hashes=hashes)
    _print_report(report, as_json)
    if report.problems:
        raise typer.Exit(5)
    if hashes and not as_json:
        typer.echo("ok")


@app.command("info")
def model_info(
    path: Annotated[str, typer.Argument(help="Checkpoint folder, or a Wan VACE diffusers folder")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Architecture, parameters, dtypes and which parts are trained (no hashing); for a Wan VACE
    folder the model, its parts and estimated GPU memory."""
    _check_model(path, False, as_json)


@app.command("verify")
def model_verify(
    path: Annotated[str, typer.Argument(help="Checkpoint folder, or a Wan VACE diffusers folder")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Check every tensor's name and shape against the configs and every file's sha256."""
    _check_model(path, True, as_json)
