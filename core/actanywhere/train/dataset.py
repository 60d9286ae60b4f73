"""Training samples as in the paper: N frames of a clip, a condition frame of the same clip,
the foreground segmentation S (subject pixels, gray 127 elsewhere) and the mask.

Sample ``i`` is a pure function of (data seed, i), so a run resumed at step k sees exactly the
samples an uninterrupted run would, whatever the number of loader workers. Mask augmentations
(cut-outs, erosion/dilation, blur) change only what the model is *given* (S and the mask), never
the frames it must produce, so it learns to tolerate imperfect mattes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..errors import InputError
from ..model.modelspace import GRAY
from .config import ClipSource, DataConfig, is_path
from .synthetic import carry, make_clip

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm")


def sample_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, index]))


def train_clip_seed(seed: int, index: int) -> int:
    """Synthetic training clips have even seeds; held-out (validation, evaluation) odd ones."""
    return int(np.random.SeedSequence([seed, index, 7]).generate_state(1)[0]) & ~1


def heldout_clip_seed(seed: int, index: int) -> int:
    return int(np.random.SeedSequence([seed, index, 11]).generate_state(1)[0]) | 1


# ------------------------------------------------------------------------------- real clips
@dataclass
class LoadedClip:
    frames: np.ndarray  # (T, H, W, 3) model-space sRGB [0, 1]
    mattes: np.ndarray  # (T, H, W)
    name: str


def _read_video(path: str) -> list[np.ndarray]:
    try:
        import av
    except ImportError as exc:
        raise InputError(f"{path}: reading video needs PyAV; install the train extra "
                         "(pip install 'actanywhere-vfx[train]')") from exc
    try:
        with av.open(path) as container:
            return [f.to_ndarray(format="rgb24").astype(np.float32) / 255.0
                    for f in container.decode(video=0)]
    except (av.FFmpegError, OSError) as exc:
        raise InputError(f"{path}: cannot decode the video ({exc}); re-export it (H.264/ProRes)"
                         ) from exc


def _matte_channel(names: tuple[str, ...]) -> list[str]:
    for c in ("A", "a", "Y", "y", "R", "r"):
        if c in names:
            return [c]
    return [names[0]]


def _read_sequence(pattern: str, channel: str | None = None, matte: bool = False
                   ) -> tuple[list[np.ndarray], str]:
    """Every frame of a sequence: RGB, one named channel, or (matte) A/Y/R."""
    from ..media import imageio
    from ..media.frames import resolve

    seq = resolve(pattern)
    missing = seq.missing()
    if missing:
        raise InputError(f"{seq.template}: frames {missing[:5]} missing; training clips must be "
                         "complete")
    out, fmt = [], ""
    for path in seq.paths():
        img = imageio.read(path)
        names = img.info.channels
        if channel is not None:
            if channel not in names:
                raise InputError(f"{path}: no channel {channel}; it has {', '.join(names)}; set "
                                 "the clip's matte to a channel that exists or to a matte file")
            wanted = [channel]
        else:
            wanted = _matte_channel(names) if matte else imageio.rgb_names(names, path)
        out.append(img.channels(wanted))
        fmt = img.info.file_format
    return out, fmt


def _fit(a: np.ndarray, short: int) -> np.ndarray:
    """Resize (T, H, W, C) so the shorter side is ``short`` (area filter)."""
    x = torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2)
    h, w = x.shape[-2:]
    scale = short / min(h, w)
    size = (max(short, round(h * scale)), max(short, round(w * scale)))
    x = F.interpolate(x, size=size, mode="area" if scale < 1 else "bilinear")
    return x.permute(0, 2, 3, 1).numpy()


@lru_cache(maxsize=64)
def load_clip(frames: str, matte: str, colorspace: str | None, short: int) -> LoadedClip:
    """A real clip in model space, resized so its shorter side is ``short``; cached."""
    from ..media.color import ColorContext, default_colorspace

    color = ColorContext()
    if frames.lower().endswith(VIDEO_SUFFIXES):
        rgb, fmt = [f[..., :3] for f in _read_video(frames)], "png"
        if not is_path(matte):
            raise InputError(f"{frames}: a video has no alpha channel; give the clip a matte "
                             "sequence or video")
    else:
        if not os.path.exists(os.path.dirname(frames) or "."):
            raise InputError(f"{frames}: folder does not exist")
        rgb, fmt = _read_sequence(frames)
    if is_path(matte):
        if matte.lower().endswith(VIDEO_SUFFIXES):
            mats = [f[..., 0] for f in _read_video(matte)]
        else:
            mats = [m[..., 0] for m in _read_sequence(matte, matte=True)[0]]
    else:
        channel = "A" if matte == "alpha" else matte
        mats = [m[..., 0] for m in _read_sequence(frames, channel)[0]]
    if len(mats) != len(rgb):
        raise InputError(f"{matte}: {len(mats)} matte frames for {len(rgb)} frames of {frames}")
    if mats[0].shape != rgb[0].shape[:2]:
        raise InputError(f"{matte}: matte size {mats[0].shape[::-1]} differs from the frames' "
                         f"{rgb[0].shape[1::-1]}")
    src = colorspace or default_colorspace(fmt)
    rgb_arr = np.stack([color.to_model(color.to_working(f, src)) for f in rgb])
    m = np.clip(np.stack(mats), 0, 1)[..., None]
    return LoadedClip(_fit(rgb_arr, short), _fit(m, short)[..., 0], frames)


# --------------------------------------------------------------------------- augmentations
def _odd(k: int) -> int:
    return k + 1 - k % 2


def augment_matte(m: torch.Tensor, cfg: DataConfig, rng: np.random.Generator) -> torch.Tensor:
    """(T, 1, H, W) matte -> a plausibly imperfect matte, the same defect on every frame."""
    _, _, h, w = m.shape
    if rng.random() < cfg.mask_morph:
        k = _odd(2 * int(rng.integers(1, 4)) + 1)
        if rng.random() < 0.5:  # dilate
            m = F.max_pool2d(m, k, stride=1, padding=k // 2)
        else:  # erode
            m = -F.max_pool2d(-m, k, stride=1, padding=k // 2)
    if rng.random() < cfg.mask_blur:
        k = _odd(int(rng.integers(3, 8)))
        m = F.avg_pool2d(m, k, stride=1, padding=k // 2, count_include_pad=False)
    if rng.random() < cfg.mask_cutout:
        m = m.clone()
        for _ in range(int(rng.integers(1, 4))):
            ch, cw = int(rng.integers(h // 8, h // 3 + 1)), int(rng.integers(w // 8, w // 3 + 1))
            y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
            m[..., y : y + ch, x : x + cw] = 0.0
    return m.clamp(0, 1)


def _crop_flip(x: torch.Tensor, box: tuple[int, int, int, int], flip: bool, size: int
               ) -> torch.Tensor:
    y, xx, h, w = box
    x = x[..., y : y + h, xx : xx + w]
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="area" if h > size else "bilinear")
    return torch.flip(x, dims=[-1]) if flip else x


# ---------------------------------------------------------------------------------- dataset
class TrainSamples(Dataset):
    """``len`` samples (a run needs steps x batch x processes); item i from (seed, i)."""

    def __init__(self, cfg: DataConfig, length: int, heldout: bool = False) -> None:
        self.cfg = cfg
        self.length = length
        self.heldout = heldout

    def __len__(self) -> int:
        return self.length

    def _clip(self, rng: np.random.Generator, index: int, need: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
        cfg = self.cfg
        if cfg.source == "synthetic":
            seed = (heldout_clip_seed if self.heldout else train_clip_seed)(cfg.seed, index)
            clip = make_clip(seed, frames=need + need // 2, height=cfg.resolution,
                             width=cfg.resolution)
            return clip.frames, clip.mattes, clip.backgrounds, clip.camera
        src: ClipSource = cfg.clips[int(rng.integers(0, len(cfg.clips)))]
        clip = load_clip(src.frames, src.matte, src.colorspace, cfg.resolution)
        if clip.frames.shape[0] < need:
            raise InputError(f"{src.frames}: {clip.frames.shape[0]} frames, a sample needs "
                             f"{need} (data.frames x data.stride)")
        return clip.frames, clip.mattes, None, None

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        rng = sample_rng(cfg.seed + (10**9 if self.heldout else 0), index)
        need = (cfg.frames - 1) * cfg.stride + 1
        frames, mattes, clean, camera = self._clip(rng, index, need)
        total, h, w = mattes.shape
        start = int(rng.integers(0, total - need + 1))
        picks = np.arange(start, start + need, cfg.stride)
        cond_index = int(rng.integers(0, total))
        use_clean = clean is not None and rng.random() < cfg.clean_condition
        cond = (clean if use_clean else frames)[cond_index]
        # the spatial pathway's input: the condition carried along the true camera path (real
        # clips, whose path is unknown: where the condition frame was, on every frame)
        moved = carry(camera, cond, cond_index, picks) if camera is not None else \
            np.repeat(cond[None], len(picks), axis=0)

        side = min(h, w)
        crop = side if self.heldout or cfg.source == "synthetic" else int(
            side * rng.uniform(cfg.crop, 1.0))
        box = (int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1)), crop, crop)
        flip = cfg.flip and not self.heldout and bool(rng.random() < 0.5)
        size = cfg.resolution
        video = _crop_flip(torch.from_numpy(frames[picks]).permute(0, 3, 1, 2), box, flip, size)
        matte = _crop_flip(torch.from_numpy(mattes[picks])[:, None], box, flip, size)
        condition = _crop_flip(torch.from_numpy(np.ascontiguousarray(cond)).permute(2, 0, 1)[None],
                               box, flip, size)[0]
        moved_t = _crop_flip(torch.from_numpy(moved).permute(0, 3, 1, 2), box, flip, size)
        given = matte if self.heldout else augment_matte(matte, cfg, rng)
        foreground = video * given + GRAY * (1.0 - given)
        drop = (not self.heldout) and bool(rng.random() < cfg.condition_dropout)
        return {
            "frames": video.float().contiguous(),  # (T, 3, H, W) what the model must produce
            "foreground": foreground.float().contiguous(),  # S
            "mask": (1.0 - given).float().contiguous(),  # (T, 1, H, W) 1 = generate
            "matte": matte.float().contiguous(),  # the true matte (metrics)
            "condition": condition.float().contiguous(),  # (3, H, W)
            "moved_condition": moved_t.float().contiguous(),  # (T, 3, H, W) spatial pathway
            "drop_condition": torch.tensor(drop),
            "condition_index": torch.tensor(cond_index),
            "condition_clean": torch.tensor(use_clean),
        }
