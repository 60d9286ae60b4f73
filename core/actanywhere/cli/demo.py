"""``actanywhere demo``: the built-in shot, made and run."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import ProgressMode, ProgressOpt, reporter


def demo(
    out: Annotated[str, typer.Option(help="Folder for the demo shot and its output")] = "actanywhere_demo",
    frames: Annotated[int, typer.Option(min=2, help="Number of frames")] = 24,
    width: Annotated[int, typer.Option(min=64, help="Display window width")] = 2048,
    height: Annotated[int, typer.Option(min=64, help="Display window height")] = 1080,
    engine: Annotated[str, typer.Option(help="diffusion (the shipped small model) or composite (no model, no torch)")] = "diffusion",
    threads: Annotated[int, typer.Option(min=1, help="Frames processed at once")] = 2,
    progress: ProgressOpt = ProgressMode.bar,
) -> None:
    """Make the built-in demo shot, run it, and write a contact sheet and a preview."""
    from . import demo_shot as demo_mod

    with reporter(progress) as report:
        p = demo_mod.run_demo(out, frames, width, height, engine, report, threads)
    if progress != ProgressMode.json:
        typer.echo(f"plate:         {p.plate}\nbackground:    {p.background}\n"
                   f"spec:          {p.spec}\noutput:        {p.output}\n"
                   f"contact sheet: {p.contact_sheet}\npreview:       {p.preview}")
