"""Run a ShotSpec: the only place that knows the whole flow, plate to output frames."""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import numpy as np

from . import __version__, engines, frames, imageio, matte, raster
from .color import PRIMARIES, ColorContext
from .errors import JobCancelled, OutputError
from .imageio import ImageInfo, Window
from .plate import Plate
from .progress import ProgressEvent, Reporter, StageClock, null_reporter
from .spec import ShotSpec


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

    spec: ShotSpec
    color: ColorContext
    reader: Plate
    plate: list[frames.FrameSource]
    mattes: matte.ShotMattes
    output: frames.Sequence
    ref: ImageInfo
    output_space: str
    todo: list[int]
    skipped: list[int]


def run(spec: ShotSpec, report: Reporter = null_reporter,
        cancel: threading.Event | None = None) -> JobResult:
    """Generate every output frame of ``spec``; raises ActAnywhereError subclasses."""
    start = time.monotonic()
    cancel = cancel or threading.Event()
    report(ProgressEvent("prepare", message=f"plate {spec.plate.path}"))
    shot = _resolve(spec)
    by_frame = {s.frame: s for s in shot.plate}
    result = JobResult(frames=[s.frame for s in shot.plate], skipped=shot.skipped)
    warn_lock = threading.Lock()

    def warn(msg: str) -> None:
        with warn_lock:
            result.warnings.append(msg)
        report(ProgressEvent("warning", message=msg))

    if shot.reader.note:
        warn(shot.reader.note)
    for src in shot.plate:
        if src.path is None:
            warn(f"frame {src.frame}: missing plate frame, rendered black (--missing black)")
        elif src.held_from is not None:
            warn(f"frame {src.frame}: missing plate frame, holding frame {src.held_from}")
    if shot.skipped:
        warn(f"skipping {len(shot.skipped)} existing output frame(s) "
             f"{frames.compact(shot.skipped)} (output.existing=skip)")

    if shot.mattes.needs_shot:
        shot.mattes.prepare(lambda f: shot.reader.read(by_frame[f]), report,
                            cancel, warn, spec.threads)
    engine = engines.create(spec, shot.color, report)
    engine.prepare(_background(shot, warn), shot.ref.pixel_aspect)
    if engine.calibration_frames:
        engine.calibrate([_load(shot, by_frame[f], warn) for f in
                          _spread(result.frames, engine.calibration_frames)])
    if not shot.todo:
        result.outputs = _on_disk(shot, [])
        result.seconds = time.monotonic() - start
        report(ProgressEvent("done", 0, 0, message="nothing to do: all frames exist"))
        return result

    try:
        if isinstance(engine, engines.ShotEngine):
            result.written = _run_shot(shot, engine, by_frame, report, cancel, warn)
        else:
            result.written = _run_frames(shot, engine, by_frame, report, cancel, warn)
    except KeyboardInterrupt:  # Ctrl-C: frames in flight finish (atomic), then say so
        cancel.set()
        done = sum(os.path.exists(shot.output.path(f)) for f in shot.todo)
        raise JobCancelled(_cancelled(done, len(shot.todo))) from None
    result.seconds = time.monotonic() - start
    if cancel.is_set():
        raise JobCancelled(_cancelled(len(result.written), len(shot.todo)))
    result.outputs = _on_disk(shot, result.written)
    report(ProgressEvent("done", len(result.written), len(shot.todo),
                         message=f"wrote {len(result.written)} frame(s) to "
                                 f"{shot.output.template} in {result.seconds:.1f}s"))
    return result


def _on_disk(shot: _Shot, written: list[str]) -> list[str]:
    """The shot's output frames on disk after a run (kept + written), in frame order."""
    have = set(written) | {shot.output.path(f) for f in shot.skipped}
    return [p for p in map(shot.output.path, shot.reader.frames) if p in have]


def _cancelled(done: int, total: int) -> str:
    return (f"cancelled after {done} of {total} frames; rerun with --existing skip "
            "/ output.existing=skip to resume")


def check(spec: ShotSpec) -> None:
    """Everything ``run`` checks before the first pixel (inputs exist and agree, the output
    is writable and is not an input); raises the same errors. Used to refuse bad jobs early."""
    _resolve(spec)


