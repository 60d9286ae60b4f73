"""The ``actanywhere`` command line: generate, info, doctor, demo.

Exit codes: see ``errors.EXIT_CODES`` (0 ok, 2 bad spec/flag, 3 bad input, 4 output problem,
5 model problem, 130 cancelled, 1 internal error).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from enum import Enum
from typing import Annotated, Any

import typer

from . import __version__
from .errors import EXIT_CODES, ActAnywhereError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="ActAnywhere for VFX: put a filmed subject into a new, moving background.",
                  epilog="Exit codes: " + "; ".join(f"{k} {v}" for k, v in EXIT_CODES.items()))


class ProgressMode(str, Enum):
    bar = "bar"
    json = "json"
    none = "none"


def _reporter(mode: ProgressMode):
    """A context manager yielding the reporter for ``--progress``."""
    from .progress import RichReporter, json_reporter

    if mode == ProgressMode.json:
        return contextlib.nullcontext(json_reporter())
    if mode == ProgressMode.bar and sys.stderr.isatty():
        return RichReporter()
    if mode == ProgressMode.bar:
        # Not a terminal (a farm log): plain lines for warnings and the summary only.
        def plain(ev):
            if ev.stage in ("warning", "done"):
                prefix = "warning: " if ev.stage == "warning" else ""
                print(prefix + ev.message, file=sys.stderr, flush=True)

        return contextlib.nullcontext(plain)

    def warnings_only(ev):  # --progress none hides progress, never a warning
        if ev.stage == "warning":
            print("warning: " + ev.message, file=sys.stderr, flush=True)

    return contextlib.nullcontext(warnings_only)


ProgressOpt = Annotated[ProgressMode, typer.Option(
    "--progress", help="bar: terminal bar; json: one JSON event per line on stdout; none")]
PlateOpt = Annotated[str | None, typer.Option(help="Plate pattern, e.g. plate.####.exr")]
FramesOpt = Annotated[str | None, typer.Option(help="Frame range, e.g. 1001-1100 or 1-50x2")]
PlateLayerOpt = Annotated[str | None, typer.Option(help="Plate layer holding the colour")]
PlateViewOpt = Annotated[str | None, typer.Option(help="Stereo plates: the view to use (default: the hero view)")]
PlateSpaceOpt = Annotated[str | None, typer.Option(help="OCIO colourspace of the plate")]
MatteChannelOpt = Annotated[str | None, typer.Option(help="Matte channel, e.g. A or matte.A")]
PointOpt = Annotated[list[str] | None, typer.Option(
    "--point", help="A click FRAME:X,Y[,LABEL] in display pixels from the top left (label 1 "
    "subject, default; 0 not subject); repeat")]
BoxOpt = Annotated[list[str] | None, typer.Option(
    "--box", help="A box FRAME:X0,Y0,X1,Y1 around the subject; repeat")]
KeyMatteOpt = Annotated[list[str] | None, typer.Option(
    "--key-matte", help="A painted matte for a key frame, FRAME:PATH; repeat")]
SamOpt = Annotated[str | None, typer.Option(
    "--sam-checkpoint", help="SAM checkpoint file (default $ACTANYWHERE_SAM_CHECKPOINT)")]
ScreenOpt = Annotated[str | None, typer.Option("--screen", help="Keyer: green|blue")]


def _frame_and(value: str, flag: str) -> tuple[int, str]:
    from .errors import SpecError

    frame, sep, rest = value.partition(":")
    try:
        if not sep:
            raise ValueError
        return int(frame), rest
    except ValueError:
        raise SpecError(f"{flag} {value!r}: write FRAME:VALUES, e.g. {flag} 1001:812,440") \
            from None


def _numbers(text: str, count: tuple[int, ...], flag: str, value: str) -> list[float]:
    from .errors import SpecError

    try:
        nums = [float(x) for x in text.split(",")]
    except ValueError:
        nums = []
    if len(nums) not in count:
        raise SpecError(f"{flag} {value!r}: expected {' or '.join(map(str, count))} "
                        "comma-separated numbers after FRAME:")
    return nums


def _matte_overrides(base: dict, source, path, channel, points, boxes, key_mattes, checkpoint,
                     screen) -> dict:
    """Matte flags over the spec file's matte section; prompts are added to its key frames."""
    keys = {k["frame"]: dict(k) for k in base.get("keys") or [] if isinstance(k, dict)}

    def key(frame: int) -> dict:
        return keys.setdefault(frame, {"frame": frame})

    for value in points or []:
        frame, rest = _frame_and(value, "--point")
        x, y, *label = _numbers(rest, (2, 3), "--point", value)
        key(frame).setdefault("points", []).append([x, y, int(label[0]) if label else 1])
    for value in boxes or []:
        frame, rest = _frame_and(value, "--box")
        key(frame).setdefault("boxes", []).append(_numbers(rest, (4,), "--box", value))
    for value in key_mattes or []:
        frame, rest = _frame_and(value, "--key-matte")
        key(frame)["matte"] = rest
    if path and not source:
        source = "file"
    out = {"source": source, "path": path, "channel": channel,
           "sam": {"checkpoint": checkpoint}, "keyer": {"screen": screen}}
    if points or boxes or key_mattes:
        out["keys"] = sorted(keys.values(), key=lambda k: k["frame"])
    return out


