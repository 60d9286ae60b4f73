"""``actanywhere segment``: a shot's matte as an EXR sequence, with previews to check it.

Writes either a single-channel ``A`` EXR per frame, or a copy of the plate frame with the
matte added as ``<layer>.A``; with ``matte.objects``, each object's matte as
``matte.<name>.A`` beside it (the subject matte is their union); plus ``overlay.####.png``
(the subject bright, the rest dimmed and tinted) and ``contact_sheet.png`` in the preview
folder. Frames are written atomically.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import Field

from ..errors import JobCancelled
from ..media import imagewrite, preview, raster
from ..progress import ProgressEvent, Reporter, StageClock, null_reporter
from ..spec import ColorSpec, MatteSpec, PlateSpec, Strict
from . import plan
from .parallel import each
from .writer import Block, FrameWriter

TINT = np.array([0.15, 0.35, 0.9], np.float32)


class MatteOutputSpec(Strict):
    path: str = Field(description="Matte sequence pattern, e.g. matte/matte.####.exr")
    layer: str = Field("", description="Empty: a single A channel; a name: a copy of the plate "
                       "with the matte as <layer>.A")
    compression: str = Field("zip", description="EXR compression")
    existing: Literal["error", "skip", "overwrite"] = Field("error")
    preview: str | None = Field(None, description="Preview folder; default <output>/preview, "
                                "empty string: none")
    preview_width: int = Field(640, ge=64, le=4096)


class SegmentSpec(Strict):
    plate: PlateSpec
    matte: MatteSpec
    color: ColorSpec = Field(default_factory=ColorSpec)
    output: MatteOutputSpec
    threads: int = Field(2, ge=1, le=64)


@dataclass
class SegmentResult:
    written: list[str] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    preview: str | None = None
    seconds: float = 0.0


def object_channel(name: str) -> str:
    """The EXR channel of one of matte.objects: ``matte.<name>.A``."""
    return f"matte.{name}.A"


def overlay(rgb_display: np.ndarray, m: np.ndarray) -> np.ndarray:
    """The subject as it is, the rest dimmed to 30% and tinted blue."""
    m = m[..., None]
    return rgb_display * (0.3 + 0.7 * m) + (1.0 - m) * 0.25 * TINT


def run(spec: SegmentSpec, report: Reporter = null_reporter,
        cancel: threading.Event | None = None) -> SegmentResult:
    start = time.monotonic()
    cancel = cancel or threading.Event()
    result = SegmentResult()
    warn = plan.Warnings(report, result.warnings)
    inputs = plan.inputs(spec.plate, spec.matte, spec.color)
    plate, mattes, color = inputs.plate, inputs.mattes, inputs.color
    out = plan.output(spec.output.path, plate.seq, inputs.real_paths(),
                      spec.output.existing, "matte")
    result.skipped = out.skipped
    plan.remove_leftovers(out.sequence.paths(), warn)
    pdir = spec.output.preview
    if pdir is None:
        pdir = os.path.join(os.path.dirname(os.path.abspath(out.sequence.template)), "preview")
    if pdir:  # made by the first preview written
        result.preview = pdir
    warn.plate(inputs)

    mattes.prepare(plate.read, report, cancel, warn, spec.threads)
    writer = FrameWriter(out.sequence, plate.ref, spec.output.compression,
                         {"actanywhere:matte_source": spec.matte.source})
    clock = StageClock(report, "frames", len(out.todo))
    thumbs: dict[int, np.ndarray] = {}
    lock = threading.Lock()

    def one(frame: int) -> str:
        img, rgb = plate.read(frame, warn)
        fm = mattes.frame(frame, img, rgb, warn)
        objects: list[Block] = [([object_channel(n)], m)
                                for n, m in mattes.objects(frame).items()]
        if spec.output.layer and img is not None:
            ours = {f"{spec.output.layer}.A", *(c for (c,), _ in objects)}
            names = [n for n in img.info.channels if n not in ours]
            blocks: list[Block] = [(names, img.channels(names)),
                                   ([f"{spec.output.layer}.A"], fm.matte), *objects]
            path = writer.write(frame, blocks, base=img.info.metadata)
        else:
            path = writer.write(frame, [(["A"], fm.matte), *objects])
        if pdir:
            w = spec.output.preview_width
            disp = preview.thumbnail(rgb, color, w)
            ov = overlay(disp, np.clip(raster.shrink(fm.matte, w), 0.0, 1.0))
            imagewrite.write_image(os.path.join(pdir, f"overlay.{frame:04d}.png"), ov)
            with lock:
                thumbs[frame] = ov
        clock.advance(frame)
        return path

    result.written = [p for p in each(one, out.todo, spec.threads, cancel) if p]
    if cancel.is_set():
        raise JobCancelled(f"cancelled after {len(result.written)} of {len(out.todo)} mattes")
    if pdir and thumbs:
        picks = sorted(thumbs)
        step = max(1, len(picks) // 12)
        picks = picks[::step][:12]
        rows = [[thumbs[f] for f in picks[i : i + 4]] for i in range(0, len(picks), 4)]
        preview.contact_sheet(os.path.join(pdir, "contact_sheet.png"), rows)
    result.seconds = time.monotonic() - start
    report(ProgressEvent("done", len(result.written), len(out.todo),
                         message=f"wrote {len(result.written)} matte frame(s) to "
                                 f"{out.sequence.template} in {result.seconds:.1f}s"))
    return result
