"""``actanywhere farm export``: shots and a wedge of takes as a render-farm job bundle."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, help="Render-farm job bundles (docs/farm.md).")


@app.command("export")
def export(
    specs: Annotated[list[str], typer.Argument(help="ShotSpec files (JSON or TOML), one per shot")],
    out: Annotated[str, typer.Option("--out", help="Bundle folder to write")],
    output_root: Annotated[str, typer.Option(help="Where takes go: <root>/<shot>/take_NNN/")],
    wedge: Annotated[list[str] | None, typer.Option("--wedge", help="FIELD=V1,V2,...: one take per value (any ShotSpec field, e.g. diffusion.seed=1,2,3 or background.path=a.exr,b.exr); repeat for a grid")] = None,
    chunk: Annotated[int, typer.Option(min=1, help="Composite engine: frames per task")] = 10,
    gpu_memory: Annotated[float, typer.Option(help="Diffusion: GPU memory a task needs, GiB")] = 8.0,
    os_family: Annotated[str, typer.Option("--os", help="Host OS family: linux, windows or macos")] = "linux",
    name: Annotated[str, typer.Option(help="Job name")] = "ActAnywhere",
    command: Annotated[str | None, typer.Option(help="The actanywhere command on the farm hosts (default: this install's)")] = None,
    fmt: Annotated[str, typer.Option("--format", help="openjd (Deadline Cloud, openjd run)")] = "openjd",
) -> None:
    """Write a job bundle: template.yaml (Open Job Description), parameter values, specs."""
    from .. import spec as spec_mod
    from ..errors import SpecError
    from ..farm import bundle

    if fmt != "openjd":
        raise SpecError(f"--format {fmt!r}: only openjd is written today (docs/farm.md)")
    if os_family not in ("linux", "windows", "macos"):
        raise SpecError(f"--os {os_family!r}: use linux, windows or macos")
    shots = [spec_mod.from_dict(spec_mod.load(p)) for p in specs]
    done = bundle.export(shots, wedge or [], out, output_root, name, chunk, gpu_memory,
                         os_family, command)
    shots_n = len({t.shot for t in done.takes})
    typer.echo(f"wrote {done.template} ({len(done.takes)} take(s) of {shots_n} shot(s))")
    typer.echo(f"submit:      {done.submit}")
    typer.echo(f"run locally: {done.run_locally}")
