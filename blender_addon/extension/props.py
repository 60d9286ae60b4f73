"""What the panel edits and the .blend keeps: the next take's settings (per scene) and the
list of takes made (each a folder on disk; deleting an entry or its strip keeps the files)."""

from __future__ import annotations

import time
import zlib

import bpy

from . import colour, strips
from .vendor.actanywhere import catalog
from .vendor.actanywhere.api import shotspec

#: the matte menu's items of the sources this package ships (identifier, name, description,
#: the number a .blend saves: those of the menu before it came from the catalog); a source
#: registered later is listed by its name, upper-case
MATTES = {
    "alpha": ("ALPHA", "Plate Alpha", "The plate's alpha channel", 0),
    "file": ("STRIP", "Matte Strip", "The alpha of another image strip, lined up on the "
             "timeline", 1),
    "keyer": ("KEYER", "Keyer", "Green/blue-screen colour-difference key", 2),
    "sam": ("SAM", "SAM", "Segment Anything from points/boxes on key frames, tracked (a "
            "checkpoint file)", 3),
    "grabcut": ("GRABCUT", "GrabCut", "OpenCV GrabCut from points/boxes on key frames (no "
                "model)", 4),
    "sam2": ("SAM2", "SAM 2", "SAM 2.1 / EdgeTAM video segmentation from points/boxes on key "
             "frames, tracked by the model's memory (a model folder)", 5),
    "sam3": ("SAM3", "SAM 3", "Every instance of what the Text Prompt names, tracked "
             "(points/boxes on key frames pick some)", 6),
}
#: the sources prompted by a text (``matte.text``); the ShotSpec's ``spec.TEXT_SOURCES``
#: (tests/test_blender.py holds them equal)
TEXT_SOURCES = ("sam3",)


#: the numbers .blend files saved before the engine menu came from the catalog hold
_SAVED = {"composite": 0, "diffusion": 1}
#: every item list handed to Blender, kept: Blender keeps pointers to their strings
_ITEMS: dict[tuple, list] = {}
_SAID: set[str] = set()


def engine_number(name: str) -> int:
    """An engine's number in the menu (what a .blend saves): the same in every session
    whatever engines are registered and in what order."""
    return _SAVED.get(name, 2 + zlib.crc32(name.encode()) % (1 << 30))


def _engine_items(settings, context) -> list:
    """The engine menu: every engine of the catalog (a studio's too), as it is now."""
    found, problem = shotspec.engines()
    if problem and problem not in _SAID:  # said once, in the console
        _SAID.add(problem)
        print(f"ActAnywhere: {problem}")
    items = [(t.name, t.name.replace("_", " ").title(), t.summary or t.name, "NONE",
              engine_number(t.name)) for t in found]
    return _ITEMS.setdefault(tuple(items), items)


def matte_items(settings, context) -> list:
    """The matte menu: every matte source of the catalog (a studio's too)."""
    items = []
    for name in catalog.matte_sources():
        ident, label, text, number = MATTES.get(name, (
            name.upper(), name.replace("_", " ").title(), name,
            7 + zlib.crc32(name.encode()) % (1 << 30)))
        items.append((ident, label, text, "NONE", number))
    return _ITEMS.setdefault(tuple(items), items)


def matte_source(identifier: str) -> str:
    """The catalog's name of a matte menu item (``STRIP`` is ``file``)."""
    return next((k for k, v in MATTES.items() if v[0] == identifier), identifier.lower())


def matte_tracked(identifier: str) -> bool:
    """Whether the source takes points and boxes on key frames."""
    traits = catalog.matte_sources().get(matte_source(identifier))
    return traits is not None and traits.tracked


def matte_sam(identifier: str) -> bool:
    """Whether the source reads a SAM model (``matte.sam.checkpoint``): sam, sam2 and their
    successors."""
    return matte_source(identifier).startswith("sam")


def matte_texted(identifier: str) -> bool:
    """Whether the source takes a text prompt (``matte.text``)."""
    return matte_source(identifier) in TEXT_SOURCES


def panel_values(settings, engine: str) -> dict:
    """The properties of engine ``engine``'s settings (named as its fields)."""
    return {k: getattr(settings, k) for k in shotspec.panel(engine) if hasattr(settings, k)}