@app.command()
def generate(
    spec_file: Annotated[str | None, typer.Option("--spec", help="ShotSpec JSON or TOML file")] = None,
    plate: PlateOpt = None,
    frames: FramesOpt = None,
    plate_layer: PlateLayerOpt = None,
    plate_view: PlateViewOpt = None,
    plate_colorspace: PlateSpaceOpt = None,
    missing: Annotated[str | None, typer.Option(help="Missing plate frames: error|hold|black")] = None,
    matte: Annotated[str | None, typer.Option(help="Matte sequence pattern (implies --matte-source file)")] = None,
    matte_source: Annotated[str | None, typer.Option(help="alpha|file|keyer|sam|grabcut (docs/mattes.md)")] = None,
    matte_channel: MatteChannelOpt = None,
    point: PointOpt = None,
    box: BoxOpt = None,
    key_matte: KeyMatteOpt = None,
    sam_checkpoint: SamOpt = None,
    screen: ScreenOpt = None,
    background: Annotated[str | None, typer.Option(help="Background image")] = None,
    background_colorspace: Annotated[str | None, typer.Option(help="OCIO colourspace of the background")] = None,
    engine: Annotated[str | None, typer.Option(help="composite or diffusion")] = None,
    model: Annotated[str | None, typer.Option(help="Model folder for --engine diffusion")] = None,
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
    recomposite: Annotated[bool | None, typer.Option("--recomposite/--no-recomposite", help="Put the original subject back over the generated frame")] = None,
    allow_pickle: Annotated[bool | None, typer.Option("--allow-pickle", help="Accept pickle (.bin/.ckpt) weights you trust")] = None,
    print_spec: Annotated[bool, typer.Option(help="Print the resolved ShotSpec as JSON and exit")] = False,
    worker: Annotated[bool, typer.Option("--worker", help="Run in the warm local worker (started if none runs) instead of this process")] = False,
    state_dir: Annotated[str | None, typer.Option(help="Worker state folder (default: the user's state folder)")] = None,
    progress: ProgressOpt = ProgressMode.bar,
) -> None:
    """Generate output frames for a shot (from --spec and/or flags; flags win)."""
    from . import job, spec

    base: dict[str, Any] = spec.load(spec_file) if spec_file else {}
    overrides = {
        "plate": {"path": plate, "frames": frames, "layer": plate_layer, "view": plate_view,
                  "colorspace": plate_colorspace, "missing": missing},
        "matte": _matte_overrides(base.get("matte") or {}, matte_source, matte, matte_channel,
                                  point, box, key_matte, sam_checkpoint, screen),
        "background": {"path": background, "colorspace": background_colorspace},
        "engine": {"name": engine, "model": model, "device": device},
        "composite": {"harmonize": harmonize, "shadow": shadow},
        "diffusion": {"seed": seed, "steps": steps, "guidance": guidance, "scheduler": scheduler,
                      "resolution": resolution, "frames_per_window": window, "overlap": overlap,
                      "dtype": dtype, "condition": condition, "allow_pickle": allow_pickle},
        "color": {"config": ocio, "output_space": output_colorspace},
        "output": {"path": output, "existing": existing, "compression": compression,
                   "recomposite": recomposite,
                   "layers": [x.strip() for x in layers.split(",")] if layers else None},
        "threads": threads,
    }
    shot = spec.from_dict(spec.merge(base, overrides))
    if print_spec:
        typer.echo(spec.dump_json(shot))
        return
    if worker:
        _generate_in_worker(shot, state_dir, progress)
        return
    with _reporter(progress) as report:
        job.run(shot, report)


