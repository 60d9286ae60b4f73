"""One streaming transformers SAM 3 video session over a shot: frames fed in order as they
are needed, every text prompt detected on every frame, each instance tracked by its id.

The session is transformers' own (``Sam3VideoProcessor.init_video_session``,
``add_text_prompt``; ``Sam3VideoModel`` called one frame at a time). transformers keeps every
frame's pixels and every tracked frame's outputs; here frames are dropped once done and tracked
outputs once ``keep`` frames behind, so memory stays flat however long the shot.

transformers' SAM 3 post-processing (non-maximum suppression of detections, hole filling,
sprinkle removal) fetches a compiled kernel from the Hugging Face hub on first use; that fetch
is switched off here (``no_hub_kernel``): the detections are kept as the model gives them and
the project's refine stage (fill_holes, min_island) cleans the mattes instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..sam2.loader import VideoModel

#: an instance on one frame: (its text prompt, its mask logits at the model's low resolution)
Instance = tuple[str, np.ndarray]


def no_hub_kernel() -> None:
    """Mark transformers' SAM 3 hub kernel as already tried and unavailable, so no run ever
    reaches for the network (its pure-PyTorch path is used)."""
    from transformers.models.sam3_video import modeling_sam3_video as m

    if getattr(m, "cv_utils_kernel", False) is None:  # None: not tried yet
        m.cv_utils_kernel = False


class TextSession:
    """Instances of ``texts`` through one shot. ``image(i)``: frame i as uint8 RGB."""

    def __init__(self, vm: VideoModel, image: Callable[[int], np.ndarray], *,
                 texts: Sequence[str], keep: int) -> None:
        import torch

        no_hub_kernel()
        self.torch, self.vm, self.image = torch, vm, image
        self.keep = max(1, keep)
        self.s = vm.processor.init_video_session(inference_device=vm.device, dtype=vm.dtype)
        vm.processor.add_text_prompt(self.s, list(dict.fromkeys(texts)))
        self.size: tuple[int, int] | None = None  # (height, width) of the shot's frames
        self.first: dict[int, int] = {}  # object id -> the frame it was first found on
        self.removed: dict[int, int] = {}  # object id -> the frame the model dropped it on
        self.peak = 0  # the most tracked frames whose outputs were held at once (one object)

    def step(self, i: int) -> dict[int, Instance]:
        """Frame i (frames go in order): its instances by object id, those the model
        suppresses (overlaps, hot-start removals) left out."""
        img = self.image(i)
        self.size = (int(img.shape[0]), int(img.shape[1]))
        pix = self.vm.processor(images=img, return_tensors="pt").pixel_values[0]
        with self.torch.inference_mode():
            out = self.vm.model(inference_session=self.s, frame_idx=i,
                                frame=pix.to(self.vm.device))
        hidden = set(out.suppressed_obj_ids or ()) | set(self.s.hotstart_removed_obj_ids)
        for oid in out.removed_obj_ids or ():
            self.removed.setdefault(int(oid), i)
        found: dict[int, Instance] = {}
        for oid, logits in out.obj_id_to_mask.items():
            if oid in hidden:
                continue
            text = self.s.prompts[self.s.obj_id_to_prompt_id[oid]]
            self.first.setdefault(int(oid), i)
            found[int(oid)] = (text, logits.reshape(logits.shape[-2:]).float().cpu().numpy()
                               .astype(np.float16))
        self._forget(i)
        return found

    def spurious(self) -> set[int]:
        """Ids the model dropped within its hot-start delay of finding them (false starts it
        would have hidden from every frame, had it seen the whole shot before answering:
        transformers' ``propagate_in_video_iterator`` buffers frames for that)."""
        delay = int(getattr(self.vm.model, "hotstart_delay", 0) or 0)
        return {oid for oid, at in self.removed.items()
                if oid in self.first and at - self.first[oid] <= delay}

    def matte(self, logits: np.ndarray) -> np.ndarray:
        """An instance's soft matte (sigmoid of its logits) at the shot's frame size."""
        import cv2

        assert self.size is not None
        h, w = self.size
        up = cv2.resize(logits.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
        return (1.0 / (1.0 + np.exp(-np.clip(up, -30.0, 30.0)))).astype(np.float32)

    def _forget(self, i: int) -> None:
        """Drop what the model will not read again: pixels of frames before i, tracked
        frames' outputs ``keep`` or more frames back (conditioning frames stay)."""
        s = self.s
        for j in [j for j in (s.processed_frames or {}) if j < i]:
            del s.processed_frames[j]
        for obj, outputs in s.output_dict_per_obj.items():
            tracked = outputs["non_cond_frame_outputs"]
            for j in [j for j in tracked if i - j >= self.keep]:
                del tracked[j]
                s.frames_tracked_per_obj.get(obj, {}).pop(j, None)
            self.peak = max(self.peak, len(tracked))
