"""The ActAnywhere node's definition: its knobs and internals, written out as
``gizmos/ActAnywhere.gizmo`` (no ``nuke`` import: run it with any Python 3.10+).

    python3 nuke_plugin/actanywhere_nuke/definition.py   # rewrites the gizmo

A test keeps the shipped gizmo equal to ``gizmo_text()``. Inside the Group: the inputs
``plate`` (0), ``bg`` (1) and ``matte`` (2), a Read of the chosen take whose file and range
are expressions on the node's hidden knobs (so the Viewer, downstream nodes and ``nuke -t``
Write renders show the take without the plugin's Python or the worker), and a Switch that
passes the plate through until there is a take.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

GIZMO = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "gizmos", "ActAnywhere.gizmo")

#: Nuke's knob type ids, as addUserKnob takes them
TYPES = {"String_Knob": 1, "File_Knob": 2, "Int_Knob": 3, "Enumeration_Knob": 4,
         "Boolean_Knob": 6, "Double_Knob": 7, "Tab_Knob": 20, "PyScript_Knob": 22,
         "Text_Knob": 26, "Multiline_Eval_String_Knob": 43}

#: the engine menu as the gizmo file writes it: the engines this package ships. The node
#: lists the catalog's engines (a studio's too) when it is made, opened or its panel shown
#: (``node.refresh_engines``), so an engine registered later needs no edit here.
ENGINES = ("composite", "diffusion", "vace")
#: the knobs only some engines use; the node shows those of the chosen engine (hidden here:
#: the menu starts at composite, which uses none)
ENGINE_KNOBS = ("model", "seed", "steps", "guidance", "init_strength", "prompt",
                "negative_prompt")

#: the matte menu as the gizmo file writes it: the sources this package ships, by the names
#: the menu shows (``alpha`` and ``file`` read as the node takes them). The node lists the
#: catalog's sources when it is made, opened or its panel shown (``node.refresh_mattes``).
MATTE_SOURCES = ("plate alpha", "matte input", "keyer", "sam", "sam2", "sam3", "grabcut")
#: the menu's names of the catalog's ``alpha`` and ``file`` sources
MATTE_LABELS = {"alpha": "plate alpha", "file": "matte input"}
#: the sources prompted by a text (``matte.text``) as well as, or instead of, key frames; the
#: ShotSpec's ``spec.TEXT_SOURCES`` (tests/test_nuke.py holds them equal)
TEXT_SOURCES = ("sam3",)
#: the knobs only some matte sources use (hidden here: the menu starts at plate alpha)
MATTE_KNOBS = ("matte_text", "points", "boxes", "objects", "sam_checkpoint")
RANGE_MODES = ("input", "root", "custom")
MOTION_SOURCES = ("none", "auto", "track", "metadata", "subject")


def _py(call: str) -> str:
    """A knob's Python: import the plugin, call it on this node; a one-line message instead
    of a traceback when the plugin is not on this Nuke's path (a farm without it)."""
    return ("try:\n    import actanywhere_nuke.node as aa\nexcept ImportError as exc:\n"
            "    aa = None\n    print('ActAnywhere: the plugin is not on NUKE_PATH (%s); "
            "see docs/nuke.md' % exc)\nif aa is not None:\n    aa." + call)


@dataclass
class Knob:
    kind: str
    name: str
    label: str | None = None
    default: object = None
    values: tuple[str, ...] = ()
    tooltip: str = ""
    flags: tuple[str, ...] = ()
    range: tuple[float, float] | None = None
    script: str = ""