def _generate_in_worker(shot, state_dir: str | None, progress: ProgressMode) -> None:
    """Submit to the worker, stream its progress like a local run, map its outcome to an
    exit code (Ctrl-C cancels the job in the worker)."""
    from .client import Client, WorkerError
    from .errors import JobCancelled, ModelError, from_exit_code
    from .progress import ProgressEvent

    data = json.loads(shot.model_dump_json(exclude_unset=True))  # unset stays unset
    for section in ("plate", "matte", "background", "output"):
        if isinstance(data.get(section), dict) and data[section].get("path"):
            data[section]["path"] = os.path.abspath(data[section]["path"])
    matte = data.get("matte") or {}
    for key in matte.get("keys") or []:
        if key.get("matte"):
            key["matte"] = os.path.abspath(key["matte"])
    if (matte.get("sam") or {}).get("checkpoint"):
        matte["sam"]["checkpoint"] = os.path.abspath(matte["sam"]["checkpoint"])
    if (data.get("engine") or {}).get("model"):
        data["engine"]["model"] = os.path.abspath(data["engine"]["model"])
    try:
        client = Client.connect(state_dir, python=sys.executable)
        job_id = client.submit(data, client="cli")
    except WorkerError as exc:  # refused at submit: the exit code a local run would give
        raise from_exit_code(str(exc), exc.exit_code) from exc
    fields = set(ProgressEvent.__dataclass_fields__)
    end: dict = {}

    def on_event(ev: dict) -> None:
        if ev.get("stage") == "end":
            end.update(ev)
        else:
            report(ProgressEvent(**{k: v for k, v in ev.items() if k in fields}))

    with _reporter(progress) as report:
        try:
            final = client.wait(job_id, on_event=on_event)
        except KeyboardInterrupt:  # cancel the job in the worker, then say what it did
            client.cancel(job_id)
            try:
                final = client.wait(job_id)
            except (KeyboardInterrupt, WorkerError):
                raise JobCancelled(f"job {job_id} cancelled; rerun with --existing skip "
                                   "/ output.existing=skip to resume") from None
        except WorkerError as exc:
            raise ModelError(f"job {job_id}: {exc}") from exc
    if final["status"] == "cancelled":
        raise JobCancelled(final["error"] or "cancelled")
    if final["status"] != "done":
        raise from_exit_code(f"job {job_id} {final['status']}: {final['error']}",
                             end.get("exit_code"))
    if progress != ProgressMode.json:
        typer.echo(f"job {job_id}: {len(final['outputs'])} frame(s) written", err=True)


