"""``actanywhere farm export``: shots and a wedge of takes as a render-farm job bundle."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import ProgressMode, ProgressOpt, reporter

app = typer.Typer(no_args_is_help=True, help="Render-farm job bundles (docs/farm.md).")


@app.command("export")
def export(
    specs: Annotated[list[str], typer.Argument(help="ShotSpec files (JSON or TOML), one per shot")],
    out: Annotated[str, typer.Option("--out", help="Bundle folder to write")],
    output_root: Annotated[str, typer.Option(help="Where takes go: <root>/<shot>/take_NNN/")],
    wedge: Annotated[list[str] | None, typer.Option("--wedge", help="FIELD=V1,V2,...: one take per value (any ShotSpec field, e.g. diffusion.seed=1,2,3 or background.path=a.exr,b.exr); repeat for a grid")] = None,
    chunk: Annotated[int, typer.Option(min=1, help="Composite engine: frames per task")] = 10,
    gpu_memory: Annotated[float | None, typer.Option(help="Model engines: GPU memory a task needs, GiB (default: the engine's estimate for its model, else 8)")] = None,
    os_family: Annotated[str, typer.Option("--os", help="Host OS family: linux, windows or macos")] = "linux",
    name: Annotated[str, typer.Option(help="Job name")] = "ActAnywhere",
    command: Annotated[str | None, typer.Option(help="The actanywhere command on the farm hosts (default: this install's)")] = None,
    split: Annotated[int, typer.Option(min=0, help="Diffusion: split shots longer than this many frames into parts (tasks) joined by a final step; 0 never")] = 0,
    split_overlap: Annotated[int, typer.Option(min=1, help="--split: frames adjacent parts share (cross-faded by the join)")] = 8,
    fmt: Annotated[str, typer.Option("--format", help="openjd (template.yaml: Deadline Cloud, openjd run) or opencue (job.xml for Cuebot)")] = "openjd",
) -> None:
    """Write a job bundle: template.yaml (Open Job Description), parameter values, specs."""
    from .. import spec as spec_mod
    from .. import spec_files
    from ..errors import SpecError
    from ..farm import bundle

    if os_family not in ("linux", "windows", "macos"):
        raise SpecError(f"--os {os_family!r}: use linux, windows or macos")
    shots = [spec_mod.from_dict(spec_files.load(p)) for p in specs]
    done = bundle.export(shots, wedge or [], out, output_root, name, chunk, gpu_memory,
                         os_family, command, split, split_overlap, fmt, spec_files=specs)
    shots_n = len({t.shot for t in done.takes})
    typer.echo(f"wrote {done.template} ({len(done.takes)} take(s) of {shots_n} shot(s))")
    typer.echo(f"submit:      {done.submit}")
    typer.echo(f"run locally: {done.run_locally or 'no local runner for OpenCue (needs Cuebot)'}")
    for note in done.notes:
        typer.echo(f"note: {note}")
    if done.replaced:
        typer.echo(f"replaced the bundle in {out}: {len(done.replaced)} take(s) it had "
                   "reserved and never started marked cancelled")


@app.command("join")
def join(
    spec_file: Annotated[str, typer.Option("--spec", help="The take's ShotSpec (the bundle's specs/<shot>/<take>.json)")],
    part: Annotated[list[str], typer.Option("--part", help="A part's frames FIRST-LAST; repeat, in order")],
    parts_dir: Annotated[str, typer.Option(help="Folder holding each part's frames in <FIRST-LAST>/")],
    stem: Annotated[str, typer.Option(help="The parts' file name stem (<stem>.####.exr)")],
    output: Annotated[str | None, typer.Option("--output", "-o", help="The take's frames (default: the spec's output.path)")] = None,
    progress: ProgressOpt = ProgressMode.bar,
) -> None:
    """Cross-fade a split take's overlapping parts into its frames (the farm's last step)."""
    from .. import spec as spec_mod
    from .. import spec_files
    from ..farm import join as join_mod
    from ..media import frames as frames_mod

    data = spec_files.load(spec_file)
    if output:
        data = spec_files.merge(data, {"output": {"path": output}})
    shot = spec_mod.from_dict(data)
    with reporter(progress) as report:
        join_mod.join(shot, [frames_mod.parse_frames(p) for p in part], parts_dir, stem,
                      report)
