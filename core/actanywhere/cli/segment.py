"""``actanywhere segment``: a shot's matte as an EXR sequence with previews."""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer

from .common import (
    BoxOpt,
    FramesOpt,
    KeyMatteOpt,
    MatteChannelOpt,
    PlateLayerOpt,
    PlateOpt,
    PlateSpaceOpt,
    PlateViewOpt,
    PointOpt,
    ProgressMode,
    ProgressOpt,
    SamOpt,
    ScreenOpt,
    reporter,
)


def segment(
    spec_file: Annotated[str | None, typer.Option("--spec", help="ShotSpec (its plate, matte and color sections are used)")] = None,
    plate: PlateOpt = None,
    frames: FramesOpt = None,
    plate_layer: PlateLayerOpt = None,
    plate_view: PlateViewOpt = None,
    plate_colorspace: PlateSpaceOpt = None,
    source: Annotated[str | None, typer.Option(help="alpha|file|keyer|sam|sam2|sam3|grabcut")] = None,
    text: Annotated[str | None, typer.Option(help="Source sam3: what to find, e.g. person (--box/--point on a key frame pick instances)")] = None,
    matte: Annotated[str | None, typer.Option(help="Matte sequence pattern (source file)")] = None,
    matte_channel: MatteChannelOpt = None,
    point: PointOpt = None,
    box: BoxOpt = None,
    key_matte: KeyMatteOpt = None,
    sam_checkpoint: SamOpt = None,
    screen: ScreenOpt = None,
    track: Annotated[str | None, typer.Option(help="Tracking: segment (re-segment each frame) or flow (warp only)")] = None,
    grow: Annotated[float | None, typer.Option(help="Grow (+) or shrink (-) the matte, pixels")] = None,
    feather: Annotated[float | None, typer.Option(help="Soften the edge, pixels")] = None,
    temporal: Annotated[int | None, typer.Option(help="Temporal smoothing radius, frames")] = None,
    output: Annotated[str | None, typer.Option("--output", "-o", help="Matte pattern, e.g. matte/matte.####.exr")] = None,
    layer: Annotated[str | None, typer.Option(help="Write a copy of the plate with the matte as LAYER.A instead of a single A channel")] = None,
    preview: Annotated[str | None, typer.Option(help="Preview folder (default <output folder>/preview; '' for none)")] = None,
    existing: Annotated[str | None, typer.Option(help="Existing matte frames: error|skip|overwrite")] = None,
    threads: Annotated[int | None, typer.Option(help="Frames processed at once")] = None,
    progress: ProgressOpt = ProgressMode.bar,
) -> None:
    """Compute the subject matte of a shot: EXR sequence + overlay previews (docs/mattes.md);
    with matte.objects (--spec), each object's matte as a layer matte.<name>.A too."""
    from .. import spec as specmod
    from .. import spec_files
    from ..api.prompts import matte_overrides
    from ..errors import SpecError
    from ..shot import segment as seg

    base: dict[str, Any] = spec_files.load(spec_file) if spec_file else {}
    base = {k: base[k] for k in ("plate", "matte", "color", "threads") if k in base}
    overrides = {
        "plate": {"path": plate, "frames": frames, "layer": plate_layer, "view": plate_view,
                  "colorspace": plate_colorspace},
        "matte": matte_overrides(base.get("matte") or {}, source, matte, matte_channel, point,
                                  box, key_matte, sam_checkpoint, screen),
        "output": {"path": output, "layer": layer, "preview": preview, "existing": existing},
        "threads": threads,
    }
    overrides["matte"]["text"] = text
    overrides["matte"]["track"] = {"mode": track}
    overrides["matte"]["refine"] = {"grow": grow, "feather": feather, "temporal": temporal}
    merged = spec_files.merge(base, overrides)
    out = merged.get("output") or {}
    if out.get("existing") == "skip" and out.get("path") and \
            not (merged.get("matte") or {}).get("objects"):
        # resuming: sam2 keeps the frames written and restarts its track beside them (the
        # union of several objects is no one object's track: not read back)
        sam = merged.setdefault("matte", {}).setdefault("sam", {})
        sam.setdefault("resume_from", out["path"])
        sam.setdefault("resume_channel", f"{out['layer']}.A" if out.get("layer") else "A")
    try:
        shot = seg.SegmentSpec.model_validate(merged)
    except specmod.ValidationError as exc:
        raise SpecError(f"invalid segment settings: {specmod.format_errors(exc)}") from exc
    with reporter(progress) as report:
        result = seg.run(shot, report)
    if progress != ProgressMode.json and result.preview:
        typer.echo(f"preview: {os.path.join(result.preview, 'contact_sheet.png')}", err=True)
