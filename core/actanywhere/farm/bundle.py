"""A job bundle folder: ``template.yaml``, ``parameter_values.yaml`` and the takes' specs.

The layout is Deadline Cloud's job bundle (``deadline bundle submit FOLDER``); ``openjd run
FOLDER/template.yaml -p file://FOLDER/openjd_parameters.json`` runs it locally. Take
folders are reserved at export (``<output>/<shot>/take_NNN/`` made exclusively, with a
``take.json`` saying it is queued on the farm), so two exports never write into one take.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import yaml

from .. import catalog, engines
from ..api.atomic import write_json as atomic_json
from ..api.atomic import write_text as atomic_text
from ..api.takes import TAKE_FILE, Take, Takes
from ..errors import OutputError, SpecError
from ..media import frames as frames_mod
from ..shot.plan import spec_inputs
from ..spec import ShotSpec, from_dict
from . import join, openjd, wedge


@dataclass
class Exported:
    folder: str
    template: str  # template.yaml (OpenJD) or job.xml (OpenCue)
    parameters: str | None
    openjd_parameters: str | None
    takes: list[wedge.Take]
    submit: str  # the command that sends it to Deadline Cloud / Cuebot
    run_locally: str | None  # the command that runs it here (OpenJD only)
    replaced: list[str] = field(default_factory=list)  # a previous bundle's unstarted takes
    notes: list[str] = field(default_factory=list)  # settings the export changed, and why


def chunks(frame_list: list[int], size: int) -> list[str]:
    """``1001-1010``, ``1011-1020``, ... covering the frames (each chunk contiguous)."""
    out: list[str] = []
    run: list[int] = []
    for f in frame_list:
        if run and (f != run[-1] + 1 or len(run) >= size):
            out.append(f"{run[0]}-{run[-1]}")
            run = []
        run.append(f)
    if run:
        out.append(f"{run[0]}-{run[-1]}")
    return out


#: the files an export writes at the top of its folder, and the folder of the takes' specs
BUNDLE_FILES = ("template.yaml", "parameter_values.yaml", "openjd_parameters.json", "job.xml",
                "bundle.json")
SPECS_DIR = "specs"
DEFAULT_GPU_GIB = 8.0  # a GPU task's memory when neither the export nor its engine says


def export(shots: list[ShotSpec], wedge_items: list[str], folder: str, output_root: str,
           name: str = "ActAnywhere", chunk: int = 10, gpu_memory_gib: float | None = None,
           os_family: str = "linux", command: str | None = None, split: int = 0,
           split_overlap: int = 8, fmt: str = "openjd", *,
           spec_files: list[str] | None = None) -> Exported:
    """Write the bundle for ``shots`` times the wedge; returns what was written. ``split``
    (diffusion): shots longer than this many frames are generated in parts that overlap by
    ``split_overlap`` frames and joined by a dependent step (``join.py``). ``fmt``: openjd
    (``template.yaml`` and its parameter values) or opencue (``job.xml``, ``opencue.py``).
    ``spec_files``: the ShotSpec files the shots came from: the bundle never writes over
    them (nor over any file a shot reads). A bundle already in ``folder`` is replaced; the
    takes it reserved that never started are marked cancelled. ``gpu_memory_gib``: what a
    GPU task asks of its host (None: the engine's estimate for the take, else 8 GiB)."""
    if not shots:
        raise SpecError("farm export: give at least one ShotSpec")
    if fmt not in ("openjd", "opencue"):
        raise SpecError(f"--format {fmt!r}: use openjd (Deadline Cloud, openjd run) or opencue")
    if chunk < 1:
        raise SpecError(f"--chunk {chunk}: at least 1 frame per task")
    takes = wedge.expand(shots, wedge.parse(wedge_items))
    folder, output_root = os.path.abspath(folder), os.path.abspath(output_root)
    _refuse_inputs_in(folder, [*(spec_files or []), *(p for s in shots for p in
                                                         spec_inputs(s))])
    previous = _previous_takes(folder)
    made = Made()
    try:
        done = _write(made, takes, folder, output_root, name, chunk, gpu_memory_gib,
                      os_family, command or _command(), split, split_overlap, fmt)
    except BaseException:
        made.undo()  # a refused or failed export leaves nothing of its own behind
        raise
    done.replaced = _replace_previous(folder, previous)
    return done


def _write(made: Made, takes: list[wedge.Take], folder: str, output_root: str, name: str,
           chunk: int, gpu_memory_gib: float | None, os_family: str, command: str,
           split: int, split_overlap: int, fmt: str) -> Exported:
    """The take folders reserved and the bundle's files written, each noted in ``made``."""
    specs_dir = os.path.join(folder, SPECS_DIR)
    try:
        made.folder(specs_dir)
        made.folder(output_root)
    except OSError as exc:
        raise OutputError(f"{exc.filename}: cannot make the folder ({exc.strerror}); choose "
                          "another --out / --output-root") from None
    by_shot: dict[str, list[wedge.Take]] = {}
    for take in takes:
        by_shot.setdefault(take.shot, []).append(take)
    notes: list[str] = []
    steps = [_reserve(made, shot, shot_takes, specs_dir=specs_dir, output_root=output_root,
                      chunk=chunk, split=split, split_overlap=split_overlap,
                      gpu_memory_gib=gpu_memory_gib, os_family=os_family, notes=notes)
             for shot, shot_takes in by_shot.items()]
    _write_manifest(made, folder, takes, output_root)
    if fmt == "opencue":
        from . import opencue

        job_path = os.path.join(folder, "job.xml")
        xml = opencue.serialize(name, steps, specs_dir, output_root, command, chunk)
        made.write(job_path, lambda p: atomic_text(p, xml))
        return Exported(folder, job_path, None, None, takes,
                        submit="python -c \"import opencue; opencue.api.launchSpec(open("
                               f"'{job_path}').read())\"",
                        run_locally=None, notes=notes)
    tmpl = openjd.template(name, steps, specs_dir, output_root, command)
    template_path = os.path.join(folder, "template.yaml")
    made.write(template_path, lambda p: atomic_text(
        p, yaml.safe_dump(tmpl, sort_keys=False, width=100)))
    values = {"SpecsDir": specs_dir, "OutputRoot": output_root, "ActAnywhere": command,
              **{f"Plate_{s.shot}": s.plate for s in steps}}
    params_path = os.path.join(folder, "parameter_values.yaml")
    made.write(params_path, lambda p: atomic_text(p, yaml.safe_dump(
        {"parameterValues": [{"name": k, "value": v} for k, v in values.items()]},
        sort_keys=False)))
    local_path = os.path.join(folder, "openjd_parameters.json")
    made.write(local_path, lambda p: atomic_json(p, values))
    return Exported(folder, template_path, params_path, local_path, takes,
                    submit=f"deadline bundle submit {folder}",
                    run_locally=f"openjd run {template_path} -p file://{local_path}",
                    notes=notes)


def _reserve(made: Made, shot: str, shot_takes: list[wedge.Take], *, specs_dir: str,
             output_root: str,
             chunk: int, split: int, split_overlap: int, gpu_memory_gib: float | None,
             os_family: str, notes: list[str]) -> openjd.StepPlan:
    """One shot's step: its takes' folders reserved (``queued``), their specs written, its
    tasks planned as its engine's traits say (frame chunks, one task per take, or parts);
    settings a part needs changed are said in ``notes``."""
    first = shot_takes[0].spec
    traits = catalog.engine(first.engine.name)
    if any(t.spec.engine.name != traits.name for t in shot_takes):
        raise SpecError(f"{shot}: a wedge of engine.name is not supported in one step; "
                        "export the engines separately")
    frame_list = list(frames_mod.resolve(first.plate.path, first.plate.frames).frames)
    parts = join.plan(frame_list, split, split_overlap) \
        if split and traits.splittable else [frame_list]
    for take in shot_takes if len(parts) > 1 else []:  # before any folder is reserved
        join.check_splittable(take.spec, shot)
    reserved = Takes(os.path.join(output_root, shot))
    made.folder(reserved.root)
    for take in shot_takes:
        # what the artist set, no more: unset fields take the model's recommended values
        data = take.spec.model_dump(mode="json", exclude_unset=True)
        if len(parts) > 1:
            section = data.setdefault(traits.settings or "", {})
            section["shot_frames"] = frames_mod.compact(frame_list)
            extra, note = engines.engine_class(traits.name).part_settings(take.spec,
                                                                          split_overlap)
            section.update(extra)
            if note and f"{shot}: {note}" not in notes:
                notes.append(f"{shot}: {note}")
            take.spec = from_dict(data)
        record = reserved.new(status="queued", label=_label(take), engine=traits.name)
        made.reserved(record.folder)
        take.name = record.name
        made.folder(os.path.join(specs_dir, shot))
        made.write(os.path.join(specs_dir, shot, f"{take.name}.json"),
                   lambda p, d=data: atomic_json(p, d))
        record.update(spec=data, seed=catalog.seed_of(data))
    return openjd.StepPlan(
        shot=shot, plate=os.path.abspath(first.plate.path),
        takes=[t.name for t in shot_takes],
        backgrounds=[os.path.abspath(t.spec.background.path) for t in shot_takes],
        chunks=chunks(frame_list, chunk) if not traits.whole_shot else [],
        parts=[f"{p[0]}-{p[-1]}" for p in parts] if len(parts) > 1 else [],
        frame_range=frames_mod.compact(frame_list),
        gpu_memory_gib=gpu_memory_gib or _gpu_need(shot_takes),
        os_family=os_family, gpu=traits.needs_gpu, warm=traits.model is not None,
        frames=shot_takes[0].frames)


def _gpu_need(shot_takes: list[wedge.Take]) -> float:
    """GiB of GPU memory the shot's takes need, as their engine estimates it (8 by default)."""
    estimates = [engines.engine_class(t.spec.engine.name).gpu_memory_gib(t.spec)
                 for t in shot_takes]
    return max([e for e in estimates if e] or [DEFAULT_GPU_GIB])


def _refuse_inputs_in(folder: str, inputs: list[str]) -> None:
    """OutputError when an input (a ShotSpec file, a plate frame...) is where the bundle
    writes: one of its top files, or anything under its ``specs/``."""
    real = os.path.realpath(folder)
    ours = {os.path.join(real, f) for f in BUNDLE_FILES}
    for path in inputs:
        rp = os.path.realpath(path)
        if rp in ours or rp.startswith(os.path.join(real, SPECS_DIR) + os.sep):
            raise OutputError(f"{path}: the bundle in {folder} would overwrite this input; "
                              "choose another --out (or move the file out of it)")


def _previous_takes(folder: str) -> list[str]:
    """The take folders a bundle already in ``folder`` reserved (its ``bundle.json``)."""
    try:
        with open(os.path.join(folder, "bundle.json")) as fh:
            reserved = json.load(fh).get("takes", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [str(t) for t in reserved] if isinstance(reserved, list) else []


def _replace_previous(folder: str, previous: list[str]) -> list[str]:
    """Of the previous bundle's take folders, those that never started, marked cancelled (a
    replaced bundle's takes would otherwise wait as queued forever); after the export is
    written, so a refused one changes nothing."""
    marked = []
    for take_dir in previous:
        try:
            record = Take.load(take_dir)
        except (OSError, ValueError, TypeError):
            continue
        if record.status == "queued" and not record.files():
            record.update(status="cancelled",
                          error=f"replaced by a later farm export to {folder}")
            marked.append(record.folder)
    return marked


def _write_manifest(made: Made, folder: str, takes: list[wedge.Take],
                    output_root: str) -> None:
    """``bundle.json``: the take folders this bundle reserved (a later export to the same
    folder cancels those that never ran)."""
    folders = [os.path.join(output_root, t.shot, t.name) for t in takes]
    made.write(os.path.join(folder, "bundle.json"),
               lambda p: atomic_json(p, {"output_root": output_root, "takes": folders}))


class Made:
    """What an export made (folders, files, reserved take folders), so that a refused or
    failed export removes exactly that: never a file or folder that was there before (a
    previous bundle's files it writes over stay, rewritten), never a folder that holds
    anything else."""

    def __init__(self) -> None:
        self.files: list[str] = []
        self.folders: list[str] = []

    def folder(self, path: str) -> None:
        """``path`` and any missing folder above it made, the new ones noted."""
        missing = []
        while not os.path.isdir(path):
            missing.append(path)
            parent = os.path.dirname(path)
            if parent == path:
                break
            path = parent
        for new in reversed(missing):
            os.makedirs(new, exist_ok=True)
            self.folders.append(new)

    def write(self, path: str, writer: Callable[[str], object]) -> None:
        """``writer(path)``; the file is noted when it is new."""
        new = not os.path.lexists(path)
        writer(path)
        if new:
            self.files.append(path)

    def reserved(self, take_folder: str) -> None:
        """A take folder ``Takes.new`` made exclusively, and its record."""
        self.folders.append(take_folder)
        self.files.append(os.path.join(take_folder, TAKE_FILE))

    def undo(self) -> None:
        for path in reversed(self.files):
            with contextlib.suppress(OSError):
                os.remove(path)
        for path in reversed(self.folders):
            with contextlib.suppress(OSError):
                os.rmdir(path)  # only when empty: nothing else is ever removed


def _label(take: wedge.Take) -> str:
    bits = [take.spec.engine.name] + [f"{k.split('.')[-1]} {v}" for k, v in take.values.items()]
    return ", ".join(bits) + " (farm)"


def _command() -> str:
    """This install's ``actanywhere`` (beside this Python), else the name on PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), "actanywhere")
    return beside if os.path.isfile(beside) else (shutil.which("actanywhere") or "actanywhere")
