"""``actanywhere motion``: the background's motion of a shot as motion.json, with a preview."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from .common import FramesOpt, MatteChannelOpt, PlateOpt


def motion(
    plate: PlateOpt = None,
    frames: FramesOpt = None,
    source: Annotated[str, typer.Option(help="track (the plate's background), keys, or none")] = "track",
    model: Annotated[str, typer.Option(help="track: similarity, affine or homography")] = "similarity",
    motion_key: Annotated[list[str] | None, typer.Option("--motion-key", help="keys: FRAME:TX,TY[,SCALE[,ROTATE]] (pixels, factor, degrees); repeat")] = None,
    matte: Annotated[str | None, typer.Option(help="Matte sequence pattern (default: the plate's alpha)")] = None,
    matte_channel: MatteChannelOpt = None,
    smooth: Annotated[int, typer.Option(help="track: smoothing radius in frames (centred: no lag)")] = 2,
    min_features: Annotated[int, typer.Option(help="track: background corners a frame needs")] = 30,
    output: Annotated[str, typer.Option("--output", "-o", help="motion.json to write")] = "motion.json",
    preview: Annotated[str | None, typer.Option(help="Overlay preview, .gif or .png (default <output>_preview.gif; '' for none)")] = None,
) -> None:
    """Estimate how the background moves through a shot: motion.json (docs/motion.md)."""
    from ..errors import SpecError
    from ..motion import save
    from ..motion.shot import estimate, overlay

    if not plate:
        raise SpecError("--plate is required, e.g. --plate plate.####.exr")
    result, samples = estimate(plate, frames, source, model=model, key_values=motion_key,
                               matte=matte, matte_channel=matte_channel or "A", radius=smooth,
                               min_features=min_features)
    save(result, output)
    conf = min(result.confidence.values()) if result.confidence else 1.0
    typer.echo(f"{output}: {result.source}, {len(result.frames)} frames, {result.width}x"
               f"{result.height}, reference {result.reference_frame}, lowest confidence "
               f"{conf:.2f}")
    if preview is None:
        preview = os.path.splitext(output)[0] + "_preview.gif"
    if preview:
        typer.echo(f"preview: {overlay(result, samples, preview)}")
