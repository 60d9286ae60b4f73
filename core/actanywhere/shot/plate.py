"""A plate sequence opened for reading: frames planned, reference image, colour names/space."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
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
        ref, spec, notes = _choose(spec, first.path)  # type: ignore[arg-type]
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


def _choose(spec: PlateSpec, path: str) -> tuple[ImageInfo, PlateSpec, list[str]]:
    """The reference frame's description in the view the plate is read in, the spec with
    ``layer`` the colour's layer there, and what to tell the user. A layer named like a view
    (``left``) is that view; one named like a part (``rgba_right``, as ``actanywhere info``
    lists parts) is that part's colour, in its view. The view is said only when it was not
    asked for: the file's hero, or a view a layer stood for."""
    head = imageio.probe(path)
    layer = spec.layer
    part = next((p for p in head.parts if layer and len(head.parts) > 1 and p.name == layer),
                None)
    implied = layer if layer and layer in head.views else part.view if part else ""
    if implied and spec.view not in (None, implied):
        raise InputError(f"{path}: plate.layer {layer!r} is view {implied!r} but plate.view is "
                         f"{spec.view!r}; set only one of them")
    view = spec.view or implied or None
    ref = head if view in (None, head.view) else imageio.probe(path, view)
    if layer and layer in head.views:
        layer = ""
    elif part is not None:
        found = imageio.part_layer(ref, part.index)
        if found is None:
            raise InputError(f"{path}: plate.layer {part.name!r} is a part without colour "
                             f"({', '.join(part.channels)}); name a part with R,G,B or Y")
        layer = found
    notes = []
    if ref.views and not spec.view:
        why = f"plate.layer {spec.layer!r} is a view of the file" if implied else \
            "plate.view: not set, the hero"
        notes.append(f"{why}: using view {ref.view!r} of {', '.join(ref.views)} (colour and "
                     "matte channels of that view)")
    return ref, spec.model_copy(update={"layer": layer}), notes
