"""Output frames: one OpenEXR per frame, written atomically, with the project's metadata.

Both commands write through here: ``generate`` (comp, background and matte layers) and
``segment`` (a matte, or a copy of the plate with the matte added).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import __version__
from ..media import frames, imagewrite
from ..media.imageio import ImageInfo, Window

#: one block of channels: names, and (H, W, len(names)) or (H, W) pixels, or a constant
Block = tuple[list[str], "np.ndarray | float"]


@dataclass
class FrameWriter:
    output: frames.Sequence
    ref: ImageInfo  # the plate's reference frame: windows, pixel aspect
    compression: str
    #: metadata of every frame; it overrides a frame's own (``base``), and the project's
    #: keys (software, frame number) override both
    metadata: dict[str, Any] = field(default_factory=dict)

    def write(self, frame: int, blocks: list[Block], base: dict[str, Any] | None = None,
              window: Window | None = None) -> str:
        """Write one frame from channel blocks, in order; returns its path. ``base``: the
        metadata the frame starts from (e.g. the plate frame it copies). ``window``: the
        data window the blocks cover (the plate frame's overscan, ``output.overscan``);
        default the display window."""
        names = [n for block_names, _ in blocks for n in block_names]
        data = window or self.ref.display
        # One interleaved buffer filled block by block (np.stack of strided planes is 5x slower).
        pixels = np.empty((data.height, data.width, len(names)), np.float32)
        c = 0
        for block_names, values in blocks:
            k = len(block_names)
            if isinstance(values, np.ndarray) and values.ndim == 2:
                values = values[..., None]
            pixels[..., c : c + k] = values
            c += k
        meta = {**(base or {}), **self.metadata,
                "Software": f"ActAnywhere for VFX {__version__}",
                "actanywhere:frame": int(frame)}
        path = self.output.path(frame)
        imagewrite.write_exr(path, names, pixels, self.ref.display, meta, self.compression,
                             self.ref.pixel_aspect, data=window)
        return path
