"""``generate``: a ShotSpec from plate to output frames, the flow in order.

1. plan (plan.py): open the plate and mattes, check the output, ask the engine;
2. mattes that need the whole shot (tracking, temporal smoothing);
3. the engine: made, given the background, calibrated on frames spread over the shot;
4. frames: a ``FrameEngine`` renders and writes frame by frame; a ``ShotEngine`` reads every
   plate frame, generates once, then writes each output frame.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from .. import catalog, engines
from ..engines.base import EngineInput, EngineOutput, FrameEngine, ShotEngine, subject_of
from ..errors import JobCancelled
from ..media import frames, imageio, raster
from ..media.color import PRIMARIES, ColorContext
from ..media.imageio import ImageInfo
from ..motion import WITHOUT_PICTURES, choose
from ..motion.backdrop import Backdrop
from ..progress import SETTINGS, ProgressEvent, Reporter, StageClock, null_reporter
from ..spec import ShotSpec
from . import plan
from .parallel import each
from .plate import Plate
from .proxy import TakeProxies
from .writer import Block, FrameWriter

#: inputs a ShotEngine keeps between reading the plate and writing the output, so an output
#: frame is read and matted once; frames beyond this are read again when written
KEEP_INPUTS_BYTES = 2 << 30


@dataclass
class JobResult:
    frames: list[int]
    written: list[str] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    #: every output frame of the shot now on disk: the ones kept (skipped) and the written,
    #: in frame order (a resumed take is all of its frames, not only the last run's)
    outputs: list[str] = field(default_factory=list)


@dataclass
class _Shot:
    """Everything resolved before the first pixel is read."""

    spec: ShotSpec  # as it runs: the engine's effective settings (``Engine.effective``)
    inputs: plan.Inputs
    out: plan.OutputPlan
    output_space: str
    writer: FrameWriter
    proxies: TakeProxies | None = None  # output.proxy: the take's proxies and record
    #: where each setting of the engine's section came from: spec, model or default
    sources: dict[str, str] = field(default_factory=dict)
    overscan: plan.Overscan | None = None  # frames whose plate reaches beyond the display
    wide: plan.WideBackground | None = None  # the moved background there

    @property
    def color(self) -> ColorContext:
        return self.inputs.color

    @property
    def reader(self) -> Plate:
        return self.inputs.plate

    @property
    def ref(self) -> ImageInfo:
        return self.inputs.plate.ref


def run(spec: ShotSpec, report: Reporter = null_reporter,
        cancel: threading.Event | None = None) -> JobResult:
    """Generate every output frame of ``spec``; raises ActAnywhereError subclasses."""
    start = time.monotonic()
    cancel = cancel or threading.Event()
    report(ProgressEvent("prepare", message=f"plate {spec.plate.path}"))
    shot = _plan(spec)
    spec, plate = shot.spec, shot.reader
    line = settings_line(spec, shot.sources)
    if line:
        report(ProgressEvent("prepare", message=line))
    result = JobResult(frames=plate.frames, skipped=shot.out.skipped)
    warn = plan.Warnings(report, result.warnings)
    warn.plate(shot.inputs)
    if shot.out.skipped:
        warn(f"skipping {len(shot.out.skipped)} existing output frame(s) "
             f"{frames.compact(shot.out.skipped)} (output.existing=skip)")
    plan.remove_leftovers([*shot.out.sequence.paths(), *(shot.proxies.files(plate.frames)
                                                          if shot.proxies else [])], warn)
    if shot.proxies is not None:
        from ..model import model_hash

        shot.proxies.start(spec, spec.motion.source, model_hash(spec.engine.model)
                           if catalog.engine(spec.engine.name).model else None)
        _record_settings(shot.proxies, spec, shot.sources)
    try:
        return _generate(shot, result, warn, report, cancel, start)
    except BaseException as exc:
        if shot.proxies is not None:
            done = sum(os.path.exists(shot.out.sequence.path(f)) for f in shot.out.todo)
            cancelled = isinstance(exc, (JobCancelled, KeyboardInterrupt))
            message = (str(exc).splitlines() or [type(exc).__name__])[0]
            shot.proxies.end("cancelled" if cancelled else "failed",
                             time.monotonic() - start, done, None if cancelled else message)
        raise


def _generate(shot: _Shot, result: JobResult, warn: plan.Warnings, report: Reporter,
              cancel: threading.Event, start: float) -> JobResult:
    """Overscan, mattes, motion, the engine, the frames: ``run`` once the plan holds."""
    spec = shot.spec
    shot.overscan = plan.Overscan.plan(spec, shot.inputs)  # each plate frame's header read
    note = shot.overscan and shot.overscan.warning(
        spec.engine.name, catalog.engine(spec.engine.name).model is not None)
    if note:
        warn(note)
    mattes = shot.inputs.mattes
    if mattes.needs_shot:
        mattes.prepare(shot.reader.read, report, cancel, warn, spec.threads)
    motion = _motion(shot, warn, report, cancel)
    shot.writer.metadata["actanywhere:motion"] = motion.source
    if shot.proxies is not None:
        shot.proxies.take.update(motion=motion.source)
    engine = engines.create(spec, shot.color, report)
    record = getattr(engine, "record", None) or {}
    if record.get("model"):
        from ..model import model_hash

        shot.writer.metadata["actanywhere:model"] = \
            f"{record['model']} {model_hash(spec.engine.model)}".strip()
    engine.prepare(_background(shot, warn, motion), shot.ref.pixel_aspect)
    if engine.calibration_frames:
        engine.calibrate([_load(shot, f, warn) for f in
                          raster.spread(result.frames, engine.calibration_frames)])
    if not shot.out.todo:
        result.outputs = _on_disk(shot, [])
        result.seconds = time.monotonic() - start
        if shot.proxies is not None:
            shot.proxies.end("done", result.seconds, len(result.outputs))
        report(ProgressEvent("done", 0, 0, message="nothing to do: all frames exist"))
        return result

    try:
        if isinstance(engine, ShotEngine):
            result.written = _run_shot(shot, engine, report, cancel, warn)
            if shot.proxies is not None and record:
                shot.proxies.take.update(engine_info=dict(record))
        else:
            assert isinstance(engine, FrameEngine)
            result.written = _run_frames(shot, engine, report, cancel, warn)
    except KeyboardInterrupt:  # Ctrl-C: frames in flight finish (atomic), then say so
        cancel.set()
        done = sum(os.path.exists(shot.out.sequence.path(f)) for f in shot.out.todo)
        raise JobCancelled(_cancelled(done, len(shot.out.todo))) from None
    result.seconds = time.monotonic() - start
    if cancel.is_set():
        raise JobCancelled(_cancelled(len(result.written), len(shot.out.todo)))
    result.outputs = _on_disk(shot, result.written)
    if shot.proxies is not None:
        shot.proxies.end("done", result.seconds, len(result.outputs))
    report(ProgressEvent("done", len(result.written), len(shot.out.todo),
                         message=f"wrote {len(result.written)} frame(s) to "
                                 f"{shot.out.sequence.template} in {result.seconds:.1f}s"))
    return result


def check(spec: ShotSpec) -> None:
    """Everything ``run`` checks before the first pixel (inputs exist and agree, the output
    is writable and is not an input, the engine's settings can work); raises the same
    errors. Used to refuse bad jobs early (the worker, as a job is submitted: no model
    folder is read here, a hung share must not hold the request)."""
    _plan(spec, effective=False)


def _on_disk(shot: _Shot, written: list[str]) -> list[str]:
    """The shot's output frames on disk after a run (kept + written), in frame order."""
    seq = shot.out.sequence
    have = set(written) | {seq.path(f) for f in shot.out.skipped}
    return [p for p in map(seq.path, shot.reader.frames) if p in have]


def settings_line(spec: ShotSpec, sources: dict[str, str]) -> str:
    """``settings from the model: diffusion.resolution 64, ...``: the settings the model
    filled (one progress line; "" when none)."""
    model = [key for key, source in sources.items() if source == "model"]
    values = spec.model_dump()

    def value(key: str) -> str:
        section, name = key.split(".", 1)
        v = values[section][name]
        return f"{v:g}" if isinstance(v, float) else str(v)

    return SETTINGS + ", ".join(f"{k} {value(k)}" for k in model) if model else ""


def _record_settings(proxies: TakeProxies, spec: ShotSpec, sources: dict[str, str]) -> None:
    """Where the settings came from, in the take's record; a host's spec (what it sent) gets
    the settings the model filled where it left them out, so it says what ran."""
    take, data = proxies.take, spec.model_dump(mode="json")
    sent = json.loads(json.dumps(take.spec))
    for key, source in sources.items():
        section, name = key.split(".", 1)
        part = sent.setdefault(section, {})
        if source == "model" and isinstance(part, dict):
            part.setdefault(name, data[section][name])
    take.update(settings_from=dict(sources), spec=sent)


def _cancelled(done: int, total: int) -> str:
    return (f"cancelled after {done} of {total} frames; rerun with --existing skip "
            "/ output.existing=skip to resume")


# ------------------------------------------------------------------------------ 1. plan
def _plan(spec: ShotSpec, effective: bool = True) -> _Shot:
    inputs = plan.inputs(spec.plate, spec.matte, spec.color)
    color, plate = inputs.color, inputs.plate
    output_space = color.check(spec.color.output_space or color.working_space,
                               "color.output_space")
    bg = imageio.probe(spec.background.path)
    imageio.rgb_names(bg.channels, spec.background.path, spec.background.layer)
    engines.check(spec, plate.frames)
    sources: dict[str, str] = {}
    if effective:  # the settings the model fills (its folder read), as they will run
        spec, sources = engines.engine_class(spec.engine.name).effective(spec)
    used = inputs.real_paths() | plan.spec_inputs(spec)
    out = plan.output(spec.output.path, plate.seq, used, spec.output.existing, "output")
    proxies = TakeProxies(spec, color) if spec.output.proxy else None
    if proxies is not None:
        plan.refuse_over_inputs(proxies.files(plate.frames), used, "a proxy or take record")
    return _Shot(spec, inputs, out, output_space, FrameWriter(
        out.sequence, plate.ref, spec.output.compression,
        _metadata(spec, plate.ref, output_space, sources)), proxies, sources)


def _metadata(spec: ShotSpec, ref: ImageInfo, output_space: str,
              sources: dict[str, str]) -> dict:
    """The plate's metadata, with chromaticities of the output space, the view, and what
    made the frame: the spec as it ran and where its engine's settings came from."""
    meta = dict(ref.metadata)
    # the pixels are in the output space now, whatever primaries the plate had
    meta.pop("chromaticities", None)
    chroma = PRIMARIES.get(output_space)
    if chroma is not None:
        meta["chromaticities"] = imageio.Attr("float[8]", chroma)
    if ref.view:  # which eye this sequence is
        meta["view"] = ref.view
    meta.update({
        "actanywhere:engine": spec.engine.name,
        "actanywhere:colorspace": output_space,
        "actanywhere:spec": json.dumps(spec.model_dump(mode="json"), sort_keys=True),
    })
    if sources:
        meta["actanywhere:settings_from"] = json.dumps(sources, sort_keys=True)
    return meta


def _motion(shot: _Shot, warn: plan.Warnings, report: Reporter,
            cancel: threading.Event) -> choose.Motion:
    """The background's motion through the shot (``motion.*``; a static camera by default)."""
    settings, plate = shot.spec.motion, shot.reader
    if settings.source != "none":
        report(ProgressEvent("prepare", message=f"motion: {settings.source}"))
    paths = {s.frame: s.path or shot.ref.path for s in plate.sources}

    def headers(frame: int) -> dict:
        return imageio.probe(paths[frame], shot.ref.view or None).metadata

    def pictures():
        for f in plate.frames:
            if cancel.is_set():
                raise JobCancelled("cancelled while estimating the camera's motion; nothing "
                                   "was written")
            inp = _load(shot, f, warn)
            yield f, inp.rgb, inp.matte

    disp = shot.ref.display
    motion = choose.estimate(settings, frames=_motion_frames(shot.spec, plate.frames),
                             width=disp.width, height=disp.height,
                             pixel_aspect=shot.ref.pixel_aspect, headers=headers,
                             pictures=pictures, note=warn, names=paths)
    if settings.source != "none":
        low = min(motion.confidence.values(), default=1.0)
        report(ProgressEvent("prepare", message=f"motion: {motion.source}, lowest confidence "
                             f"{low:.2f}"))
    return motion


def _motion_frames(spec: ShotSpec, part: list[int]) -> list[int]:
    """The frames the motion is laid over: the whole shot's when this job renders a part of
    it (``<settings>.shot_frames`` of a splittable engine) and the motion needs no pictures,
    so every part fits and moves the background as the whole shot does; else the job's own
    frames."""
    whole = catalog.shot_frames(spec)
    if whole is None or spec.motion.source not in WITHOUT_PICTURES:
        return part
    return sorted(set(frames.parse_frames(whole)) | set(part))


def _background(shot: _Shot, warn: plan.Warnings, motion: choose.Motion) -> Backdrop:
    """The background in the working space, fitted to the plate's display window (with the
    overscan the motion needs) and moved per frame: NaN/Inf pixels filled from their
    neighbours (with a warning), its own pixel aspect and chromaticities honoured."""
    spec = shot.spec.background
    img = imageio.read(spec.path, clean=False)
    names = imageio.rgb_names(img.info.channels, spec.path, spec.layer)
    space, note = shot.color.file_space(spec.colorspace, img.info.file_format,
                                        img.info.metadata, "background.colorspace")
    if note:
        warn(note)
    rgb, bad = raster.fill_nonfinite(img.channels(names))
    if bad:
        warn(f"{spec.path}: {bad} pixel(s) with NaN/Inf filled from their neighbours; fix the "
             "background if they matter")
    rgb = shot.color.to_working(rgb, space)
    disp = shot.ref.display
    backdrop = Backdrop(rgb, disp.width, disp.height, spec.fit, shot.ref.pixel_aspect,
                        img.info.pixel_aspect, motion, spec.path)
    for line in backdrop.warnings:
        warn(line)
    if shot.overscan is not None:
        shot.wide = plan.WideBackground(backdrop, rgb, spec.fit, shot.ref.pixel_aspect,
                                        img.info.pixel_aspect, disp)
    return backdrop


# ----------------------------------------------------------------------------- 4. frames
def _load(shot: _Shot, frame: int, warn: plan.Warnings) -> EngineInput:
    """One plate frame and its matte, as an engine takes them."""
    img, rgb = shot.reader.read(frame, warn)
    if shot.proxies is not None:
        shot.proxies.plate(frame, rgb)
    fm = shot.inputs.mattes.frame(frame, img, rgb, warn)
    premultiplied = fm.premultiplied if img else True
    if shot.overscan is not None:
        shot.overscan.premultiplied[frame] = premultiplied
    return EngineInput(frame, fm.rgb, fm.matte, premultiplied)


def _write(shot: _Shot, inp: EngineInput, out: EngineOutput) -> str:
    comp, bg, matte, window = out.comp, out.background, inp.matte, None
    if shot.overscan is not None and inp.frame in shot.overscan.windows:
        assert shot.wide is not None
        window, comp, bg, matte = shot.overscan.frame(inp.frame, matte, comp, bg, shot.wide)
    working = out.comp  # the proxy shows the display window
    if shot.output_space != shot.color.working_space:
        comp = shot.color.from_working(comp, shot.output_space)
        bg = shot.color.from_working(bg, shot.output_space)
    layers = shot.spec.output.layers
    blocks: list[Block] = []
    if "rgba" in layers:
        blocks += [(["R", "G", "B"], comp), (["A"], 1.0)]
    if "bg" in layers:
        blocks.append((["bg.R", "bg.G", "bg.B"], bg))
    if "matte" in layers:
        blocks.append((["matte.A"], matte))
    if "objects" in layers:
        blocks += _object_blocks(shot, inp.frame, window)
    path = shot.writer.write(inp.frame, blocks, window=window)
    if shot.proxies is not None:  # after the frame: a proxy never shows a frame not on disk
        shot.proxies.frame(inp.frame, working)
    return path


def _object_blocks(shot: _Shot, frame: int, window: imageio.Window | None) -> list[Block]:
    """``matte.<name>.A`` for each of matte.objects (tracked mattes: nothing in the overscan
    around the display window)."""
    out: list[Block] = []
    for name, m in shot.inputs.mattes.objects(frame).items():
        if window is not None:
            assert shot.overscan is not None
            disp = shot.overscan.display
            ring = np.zeros((window.height, window.width), np.float32)
            dx, dy = disp.x - window.x, disp.y - window.y
            ring[dy:dy + disp.height, dx:dx + disp.width] = m
            m = ring
        out.append(([f"matte.{name}.A"], m))
    return out


def _run_frames(shot: _Shot, engine: FrameEngine, report: Reporter,
                cancel: threading.Event, warn: plan.Warnings) -> list[str]:
    todo = shot.out.todo
    clock = StageClock(report, "frames", len(todo))
    windows = [todo[i : i + engine.window] for i in range(0, len(todo), engine.window)]

    def process(window: list[int]) -> list[str]:
        inputs = [_load(shot, f, warn) for f in window]
        outputs = engine.render(inputs, cancel)
        written = []
        for inp, out in zip(inputs, outputs, strict=True):
            if cancel.is_set():
                break
            written.append(_write(shot, inp, out))
            clock.advance(inp.frame)
        return written

    return [p for paths in each(process, windows, shot.spec.threads, cancel) if paths
            for p in paths]


def _run_shot(shot: _Shot, engine: ShotEngine, report: Reporter,
              cancel: threading.Event, warn: plan.Warnings) -> list[str]:
    """Every plate frame feeds the model (skipped frames too, so a resumed job regenerates the
    same shot and its new frames match the ones already written); only ``todo`` is written.
    The inputs of frames to write are kept (subject and matte, up to ``KEEP_INPUTS_BYTES``)
    so each is read and matted once."""
    todo = set(shot.out.todo)
    kept: dict[int, EngineInput] = {}
    lock = threading.Lock()
    budget = [KEEP_INPUTS_BYTES]
    clock = StageClock(report, "read", len(shot.reader.sources))

    def add(frame: int) -> None:
        loaded = _load(shot, frame, warn)
        subject = EngineInput(frame, subject_of(loaded), loaded.matte, premultiplied=True)
        engine.add(subject)
        if frame in todo:
            size = subject.rgb.nbytes + subject.matte.nbytes
            with lock:
                if size <= budget[0]:
                    budget[0] -= size
                    kept[frame] = subject
        clock.advance(frame)

    each(add, shot.reader.frames, shot.spec.threads, cancel)
    if cancel.is_set():
        return []
    engine.generate(cancel)
    clock = StageClock(report, "frames", len(todo))

    def finish(frame: int) -> str:
        with lock:
            inp = kept.pop(frame, None)
        if inp is None:
            inp = _load(shot, frame, warn)
        path = _write(shot, inp, engine.finish(inp))
        clock.advance(frame)
        return path

    return [p for p in each(finish, shot.out.todo, shot.spec.threads, cancel) if p]
