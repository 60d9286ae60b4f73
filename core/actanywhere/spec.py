"""ShotSpec: one validated description of a job, from JSON/TOML files, CLI flags or hosts."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, Literal

from pydantic import (
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from . import catalog
from .api.shotspec import SPEC_VERSION, check_size
from .errors import SpecError
from .media.formats import COMPRESSIONS
from .media.frames import parse_frames
from .motion import SOURCES as MOTION_SOURCES
from .settings import CompositeSettings, DiffusionSettings, Strict, VaceSettings

MATTE_SOURCES = tuple(catalog.matte_sources())

#: version N -> a function turning a version-N spec dict into a version N+1 one. A change to
#: the format bumps SPEC_VERSION and adds its step here, so specs the worker stored, and
#: files artists saved, keep loading (docs/shotspec.md).
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


class PlateSpec(Strict):
    path: str = Field(min_length=1, description="Plate sequence pattern: plate.####.exr, "
                      "plate.%04d.exr, ...")
    frames: str | None = Field(None, description="Frame range, e.g. 1001-1100 or 1-50x2; default: "
                               "first to last frame on disk")
    layer: str = Field("", description="Layer holding the colour (empty: R,G,B)")
    view: str | None = Field(None, description="Stereo/multi-view files: the view whose colour "
                             "and matte are used (single-part multiView or multi-part); "
                             "default: the hero (first) view")
    colorspace: str | None = Field(None, description="OCIO colourspace; default by file format")
    missing: Literal["error", "hold", "black"] = Field(
        "error", description="Missing frames: error, hold the previous frame, or black")

    @field_validator("frames")
    @classmethod
    def _frames(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                parse_frames(v)
            except SpecError as exc:
                raise ValueError(str(exc).split(": ", 1)[-1]) from None
        return v


class KeyFrame(Strict):
    """Prompts on one key frame, in display-window pixels (x right, y down, origin top-left)."""

    frame: int = Field(description="Plate frame number")
    points: list[tuple[float, float, int]] = Field(
        default_factory=list, description="Clicks (x, y, label): label 1 subject, 0 not subject")
    boxes: list[tuple[float, float, float, float]] = Field(
        default_factory=list, description="Boxes (x0, y0, x1, y1) around the subject; several "
        "boxes are united")
    matte: str | None = Field(None, description="A painted matte for this frame (any image; "
                              "its A, Y, only channel, or R of a gray RGB painting); used as "
                              "is, prompts ignored")

    @field_validator("points")
    @classmethod
    def _labels(cls, v: list[tuple[float, float, int]]) -> list[tuple[float, float, int]]:
        for x, y, label in v:
            if label not in (0, 1):
                raise ValueError(f"point ({x:g}, {y:g}) has label {label}; use 1 (subject) or 0 "
                                 "(not subject)")
        return v

    @field_validator("boxes")
    @classmethod
    def _boxes(cls, v: list[tuple[float, float, float, float]]) -> list:
        for x0, y0, x1, y1 in v:
            if x1 <= x0 or y1 <= y0:
                raise ValueError(f"box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) is empty; give x0 < x1 "
                                 "and y0 < y1")
        return v

    @model_validator(mode="after")
    def _something(self) -> KeyFrame:
        if not (self.points or self.boxes or self.matte):
            raise ValueError(f"key frame {self.frame} has no points, boxes or matte")
        return self


class TrackSettings(Strict):
    mode: Literal["segment", "flow"] = Field(
        "segment", description="segment: re-segment every frame from the flow-warped previous "
        "matte (box + points); flow: only warp the key frame mattes by optical flow")
    flow: Literal["dis", "farneback"] = Field("dis", description="OpenCV optical flow method")
    scale: int = Field(1024, ge=128, le=8192, description="Long side (px) at which flow is "
                       "computed")
    points: int = Field(6, ge=0, le=64, description="Subject points sampled per tracked frame")
    negative_points: int = Field(4, ge=0, le=64, description="Non-subject points sampled "
                                 "around the subject per tracked frame")
    min_agreement: float = Field(
        0.5, ge=0.0, le=1.0, description="IoU with the flow-warped matte below which a frame's "
        "re-segmentation is rejected (the warped matte is kept, with a warning)")


class SamSettings(Strict):
    checkpoint: str | None = Field(
        None, description="source sam: a SAM checkpoint file (.pth or .safetensors, "
        "vit_b/vit_l/vit_h; default $ACTANYWHERE_SAM_CHECKPOINT); source sam2: a model folder "
        "(SAM 2.1 or EdgeTAM as transformers saves it: config.json + model.safetensors + "
        "processor config; default $ACTANYWHERE_SAM2_MODEL); source sam3: a SAM 3 model folder "
        "(facebook/sam3 as transformers saves it, tokenizer included; default "
        "$ACTANYWHERE_SAM3_MODEL)")
    model_type: Literal["auto", "vit_b", "vit_l", "vit_h"] = Field(
        "auto", description="Expected architecture (source sam); auto: read from the "
        "checkpoint")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Where SAM runs")
    batch: int = Field(4, ge=1, le=64, description="Frames encoded at once on a GPU (1 on CPU)")
    cache_dir: str | None = Field(
        None, description="Image-embedding cache folder (source sam); default the user cache "
        "folder, empty string: memory only")
    allow_pickle: bool = Field(
        False, description="source sam2, sam3: load pickle weights (.bin) when the folder has no "
        "safetensors; pickle can run code, so only for files you trust")
    max_memory_frames: int | None = Field(
        None, ge=1, le=256, description="source sam2, sam3: tracked frames the video model "
        "keeps in its memory (the rest are dropped as it goes); default what the model reads "
        "back (15 for SAM 2.1: the last 6 "
        "frames' mask memories and 15 object pointers); fewer saves memory but shows the "
        "model less of the past")
    resume_from: str | None = Field(
        None, description="source sam2: a matte sequence a stopped run of this shot wrote "
        "(`segment --existing skip` sets it to its output): frames found there are kept as "
        "they are and tracking restarts from the nearest of them (a mask prompt)")
    resume_channel: str = Field("A", description="The channel of resume_from holding the "
                                "matte (segment --layer L writes L.A)")


#: an object's name: it becomes the EXR layer matte.<name> (letters, digits, _; no dots)
OBJECT_NAME = r"^[A-Za-z][A-Za-z0-9_]{0,31}$"
#: matte sources prompted by a text (matte.text, matte.objects[].text) rather than key frames
TEXT_SOURCES = ("sam3",)


class MatteObject(Strict):
    """One object of several (matte.objects): its own prompts, its own matte layer."""

    name: str = Field(description="Layer name: the object's matte is written as "
                      "matte.<name>.A (letters, digits and _, starting with a letter)")
    keys: list[KeyFrame] = Field(default_factory=list, description="Key frames with prompts, "
                                 "as matte.keys (sam, sam2, grabcut: the object's prompts; "
                                 "sam3: pick among the instances its text finds)")
    text: str | None = Field(None, description="source sam3: what to find, e.g. person")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not re.match(OBJECT_NAME, v):
            raise ValueError(f"object name {v!r} cannot be an EXR layer name; use letters, "
                             "digits and _ (starting with a letter, at most 32)")
        return v

    @model_validator(mode="after")
    def _frames(self) -> MatteObject:
        seen = [k.frame for k in self.keys]
        dup = sorted({f for f in seen if seen.count(f) > 1})
        if dup:
            raise ValueError(f"object {self.name}: key frame(s) {dup} given more than once; "
                             "merge their prompts")
        return self


class KeyerSettings(Strict):
    screen: Literal["green", "blue"] = Field("green", description="Screen colour")
    screen_color: tuple[float, float, float] | None = Field(
        None, description="Linear RGB of the clean screen; default: estimated per frame from "
        "the pixels where the screen channel dominates")
    balance: float = Field(0.5, ge=0.0, le=1.0, description="Weight of the first other "
                           "channel in the key (R for green, R for blue); the rest on the other")
    clip_black: float = Field(0.05, ge=0.0, lt=1.0, description="Key values below this are "
                              "pure screen (matte 0)")
    clip_white: float = Field(0.95, gt=0.0, le=1.0, description="Key values above this are "
                              "pure subject (matte 1)")
    despill: float = Field(1.0, ge=0.0, le=1.0, description="Spill removal on the subject "
                           "colour (0: none, 1: full)")


class RefineSettings(Strict):
    grow: float | None = Field(None, ge=-64, le=64, description="Grow (+) or shrink (-) the "
                               "matte by this many pixels; default 0")
    feather: float | None = Field(None, ge=0, le=64, description="Soften the edge (Gaussian "
                                  "sigma in pixels); default 0")
    fill_holes: float | None = Field(
        None, ge=0, le=1, description="Fill holes up to this fraction of the frame area; "
        "default 0.001 for sam/sam2/sam3/grabcut/keyer, 0 for alpha/file")
    min_island: float | None = Field(
        None, ge=0, le=1, description="Drop islands smaller than this fraction of the frame "
        "area; default 0.001 for sam/sam2/grabcut/keyer, 0 for alpha/file")
    temporal: int | None = Field(
        None, ge=0, le=8, description="Temporal smoothing radius in frames (edge-preserving: "
        "only changes smaller than temporal_tolerance are averaged, so moving edges do not "
        "lag); default 1 for sam/sam2/sam3/grabcut, 0 otherwise")
    temporal_tolerance: float = Field(0.2, gt=0, le=1, description="Frame-to-frame matte "
                                      "change treated as flicker rather than motion")


class MatteSpec(Strict):
    source: Literal[MATTE_SOURCES] = Field(  # type: ignore[valid-type]
        "alpha", description="alpha: a channel of the plate; file: a separate matte sequence; "
        "sam: Segment Anything from prompts on key frames, tracked through the shot; sam2: SAM "
        "2.1 or EdgeTAM video models (transformers) from the same prompts, tracked with the "
        "model's own memory; sam3: SAM 3 video models finding every instance of a text "
        "prompt (matte.text), tracked; grabcut: the same as sam with OpenCV GrabCut (no "
        "model); keyer: green/blue-screen colour-difference key")
    channel: str = Field("A", description="Channel name, e.g. A, matte.A, mask.Y")
    path: str | None = Field(None, description="Matte sequence pattern (source=file)")
    premultiplied: bool | None = Field(
        None, description="Plate colour is premultiplied by the matte; default: detected per "
        "frame (black wherever the matte is empty means premultiplied)")
    invert: bool = Field(False, description="Use 1 - matte")
    keys: list[KeyFrame] = Field(default_factory=list, description="Key frames with prompts "
                                 "(source=sam, sam2 or grabcut; sam3: boxes/points pick among "
                                 "the instances its text finds)")
    text: str | None = Field(None, description="source sam3: what to find in the shot, e.g. "
                             "person (every instance found, united; key-frame boxes/points "
                             "pick some)")
    objects: list[MatteObject] = Field(
        default_factory=list, description="Several objects, each with its own prompts (keys, "
        "text) and its own matte layer (output.layers objects: matte.<name>.A); the subject "
        "matte is their union. Tracked sources only; replaces matte.keys/matte.text")
    track: TrackSettings = Field(default_factory=TrackSettings)
    sam: SamSettings = Field(default_factory=SamSettings)
    keyer: KeyerSettings = Field(default_factory=KeyerSettings)
    refine: RefineSettings = Field(default_factory=RefineSettings)
    allow_empty: bool = Field(False, description="Accept frames where no subject is found "
                              "(otherwise an error naming the frame)")
    memory_mb: float = Field(1024, ge=0, description="Whole-shot mattes (tracked, temporally "
                             "smoothed) kept in memory, in MB; the rest wait in a temporary "
                             "file in the system temp folder (TMPDIR), so a long shot does not "
                             "grow the process")

    @model_validator(mode="after")
    def _keys(self) -> MatteSpec:
        tracked, texted = catalog.matte(self.source).tracked, self.source in TEXT_SOURCES
        if self.objects:
            self._check_objects(tracked, texted)
        elif texted and not (self.text or "").strip():
            raise ValueError(f"source {self.source} needs a text prompt (matte.text, e.g. "
                             "person; --text)")
        elif tracked and not texted and not self.keys:
            raise ValueError(f"source {self.source} needs at least one key frame with points, "
                             "boxes or a matte (matte.keys)")
        if self.text is not None and not texted:
            raise ValueError(f"matte.text: source {self.source} takes no text prompt; use "
                             f"source {' or '.join(TEXT_SOURCES)}")
        seen = [k.frame for k in self.keys]
        dup = sorted({f for f in seen if seen.count(f) > 1})
        if dup:
            raise ValueError(f"key frame(s) {dup} given more than once; merge their prompts")
        return self

    def _check_objects(self, tracked: bool, texted: bool) -> None:
        if not tracked:
            raise ValueError(f"matte.objects: source {self.source} is not tracked from prompts; "
                             "use sam, sam2, sam3 or grabcut")
        if self.keys or self.text:
            raise ValueError("matte.objects: give the prompts in the objects (their union is "
                             "the subject), not in matte.keys or matte.text too")
        names = [o.name for o in self.objects]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"matte.objects: name {dup[0]!r} given more than once; each "
                             "object names its own layer")
        for o in self.objects:
            if o.text is not None and not texted:
                raise ValueError(f"matte.objects {o.name}: source {self.source} takes no text "
                                 f"prompt; use source {' or '.join(TEXT_SOURCES)}")
            if texted and not (o.text or "").strip():
                raise ValueError(f"matte.objects {o.name}: source {self.source} needs its text "
                                 "(e.g. person)")
            if not texted and not o.keys:
                raise ValueError(f"matte.objects {o.name}: needs at least one key frame with "
                                 "points, boxes or a matte (keys)")


class BackgroundSpec(Strict):
    path: str = Field(min_length=1, description="Background image (any format OpenImageIO "
                      "reads)")
    layer: str = Field("", description="Layer holding the colour (empty: R,G,B or Y)")
    colorspace: str | None = Field(None, description="OCIO colourspace; default by file format")
    fit: Literal["cover", "contain", "stretch"] = Field(
        "cover", description="How the background fills the plate's display window")


class MotionSpec(Strict):
    """How the background moves with the shot's camera (docs/motion.md)."""

    source: Literal[MOTION_SOURCES] = Field(  # type: ignore[valid-type]
        "none", description="none: a static background (as before); auto: metadata, else "
        "track, else subject, else none (reported); file: a motion.json (motion.path); keys: "
        "motion.keys; metadata: the plate's EXR camera matrices; track: the plate's own "
        "background outside the matte; subject: learned from the subject's mattes alone "
        "(green screen)")
    path: str | None = Field(None, description="motion.json written by `actanywhere motion` "
                             "(source=file)")
    keys: list[str] = Field(default_factory=list, description="source=keys: "
                            "FRAME:TX,TY[,SCALE[,ROTATE]] (pixels, factor, degrees about the "
                            "frame centre), interpolated between keys")
    model: Literal["similarity", "affine", "homography"] = Field(
        "similarity", description="track: the model fitted per frame")
    smooth: int = Field(2, ge=0, le=16, description="track, subject: centred smoothing "
                        "radius in frames (no lag)")
    min_features: int = Field(30, ge=4, le=5000, description="track: background corners a "
                              "frame needs, below which it stops (auto: falls back)")
    fov: float | None = Field(None, gt=0.1, lt=179.0, description="metadata: horizontal field "
                              "of view in degrees for plates with worldToCamera but no fov in "
                              "the header")
    weights: str | None = Field(None, description="subject: a model from `actanywhere "
                                "train-motion` (.safetensors); default: the shipped one")

    @field_validator("keys")
    @classmethod
    def _keys(cls, v: list[str]) -> list[str]:
        from .motion.keyspec import parse

        try:
            parse(v)
        except SpecError as exc:
            raise ValueError(str(exc)) from exc
        return v


