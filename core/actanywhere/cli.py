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
    from .progress import RichReporter, json_reporter, null_reporter

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
    return contextlib.nullcontext(null_reporter)


ProgressOpt = Annotated[ProgressMode, typer.Option(
    "--progress", help="bar: terminal bar; json: one JSON event per line on stdout; none")]


@app.command()
def generate(
    spec_file: Annotated[str | None, typer.Option("--spec", help="ShotSpec JSON or TOML file")] = None,
    plate: Annotated[str | None, typer.Option(help="Plate pattern, e.g. plate.####.exr")] = None,
    frames: Annotated[str | None, typer.Option(help="Frame range, e.g. 1001-1100 or 1-50x2")] = None,
    plate_layer: Annotated[str | None, typer.Option(help="Plate layer holding the colour")] = None,
    plate_colorspace: Annotated[str | None, typer.Option(help="OCIO colourspace of the plate")] = None,
    missing: Annotated[str | None, typer.Option(help="Missing plate frames: error|hold|black")] = None,
    matte: Annotated[str | None, typer.Option(help="Matte sequence pattern (implies --matte-source file)")] = None,
    matte_source: Annotated[str | None, typer.Option(help="alpha (a plate channel) or file")] = None,
    matte_channel: Annotated[str | None, typer.Option(help="Matte channel, e.g. A or matte.A")] = None,
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
    seed: Annotated[int | None, typer.Option(help="Diffusion: random seed")] = None,
    steps: Annotated[int | None, typer.Option(help="Diffusion: denoising steps")] = None,
    print_spec: Annotated[bool, typer.Option(help="Print the resolved ShotSpec as JSON and exit")] = False,
    progress: ProgressOpt = ProgressMode.bar,
) -> None:
    """Generate output frames for a shot (from --spec and/or flags; flags win)."""
    from . import job, spec

    base: dict[str, Any] = spec.load(spec_file) if spec_file else {}
    if matte and not matte_source:
        matte_source = "file"
    overrides = {
        "plate": {"path": plate, "frames": frames, "layer": plate_layer,
                  "colorspace": plate_colorspace, "missing": missing},
        "matte": {"source": matte_source, "path": matte, "channel": matte_channel},
        "background": {"path": background, "colorspace": background_colorspace},
        "engine": {"name": engine, "model": model},
        "composite": {"harmonize": harmonize, "shadow": shadow},
        "diffusion": {"seed": seed, "steps": steps},
        "color": {"config": ocio, "output_space": output_colorspace},
        "output": {"path": output, "existing": existing, "compression": compression,
                   "layers": [x.strip() for x in layers.split(",")] if layers else None},
        "threads": threads,
    }
    shot = spec.from_dict(spec.merge(base, overrides))
    if print_spec:
        typer.echo(spec.dump_json(shot))
        return
    with _reporter(progress) as report:
        job.run(shot, report)


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
                "pixel_aspect": i.pixel_aspect}
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
    engine: Annotated[str, typer.Option(help="composite or diffusion")] = "composite",
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