@app.command()
def segment(
    spec_file: Annotated[str | None, typer.Option("--spec", help="ShotSpec (its plate, matte and color sections are used)")] = None,
    plate: PlateOpt = None,
    frames: FramesOpt = None,
    plate_layer: PlateLayerOpt = None,
    plate_view: PlateViewOpt = None,
    plate_colorspace: PlateSpaceOpt = None,
    source: Annotated[str | None, typer.Option(help="alpha|file|keyer|sam|grabcut")] = None,
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
    """Compute the subject matte of a shot: EXR sequence + overlay previews (docs/mattes.md)."""
    from . import segment as seg
    from . import spec as specmod
    from .errors import SpecError

    base: dict[str, Any] = specmod.load(spec_file) if spec_file else {}
    base = {k: base[k] for k in ("plate", "matte", "color", "threads") if k in base}
    overrides = {
        "plate": {"path": plate, "frames": frames, "layer": plate_layer, "view": plate_view,
                  "colorspace": plate_colorspace},
        "matte": _matte_overrides(base.get("matte") or {}, source, matte, matte_channel, point,
                                  box, key_matte, sam_checkpoint, screen),
        "output": {"path": output, "layer": layer, "preview": preview, "existing": existing},
        "threads": threads,
    }
    overrides["matte"]["track"] = {"mode": track}
    overrides["matte"]["refine"] = {"grow": grow, "feather": feather, "temporal": temporal}
    merged = specmod.merge(base, overrides)
    try:
        shot = seg.SegmentSpec.model_validate(merged)
    except specmod.ValidationError as exc:
        raise SpecError(f"invalid segment settings: {specmod.format_errors(exc)}") from exc
    with _reporter(progress) as report:
        result = seg.run(shot, report)
    if progress != ProgressMode.json and result.preview:
        typer.echo(f"preview: {os.path.join(result.preview, 'contact_sheet.png')}", err=True)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (loopback only unless --allow-remote)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: a free one)")] = 0,
    state_dir: Annotated[str | None, typer.Option(help="Folder for the connection file and job database")] = None,
    idle_timeout: Annotated[float, typer.Option(help="Exit after this many seconds without jobs or requests")] = 1800.0,
    model_budget_gb: Annotated[float, typer.Option(help="Memory for warm models before the least recently used is dropped")] = 16.0,
    allow_remote: Annotated[bool, typer.Option("--allow-remote", help="Allow a non-loopback --host (anyone with the token can run jobs)")] = False,
    hard_kill_after: Annotated[float, typer.Option(help="Seconds a cancelled job may take to stop before the worker exits to end it")] = 30.0,
) -> None:
    """Run the local worker: keeps models warm, queues jobs, streams progress (docs/worker.md)."""
    from .worker.server import serve as run_server

    run_server(state_dir, host, port, idle_timeout, allow_remote, model_budget_gb,
               hard_kill_after, announce=lambda line: typer.echo(line, err=True))


