"""``subject``: the background's motion from the subject's mattes alone (so it works on green
screen), our small form of AnimateAnywhere's background motion learner.

Each step from frame t to t+1 is predicted from four mattes (t-1, t, t+1, t+2) cropped with the
same square around frame t's subject, where that square sits in the frame, and the subject's
height over those frames: the subject's feet, planted while it walks, move with the ground,
and a subject that grows means a push-in. A small network (``SubjectNet``,
1.3 MB, shipped in ``motion/shipped``; trained on ``train/motion_clips``, whose camera is
known: ``actanywhere train-motion``, docs/motion.md) gives the step as a similarity in the
crop's own units (scale about the crop's centre, translation in crop sides); steps are
chained from the reference frame and smoothed without lag. Mattes are measured at a working
height of 128 px, so a 2K plate costs about what a proxy does.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable

import cv2
import numpy as np
import torch
from torch import nn

from ..errors import InputError
from .format import Motion

WORK_HEIGHT = 128  # px: mattes are measured at this height (the training clips' height)
CROP = 48  # px: a crop's side
CONTEXT = (-1, 0, 1, 2)  # the frames a step t -> t+1 sees, relative to t
CHANNELS = len(CONTEXT) + 2  # the mattes, then where each crop pixel is from the frame centre
#: network outputs are (tx, ty, log scale) times these (a 1% zoom step weighs as a 5% move)
TARGET_SCALE = np.array([10.0, 10.0, 50.0])
SHIPPED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shipped",
                       "subject.safetensors")

Window = tuple[float, float, float]  # (centre x, centre y, side) in working pixels


class SubjectNet(nn.Module):
    """Four stacked matte crops and two position channels -> one step's similarity (tx, ty,
    log scale) x TARGET_SCALE."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        w = width
        self.width = width
        self.features = nn.Sequential(
            nn.Conv2d(CHANNELS, w, 3, padding=1), nn.ReLU(),
            nn.Conv2d(w, w, 3, stride=2, padding=1), nn.ReLU(),  # 24
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.ReLU(),  # 12
            nn.Conv2d(2 * w, 4 * w, 3, stride=2, padding=1), nn.ReLU())  # 6
        self.head = nn.Sequential(nn.Linear(4 * w * 36 + len(CONTEXT), 128), nn.ReLU(),
                                  nn.Linear(128, 3))

    def forward(self, x: torch.Tensor, growth: torch.Tensor) -> torch.Tensor:
        """``x``: (N, CHANNELS, CROP, CROP) from ``crops``; ``growth``: (N, len(CONTEXT)) from
        ``growth``."""
        return self.head(torch.cat([self.features(x).flatten(1), growth], dim=1))


def save(net: SubjectNet, path: str, info: dict) -> None:
    from safetensors.torch import save_file

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    save_file(net.state_dict(), path, metadata={"width": str(net.width),
                                                "format": "actanywhere-subject-motion-1"})
    with open(os.path.splitext(path)[0] + ".json", "w") as f:
        json.dump(info, f, indent=2)


def load(path: str | None = None) -> SubjectNet:
    """A trained network (default: the shipped one); one line naming the file if it is not
    one."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = path or SHIPPED
    if not os.path.isfile(path):
        raise InputError(f"{path}: no subject motion model there; train one with "
                         "`actanywhere train-motion` or leave motion.weights unset")
    try:
        with safe_open(path, "pt") as f:
            meta = f.metadata() or {}
        net = SubjectNet(int(meta.get("width", 16)))
        net.load_state_dict(load_file(path))
    except Exception as exc:  # safetensors raises its own types for a damaged file
        raise InputError(f"{path}: not a subject motion model ({str(exc).splitlines()[0]}); "
                         "train one with `actanywhere train-motion`") from None
    return net.eval()


def working(matte: np.ndarray) -> np.ndarray:
    """A matte at the working height (area-averaged), float32 in [0, 1]."""
    h, w = matte.shape
    size = (max(1, round(w * WORK_HEIGHT / h)), WORK_HEIGHT)
    m = np.nan_to_num(np.asarray(matte, np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    return cv2.resize(np.clip(m, 0, 1), size, interpolation=cv2.INTER_AREA)


def window(matte: np.ndarray) -> Window | None:
    """The square around a (working) matte's subject: its box's centre, 1.3x its longer side;
    None when no pixel is more than half covered."""
    ys, xs = np.nonzero(matte > 0.5)
    if len(xs) < 4:
        return None
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    return (x0 + x1) / 2, (y0 + y1) / 2, 1.3 * max(x1 - x0, y1 - y0, 6)


def _normal(win: Window) -> np.ndarray:
    """Working pixels -> the window's units (centre 0, side 1)."""
    cx, cy, side = win
    return np.array([[1 / side, 0, -cx / side], [0, 1 / side, -cy / side], [0, 0, 1.0]])


