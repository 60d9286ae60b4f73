"""``motion.json``: the motion of a shot on disk, and checks that it fits a plate.

    {"version": 1, "source": "track", "width": 1920, "height": 1080, "reference_frame": 1001,
     "frames": {"1001": [[1,0,0],[0,1,0],[0,0,1]], ...}, "confidence": {"1001": 1.0, ...}}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from ..api import atomic
from ..errors import InputError, OutputError

VERSION = 1


@dataclass
class Motion:
    source: str
    width: int
    height: int
    reference_frame: int
    frames: dict[int, np.ndarray]  # frame -> (3, 3) float64, normalised to h22 = 1
    confidence: dict[int, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for frame, h in self.frames.items():
            self.frames[frame] = normalised(np.asarray(h, np.float64), frame)

    def apply(self, frame: int, points: np.ndarray) -> np.ndarray:
        """Reference-frame points (N, 2) where they are in ``frame``."""
        return apply(self.frames[frame], points)

    def to_dict(self) -> dict:
        return {"version": VERSION, "source": self.source, "width": self.width,
                "height": self.height, "reference_frame": self.reference_frame,
                "frames": {str(f): np.round(h, 10).tolist()
                           for f, h in sorted(self.frames.items())},
                "confidence": {str(f): round(float(c), 4)
                               for f, c in sorted(self.confidence.items())}}

    def check(self, width: int, height: int, frames: list[int], path: str = "motion") -> None:
        """InputError (one line) when this motion was made for another plate size or does not
        cover ``frames``."""
        if (self.width, self.height) != (width, height):
            raise InputError(f"{path}: made for {self.width}x{self.height}, the plate is "
                             f"{width}x{height}; estimate it again for this plate")
        missing = [f for f in frames if f not in self.frames]
        if missing:
            raise InputError(f"{path}: no motion for frame(s) {missing[0]}"
                             f"{'...' if len(missing) > 1 else ''} ({len(missing)} missing); "
                             "estimate it for the whole range")


def normalised(h: np.ndarray, frame: int | str = "?") -> np.ndarray:
    """``h`` scaled to h22 = 1; InputError naming the frame when it is not a usable
    homography (wrong shape, not finite, singular, or flipping the image)."""
    if h.shape != (3, 3) or not np.all(np.isfinite(h)) or abs(h[2, 2]) < 1e-12:
        raise InputError(f"motion of frame {frame}: not a finite 3x3 homography")
    h = h / h[2, 2]
    if np.linalg.det(h[:2, :2]) <= 1e-6 or abs(np.linalg.det(h)) < 1e-9:
        raise InputError(f"motion of frame {frame}: degenerate (singular or mirrored) "
                         "homography")
    return h


def apply(h: np.ndarray, points: np.ndarray) -> np.ndarray:
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    ph = np.concatenate([pts, np.ones((len(pts), 1))], axis=1) @ h.T
    return ph[:, :2] / ph[:, 2:3]


def save(motion: Motion, path: str) -> str:
    """Write atomically (never a half-written file); OutputError (one line) when it cannot
    be written (an unwritable folder, a full disk)."""
    try:
        return atomic.write_json(path, motion.to_dict(), indent=1)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write the motion ({exc.strerror or exc}); choose "
                          "a writable folder with free space") from None


def load(path: str) -> Motion:
    """A motion file; InputError naming the file and the field at fault."""
    try:
        with open(path) as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise InputError(f"{path}: no such motion file; write one with `actanywhere motion`") \
            from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a motion file ({exc})") from None
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise InputError(f"{path}: not a version {VERSION} motion file")
    try:
        return Motion(source=str(data["source"]), width=int(data["width"]),
                      height=int(data["height"]), reference_frame=int(data["reference_frame"]),
                      frames={int(f): np.asarray(h, np.float64)
                              for f, h in data["frames"].items()},
                      confidence={int(f): float(c)
                                  for f, c in (data.get("confidence") or {}).items()})
    except KeyError as exc:
        raise InputError(f"{path}: field {exc.args[0]!r} missing") from None
    except (TypeError, ValueError) as exc:
        raise InputError(f"{path}: {exc}") from None