KNOBS: list[Knob] = [
    Knob("Tab_Knob", "actanywhere", "ActAnywhere"),
    Knob("Enumeration_Knob", "engine", "engine", values=ENGINES,
         tooltip="composite: the subject over the background with a contact shadow (fast, no "
         "model); diffusion: the ActAnywhere model generates a background video that follows "
         "the subject; vace: Wan VACE (a model folder you downloaded, docs/vace.md) generates "
         "it from the background and the prompt. Engines a studio registers are listed too"),
    Knob("File_Knob", "model", "model folder", tooltip="diffusion: an ActAnywhere model "
         "folder; empty: the shipped small model (a proof, not production). vace: the Wan "
         "VACE diffusers folder you downloaded, e.g. Wan2.1-VACE-1.3B-diffusers (needed; "
         "docs/vace.md)", flags=("+INVISIBLE",)),
    Knob("Enumeration_Knob", "matte_source", "matte", values=MATTE_SOURCES,
         tooltip="plate alpha: the plate's own A; matte input: the A of the matte input; "
         "keyer: a green/blue-screen key of the plate; sam / sam2 / grabcut: segmented from "
         "the points and boxes on key frames, tracked through the shot (sam2: by the SAM 2 "
         "video model's memory); sam3: every instance of what the text prompt names. Sources "
         "a studio registers are listed too"),
    Knob("String_Knob", "matte_text", "text prompt", tooltip="sam3: what to find in the "
         "shot, e.g. person (matte.text): every instance found, united; points/boxes on key "
         "frames pick some of them", flags=("+INVISIBLE",)),
    Knob("String_Knob", "points", "points", tooltip="Clicks on key frames for sam/sam2/"
         "sam3/grabcut, FRAME:X,Y[,LABEL] separated by spaces, e.g. 1001:812,440 1001:900,300,0 "
         "(label 1 subject, 0 not subject; Viewer pixels, y up from the bottom)",
         flags=("+INVISIBLE",)),
    Knob("String_Knob", "boxes", "boxes", tooltip="Boxes around the subject on key frames, "
         "FRAME:X0,Y0,X1,Y1 (Viewer pixels) separated by spaces", flags=("+INVISIBLE",)),
    Knob("Multiline_Eval_String_Knob", "objects", "objects", tooltip="Several objects, each "
         "tracked on its own and written as its own layer matte.<name>.A in the take (the "
         "subject is their union; points/boxes/text prompt above stay empty). One object per "
         "line, NAME: box FRAME:X0,Y0,X1,Y1; point FRAME:X,Y[,LABEL]; text WORDS (sam3), e.g. "
         "'hero: box 1001:40,20,300,500; point 1001:170,260' (Viewer pixels, y up from the "
         "bottom). Pick a layer downstream with a Shuffle", flags=("+INVISIBLE",)),
    Knob("File_Knob", "sam_checkpoint", "SAM model", tooltip="sam: a Segment Anything "
         "checkpoint file (.pth/.safetensors), empty: $ACTANYWHERE_SAM_CHECKPOINT; sam2/sam3: "
         "the model folder (docs/mattes.md), empty: the worker's default "
         "(matte.sam.checkpoint)", flags=("+INVISIBLE",)),
    Knob("Int_Knob", "seed", "seed", 0, tooltip="Same seed + inputs + device = same take",
         flags=("+INVISIBLE",)),
    Knob("Int_Knob", "steps", "steps", 25, tooltip="Denoising steps (diffusion 25, vace 30 "
         "to start with)", flags=("-STARTLINE", "+INVISIBLE")),
    Knob("Double_Knob", "guidance", "guidance", 2.0, range=(1.0, 10.0),
         tooltip="How strongly the take follows the background (diffusion: 2, the shipped "
         "model's recommended value) or the prompt (vace: 5)", flags=("+INVISIBLE",)),
    Knob("Double_Knob", "init_strength", "start from background", 0.5, range=(0.0, 1.0),
         tooltip="Start from the (moved) background, 0 to 1 (img2img); 0 starts from noise. "
         "Diffusion: 0.5 (the shipped model's recommended value) keeps the layout and lets "
         "the model relight it, 0.85 nearly all of it; vace starts at 0",
         flags=("+INVISIBLE",)),
    Knob("Multiline_Eval_String_Knob", "prompt", "prompt", tooltip="vace: what the "
         "background shows, in words (the background input decides most of it), e.g. 'a "
         "rainy city street at night'; empty: a neutral prompt that asks for the background "
         "input's scene", flags=("+INVISIBLE",)),
    Knob("String_Knob", "negative_prompt", "negative prompt", tooltip="vace: what to steer "
         "away from; empty: the engine's own list (blurry, flicker, text, ...)",
         flags=("+INVISIBLE",)),
    Knob("Enumeration_Knob", "motion", "background motion", values=MOTION_SOURCES,
         tooltip="How the background moves with the plate's camera (docs/motion.md). none: a "
         "still background; auto: camera metadata, else tracking, else the subject; "
         "metadata: the plate's EXR camera matrices; track: the plate's own background; "
         "subject: learned from the matte alone (green screen)"),
    Knob("Enumeration_Knob", "range_mode", "frame range", values=RANGE_MODES,
         tooltip="input: the plate input's range; root: the script's range; custom: the "
         "range typed beside"),
    Knob("String_Knob", "frames", "", tooltip="Custom range, e.g. 1001-1100",
         flags=("-STARTLINE",)),
    Knob("File_Knob", "output_folder", "output folder", tooltip="Where this node's takes go "
         "(take_001, take_002 ...); empty: an 'actanywhere/<node name>' folder beside the "
         "script"),
    Knob("File_Knob", "worker_connection", "worker connection", tooltip="A shared worker's "
         "connection file (its URL, your token, its CA and the path maps; from the worker's "
         "admin, docs/worker.md): takes run there and come back to this machine's paths. "
         "Empty: $ACTANYWHERE_CONNECTION, else a worker on this machine (started from "
         "$ACTANYWHERE_PYTHON)"),
    Knob("File_Knob", "farm_folder", "farm bundles", tooltip="Where Send to farm writes its "
         "job bundles (a folder per send, on a disk the farm reads). Empty: "
         "$ACTANYWHERE_FARM_FOLDER, else 'actanywhere/farm' beside the script"),
    Knob("PyScript_Knob", "generate", "Generate", script=_py("generate(nuke.thisNode())"),
         flags=("+STARTLINE",), tooltip="Render the inputs if needed, send the job to the "
         "worker and keep working; the result becomes a new take"),
    Knob("PyScript_Knob", "cancel", "Cancel", script=_py("cancel(nuke.thisNode())"),
         tooltip="Stop the running job (frames written so far are kept in its take)"),
    Knob("PyScript_Knob", "send_to_farm", "Send to farm",
         script=_py("send_to_farm(nuke.thisNode())"), flags=("-STARTLINE",),
         tooltip="Export this take as a job bundle into the farm folder and submit it with "
         "Deadline Cloud's CLI (deadline bundle submit) where it is set up, else show the "
         "command to submit it; the take waits in the list as queued on the farm until its "
         "frames arrive (Refresh)"),
    Knob("Enumeration_Knob", "take", "take", values=("none",), flags=("+STARTLINE",),
         tooltip="The take this node shows; every take is kept in its own folder"),
    Knob("PyScript_Knob", "refresh", "Refresh", script=_py("refresh(nuke.thisNode())"),
         flags=("-STARTLINE",), tooltip="Read the take list from the output folder again"),
    Knob("PyScript_Knob", "read_from_take", "Read node from take",
         script=_py("read_from_take(nuke.thisNode())"), flags=("-STARTLINE",),
         tooltip="A standalone Read of the chosen take, for downstream work"),
    Knob("Text_Knob", "status", "status", default="", flags=("+STARTLINE",)),
    # what the internal Read shows; saved with the script, so a take survives reopening and
    # renders on a farm without the plugin
    Knob("String_Knob", "take_file", flags=("+INVISIBLE",)),
    Knob("Int_Knob", "take_first", default=1, flags=("+INVISIBLE",)),
    Knob("Int_Knob", "take_last", default=1, flags=("+INVISIBLE",)),
    Knob("Boolean_Knob", "has_take", default=False, flags=("+INVISIBLE",)),
    # the chosen engine's name, saved with the script: an engine missing from the menu
    # written above (a studio's) is chosen again when the node lists the catalog's
    Knob("String_Knob", "engine_name", flags=("+INVISIBLE",)),
    # the chosen matte source's catalog name, saved with the script, for the same reason
    Knob("String_Knob", "matte_name", flags=("+INVISIBLE",)),
]