def _engine_changed(settings, context) -> None:
    """Settings still at an engine's starting value take the new engine's (steps 25 -> 30
    for vace); those the artist set are kept."""
    engine = settings.engine
    for name, value in shotspec.switched(engine, panel_values(settings, engine)).items():
        setattr(settings, name, value)


def _switch_take(settings, context) -> None:
    """Selecting a take shows its strip and mutes its siblings' (nothing is deleted)."""
    if 0 <= settings.take_index < len(settings.takes):
        strips.show_only(context.scene, settings.takes[settings.take_index])


class ActAnywhereTake(bpy.types.PropertyGroup):
    # name: take_001 (PropertyGroup's own)
    plate: bpy.props.StringProperty(description="The plate strip the take was made from")
    folder: bpy.props.StringProperty(subtype="DIR_PATH", description="The take's folder")
    output: bpy.props.StringProperty(description="The frames' pattern (####)")
    strip: bpy.props.StringProperty(description="The take's strip")
    status: bpy.props.StringProperty(default="starting")
    farm: bpy.props.StringProperty(description="The job bundle that queued it on the farm")
    progress: bpy.props.FloatProperty(min=0.0, max=1.0)
    message: bpy.props.StringProperty(description="Progress, or the error, as one line")
    label: bpy.props.StringProperty()
    engine: bpy.props.StringProperty()
    seed: bpy.props.IntProperty()
    created: bpy.props.StringProperty(description="When Generate was pressed")
    first: bpy.props.IntProperty(description="First file frame")
    count: bpy.props.IntProperty(description="Frames asked for")
    written: bpy.props.IntProperty(description="Frames on disk when the take ended")
    timeline_start: bpy.props.IntProperty(description="Timeline frame of the first frame")
    channel: bpy.props.IntProperty(description="The plate's channel")
    colorspace: bpy.props.StringProperty(default="Linear Rec.709")


