"""The same export as an OpenCue job: an outline built with ``opencue-pyoutline`` and
serialised to the job spec XML that Cuebot launches (``opencue.api.launchSpec``).

OpenCue has layers of frames and no session environments or path parameters, so: one layer
per take (composite: the shot's frame range in chunks, ``#FRAME_START#-#FRAME_END#``;
diffusion: one frame that generates the whole take, on a GPU host); a split take is one
single-frame layer per part plus a ``join`` layer depending on all of them. Every task
loads its own model (no warm worker), and paths are written as they are on this machine
(map them with the farm's own path rules).
"""

from __future__ import annotations

import os
import shlex

from ..errors import SpecError
from .openjd import StepPlan

#: the OpenCue service the layers ask for (a studio maps it to its hosts)
SERVICE = "actanywhere"


def _generate(command: str, spec: str, output: str, frames: str | None,
              proxy: bool = True) -> str:
    args = [command, "generate", "--spec", spec, "--output", output, "--existing", "skip",
            "--progress", "bar"]
    if frames is not None:
        args += ["--frames", frames]
    if not proxy:
        args.append("--no-proxy")
    # OpenCue substitutes #FRAME_START# / #FRAME_END# in the command; they must stay bare
    return " ".join(a if a.startswith("#FRAME") else shlex.quote(a) for a in args)


def serialize(name: str, steps: list[StepPlan], specs_dir: str, output_root: str,
              command: str, chunk: int, show: str = "actanywhere", user: str | None = None
              ) -> str:
    """The OpenCue job spec (XML) for ``steps``: what ``cuerun`` / ``launchSpec`` submit."""
    try:
        import outline
        from outline import cuerun
        from outline.modules.shell import Shell
    except ImportError:
        raise SpecError("--format opencue needs opencue-pyoutline: install it in this venv "
                        "(pip install opencue-pyoutline)") from None

    job = outline.Outline(_safe(name), show=show, user=user or _user())
    for step in steps:
        gpu = {"gpus": 1, "gpu_memory": f"{int(step.gpu_memory_gib)}g",
               "tags": "gpu"} if step.gpu else {}
        common = {"memory": f"{int(step.memory_gib)}g", "service": SERVICE, **gpu}
        for take in step.takes:
            spec = os.path.join(specs_dir, step.shot, f"{take}.json")
            folder = os.path.join(output_root, step.shot, take)
            output = os.path.join(folder, step.frames_name)
            layer_name = _safe(f"{step.shot}_{take}")
            if step.chunks:  # chunks of the frame range
                job.add_layer(Shell(layer_name, command=_generate(
                    command, spec, output, "#FRAME_START#-#FRAME_END#"),
                    range=step.frame_range, chunk=chunk, **common))
                continue
            if not step.parts:  # the whole take: one frame on a GPU host
                job.add_layer(Shell(layer_name, command=_generate(command, spec, output, None),
                                    range="1", chunk=1, **common))
                continue
            parts = []
            for part in step.parts:
                layer = Shell(_safe(f"{layer_name}_{part}"), command=_generate(
                    command, spec, os.path.join(folder, "parts", part,
                                                f"{step.shot}.####.exr"), part, proxy=False),
                    range="1", chunk=1, **common)
                job.add_layer(layer)
                parts.append(layer)
            join = [command, "farm", "join", "--spec", spec, "--parts-dir",
                    os.path.join(folder, "parts"), "--stem", step.shot, "--output", output,
                    "--progress", "bar"]
            for part in step.parts:
                join += ["--part", part]
            joined = Shell(f"{layer_name}_join", command=shlex.join(join), range="1",
                           chunk=1, memory=common["memory"], service=SERVICE)
            for layer in parts:
                joined.depend_all(layer)
            job.add_layer(joined)
    return cuerun.OutlineLauncher(job, show=show).serialize(use_pycuerun=False)


def _safe(text: str) -> str:
    """A layer/job name OpenCue accepts (letters, digits, _ and -)."""
    return "".join(c if c.isalnum() or c in "_-" else "_" for c in text)


def _user() -> str:
    try:
        import getpass

        return getpass.getuser()
    except (KeyError, OSError):
        return "actanywhere"