def _parallel(fn, items: list, threads: int, cancel: threading.Event) -> list:
    """``fn(item)`` on a thread pool; the first exception cancels the rest and is raised.
    Items not started when ``cancel`` is set are skipped (their result is None)."""
    failed = threading.Event()

    def guarded(item):
        if cancel.is_set() or failed.is_set():
            return None
        return fn(item)

    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="aa-frame") as pool:
        futures = [pool.submit(guarded, item) for item in items]
        try:
            wait(futures, return_when=FIRST_EXCEPTION)
            for fut in futures:
                if fut.done() and fut.exception() is not None:
                    failed.set()
                    raise fut.exception()  # type: ignore[misc]
        except KeyboardInterrupt:
            cancel.set()
            raise
        finally:
            if failed.is_set() or cancel.is_set():
                for fut in futures:
                    fut.cancel()
        return [fut.result() for fut in futures if not fut.cancelled()]


def _run_frames(shot: _Shot, engine: engines.FrameEngine, by_frame, report: Reporter,
                cancel: threading.Event, warn) -> list[str]:
    clock = StageClock(report, "frames", len(shot.todo))
    windows = [shot.todo[i : i + engine.window] for i in range(0, len(shot.todo), engine.window)]

    def process(window: list[int]) -> list[str]:
        inputs = [_load(shot, by_frame[f], warn) for f in window]
        outputs = engine.render(inputs, cancel)
        written = []
        for inp, out in zip(inputs, outputs, strict=True):
            if cancel.is_set():
                break
            written.append(_write(shot, inp, out))
            clock.advance(inp.frame)
        return written

    return [p for paths in _parallel(process, windows, shot.spec.threads, cancel) if paths
            for p in paths]


def _run_shot(shot: _Shot, engine: engines.ShotEngine, by_frame, report: Reporter,
              cancel: threading.Event, warn) -> list[str]:
    """Every plate frame feeds the model (skipped frames too, so a resumed job regenerates the
    same shot and its new frames match the ones already written); only ``todo`` is written."""
    clock = StageClock(report, "read", len(shot.plate))

    def add(src: frames.FrameSource) -> None:
        engine.add(_load(shot, src, warn))
        clock.advance(src.frame)

    _parallel(add, list(shot.plate), shot.spec.threads, cancel)
    if cancel.is_set():
        return []
    engine.generate(cancel)
    clock = StageClock(report, "frames", len(shot.todo))

    def finish(frame: int) -> str:
        inp = _load(shot, by_frame[frame], warn)
        path = _write(shot, inp, engine.finish(inp))
        clock.advance(frame)
        return path

    return [p for p in _parallel(finish, shot.todo, shot.spec.threads, cancel) if p]


# --------------------------------------------------------------------------------------------
def _resolve(spec: ShotSpec) -> _Shot:
    color = ColorContext(spec.color.config, spec.color.working_space, spec.color.highlight,
                         spec.color.knee)
    reader = Plate.open(spec.plate, color)
    plate_seq, plate, ref = reader.seq, reader.sources, reader.ref
    output_space = color.check(spec.color.output_space or color.working_space,
                               "color.output_space")
    bg = imageio.probe(spec.background.path)
    imageio.rgb_names(bg.channels, spec.background.path, spec.background.layer)
    engines.check(spec, plate_seq.frames)

    matte_files = matte.files(spec.matte, plate_seq, ref)
    matte.check(spec.matte, plate_seq.frames, ref)
    mattes = matte.ShotMattes(spec.matte, color, plate_seq.frames, ref, matte_files)

    inputs = {os.path.realpath(s.path) for s in plate if s.path}
    inputs |= {os.path.realpath(p) for p in matte_files.values()}
    inputs.add(os.path.realpath(spec.background.path))
    output, skipped, todo = plan_output(spec.output.path, plate_seq, inputs,
                                        spec.output.existing, "output")
    return _Shot(spec, color, reader, plate, mattes, output, ref, output_space, todo, skipped)