ON_CREATE = _py("on_create(nuke.thisNode())")
KNOB_CHANGED = _py("knob_changed(nuke.thisNode(), nuke.thisKnob())")
HELP = ("ActAnywhere: a background video that follows the subject. Plug in the plate (with "
        "its alpha, or a matte input), a background still, press Generate. Each Generate "
        "makes a new take; pick one in 'take'. docs/nuke.md")


@dataclass
class Internal:
    cls: str
    name: str
    knobs: list[tuple[str, str]] = field(default_factory=list)  # (name, written value)
    inputs: tuple[str, ...] = ()  # input 0, 1, ... by node name


INTERNALS = [
    Internal("Input", "plate", [("number", "0")]),
    Internal("Input", "bg", [("number", "1")]),
    Internal("Input", "matte", [("number", "2")]),
    Internal("Read", "TakeRead", [("file", '"\\[value parent.take_file]"'),
                                  ("first", "{{parent.take_first}}"),
                                  ("last", "{{parent.take_last}}"),
                                  ("origfirst", "{{parent.take_first}}"),
                                  ("origlast", "{{parent.take_last}}"),
                                  ("raw", "true"),  # takes come back in the working space
                                  ("on_error", "black")]),
    Internal("Switch", "ShowTake", [("which", "{{parent.has_take}}")],
             inputs=("plate", "TakeRead")),
    Internal("Output", "Output1", inputs=("ShowTake",)),
]