def _engine_choices(schema: dict[str, Any]) -> None:
    schema["enum"] = list(catalog.engine_names())  # those registered when it is asked


class EngineSpec(Strict):
    name: str = Field("composite", json_schema_extra=_engine_choices, description=(
        "composite (no model), diffusion (the ActAnywhere model), or an engine another "
        "package registers (docs/architecture.md)"))
    model: str | None = Field(None, description="Model folder (engine=diffusion); default: the "
                              "shipped small model (synthetic-trained, a proof, not production)")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Where the model runs")

    @field_validator("name")
    @classmethod
    def _registered(cls, v: str) -> str:
        if v not in catalog.engine_names():
            names = ", ".join(map(repr, catalog.engine_names()))
            raise ValueError(f"Input should be one of {names}")
        return v


class ColorSpec(Strict):
    config: str | None = Field(None, description="OCIO config; default $OCIO, else built-in")
    working_space: str = Field("Linear Rec.709 (sRGB)",
                               description="Scene-linear space for compositing")
    output_space: str | None = Field(None, description="Output colourspace; default working space")
    highlight: Literal["softclip", "clip"] = Field(
        "softclip", description="Values above the knee entering model space: roll off or clip")
    knee: float = Field(0.8, gt=0.0, lt=1.0, description="Where the highlight roll-off starts")