class ActAnywhereSettings(bpy.types.PropertyGroup):
    background_source: bpy.props.EnumProperty(
        name="Background", items=[("STRIP", "Strip", "An image strip in this scene"),
                                  ("FILE", "File", "An image file")], default="FILE")
    background_strip: bpy.props.StringProperty(name="Background Strip")
    background_file: bpy.props.StringProperty(name="Background File", subtype="FILE_PATH")
    matte: bpy.props.EnumProperty(name="Matte", items=matte_items, default=0,
                                  description="Where the subject's matte comes from: the "
                                  "matte sources of the catalog (docs/mattes.md)")
    matte_strip: bpy.props.StringProperty(name="Matte Strip")
    screen: bpy.props.EnumProperty(name="Screen", items=[("green", "Green", ""),
                                                         ("blue", "Blue", "")])
    points: bpy.props.StringProperty(
        name="Points", description="Key-frame points FRAME:X,Y[,LABEL] (timeline frame, plate "
        "pixels from the top left, label 0 = not subject), separated by spaces")
    boxes: bpy.props.StringProperty(
        name="Boxes", description="Key-frame boxes FRAME:X0,Y0,X1,Y1 (timeline frame, plate "
        "pixels from the top left), separated by spaces")
    objects: bpy.props.StringProperty(
        name="Objects", description="Several objects, each tracked on its own and written as "
        "its own layer matte.<name>.A in the take (the subject is their union; leave Points, "
        "Boxes and Text Prompt empty). Objects separated by | (or new lines), each NAME: box "
        "FRAME:X0,Y0,X1,Y1; point FRAME:X,Y[,LABEL]; text WORDS (SAM 3), e.g. 'hero: box "
        "1:40,20,300,500 | dog: point 1:600,400' (timeline frame, plate pixels from the top "
        "left)")
    matte_text: bpy.props.StringProperty(
        name="Text Prompt", description="SAM 3: what to find in the shot, e.g. person "
        "(matte.text): every instance found, united; Points/Boxes on key frames pick some")
    sam_checkpoint: bpy.props.StringProperty(
        name="SAM Model", subtype="FILE_PATH",
        description="SAM: a Segment Anything checkpoint file (.pth/.safetensors); SAM 2: a SAM "
        "2.1 / EdgeTAM (SAM 3: its) model folder (docs/mattes.md); empty: the worker's "
        "default")
    engine: bpy.props.EnumProperty(
        name="Engine", items=_engine_items, default=0, update=_engine_changed,
        description="What makes the background: the engines of the catalog (docs/vace.md for "
        "vace)")
    model: bpy.props.StringProperty(
        name="Model", subtype="DIR_PATH",
        description="Model folder. Diffusion: an ActAnywhere model, empty: the shipped model; "
        "Vace: the Wan VACE diffusers folder you downloaded, e.g. "
        "Wan2.1-VACE-1.3B-diffusers (needed, docs/vace.md)")
    prompt: bpy.props.StringProperty(
        name="Prompt", description="Vace: what the background shows, in words (the "
        "background decides most of it); empty: a neutral prompt asking for its scene")
    negative_prompt: bpy.props.StringProperty(
        name="Negative Prompt", description="Vace: what to steer away from; empty: the "
        "engine's own list")
    seed: bpy.props.IntProperty(name="Seed", default=0, min=0)
    steps: bpy.props.IntProperty(name="Steps", default=25, min=1, max=1000,
                                 description="Denoising steps (Diffusion 25, Vace 30 to "
                                 "start with)")
    guidance: bpy.props.FloatProperty(
        name="Guidance", default=2.0, min=1.0, max=50.0,
        description="How strongly the take follows the background (Diffusion: 2, the shipped "
        "model's recommended value) or the prompt (Vace: 5)")
    init_strength: bpy.props.FloatProperty(
        name="Start From Background", default=0.5, min=0.0, max=1.0,
        description="Start from the (moved) background, 0 to 1 (img2img): 0 starts from "
        "noise; Diffusion: 0.5 (the shipped model's recommended value) keeps the layout, "
        "0.85 nearly all of it; Vace starts at 0")
    motion: bpy.props.EnumProperty(name="Background Motion", items=[
        ("none", "None", "A still background"),
        ("auto", "Auto", "Camera metadata, else tracking, else the subject"),
        ("track", "Track", "The plate's own background, tracked"),
        ("metadata", "Metadata", "The plate's EXR camera matrices (CG plates)"),
        ("subject", "Subject", "Learned from the matte alone (green screen)")],
        default="none", description="How the background moves with the plate's camera")
    output_folder: bpy.props.StringProperty(
        name="Output", subtype="DIR_PATH", default="//actanywhere",
        description="Takes go to <output>/<plate strip>/take_NNN; // is the .blend's folder")
    takes: bpy.props.CollectionProperty(type=ActAnywhereTake)
    take_index: bpy.props.IntProperty(update=_switch_take)
    status: bpy.props.StringProperty(description="The last thing that happened, one line")


CLASSES = (ActAnywhereTake, ActAnywhereSettings)


def register() -> None:
    bpy.types.Scene.actanywhere = bpy.props.PointerProperty(type=ActAnywhereSettings)
    _engine_items(None, None)  # a studio's engine module that cannot load: said now, once


def unregister() -> None:
    del bpy.types.Scene.actanywhere


def settings(scene) -> ActAnywhereSettings:
    return scene.actanywhere


def add_take(settings, take, plate_name: str, seq) -> ActAnywhereTake:
    """A list entry for ``take`` (an ``api.Take``) of the plate strip ``plate_name`` whose
    visible frames are ``seq`` (``plate.Sequence``); its strip gets the colourspace the take
    was written in (the spec's working space)."""
    entry = settings.takes.add()
    entry.name, entry.plate, entry.folder = take.name, plate_name, take.folder
    entry.first, entry.count = seq.first, seq.last - seq.first + 1
    entry.timeline_start, entry.channel = seq.timeline_start, seq.channel
    working = (take.spec.get("color") or {}).get("working_space", colour.DEFAULT_WORKING)
    entry.colorspace = colour.LINEAR.get(working, colour.blender_name(colour.DEFAULT_WORKING))
    entry.created = time.strftime("%Y-%m-%d %H:%M", time.localtime(take.created or time.time()))
    return entry
