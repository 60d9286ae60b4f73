"""A plate sequence opened for reading: frames planned, reference image, colour names/space."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..media import frames, imageio
from ..media.color import ColorContext
from ..media.imageio import Image, ImageInfo
from ..spec import PlateSpec


@dataclass
class Plate:
    spec: PlateSpec
    color: ColorContext
    seq: frames.Sequence
    sources: list[frames.FrameSource]
    ref: ImageInfo
    rgb: list[str]
    space: str
    note: str = ""  # which view and colourspace were used, when the file chose them
    _by_frame: dict[int, frames.FrameSource] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_frame = {s.frame: s for s in self.sources}

    @classmethod
    def open(cls, spec: PlateSpec, color: ColorContext) -> Plate:
        seq = frames.resolve(spec.path, spec.frames)
        sources = frames.plan(seq, spec.missing, "plate")
        for src in sources:  # empty or truncated frames: found now, not after hours of work
            if src.path and src.held_from is None:
                imageio.check_whole(src.path)
        first = next(s for s in sources if s.path)
        view, notes = spec.view, []
        head = imageio.probe(first.path)  # type: ignore[arg-type]
        if spec.layer and spec.layer in head.views and not view:
            # "left" given as the layer of a stereo file: it is a view, so the matte must be
            # that view's alpha too
            view, spec = spec.layer, spec.model_copy(update={"layer": ""})
        ref = head if view in (None, head.view) else imageio.probe(
            first.path, view)  # type: ignore[arg-type]
        if ref.views:
            notes.append(f"plate.view: using view {ref.view!r} of {', '.join(ref.views)} "
                         "(colour and matte channels of that view)")
        rgb = imageio.rgb_names(ref.channels, ref.path, spec.layer)
        space, note = color.file_space(spec.colorspace, ref.file_format, ref.metadata,
                                       "plate.colorspace")
        notes += [note] if note else []
        return cls(spec, color, seq, sources, ref, rgb, space, "; ".join(notes))

    @property
    def frames(self) -> list[int]:
        return [s.frame for s in self.sources]

    def read(self, frame: int,
             warn: Callable[[str], None] = lambda m: None) -> tuple[Image | None, np.ndarray]:
        """Plate frame ``frame`` (its file, a held frame, or None when missing: black) and its
        working-space linear colour."""
        src = self._by_frame[frame]
        disp = self.ref.display
        if src.path is None:
            return None, np.zeros((disp.height, disp.width, 3), np.float32)
        img = imageio.read(src.path, view=self.ref.view or None)
        imageio.same_size(img.info, self.ref, "plate")
        if img.nonfinite:
            warn(f"{src.path}: {img.nonfinite} NaN/Inf value(s) replaced (NaN->0, Inf->65504)")
        names = imageio.rgb_names(img.info.channels, src.path, self.spec.layer)
        return img, self.color.to_working(img.channels(names), self.space)
