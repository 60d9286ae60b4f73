"""The Open Job Description job template (``jobtemplate-2023-09``) of an export.

One step per shot. Its tasks: one per take (a whole-shot engine such as diffusion: the
model's windows need every frame), or per take and part when a long shot of a splittable
engine is split (parts overlap; a second step, ``<shot>_join``, depends on it and
cross-fades each take's parts, ``join.py``), or per take and frame chunk (an engine that
renders frames independently, such as composite). Paths are PATH parameters so a farm maps
them between machines: the bundle's specs folder (in), each shot's plate (in), each take's
background (a task parameter, in) and the output root (out). Steps of an engine with a model
run in a step environment that starts one warm worker per session (``onEnter``) and stops
it (``onExit``): the takes of a shot that a host runs load the model once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SPEC_VERSION = "jobtemplate-2023-09"
WORKER_DIR = "{{Session.WorkingDirectory}}/actanywhere-worker"


@dataclass
class StepPlan:
    """What one shot's step runs."""

    shot: str
    plate: str  # the plate pattern (a PATH job parameter)
    takes: list[str]  # take folder names, one spec file each: specs/<shot>/<take>.json
    backgrounds: list[str]  # per take
    #: frame chunks of an engine that renders frames independently: "1001-1010", ...
    chunks: list[str] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)  # a split whole-shot take: "1001-1048", ...
    frame_range: str = ""  # the shot's frames, e.g. "1001-1100"
    gpu_memory_gib: float = 8.0
    memory_gib: float = 16.0
    os_family: str = "linux"
    gpu: bool = False  # the engine wants a GPU host
    warm: bool = False  # the engine loads a model: takes run in a warm worker per session
    frames: str = ""  # the takes' frames' file name (default ``<shot>.####.exr``)

    @property
    def frames_name(self) -> str:
        return self.frames or f"{self.shot}.####.exr"


def _param(shot: str) -> str:
    return f"Plate_{shot}"


def template(name: str, steps: list[StepPlan], specs_dir: str, output_root: str,
             command: str = "actanywhere") -> dict[str, Any]:
    """The job template as a dict (written as YAML); defaults are this machine's paths."""
    params: list[dict[str, Any]] = [
        {"name": "SpecsDir", "type": "PATH", "objectType": "DIRECTORY", "dataFlow": "IN",
         "default": specs_dir, "description": "The bundle's specs folder"},
        {"name": "OutputRoot", "type": "PATH", "objectType": "DIRECTORY", "dataFlow": "OUT",
         "default": output_root, "description": "Takes go to <OutputRoot>/<shot>/<take>/"},
        {"name": "ActAnywhere", "type": "STRING", "default": command,
         "description": "The actanywhere command on the farm's hosts"},
    ]
    for step in steps:
        params.append({"name": _param(step.shot), "type": "PATH", "objectType": "FILE",
                       "dataFlow": "IN", "default": step.plate,
                       "description": f"{step.shot}: the plate sequence"})
    return {"specificationVersion": SPEC_VERSION, "name": name,
            "parameterDefinitions": params,
            "steps": [out for s in steps for out in _steps(s)]}


def _steps(step: StepPlan) -> list[dict[str, Any]]:
    """A shot's step, and its join step when it is split into parts."""
    return [_step(step), _join(step)] if step.parts else [_step(step)]


def _output(step: StepPlan) -> str:
    return "{{Param.OutputRoot}}/" + step.shot + "/{{Task.Param.Take}}"


def _join(step: StepPlan) -> dict[str, Any]:
    """Each take's parts cross-faded into its frames, once every part has finished."""
    args = ["farm", "join", "--spec",
            "{{Param.SpecsDir}}/" + step.shot + "/{{Task.Param.Take}}.json",
            "--parts-dir", _output(step) + "/parts", "--stem", step.shot,
            "--output", _output(step) + "/" + step.frames_name, "--progress", "openjd"]
    for part in step.parts:
        args += ["--part", part]
    return {
        "name": f"{step.shot}_join",
        "dependencies": [{"dependsOn": step.shot}],
        "parameterSpace": {"taskParameterDefinitions": [
            {"name": "Take", "type": "STRING", "range": step.takes}]},
        "hostRequirements": _requirements(step, gpu=False),
        "script": {"actions": {"onRun": {"command": "{{Param.ActAnywhere}}", "args": args}}},
    }


def _requirements(step: StepPlan, gpu: bool) -> dict[str, Any]:
    """Host requirements: memory and OS, and with ``gpu`` a GPU with enough memory."""
    amounts: list[dict[str, Any]] = [
        {"name": "amount.worker.memory", "min": int(step.memory_gib * 1024)}]
    if gpu:
        amounts += [{"name": "amount.worker.gpu", "min": 1},
                    {"name": "amount.worker.gpu.memory", "min": int(step.gpu_memory_gib * 1024)}]
    return {"amounts": amounts,
            "attributes": [{"name": "attr.worker.os.family", "anyOf": [step.os_family]}]}


def _step(step: StepPlan) -> dict[str, Any]:
    task_params: list[dict[str, Any]] = [
        {"name": "Take", "type": "STRING", "range": step.takes},
        {"name": "Background", "type": "PATH", "range": step.backgrounds},
    ]
    combination = "(Take, Background)"
    # a part's frames are the join's input: named after the shot (``farm join --stem``)
    output = _output(step) + ("/parts/{{Task.Param.Part}}/" + step.shot + ".####.exr"
                              if step.parts else "/" + step.frames_name)
    args = ["generate", "--spec", "{{Param.SpecsDir}}/" + step.shot + "/{{Task.Param.Take}}.json",
            "--plate", "{{Param." + _param(step.shot) + "}}",
            "--background", "{{Task.Param.Background}}",
            "--output", output,
            "--existing", "skip", "--progress", "openjd"]
    if step.parts:  # a part's frames only; the take's proxies and record are the join's
        task_params.append({"name": "Part", "type": "STRING", "range": step.parts})
        combination += " * Part"
        args += ["--frames", "{{Task.Param.Part}}", "--no-proxy"]
    if step.chunks:
        task_params.append({"name": "Frames", "type": "STRING", "range": step.chunks})
        combination += " * Frames"
        args += ["--frames", "{{Task.Param.Frames}}"]
    if step.warm:
        args += ["--worker", "--state-dir", WORKER_DIR]
    out: dict[str, Any] = {
        "name": step.shot,
        "parameterSpace": {"taskParameterDefinitions": task_params, "combination": combination},
        "hostRequirements": _requirements(step, gpu=step.gpu),
        "script": {"actions": {"onRun": {"command": "{{Param.ActAnywhere}}", "args": args}}},
    }
    if step.warm:
        out["stepEnvironments"] = [{
            "name": "ActAnywhereWarmWorker",
            "description": "One worker per session: the model loads once for all its takes",
            "script": {"actions": {
                "onEnter": {"command": "{{Param.ActAnywhere}}",
                            "args": ["serve", "--detach", "--state-dir", WORKER_DIR,
                                     "--idle-timeout", "3600"]},
                "onExit": {"command": "{{Param.ActAnywhere}}",
                           "args": ["serve", "--stop", "--state-dir", WORKER_DIR]}}}}]
    return out