def crops(mattes: np.ndarray, windows: list[Window | None]) -> np.ndarray:
    """(T-1, CHANNELS, CROP, CROP): for each step t -> t+1, the mattes of CONTEXT (clamped at
    the ends) in frame t's window (zeros where frame t has no subject), then each crop pixel's
    offset from the frame's centre in window sides (x, y: a zoom scales about the centre)."""
    n = len(mattes)
    out = np.zeros((max(n - 1, 0), CHANNELS, CROP, CROP), np.float32)
    fh, fw = mattes.shape[1:3]
    grid = (np.arange(CROP, dtype=np.float32) + 0.5) / CROP - 0.5
    for t in range(n - 1):
        if windows[t] is None:
            continue
        cx, cy, side = windows[t]
        out[t, -2] = (grid[None, :] + (cx - fw / 2) / side)
        out[t, -1] = (grid[:, None] + (cy - fh / 2) / side)
        k = CROP / side
        m = np.array([[k, 0, CROP / 2 - k * cx], [0, k, CROP / 2 - k * cy]])
        for j, d in enumerate(CONTEXT):
            src = mattes[min(max(t + d, 0), n - 1)]
            out[t, j] = cv2.warpAffine(src, m, (CROP, CROP), flags=cv2.INTER_LINEAR,
                                       borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    return out


def growth(mattes: np.ndarray, windows: list[Window | None]) -> np.ndarray:
    """(T-1, len(CONTEXT)): for each step t -> t+1, log of the subject's height (rows more than
    half covered) in each CONTEXT frame over frame t's, x 10 (the cue of a push-in)."""
    heights = []
    for m in mattes:
        rows = np.nonzero((m > 0.5).any(axis=1))[0]
        heights.append(float(rows[-1] + 1 - rows[0]) if len(rows) else np.nan)
    n = len(mattes)
    out = np.zeros((max(n - 1, 0), len(CONTEXT)), np.float32)
    for t in range(n - 1):
        if windows[t] is None:
            continue
        for j, d in enumerate(CONTEXT):
            ratio = heights[min(max(t + d, 0), n - 1)] / heights[t]
            out[t, j] = 10 * np.log(ratio) if np.isfinite(ratio) and ratio > 0 else 0.0
    return out


def targets(camera: np.ndarray, windows: list[Window | None]) -> np.ndarray:
    """(T-1, 3) the true steps in each window's units, (tx, ty, log scale) x TARGET_SCALE
    (rows of frames without a subject are zeros)."""
    out = np.zeros((len(camera) - 1, 3), np.float32)
    for t in range(len(camera) - 1):
        if windows[t] is None:
            continue
        n = _normal(windows[t])
        step = n @ camera[t + 1] @ np.linalg.inv(camera[t]) @ np.linalg.inv(n)
        step /= step[2, 2]
        scale = np.sqrt(abs(np.linalg.det(step[:2, :2])))
        out[t] = np.array([step[0, 2], step[1, 2], np.log(scale)]) * TARGET_SCALE
    return out


def step(pred: np.ndarray, win: Window) -> np.ndarray:
    """A predicted (tx, ty, log scale) x TARGET_SCALE in ``win``'s units -> a working-pixel
    homography."""
    tx, ty, ls = np.asarray(pred, np.float64) / TARGET_SCALE
    s = np.exp(ls)
    n = _normal(win)
    return np.linalg.inv(n) @ np.array([[s, 0, tx], [0, s, ty], [0, 0, 1.0]]) @ n


def predict(net: SubjectNet, mattes: np.ndarray,
            windows: list[Window | None]) -> np.ndarray:
    """(T-1, 3) the network's steps for working mattes (T, h, w)."""
    x = torch.from_numpy(crops(mattes, windows))
    g = torch.from_numpy(growth(mattes, windows))
    with torch.inference_mode():
        return net(x, g).numpy() if len(x) else np.zeros((0, 3), np.float32)


def chain(steps: list[np.ndarray]) -> list[np.ndarray]:
    """Frame-to-frame steps -> each frame's motion from the first (the identity)."""
    out = [np.eye(3)]
    for s in steps:
        h = s @ out[-1]
        out.append(h / h[2, 2])
    return out


def to_plate(h: np.ndarray, width: int, height: int, work: tuple[int, int]) -> np.ndarray:
    """A working-pixel homography in plate pixels (pixel centres at integers in both)."""
    rx, ry = work[0] / width, work[1] / height
    a = np.array([[rx, 0, 0.5 * rx - 0.5], [0, ry, 0.5 * ry - 0.5], [0, 0, 1.0]])
    out = np.linalg.inv(a) @ h @ a
    return out / out[2, 2]


def estimate(pictures: Iterable[tuple[int, np.ndarray, np.ndarray]], width: int, height: int,
             net: SubjectNet | None = None, note: Callable[[str], None] = lambda _m: None,
             ) -> Motion:
    """The motion from (frame, rgb, matte) in order (only the mattes are used). A frame with
    no subject holds the camera over its steps (a warning names them); no subject on any
    frame is an error."""
    frames, stack = read(pictures)
    return from_mattes(frames, stack, width, height, net, note)


def read(pictures: Iterable[tuple[int, np.ndarray, np.ndarray]]
         ) -> tuple[list[int], np.ndarray]:
    """(the frames, their mattes at the working height (T, h, w)) from (frame, rgb, matte)."""
    frames, mattes = [], []
    for f, _rgb, m in pictures:
        frames.append(f)
        mattes.append(working(m))
    if not frames:
        raise InputError("motion subject: no frames")
    return frames, np.stack(mattes)


def from_mattes(frames: list[int], stack: np.ndarray, width: int, height: int,
                net: SubjectNet | None = None, note: Callable[[str], None] = lambda _m: None,
                ) -> Motion:
    """``estimate`` on working mattes (``read``)."""
    windows = [window(m) for m in stack]
    empty = [f for f, w in zip(frames, windows, strict=True) if w is None]
    if len(empty) == len(frames):
        raise InputError(f"motion subject: no subject on any frame ({frames[0]}-{frames[-1]}: "
                         "the matte is empty); give --matte, or use motion.source track or "
                         "keys")
    if empty:
        from ..media.frames import compact

        note(f"motion subject: no subject on frame(s) {compact(empty)}; the camera is held "
             "there")
    net = net or load()
    preds = predict(net, stack, windows)
    steps = [step(p, w) if w is not None and windows[t + 1] is not None else np.eye(3)
             for t, (p, w) in enumerate(zip(preds, windows[:-1], strict=True))]
    work = (stack.shape[2], stack.shape[1])
    path = [to_plate(h, width, height, work) for h in chain(steps)]
    conf = {f: 0.0 if w is None else float(min(1.0, w[2] / 1.3 / (0.25 * WORK_HEIGHT)))
            for f, w in zip(frames, windows, strict=True)}
    return Motion("subject", width, height, frames[0], dict(zip(frames, path, strict=True)), conf)


#: a walking subject's silhouette changes shape by more than this between frames (mean
#: difference of its box-normalised mattes: synthetic walkers 0.07-0.18; a rigid element,
#: moving or growing, under 0.03)
ARTICULATED = 0.05


def articulation(stack: np.ndarray) -> float:
    """How much the subject's silhouette changes shape from frame to frame (working mattes):
    the mean absolute difference of consecutive mattes, each cropped to its subject's box and
    resized to 32x32 (so a move or a zoom alone changes nothing). The model's cue is a
    stepping figure's planted foot; a rigid element (under ``ARTICULATED``) moves the same
    whether the camera or the element moves, and its mattes cannot tell them apart."""
    shapes = []
    for m in stack:
        ys, xs = np.nonzero(m > 0.5)
        shapes.append(None if len(xs) < 4 else cv2.resize(
            m[ys.min():ys.max() + 1, xs.min():xs.max() + 1], (32, 32),
            interpolation=cv2.INTER_AREA))
    diffs = [float(np.abs(a - b).mean()) for a, b in zip(shapes[:-1], shapes[1:], strict=True)
             if a is not None and b is not None]
    return float(np.mean(diffs)) if diffs else 0.0