@app.command()
def info(
    pattern: Annotated[str, typer.Argument(help="Sequence pattern, e.g. plate.####.exr")],
    frames: Annotated[str | None, typer.Option(help="Frame range to check")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Range, gaps, sizes, windows and channels of a sequence (or one image).

    Exits 3 when the sequence has gaps, unreadable frames or mixed sizes/channels."""
    from . import imageio, shotinfo

    if os.path.isfile(pattern):
        i = imageio.probe(pattern)
        data = {"path": i.path, "display_window": str(i.display), "data_window": str(i.data),
                "channels": list(i.channels), "format": f"{i.file_format} {i.pixel_format}",
                "pixel_aspect": i.pixel_aspect, **i.layout(), "flags": "; ".join(i.flags())}
    else:
        data = shotinfo.describe(pattern, frames)
    if as_json:
        typer.echo(json.dumps(data, indent=2, default=str))
    else:
        for key, value in data.items():
            if value in ({}, "", []):
                continue
            if isinstance(value, dict):
                value = "; ".join(f"{k}: {v}" for k, v in value.items())
            typer.echo(f"{key:>16}  {value}")
    if data.get("consistent") is False:
        raise typer.Exit(3)


@app.command()
def doctor(
    model: Annotated[list[str] | None, typer.Option(help="Model folder to check")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Check Python, OpenImageIO, OpenColorIO, torch/CUDA and model folders."""
    from . import doctor as doc

    report = doc.check(model)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        typer.echo(f"actanywhere {__version__} on Python {report['python']} ({report['platform']})")
        for name, version in report["packages"].items():
            typer.echo(f"  {name:<16} {version or '-'}")
        typer.echo(f"  OCIO config      {report.get('ocio_config', '-')}")
        typer.echo(f"  torch            {json.dumps(report['torch'])}")
        for d, m in report["models"].items():
            typer.echo(f"  model {d}: {json.dumps(m)}")
        for p in report["problems"]:
            typer.echo(f"problem: {p}", err=True)
        typer.echo("ok" if report["ok"] else "problems found")
    if not report["ok"]:
        raise typer.Exit(1)


@app.command()
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
    from . import demo as demo_mod

    with _reporter(progress) as report:
        p = demo_mod.run_demo(out, frames, width, height, engine, report, threads)
    if progress != ProgressMode.json:
        typer.echo(f"plate:         {p.plate}\nbackground:    {p.background}\n"
                   f"spec:          {p.spec}\noutput:        {p.output}\n"
                   f"contact sheet: {p.contact_sheet}\npreview:       {p.preview}")


model_app = typer.Typer(no_args_is_help=True, help="Build, inspect and check model checkpoints.")
app.add_typer(model_app, name="model")


@model_app.command("init")
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
    from .errors import SpecError
    from .model import checkpoint

    if condition not in ("embed", "patches"):
        raise SpecError(f"--condition {condition!r}: use embed or patches")
    parts = [unet, motion_adapter, image_encoder, vae]
    if random:
        if any(parts):
            raise SpecError("--random builds random weights; do not also pass component folders")
        from .model.components import ARCHITECTURES, build_random

        if random not in ARCHITECTURES:
            raise SpecError(f"--random {random!r}: use one of {', '.join(ARCHITECTURES)}")
        comps = build_random(random, seed=seed, condition=condition)  # type: ignore[arg-type]
        trained = {name: "random (untrained)" for name in comps.modules()}
        source = {"random": random, "seed": seed}
    else:
        if not all(parts):
            raise SpecError("model init needs --unet, --motion-adapter, --image-encoder and --vae "
                            "(folders you downloaded), or --random tiny|full")
        from .model.assemble import from_parts

        comps, trained, source = from_parts(unet, motion_adapter, image_encoder, vae,  # type: ignore[arg-type]
                                            condition=condition, allow_pickle=allow_pickle)  # type: ignore[arg-type]
    path = checkpoint.save(comps, out, trained=trained, source=source, overwrite=overwrite)
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


def _check_model(path: str, hashes: bool, as_json: bool) -> None:
    from .model import checkpoint

    report = checkpoint.verify(path, hashes=hashes)
    _print_report(report, as_json)
    if report.problems:
        raise typer.Exit(5)
    if hashes and not as_json:
        typer.echo("ok")


@model_app.command("info")
def model_info(
    path: Annotated[str, typer.Argument(help="Checkpoint folder")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Architecture, parameters, dtypes and which parts are trained (no hashing)."""
    _check_model(path, False, as_json)


@model_app.command("verify")
def model_verify(
    path: Annotated[str, typer.Argument(help="Checkpoint folder")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Check every tensor's name and shape against the configs and every file's sha256."""
    _check_model(path, True, as_json)


@app.command()
def train(
    config: Annotated[str, typer.Option("--config", help="Training config, TOML or JSON (see docs/training.md)")],
    output: Annotated[str | None, typer.Option(help="Run folder (overrides the config's output)")] = None,
    model: Annotated[str | None, typer.Option(help="Starting checkpoint folder or architecture (overrides the config)")] = None,
    steps: Annotated[int | None, typer.Option(min=1, help="Total optimizer steps (overrides the config)")] = None,
    device: Annotated[str | None, typer.Option(help="auto|cpu|cuda (overrides the config)")] = None,
) -> None:
    """Train or fine-tune a model; run again with the same output folder to resume."""
    from .train import config as train_config
    from .train.loop import run as run_training

    cfg = train_config.load(config, {"output": output and os.path.abspath(output),
                                     "model": model, "steps": steps, "device": device})
    run_training(cfg, report=lambda line: typer.echo(line, err=True))


@app.command()
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
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole result as JSON")] = False,
) -> None:
    """Score a model on held-out clips (and the untrained baseline); JSON + report PNGs."""
    from .train import evaluate as ev
    from .train.config import DataConfig
    from .train.config import load as load_train

    data_cfg = load_train(data, {"output": out}).data if data else DataConfig()
    updates = {k: v for k, v in (("frames", frames), ("resolution", resolution)) if v}
    data_cfg = data_cfg.model_copy(update=updates)
    doc = ev.run(model, out, clips=clips, data=data_cfg, steps=steps, guidance=guidance,
                 seed=seed, baseline=baseline, clip_path=clip, i3d_path=i3d, device=device,
                 report=lambda line: typer.echo(line, err=True))
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


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs the CLI and turns errors into one line and an exit code."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach a model hub at run time
    raw = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in raw
    args = [a for a in raw if a != "--debug"]
    try:
        app(args=args, prog_name="actanywhere", standalone_mode=True)
    except SystemExit as exc:  # typer/click exit: usage errors are 2
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except ActAnywhereError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: cancelled", file=sys.stderr)
        return 130
    return 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