class OutputSpec(Strict):
    path: str = Field(min_length=1, description="Output sequence pattern, e.g. "
                      "out/comp.####.exr")
    layers: list[Literal["rgba", "bg", "matte", "objects"]] = Field(
        default_factory=lambda: ["rgba", "bg", "matte"],
        description="rgba: the comp (A=1); bg: bg.R/G/B, the new background; matte: matte.A; "
        "objects: matte.<name>.A for each of matte.objects")
    compression: str = Field("zip", description="EXR compression: zip, zips, piz, dwaa, dwab, "
                             "rle, none")
    existing: Literal["error", "skip", "overwrite"] = Field(
        "error", description="Existing output frames: error, skip (resume) or overwrite")
    recomposite: bool = Field(True, description="Put the original subject back over the result")
    overscan: Literal["keep", "crop"] = Field(
        "keep", description="A plate whose data window reaches beyond its display window "
        "(overscan): keep writes each output frame over the plate frame's data window (the "
        "subject over the moved background there; model engines generate the display window "
        "only, with a warning), crop writes the display window only")
    proxy: bool = Field(True, description="Beside the frames: proxy/ with a small JPEG of every "
                        "output and plate frame through the OCIO view (written as frames "
                        "finish) and a contact sheet, and take.json, the take's record "
                        "(docs/takes.md)")
    proxy_width: int = Field(480, ge=64, le=4096, description="Width of the proxy frames in "
                             "pixels (aspect kept)")
    proxy_view: str | None = Field(None, description="OCIO DISPLAY/VIEW (or a VIEW of the "
                                   "default display) for the proxies; default: the config's "
                                   "default display and view")

    @field_validator("compression")
    @classmethod
    def _compression(cls, v: str) -> str:
        if v not in COMPRESSIONS:
            raise ValueError(f"use one of {', '.join(COMPRESSIONS)}")
        return v

    @field_validator("layers")
    @classmethod
    def _layers(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("name at least one of rgba, bg, matte, objects")
        return list(dict.fromkeys(v))


class ShotSpec(Strict):
    version: int = Field(SPEC_VERSION, description="ShotSpec format version")
    plate: PlateSpec
    matte: MatteSpec = Field(default_factory=MatteSpec)
    background: BackgroundSpec
    motion: MotionSpec = Field(default_factory=MotionSpec)
    engine: EngineSpec = Field(default_factory=EngineSpec)
    composite: CompositeSettings = Field(default_factory=CompositeSettings)
    diffusion: DiffusionSettings = Field(default_factory=DiffusionSettings)
    vace: VaceSettings = Field(default_factory=VaceSettings)
    color: ColorSpec = Field(default_factory=ColorSpec)
    output: OutputSpec
    threads: int = Field(2, ge=1, le=64, description="Frames processed at once")

    @field_validator("version")
    @classmethod
    def _version(cls, v: int) -> int:
        if v > SPEC_VERSION:
            raise ValueError(f"written by a newer ActAnywhere (version {v}); this build reads "
                             f"ShotSpec version {SPEC_VERSION} and older: upgrade it")
        if v != SPEC_VERSION:
            raise ValueError(f"version {v} has no upgrade to {SPEC_VERSION} in this build")
        return v

    @model_validator(mode="after")
    def _object_layers(self) -> ShotSpec:
        if "objects" in self.output.layers and not self.matte.objects:
            raise ValueError("output.layers: objects writes matte.<name>.A for each of "
                             "matte.objects, and there are none; give matte.objects or drop it")
        return self


_FIXES = {
    "missing": "add it",
    "extra_forbidden": "remove it or check its spelling (see docs/shotspec.md)",
    "literal_error": "",
}


def format_errors(exc: ValidationError) -> str:
    """One line per invalid field: ``plate.path: Field required (add it)``."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "spec"
        msg = err["msg"].removeprefix("Value error, ")
        fix = _FIXES.get(err["type"], "")
        parts.append(f"{loc}: {msg}" + (f" ({fix})" if fix else ""))
    return "; ".join(parts)


def migrate(data: dict[str, Any],
            steps: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] | None = None,
            target: int = SPEC_VERSION) -> dict[str, Any]:
    """``data`` upgraded step by step to ``target`` (a copy; a spec without a version is
    taken as current; a newer one is left for validation to refuse)."""
    steps = MIGRATIONS if steps is None else steps
    version = data.get("version", target)
    if not isinstance(version, int):
        return data
    while version < target and version in steps:
        data = {**steps[version](json.loads(json.dumps(data))), "version": version + 1}
        version += 1
    return data


def from_dict(data: dict[str, Any]) -> ShotSpec:
    """A validated ShotSpec from a dict of any supported version."""
    check_size(data)
    try:
        return ShotSpec.model_validate(migrate(data))
    except ValidationError as exc:
        raise SpecError(f"invalid ShotSpec: {format_errors(exc)}") from exc
