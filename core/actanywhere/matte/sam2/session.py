"""One transformers video inference session over a shot: frames fed at the model's size as
they are needed (streaming), prompts and masks on anchor frames, and a memory that stays flat.
One session may track several objects (ids 1..n, each with its own prompts and memory) keyed on
the same frames: each frame goes through the image encoder once for all of them.

The session is transformers' own (``Sam2VideoProcessor.init_video_session``; prompts through
``add_inputs_to_inference_session``; masks through ``post_process_masks``). Streaming keeps
every frame it is given and every frame's outputs; here a frame's pixels are dropped once it is
done, and tracked frames' outputs once they are ``keep`` frames behind, which is all the model
reads back (SAM 2.1: 6 mask memories and 15 object pointers besides the anchors').
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .loader import VideoModel

#: the object tracked when there is one (the subject)
OBJ = 1


class Session:
    """The track of one object or several (ids 1..n, in the order their prompts are added)
    through one shot. ``image(i)``: frame i as uint8 RGB."""

    def __init__(self, vm: VideoModel, image: Callable[[int], np.ndarray], *, keep: int,
                 batch: int = 1) -> None:
        import torch

        self.torch, self.vm, self.image = torch, vm, image
        self.keep = max(1, keep)
        self.batch = max(1, batch)
        self.s = self._new()
        self.size: tuple[int, int] | None = None  # (height, width) of the shot's frames
        self._pixels: dict[int, object] = {}  # frames encoded ahead, until they are tracked
        self.peak = 0  # the most tracked frames whose outputs were held at once
        self.encoded = 0  # frames through the image encoder

    def _new(self):
        return self.vm.processor.init_video_session(
            inference_device=self.vm.device, dtype=self.vm.dtype,
            max_vision_features_cache_size=self.batch)

    # ------------------------------------------------------------------ frames and masks
    def pixels(self, i: int):
        """Frame i at the model's working size (normalised, on the device)."""
        if i in self._pixels:
            return self._pixels.pop(i)
        img = self.image(i)
        self.size = (int(img.shape[0]), int(img.shape[1]))
        inp = self.vm.processor(images=img, device=self.vm.device, return_tensors="pt")
        return inp.pixel_values[0]

    def _logits(self, pred_masks):
        assert self.size is not None
        return self.vm.processor.post_process_masks(
            [pred_masks.float()], [list(self.size)], binarize=False)[0]

    def matte(self, pred_masks) -> np.ndarray:
        """The soft matte (sigmoid of the logits) of the objects at the shot's size, united."""
        m = self.torch.sigmoid(self._logits(pred_masks).amax(dim=0)[0].clamp(-30.0, 30.0))
        return m.cpu().numpy().astype(np.float32)

    def mattes(self, pred_masks) -> list[np.ndarray]:
        """Each object's soft matte at the shot's size, in id order."""
        m = self.torch.sigmoid(self._logits(pred_masks)[:, 0].clamp(-30.0, 30.0))
        return list(m.cpu().numpy().astype(np.float32))

    # ------------------------------------------------------------------ anchors
    def _prime(self, i: int) -> None:
        """Frame i read (the shot's size known) and kept for the anchor's run."""
        if i not in self._pixels:
            self._pixels[i] = self.pixels(i)

    def add_prompt(self, i: int, points: Sequence[tuple[float, float, int]],
                   box: tuple[float, float, float, float] | None, *, obj: int = OBJ) -> None:
        """Clicks (x, y, label) and at most one box on frame i as object ``obj``'s prompt."""
        kw: dict = {}
        if points:
            kw["input_points"] = [[[[float(x), float(y)] for x, y, _ in points]]]
            kw["input_labels"] = [[[int(lab) for _, _, lab in points]]]
        if box is not None:
            kw["input_boxes"] = [[[float(v) for v in box]]]
        self._add(i, obj, kw)

    def add_mask(self, i: int, matte: np.ndarray, *, obj: int = OBJ) -> None:
        """A matte of frame i (painted, written by a stopped run, or united from several boxes)
        as object ``obj``'s prompt."""
        self._add(i, obj, {"input_masks": np.asarray(matte) > 0.5})

    def _add(self, i: int, obj: int, inputs: dict) -> None:
        """``inputs`` for transformers' processor as object ``obj``'s prompt on frame i. It
        marks only the objects of its last call as newly prompted: those prompted by the
        calls before it on this frame stay so."""
        self._prime(i)
        before = list(self.s.obj_with_new_inputs)
        self.vm.processor.add_inputs_to_inference_session(
            self.s, frame_idx=i, obj_ids=obj, original_size=self.size, **inputs)
        new = [o for o in self.s.obj_with_new_inputs if o not in before]
        self.s.obj_with_new_inputs = [*before, *new]

    def anchor(self, i: int) -> list[np.ndarray]:
        """Frame i as a conditioning frame of every object (after each one's prompt was
        added): the model's answers, in id order."""
        return self._run(i, self.pixels(i), reverse=False)

    def prompt(self, i: int, points: Sequence[tuple[float, float, int]],
               box: tuple[float, float, float, float] | None) -> np.ndarray:
        """Clicks and at most one box on frame i as the subject's prompt: a conditioning frame
        of the track; its matte."""
        self.add_prompt(i, points, box)
        return self.anchor(i)[0]

    def mask(self, i: int, matte: np.ndarray) -> np.ndarray:
        """A matte of frame i as the subject's prompt: a conditioning frame; the model's
        answer."""
        self.add_mask(i, matte)
        return self.anchor(i)[0]

    def boxes(self, i: int, points: Sequence[tuple[float, float, int]],
              boxes: Sequence[tuple[float, float, float, float]]) -> np.ndarray:
        """Several boxes on frame i, each with every click, segmented at once (one object per
        box, in a scratch session of their own) and united: a matte, not yet a prompt."""
        self._prime(i)
        pix = self._pixels[i]
        scratch = self._new()
        n = len(boxes)
        kw: dict = {"input_boxes": [[[float(v) for v in b] for b in boxes]]}
        if points:
            kw["input_points"] = [[[[float(x), float(y)] for x, y, _ in points]] * n]
            kw["input_labels"] = [[[int(lab) for _, _, lab in points]] * n]
        self.vm.processor.add_inputs_to_inference_session(
            scratch, frame_idx=0, obj_ids=list(range(1, n + 1)), original_size=self.size, **kw)
        with self.torch.inference_mode():
            out = self.vm.model(inference_session=scratch, frame_idx=0, frame=pix,
                                run_mem_encoder=False)
        self.encoded += 1
        feats = scratch.cache.get_vision_features(0)
        if feats is not None:  # the frame's anchor run reads them instead of encoding again
            self.s.cache.cache_vision_features(i, feats)
        return self.matte(out.pred_masks)

    # ------------------------------------------------------------------ tracking
    def start_run(self) -> None:
        """Forget the tracked frames of the previous run: each run reads the anchors and its
        own frames only."""
        for obj in range(len(self.s.obj_ids)):
            self.s.output_dict_per_obj[obj]["non_cond_frame_outputs"].clear()
            self.s.frames_tracked_per_obj[obj].clear()
        self.s.cache.clear_all()
        self._pixels.clear()

    def track(self, i: int, *, reverse: bool, ahead: Sequence[int] = ()) -> list[np.ndarray]:
        """Frame i tracked from the anchors and the frames before it in the run's direction,
        each object's matte in id order; with ``batch`` > 1 the next frames ``ahead`` are
        encoded in the same batch."""
        if self.batch > 1 and self.s.cache.get_vision_features(i) is None:
            self._encode([i, *ahead[: self.batch - 1]])
        return self._run(i, self.pixels(i), reverse=reverse)

    def _encode(self, frames: list[int]) -> None:
        """Image features of ``frames`` in one batch, put in the session's cache."""
        torch = self.torch
        pix = [self.pixels(j) for j in frames]
        with torch.inference_mode():
            out = self.vm.model.get_image_features(torch.stack(pix).to(self.vm.dtype),
                                                   return_dict=True)
        self.s.cache.clear_all()  # the frames cached before are done
        for b, j in enumerate(frames):
            self.s.cache.cache_vision_features(j, {
                "vision_feats": [f[:, b:b + 1] for f in out.fpn_hidden_states],
                "vision_pos_embeds": [p[:, b:b + 1] for p in out.fpn_position_encoding]})
            self._pixels[j] = pix[b]
        self.encoded += len(frames)

    def _run(self, i: int, pix, *, reverse: bool) -> list[np.ndarray]:
        cached = self.s.cache.get_vision_features(i) is not None
        with self.torch.inference_mode():
            out = self.vm.model(inference_session=self.s, frame_idx=i, frame=pix,
                                reverse=reverse)
        self.encoded += 0 if cached else 1
        self._forget(i)
        return self.mattes(out.pred_masks)

    def _forget(self, i: int) -> None:
        """Drop what the model will not read again: frame i's pixels, every frame's full-size
        mask logits (memories are encoded), tracked frames ``keep`` or more frames away."""
        s = self.s
        s.processed_frames.pop(i, None)
        for obj in range(len(s.obj_ids)):
            outputs = s.output_dict_per_obj[obj]
            tracked = outputs["non_cond_frame_outputs"]
            for j in [j for j in tracked if abs(j - i) >= self.keep]:
                del tracked[j]
                s.frames_tracked_per_obj[obj].pop(j, None)
            for store in (tracked, outputs["cond_frame_outputs"]):
                for out in store.values():
                    out.pop("high_res_masks", None)
            self.peak = max(self.peak, len(tracked))
