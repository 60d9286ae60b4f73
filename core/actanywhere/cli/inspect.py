"""``actanywhere info``, ``doctor`` and ``version``: what a sequence holds, what this install
can do."""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer

from .. import __version__


def info(
    pattern: Annotated[str, typer.Argument(help="Sequence pattern, e.g. plate.####.exr")],
    frames: Annotated[str | None, typer.Option(help="Frame range to check")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Range, gaps, sizes, windows and channels of a sequence (or one image).

    Exits 3 when the sequence has gaps, unreadable frames or mixed sizes/channels."""
    from ..media import imageio
    from . import shotinfo

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


def version() -> None:
    """Print the version."""
    typer.echo(__version__)
