"""``actanywhere motion``: the background's motion of a shot as motion.json, with a preview."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from .common import FramesOpt, MatteChannelOpt, PlateOpt


def motion(
    plate: PlateOpt = None,
    frames: FramesOpt = None,
    source: Annotated[str, typer.Option(help="track (the plate's background), metadata (EXR camera matrices), subject (learned from the mattes alone: green screen), keys, auto, or none")] = "track",
    model: Annotated[str, typer.Option(help="track: similarity, affine or homography")] = "similarity",
    motion_key: Annotated[list[str] | None, typer.Option("--motion-key", help="keys: FRAME:TX,TY[,SCALE[,ROTATE]] (pixels, factor, degrees); repeat")] = None,
    matte: Annotated[str | None, typer.Option(help="Matte sequence pattern (default: the plate's alpha)")] = None,
    matte_channel: MatteChannelOpt = None,
    smooth: Annotated[int, typer.Option(help="track: smoothing radius in frames (centred: no lag)")] = 2,
    min_features: Annotated[int, typer.Option(help="track: background corners a frame needs")] = 30,
    fov: Annotated[float | None, typer.Option(help="metadata: horizontal field of view (degrees) for worldToCamera without one")] = None,
    weights: Annotated[str | None, typer.Option(help="subject: a model from `actanywhere train-motion` (default: the shipped one)")] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="motion.json to write")] = "motion.json",
    preview: Annotated[str | None, typer.Option(help="Overlay preview, .gif or .png (default <output>_preview.gif; '' for none)")] = None,
    nuke: Annotated[str | None, typer.Option(help="Also write a Nuke CornerPin2D keyed every frame (.nk, paste it or nuke.nodePaste)")] = None,
) -> None:
    """Estimate how the background moves through a shot: motion.json (docs/motion.md)."""
    from pydantic import ValidationError

    from ..errors import SpecError
    from ..motion import save
    from ..motion.shot import estimate, overlay
    from ..spec import MotionSpec, format_errors

    if not plate:
        raise SpecError("--plate is required, e.g. --plate plate.####.exr")
    if source == "file":
        raise SpecError("--source file reads a motion.json; here one is written: use track, "
                        "metadata, subject, keys, auto or none")
    try:
        settings = MotionSpec(source=source, keys=motion_key or [], model=model, smooth=smooth,
                              min_features=min_features, fov=fov,
                              weights=weights and os.path.abspath(weights))
    except ValidationError as exc:
        raise SpecError(format_errors(exc).replace("keys:", "--motion-key:")) from None
    result, samples = estimate(plate, frames, settings, matte=matte,
                               matte_channel=matte_channel or "A", note=typer.echo)
    save(result, output)
    conf = min(result.confidence.values()) if result.confidence else 1.0
    typer.echo(f"{output}: {result.source}, {len(result.frames)} frames, {result.width}x"
               f"{result.height}, reference {result.reference_frame}, lowest confidence "
               f"{conf:.2f}")
    if nuke:
        from ..api import motion as motion_file

        typer.echo(f"nuke: {motion_file.write_nuke(motion_file.read(output), nuke)}")
    if preview is None:
        preview = os.path.splitext(output)[0] + "_preview.gif"
    if preview:
        typer.echo(f"preview: {overlay(result, samples, preview)}")
