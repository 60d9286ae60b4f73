"""The two kinds of matte source, and the ones that read mattes that already exist."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError
from ..media.imageio import Image, ImageInfo
from ..progress import Reporter
from . import channels

if TYPE_CHECKING:
    from .track import Segmenter

Warn = Callable[[str], None]


class Source:
    """What every matte source is made from: the matte settings, the plate's reference
    frame, and the matte file of each frame (source=file)."""

    def __init__(self, spec, ref: ImageInfo, files: dict[int, str]) -> None:
        self.spec, self.ref, self.files = spec, ref, files

    @classmethod
    def check(cls, spec, ref: ImageInfo) -> None:
        """Raise the error a run would give when this source cannot work for the plate;
        no pixel read, no model loaded."""
        del spec, ref  # sources that need nothing beyond the plate


class FrameSource(Source, ABC):
    """A matte made from one plate frame alone (read as the frame is read)."""

    @abstractmethod
    def matte(self, frame: int, img: Image, rgb: np.ndarray, warn: Warn
              ) -> tuple[np.ndarray, np.ndarray]:
        """(raw matte, the frame's colour: as given, or cleaned as the source does it)."""

    def colour(self, img: Image, rgb: np.ndarray) -> np.ndarray:
        """The frame's colour when its matte was computed earlier (e.g. despilled)."""
        del img
        return rgb

    def premultiplied(self, rgb: np.ndarray, matte: np.ndarray) -> bool:
        """Whether the plate colour is premultiplied by this matte (when the spec is silent)."""
        del rgb, matte
        return False  # keyed or segmented plates are full plates


class TrackedSource(Source, ABC):
    """A matte made on key frames from prompts and tracked through the shot."""

    @abstractmethod
    def segmenter(self, image: Callable[[int], np.ndarray], count: int,
                  report: Reporter) -> Segmenter:
        """The segmenter over the shot's ``count`` frames, ``image(i)`` as uint8 RGB."""


class AlphaSource(FrameSource):
    """A channel of the plate (``matte.channel``, A by default)."""

    @classmethod
    def check(cls, spec, ref: ImageInfo) -> None:
        if spec.channel not in ref.channels:
            raise InputError(f"{ref.path}: no matte channel {spec.channel!r}; it has "
                             f"{', '.join(ref.channels)}; set matte.channel or use "
                             "matte.source=file")

    def matte(self, frame: int, img: Image, rgb: np.ndarray, warn: Warn
              ) -> tuple[np.ndarray, np.ndarray]:
        return channels.plate_channel(img, self.spec.channel), rgb

    def premultiplied(self, rgb: np.ndarray, matte: np.ndarray) -> bool:
        return channels.is_premultiplied(rgb, matte)


class FileSource(AlphaSource):
    """A matte sequence beside the plate (``matte.path``; planned and checked by
    ``shot.files``)."""

    @classmethod
    def check(cls, spec, ref: ImageInfo) -> None:
        del spec, ref  # the channel is the matte file's, read per frame

    def matte(self, frame: int, img: Image, rgb: np.ndarray, warn: Warn
              ) -> tuple[np.ndarray, np.ndarray]:
        return channels.matte_image(self.files[frame], self.ref, self.spec.channel, warn), rgb