def plan_output(pattern: str, plate_seq: frames.Sequence, inputs: set[str], existing: str,
                what: str) -> tuple[frames.Sequence, list[int], list[int]]:
    """The output sequence over the plate frames, checked: it overwrites no input (``inputs``
    are real paths), its folder is writable, existing frames follow the ``existing`` policy.
    Returns (sequence, skipped frames, frames to write)."""
    output = frames.Sequence(frames.template(pattern), plate_seq.frames)
    if not output.template.lower().endswith(".exr"):
        raise OutputError(f"{output.template}: {what} frames are written as OpenEXR; give the "
                          "output path a .exr extension")
    if output.template == plate_seq.template or any(
        os.path.realpath(p) in inputs for p in output.paths()
    ):
        raise OutputError(f"{output.template}: output would overwrite an input; choose another "
                          "output path")
    _check_writable(output.template)
    found = [f for f in plate_seq.frames if os.path.exists(output.path(f))]
    if found and existing == "error":
        raise OutputError(f"{output.template}: {len(found)} {what} frame(s) exist "
                          f"({frames.compact(found)}); pass --existing skip to resume or "
                          "--existing overwrite to replace them")
    skipped = found if existing == "skip" else []
    todo = [f for f in plate_seq.frames if f not in set(skipped)]
    return output, skipped, todo


def _check_writable(template: str) -> None:
    """The output folder, or the nearest existing folder above it, takes files. Nothing is
    created: the folder is made by the first frame written, so a job refused for its inputs
    leaves no empty folder behind."""
    directory = os.path.dirname(os.path.abspath(template))
    probe = directory
    while not os.path.exists(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise OutputError(f"{directory}: output folder is not writable ({probe} is a file); "
                          "choose another output path")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        raise OutputError(f"{probe}: output folder is not writable ({exc.strerror}); choose "
                          "a writable output path") from exc


def _background(shot: _Shot, warn) -> np.ndarray:
    """The background in the working space, fitted to the plate's display window: NaN/Inf
    pixels filled from their neighbours (with a warning), its own pixel aspect and
    chromaticities honoured."""
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
    disp: Window = shot.ref.display
    return raster.fit(rgb, disp.width, disp.height, spec.fit, shot.ref.pixel_aspect,
                      img.info.pixel_aspect)


def _spread(items: list[int], count: int) -> list[int]:
    """``count`` items evenly spaced from first to last (all of them when fewer)."""
    if len(items) <= count:
        return list(items)
    return [items[round(i * (len(items) - 1) / (count - 1))] for i in range(count)]


def _load(shot: _Shot, src: frames.FrameSource, warn) -> engines.EngineInput:
    img, rgb = shot.reader.read(src, warn)
    fm = shot.mattes.frame(src.frame, img, rgb, warn)
    return engines.EngineInput(src.frame, fm.rgb, fm.matte, fm.premultiplied if img else True)


def _write(shot: _Shot, inp: engines.EngineInput, out: engines.EngineOutput) -> str:
    spec = shot.spec
    comp, bg = out.comp, out.background
    if shot.output_space != shot.color.working_space:
        comp = shot.color.from_working(comp, shot.output_space)
        bg = shot.color.from_working(bg, shot.output_space)
    layers = spec.output.layers
    names = (["R", "G", "B", "A"] if "rgba" in layers else []) + (
        ["bg.R", "bg.G", "bg.B"] if "bg" in layers else []) + (
        ["matte.A"] if "matte" in layers else [])
    # One interleaved buffer filled block by block (np.stack of strided planes is 5x slower).
    pixels = np.empty((*comp.shape[:2], len(names)), np.float32)
    c = 0
    if "rgba" in layers:
        pixels[..., 0:3] = comp
        pixels[..., 3] = 1.0
        c = 4
    if "bg" in layers:
        pixels[..., c : c + 3] = bg
        c += 3
    if "matte" in layers:
        pixels[..., c] = inp.matte
    meta = dict(shot.ref.metadata)
    # the pixels are in the output space now, whatever primaries the plate had
    meta.pop("chromaticities", None)
    chroma = PRIMARIES.get(shot.output_space)
    if chroma is not None:
        meta["chromaticities"] = imageio.Attr("float[8]", chroma)
    if shot.ref.view:  # which eye this sequence is
        meta["view"] = shot.ref.view
    meta.update({
        "Software": f"ActAnywhere for VFX {__version__}",
        "actanywhere:engine": spec.engine.name,
        "actanywhere:frame": int(inp.frame),
        "actanywhere:colorspace": shot.output_space,
        "actanywhere:spec": json.dumps(spec.model_dump(mode="json"), sort_keys=True),
    })
    path = shot.output.path(inp.frame)
    imageio.write_exr(path, names, pixels, shot.ref.display, meta, spec.output.compression,
                      shot.ref.pixel_aspect)
    return path