def quote(text: str) -> str:
    """A word as Nuke's script parser (Tcl) reads it back unchanged."""
    if text and re.fullmatch(r"[A-Za-z0-9_.+\-]+", text):
        return text
    out = text.replace("\\", "\\\\").replace('"', '\\"').replace("[", "\\[")
    out = out.replace("$", "\\$").replace("\n", "\\n")
    return f'"{out}"'


def _knob_line(k: Knob) -> str:
    words = [str(TYPES[k.kind]), k.name]
    if k.label is not None:
        words += ["l", quote(k.label)]
    if k.kind == "Enumeration_Knob":
        words += ["M", "{" + " ".join(quote(v) for v in k.values) + "}"]
    if k.range is not None:
        words += ["R", f"{k.range[0]:g}", f"{k.range[1]:g}"]
    if k.kind in ("PyScript_Knob", "Text_Knob"):
        words += ["T", quote(k.script if k.kind == "PyScript_Knob" else str(k.default or ""))]
    if k.tooltip:
        words += ["t", quote(k.tooltip)]
    words += list(k.flags)
    return " addUserKnob {" + " ".join(words) + "}"


def _value(k: Knob) -> str | None:
    if k.default is None or k.kind in ("Text_Knob", "PyScript_Knob", "Tab_Knob"):
        return None
    if isinstance(k.default, bool):
        return "true" if k.default else "false"
    if isinstance(k.default, float):
        return f"{k.default:g}"
    return quote(str(k.default))


def gizmo_text() -> str:
    lines = ["# ActAnywhere node for Nuke 15+. Generated by nuke_plugin/actanywhere_nuke/"
             "definition.py: edit that, then run it.", "version 15.0 v1", "Gizmo {",
             " inputs 3", f" help {quote(HELP)}", f" onCreate {quote(ON_CREATE)}",
             f" knobChanged {quote(KNOB_CHANGED)}", " tile_color 0x5a8f5aff"]
    lines += [_knob_line(k) for k in KNOBS]
    lines += [f" {k.name} {v}" for k in KNOBS if (v := _value(k)) is not None]
    lines.append("}")
    # nodes are written in order; a node pops its inputs off the stack, input 0 on top, so
    # each input's node is pushed last-input first
    for i, node in enumerate(INTERNALS):
        for src in reversed(node.inputs):
            lines.append(f"push ${src}")
        body = [f" inputs {len(node.inputs)}", *[f" {k} {v}" for k, v in node.knobs],
                f" name {node.name}", f" xpos {i * 110}", f" ypos {0 if node.inputs else -120}"]
        lines += [f"{node.cls} {{", *body, "}"]
        lines.append(f"set {node.name} [stack 0]")
    lines.append("end_group")
    return "\n".join(lines) + "\n"


def write(path: str = GIZMO) -> str:
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(gizmo_text())
    return path


if __name__ == "__main__":
    print(write())
