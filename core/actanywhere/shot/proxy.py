"""A take's proxies and record, written by the job as its frames finish (docs/takes.md).

Beside the output frames: ``proxy/<stem>.####.jpg`` (each output frame), ``proxy/<stem>.plate.
####.jpg`` (each plate frame read), about ``output.proxy_width`` pixels wide, display-referred
through the OCIO display/view (``output.proxy_view``; tone-mapped, not clamped; a LUT baked
from it, ``ColorContext.to_display_baked``), written
atomically as each frame finishes so a running take can be previewed; at the end
``proxy/<stem>.contact.jpg``, a contact sheet of up to 12 frames. The record
(``api.takes.Take``: ``take.json``) says the take is running when the first pixel is read and
how it ended when it ends; the host's fields and the artist's star and note are kept.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any

import numpy as np
import OpenImageIO as oiio

from .. import catalog
from ..api import takes
from ..api.patterns import frames_on_disk
from ..errors import ActAnywhereError
from ..media import imageio, imagewrite, raster
from ..media.color import ColorContext
from ..spec import ShotSpec

QUALITY = 88
SHEET_COLUMNS = 4
SHEET_FRAMES = 12


class TakeProxies:
    """The proxies and the record of one job's output."""

    def __init__(self, spec: ShotSpec, color: ColorContext) -> None:
        output = os.path.abspath(spec.output.path)
        self.folder = os.path.dirname(output)
        self.stem = takes.stem_of(output)
        self.color = color
        display, view = color.view(spec.output.proxy_view)
        self.view = f"{display}/{view}"
        self.width = spec.output.proxy_width
        rel = os.path.join(takes.PROXY_DIR, self.stem)
        self.pattern = os.path.join(self.folder, f"{rel}.####.jpg")
        self.plate_pattern = os.path.join(self.folder, f"{rel}.plate.####.jpg")
        self.sheet = os.path.join(self.folder, f"{rel}.contact.jpg")
        self.output = output
        self.take = takes.Take(folder=self.folder, number=_number(self.folder),
                               record=takes.record_file(output))

    def files(self, frames: list[int]) -> list[str]:
        """Every file these proxies may write for ``frames`` (checked against the inputs
        before the first pixel)."""
        per_frame = [self._file(p, f) for f in frames for p in (self.pattern, self.plate_pattern)]
        return [*per_frame, self.sheet, self.take.path]

    def _file(self, pattern: str, frame: int) -> str:
        return pattern.replace("####", f"{frame:04d}")

    def display(self, linear: np.ndarray) -> np.ndarray:
        """A frame as its proxy holds it: shrunk to the proxy width, through the OCIO view.
        ``linear``: working-space RGB; any other layout gives its first three channels (a
        luminance image, its Y), so no frame's layout can stop the proxies."""
        small = raster.rgb3(raster.shrink(raster.rgb3(linear), self.width))
        return self.color.to_display_baked(small, self.view)

    def _jpeg(self, path: str, linear_rgb: np.ndarray) -> None:
        imagewrite.write_image(path, self.display(linear_rgb), "uint8",
                               {"Compression": f"jpeg:{QUALITY}"})

    def start(self, spec: ShotSpec, motion: str, model_hash: str | None) -> None:
        """The record, saying the take runs (created if the folder has none)."""
        os.makedirs(self.folder, exist_ok=True)
        data = spec.model_dump(mode="json")
        engine = spec.engine.name
        fresh = not os.path.exists(self.take.path)
        changes: dict[str, Any] = dict(
            status="running", output=self.output, engine=engine, motion=motion,
            seed=catalog.seed_of(data), error=None,
            frames=spec.plate.frames or "", view=self.view,
            proxy=os.path.relpath(self.pattern, self.folder),
            plate_proxy=os.path.relpath(self.plate_pattern, self.folder),
            contact_sheet=os.path.relpath(self.sheet, self.folder))
        if model_hash is not None:
            changes["model_hash"] = model_hash
        if fresh:
            changes.update(created=time.time())
        self.take.update(**changes)
        # a host's take has its own spec (what it sent) and label: the job's fill in the gaps
        gaps = {"spec": data, "label": takes.label_of(data)}
        gaps = {k: v for k, v in gaps.items() if not getattr(self.take, k)}
        if gaps:
            self.take.update(**gaps)

    def frame(self, frame: int, comp_linear: np.ndarray) -> None:
        self._jpeg(self._file(self.pattern, frame), comp_linear)

    def plate(self, frame: int, plate_linear: np.ndarray) -> None:
        path = self._file(self.plate_pattern, frame)
        if not os.path.exists(path):  # a shot engine may read a frame twice
            self._jpeg(path, plate_linear)

    def contact_sheet(self) -> None:
        """Up to ``SHEET_FRAMES`` proxy frames spread over the take, in a grid."""
        found = frames_on_disk(self.pattern)
        if not found:
            return
        tiles = [raster.rgb3(_read_jpeg(p)) for _, p in raster.spread(found, SHEET_FRAMES)]
        half = [raster.shrink(t, t.shape[1] // 2) for t in tiles]
        rows = [half[i : i + SHEET_COLUMNS] for i in range(0, len(half), SHEET_COLUMNS)]
        imagewrite.write_image(self.sheet, raster.grid(rows), "uint8",
                            {"Compression": f"jpeg:{QUALITY}"})

    def end(self, status: str, seconds: float, written: int, error: str | None = None
            ) -> None:
        """The contact sheet and the record's ending; never raises (the job's own outcome,
        or its own error, is what the caller reports)."""
        with contextlib.suppress(OSError, ValueError, RuntimeError, ActAnywhereError):
            self.contact_sheet()
        # the take's frames on disk: a farm task renders one chunk of the take, and the
        # take is all of its chunks
        written = max(written, len(frames_on_disk(self.output)))
        try:
            timings = dict(self.take.timings)
            timings["job_s"] = round(seconds, 3)
            self.take.update(status=status, error=error, written=written, timings=timings,
                             finished=time.time())
        except OSError:
            pass


def _number(folder: str) -> int:
    name = os.path.basename(folder.rstrip(os.sep))
    return int(name[5:]) if name.startswith("take_") and name[5:].isdigit() else 0


def _read_jpeg(path: str) -> np.ndarray:
    buf = oiio.ImageBuf(path)
    pixels = buf.get_pixels(oiio.FLOAT)
    if pixels is None or buf.has_error:
        raise OSError(f"{path}: {imageio.library_error(buf.geterror)}")
    return np.asarray(pixels, np.float32)[..., :3]
