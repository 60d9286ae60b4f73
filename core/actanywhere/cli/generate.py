"""``actanywhere generate``: a ShotSpec (from --spec and/or flags) to output frames, here or
in the warm worker."""

from __future__ import annotations

import contextlib
import sys
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


def model_settings(engine: str | None, flags: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The model flags given, as ShotSpec sections: each into the chosen engine's settings
    section. A flag a model engine's section lacks (``--scheduler`` for vace) is an error;
    with an engine without model settings (composite) they go to ``diffusion`` as before."""
    from .. import catalog, spec

    section = catalog.engines().get(engine or "")
    name = section.settings if section is not None else None
    fields = spec.ShotSpec.model_fields[name].annotation.model_fields \
        if name in spec.ShotSpec.model_fields else {}
    out: dict[str, dict[str, Any]] = {"diffusion": {}}
    seeded = "seed" in fields  # a model engine's section: a flag it lacks is a mistake
    for key, value in flags.items():
        if value is None:
            continue
        target = name if key in fields else "diffusion"
        if (target == "diffusion" and key not in spec.DiffusionSettings.model_fields) or \
                (seeded and target != name):
            raise typer.BadParameter(f"--{key.replace('_', '-')} is a setting of "
                                     f"another engine than {engine or 'composite'}")
        out.setdefault(target, {})[key] = value
    return out


def effective(shot):
    """``shot`` with the settings its engine's model fills where it leaves them unset (what a
    run records), and the one line naming them ("" when none); read from the model folder's
    small files. A folder that cannot be read leaves the spec as it is, with a warning."""
    from .. import engines
    from ..errors import ActAnywhereError
    from ..shot import job

    try:
        shot, sources = engines.engine_class(shot.engine.name).effective(shot)
    except ActAnywhereError as exc:
        return shot, f"warning: {exc} (printed without the model's settings)"
    return shot, job.settings_line(shot, sources)


def show_settings(report, progress: ProgressMode):
    """``report``, and in the plain bar (not a terminal: a farm log, which shows warnings and
    the end only) the one line naming the settings the model filled."""
    from ..progress import is_settings

    if progress != ProgressMode.bar or sys.stderr.isatty():
        return report

    def both(ev) -> None:
        report(ev)
        if is_settings(ev):
            with contextlib.suppress(OSError):  # a closed pipe: the job goes on
                print(ev.message, file=sys.stderr, flush=True)

    return both


def generate(
    spec_file: Annotated[str | None, typer.Option("--spec", help="ShotSpec JSON or TOML file")] = None,
    plate: PlateOpt = None,
    frames: FramesOpt = None,
    plate_layer: PlateLayerOpt = None,
    plate_view: PlateViewOpt = None,
    plate_colorspace: PlateSpaceOpt = None,
    missing: Annotated[str | None, typer.Option(help="Missing plate frames: error|hold|black")] = None,
    matte: Annotated[str | None, typer.Option(help="Matte sequence pattern (implies --matte-source file)")] = None,
    matte_source: Annotated[str | None, typer.Option(help="alpha|file|keyer|sam|sam2|sam3|grabcut (docs/mattes.md)")] = None,
    text: Annotated[str | None, typer.Option(help="Matte source sam3: what to find, e.g. person (--box/--point on a key frame pick instances)")] = None,
    matte_channel: MatteChannelOpt = None,
    point: PointOpt = None,
    box: BoxOpt = None,
    key_matte: KeyMatteOpt = None,
    sam_checkpoint: SamOpt = None,
    screen: ScreenOpt = None,
    background: Annotated[str | None, typer.Option(help="Background image")] = None,
    background_colorspace: Annotated[str | None, typer.Option(help="OCIO colourspace of the background")] = None,
    engine: Annotated[str | None, typer.Option(help="composite, diffusion or vace (docs/vace.md)")] = None,
    model: Annotated[str | None, typer.Option(help="Model folder for --engine diffusion or vace")] = None,
    prompt: Annotated[str | None, typer.Option(help="Vace: what the background shows")] = None,
    negative_prompt: Annotated[str | None, typer.Option(help="Vace: what to steer away from")] = None,
    output: Annotated[str | None, typer.Option("--output", "-o", help="Output pattern, e.g. out/comp.####.exr")] = None,
    existing: Annotated[str | None, typer.Option(help="Existing output frames: error|skip|overwrite")] = None,
    compression: Annotated[str | None, typer.Option(help="EXR compression: zip|piz|dwaa|...")] = None,
    layers: Annotated[str | None, typer.Option(help="Output layers, comma-separated: rgba,bg,matte")] = None,
    harmonize: Annotated[float | None, typer.Option(help="Composite: subject colour match 0..1")] = None,
    shadow: Annotated[float | None, typer.Option(help="Composite: contact shadow opacity 0..1")] = None,
    ocio: Annotated[str | None, typer.Option(help="OCIO config (default $OCIO, else built-in)")] = None,
    output_colorspace: Annotated[str | None, typer.Option(help="OCIO colourspace of the output")] = None,
    threads: Annotated[int | None, typer.Option(help="Frames processed at once")] = None,
    device: Annotated[str | None, typer.Option(help="Diffusion: auto|cpu|cuda")] = None,
    seed: Annotated[int | None, typer.Option(help="Diffusion: random seed")] = None,
    steps: Annotated[int | None, typer.Option(help="Diffusion: denoising steps")] = None,
    guidance: Annotated[float | None, typer.Option(help="Diffusion: classifier-free guidance scale")] = None,
    scheduler: Annotated[str | None, typer.Option(help="Diffusion: ddim|dpmsolver++|euler_a")] = None,
    resolution: Annotated[int | None, typer.Option(help="Diffusion: model short side, multiple of 64")] = None,
    window: Annotated[int | None, typer.Option(help="Diffusion: frames per window (at most the model's 32)")] = None,
    overlap: Annotated[int | None, typer.Option(help="Diffusion: frames shared by adjacent windows")] = None,
    dtype: Annotated[str | None, typer.Option(help="Diffusion: auto|fp32|fp16|bf16")] = None,
    condition: Annotated[str | None, typer.Option(help="Diffusion: condition image, background|composite")] = None,
    init_strength: Annotated[float | None, typer.Option(help="Diffusion: start from the (moved) background, 0..1 (img2img)")] = None,
    motion: Annotated[str | None, typer.Option("--motion", help="Background motion: none|auto|file|keys|metadata|track|subject (docs/motion.md)")] = None,
    motion_path: Annotated[str | None, typer.Option(help="--motion file: a motion.json from `actanywhere motion`")] = None,
    motion_key: Annotated[list[str] | None, typer.Option("--motion-key", help="--motion keys: FRAME:TX,TY[,SCALE[,ROTATE]]; repeat")] = None,
    recomposite: Annotated[bool | None, typer.Option("--recomposite/--no-recomposite", help="Put the original subject back over the generated frame")] = None,
    overscan: Annotated[str | None, typer.Option(help="A plate's data window beyond its display window: keep (written) or crop")] = None,
    proxy: Annotated[bool | None, typer.Option("--proxy/--no-proxy", help="Write the take's proxies and take.json beside the frames (docs/takes.md)")] = None,
    allow_pickle: Annotated[bool | None, typer.Option("--allow-pickle", help="Accept pickle (.bin/.ckpt) weights you trust")] = None,
    print_spec: Annotated[bool, typer.Option(help="Print the resolved ShotSpec as JSON (with the settings the model fills, as a run records them) and exit")] = False,
    worker: Annotated[bool, typer.Option("--worker", help="Run in the warm local worker (started if none runs) instead of this process")] = False,
    state_dir: Annotated[str | None, typer.Option(help="Worker state folder (default: the user's state folder)")] = None,
    progress: ProgressOpt = ProgressMode.bar,
) -> None:
    """Generate output frames for a shot (from --spec and/or flags; flags win)."""
    from .. import spec, spec_files
    from ..api.prompts import matte_overrides
    from ..shot import job

    base: dict[str, Any] = spec_files.load(spec_file) if spec_file else {}
    overrides = {
        "plate": {"path": plate, "frames": frames, "layer": plate_layer, "view": plate_view,
                  "colorspace": plate_colorspace, "missing": missing},
        "matte": {**matte_overrides(base.get("matte") or {}, matte_source, matte, matte_channel,
                                    point, box, key_matte, sam_checkpoint, screen),
                  "text": text},
        "background": {"path": background, "colorspace": background_colorspace},
        "engine": {"name": engine, "model": model, "device": device},
        "composite": {"harmonize": harmonize, "shadow": shadow},
        **model_settings(engine or (base.get("engine") or {}).get("name"), {
            "seed": seed, "steps": steps, "guidance": guidance, "scheduler": scheduler,
            "resolution": resolution, "frames_per_window": window, "overlap": overlap,
            "dtype": dtype, "condition": condition, "allow_pickle": allow_pickle,
            "init_strength": init_strength, "prompt": prompt,
            "negative_prompt": negative_prompt}),
        "motion": {"source": motion, "path": motion_path, "keys": motion_key or None},
        "color": {"config": ocio, "output_space": output_colorspace},
        "output": {"path": output, "existing": existing, "compression": compression,
                   "recomposite": recomposite, "proxy": proxy, "overscan": overscan,
                   "layers": [x.strip() for x in layers.split(",")] if layers else None},
        "threads": threads,
    }
    shot = spec.from_dict(spec_files.merge(base, overrides))
    if print_spec:
        shot, line = effective(shot)
        if line:
            typer.echo(line, err=True)
        typer.echo(spec_files.dump_json(shot))
        return
    if worker:
        from ..shot import remote

        with reporter(progress) as report:
            final = remote.run(shot, show_settings(report, progress), state_dir)
        if progress != ProgressMode.json:
            typer.echo(f"job {final['id']}: {len(final['outputs'])} frame(s) written", err=True)
        return
    with reporter(progress) as report:
        job.run(shot, show_settings(report, progress))
