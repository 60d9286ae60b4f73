"""The ``vace`` engine: Wan VACE (diffusers' ``WanVACEPipeline``) on a whole shot.

Importing this module is cheap (no torch): ``check`` runs where torch is not installed.

What VACE is given, per window of ``vace.frames_per_window`` (4k+1) frames, in the model
frame (the plate's display window, short side ``vace.resolution``, padded to 16):

- ``video``: the subject over grey (the paper's S); where the model generates, grey or the
  background moved with the shot's camera (``vace.fill``);
- ``mask``: white where the model generates: the background, grown ``vace.mask_grow`` model
  pixels into the subject's soft edge (the original subject is put back over it);
- the reference image: the background fitted to the model frame (no padding of the
  pipeline's white);
- the prompt's embeddings, made once per job;
- with ``vace.init_strength``: a start from the moved background part-way down the schedule.

A shot longer than a window is generated window after window; each continues from the
previous window's last frames (given as known, VACE's clip extension), the shared frames are
cross-faded, and each window's colour is matched to the moved background where the model
generated (``vace.color_match``) so it does not drift. A part of a split shot
(``vace.shot_frames``) generates the whole shot's windows that meet its frames, each with the
noise it has in the whole shot. The frames back at plate size are as the diffusion engine's
(``detail.py``, the recomposite).
"""

from __future__ import annotations

import threading

import cv2
import numpy as np

from ..errors import JobCancelled, ModelError
from ..media.color import ColorContext
from ..model import modelspace, windows
from ..motion.backdrop import Backdrop
from ..progress import ProgressEvent, Reporter, null_reporter
from . import detail
from .base import (
    EngineInput,
    EngineOutput,
    ShotEngine,
    importable,
    settings_from,
    span,
    subject_of,
)

NEEDS = ("torch", "diffusers", "transformers", "ftfy")
MULTIPLE = 16  # the VAE's stride (8) times the transformer's patch (2)
NATIVE = 480  # the model frame's short side when the folder does not say
COLOR_GAIN = (0.5, 2.0)  # a window's colour match never scales a channel beyond these


def window_length(frames: int, most: int) -> int:
    """Frames per window: ``most``, or for a shorter shot the fewest 4k+1 that hold it."""
    return most if frames >= most else (max(frames, 1) - 1 + 3) // 4 * 4 + 1


def resolution(settings, info) -> int:
    """The model frame's short side: ``vace.resolution``, else the folder's native one."""
    return settings.resolution or info.native_resolution or NATIVE


def wide(height: int) -> int:
    """The width of a 16:9 model frame ``height`` high (estimates made before the plate)."""
    return -(-height * 16 // 9 // MULTIPLE) * MULTIPLE


def grow(generate: np.ndarray, pixels: int) -> np.ndarray:
    """The generate region (h, w bool) grown by ``pixels`` (shrunk when negative)."""
    if pixels == 0:
        return generate
    k = np.ones((2 * abs(pixels) + 1,) * 2, np.uint8)
    op = cv2.dilate if pixels > 0 else cv2.erode
    return op(generate.astype(np.uint8), k).astype(bool)


def color_match(out: np.ndarray, moved: np.ndarray, where: np.ndarray) -> np.ndarray:
    """``out`` (F, h, w, 3) with each channel's mean and spread where the model generated
    (``where`` (F, h, w)) matched to the moved background's there (a gain within
    ``COLOR_GAIN``)."""
    if where.sum() < 16:
        return out
    o, m = out[where], moved[where].astype(np.float32)
    gain = np.clip(m.std(0) / np.maximum(o.std(0), 1e-4), *COLOR_GAIN)
    offset = m.mean(0) - o.mean(0) * gain
    return np.clip(out * gain + offset, 0.0, 1.0).astype(np.float32)


class VaceEngine(ShotEngine):
    name = "vace"

    @classmethod
    def check(cls, spec, frames: list[int]) -> None:
        span(spec.vace.shot_frames, frames, "vace.shot_frames")
        cls._installed(spec)
        from ..model.vace import folder as vace_folder

        vace_folder.inspect(spec.engine.model, allow_pickle=spec.vace.allow_pickle)

    @classmethod
    def effective(cls, spec):
        """An unset ``vace.resolution`` is the model folder's native short side (480 when
        the folder does not say), as the engine uses it."""
        s = spec.vace
        if s.resolution is not None or not spec.engine.model:
            return spec, settings_from(spec)
        from ..model.vace import folder as vace_folder

        info = vace_folder.inspect(spec.engine.model, allow_pickle=s.allow_pickle)
        vace = s.model_copy(update={"resolution": resolution(s, info)})
        return spec.model_copy(update={"vace": vace}), \
            settings_from(spec, ["resolution"] if info.native_resolution else [])

    @classmethod
    def gpu_memory_gib(cls, spec) -> float | None:
        """The estimate for the take's model folder at its resolution and window (16:9), with
        the offload it asks for (auto: model offload, the least that runs; the host then keeps
        every part on the GPU when it has the room); None when the folder cannot be read here."""
        from ..errors import ActAnywhereError
        from ..model.vace import folder as vace_folder

        s = spec.vace
        try:
            info = vace_folder.inspect(spec.engine.model or "", allow_pickle=s.allow_pickle)
        except ActAnywhereError:
            return None
        h = resolution(s, info)
        w = wide(h)
        need = vace_folder.vram_estimate(info, height=h, width=w, frames=s.frames_per_window,
                                         dtype="fp8" if s.fp8 else "bf16",
                                         offload="model" if s.offload == "auto" else s.offload,
                                         vae_tiling=s.vae_tiling)
        return round(need / 2**30 + 0.5, 1)

    @staticmethod
    def _installed(spec) -> None:
        lacking = [m for m in NEEDS if not importable(m)]
        if lacking:
            raise ModelError(f"engine 'vace' needs {', '.join(lacking)} (not installed); "
                             "install them with: python3 install.py setup --torch cuda")
        if not spec.engine.model:
            raise ModelError("engine.model: the vace engine needs a Wan VACE diffusers folder "
                             "(e.g. Wan-AI/Wan2.1-VACE-1.3B-diffusers, docs/vace.md); pass "
                             "--model DIR")

    def __init__(self, spec, color: ColorContext, report: Reporter = null_reporter) -> None:
        self._installed(spec)
        from ..model import cache
        from ..model.vace import folder as vace_folder

        self.spec, self.settings, self.color, self.report = spec, spec.vace, color, report
        self.info = vace_folder.inspect(spec.engine.model,
                                        allow_pickle=self.settings.allow_pickle)
        self.device, self.dtype = self._device()
        self.resolution = resolution(self.settings, self.info)
        offload = self._offload()
        report(ProgressEvent("load", message=f"model {self.info.name} ({spec.engine.model}) "
                             f"on {self.device} ({str(self.dtype).removeprefix('torch.')}, "
                             f"offload {offload}{', fp8' if self.settings.fp8 else ''})"))
        key = (*cache.key_for(spec.engine.model, self.device, self.dtype, False), offload,
               self.settings.fp8, self.settings.vae_tiling)
        warm = cache.active()
        self.pipe = warm.get(key, lambda: self._load(offload)) if warm is not None else \
            self._load(offload)
        self.geo: modelspace.Geometry | None = None
        self._still: np.ndarray | None = None
        self.background: Backdrop | None = None
        self.reference: np.ndarray | None = None
        self.seg: dict[int, np.ndarray] = {}
        self.mask: dict[int, np.ndarray] = {}  # 1 = background (generate), as the matte left it
        self.generated: dict[int, np.ndarray] = {}
        self.moved: dict[int, np.ndarray] = {}
        self.record: dict[str, object] = {"model": self.info.name, "offload": offload}
        self._lock = threading.Lock()

    def _device(self):
        import torch

        from ..model import device

        dev = device.pick(self.spec.engine.device)
        want = self.settings.dtype
        if dev.type == "cpu":
            if want not in ("auto", "fp32"):
                self.report(ProgressEvent("warning", message=f"vace.dtype {want} ignored on "
                                          "the CPU (float32)"))
            self.report(ProgressEvent("warning", message="vace on the CPU: expect hours per "
                                      "window at full size; use a CUDA GPU"))
            return dev, torch.float32
        if want == "auto":
            want = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return dev, device.DTYPES[want]

    def _offload(self) -> str:
        want = self.settings.offload
        if want != "auto":
            return want
        if self.device.type != "cuda":
            return "none"
        import torch

        from ..model.vace import folder as vace_folder

        free, _total = torch.cuda.mem_get_info()
        w, h = self._frame_size()
        need = vace_folder.vram_estimate(self.info, height=h, width=w,
                                         frames=self.settings.frames_per_window,
                                         dtype="fp8" if self.settings.fp8 else "bf16",
                                         offload="none")
        return "none" if need < free * 0.9 else "model"

    def _frame_size(self) -> tuple[int, int]:
        """(w, h) of a 16:9 model frame at this resolution, for estimates before the plate."""
        return wide(self.resolution), self.resolution

    def _load(self, offload: str):
        import torch

        from ..model.vace import folder as vace_folder
        from ..model.vace import load as vace_load

        pipe = vace_load.load(self.spec.engine.model, dtype=self.dtype,
                                allow_pickle=self.settings.allow_pickle)
        pipe.set_progress_bar_config(disable=True)  # progress goes through the reporter
        try:
            vace_folder.place(pipe, device=self.device, offload=offload,
                              fp8=self.settings.fp8, vae_tiling=self.settings.vae_tiling)
        except torch.cuda.OutOfMemoryError as exc:
            raise ModelError(f"{self.spec.engine.model}: the model does not fit in GPU memory; "
                             "use vace.offload model or group, vace.fp8 true, or free the GPU "
                             "from other processes") from exc
        return pipe

    def prepare(self, background: Backdrop, pixel_aspect: float) -> None:
        h, w = background.still.shape[:2]
        self.geo = modelspace.Geometry.fit(w, h, self.resolution, pixel_aspect,
                                           multiple=MULTIPLE)
        self.background = background
        still = modelspace.condition(self.geo, self.color, background.still)
        self.reference = modelspace.initial(self.geo, still)
        self._check_positions()
        self._still = self.reference.astype(np.float16)  # every frame's, when it stays

    def _check_positions(self) -> None:
        """The model frame's patches fit the transformer's positions (a small model's can be
        short); else one line before any step."""
        cfg = self.pipe.transformer.config if self.pipe.transformer is not None else \
            self.pipe.transformer_2.config
        most, patch = cfg.rope_max_seq_len, cfg.patch_size[1] * 8
        side = max(self.geo.model_w, self.geo.model_h)
        if side // patch > most:
            raise ModelError(f"vace.resolution {self.resolution}: a {self.geo.model_w}x"
                             f"{self.geo.model_h} model frame needs {side // patch} positions "
                             f"across, the model has {most}; lower vace.resolution to at most "
                             f"{most * patch * self.resolution // side // 16 * 16}")

    def add(self, inp: EngineInput) -> None:
        assert self.geo is not None and self.background is not None, "prepare() first"
        seg, mask = modelspace.foreground(self.geo, self.color, subject_of(inp), inp.matte)
        moved = modelspace.initial(self.geo, modelspace.condition(
            self.geo, self.color, self.background.at(inp.frame))).astype(np.float16) \
            if self.background.moving else self._still
        with self._lock:
            self.seg[inp.frame] = seg.astype(np.float16)
            self.mask[inp.frame] = mask.astype(np.float16)
            self.moved[inp.frame] = moved

    # ------------------------------------------------------------------ generate
    def generate(self, cancel: threading.Event | None = None) -> None:
        import torch

        from ..model.vace import pipeline as vace_pipeline

        s = self.settings
        order = sorted(self.seg)
        first, total = span(s.shot_frames, order, "vace.shot_frames") or (0, len(order))
        length = window_length(total, s.frames_per_window)
        prompts = self._prompts()
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        while True:
            try:
                out = self._windows(order, first, total, length, prompts, cancel)
                break
            except vace_pipeline.Interrupted as exc:
                raise JobCancelled(str(exc)) from None
            except torch.cuda.OutOfMemoryError as exc:
                torch.cuda.empty_cache()
                if length <= 17:
                    raise ModelError(
                        f"CUDA out of memory at vace.resolution {self.resolution}, "
                        f"{length} frames per window; lower vace.resolution or "
                        "vace.frames_per_window, use vace.offload model or group, or "
                        "vace.fp8 true") from exc
                length = ((length - 1) // 2) // 4 * 4 + 1
                self.report(ProgressEvent("warning", message="CUDA out of memory; retrying "
                                          f"with {length} frames per window"))
        if self.device.type == "cuda":
            self.record["peak_gpu_bytes"] = int(torch.cuda.max_memory_allocated())
        self.record["frames_per_window"] = length
        self.generated = out
        self.seg.clear()

    def _prompts(self):
        """The prompts' embeddings; a text encoder the pipeline does not move itself (no
        offload) visits the GPU for it and leaves (it is the largest part, 5.7B)."""
        from ..model.vace import pipeline as vace_pipeline

        s = self.settings
        encoder = self.pipe.text_encoder
        visit = self.device.type == "cuda" and self.record["offload"] == "none"
        if visit:
            encoder.to(self.device)
        try:
            return vace_pipeline.encode(self.pipe, prompt=s.prompt,
                                        negative_prompt=s.negative_prompt,
                                        guidance=s.guidance, device=self.device)
        finally:
            if visit:
                encoder.to("cpu")

    def _windows(self, order: list[int], first: int, total: int, length: int, prompts,
                 cancel) -> dict[int, np.ndarray]:
        """Every window meeting this job's frames, each continued from the previous one's
        frames; frame -> generated frame (model frame, [0, 1])."""
        from ..model.vace import pipeline as vace_pipeline

        s = self.settings
        # a shot shorter than a window is one window, padded by holding its last frame
        plan = windows.plan(total, length, s.overlap) if total >= length else [(0, length)]
        todo = [(i, w) for i, w in enumerate(plan) if w[0] < first + len(order)
                and w[1] > first]
        steps = vace_pipeline.steps_run(s.steps, s.init_strength)
        done_steps = [0]

        def step(i: int) -> None:
            self.report(ProgressEvent("denoise", done_steps[0] + i, steps * len(todo)))

        self.report(ProgressEvent("denoise", 0, steps * len(todo), message=(
            f"{len(order)} frames at {self.geo.model_w}x{self.geo.model_h}, {len(todo)} "
            f"window(s) of {length}")))
        out: dict[int, np.ndarray] = {}  # index in the whole shot -> frame
        previous: tuple[int, int] | None = None
        for index, (a, b) in todo:
            video, mask, moved = self._inputs(order, first, a, b)
            known = max(0, previous[1] - a) if previous else 0
            for k in range(known):  # continue from the previous window's frames
                video[k], mask[k] = out[a + k], 0.0
            result = vace_pipeline.window(
                self.pipe, video=video, mask=mask, reference=self.reference,
                prompts=prompts, steps=s.steps, guidance=s.guidance,
                guidance_2=s.guidance_2, conditioning_scale=s.conditioning_scale,
                seed=s.seed * 100003 + index, device=self.device, moved=moved,
                init_strength=s.init_strength, on_step=step, cancel=cancel)
            if s.color_match:
                result = color_match(result, moved, mask > 0.5)
            for k in range(b - a):
                f = a + k
                if k < known:
                    t = (k + 1) / (known + 1)
                    out[f] = (1 - t) * out[f] + t * result[k]
                else:
                    out[f] = result[k]
            done_steps[0] += steps
            previous = (a, b)
        return {frame: out[first + k] for k, frame in enumerate(order)}

    def _inputs(self, order: list[int], first: int, a: int, b: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The video, mask and moved background of whole-shot frames a..b-1 (frames
        beyond this job's, in a short shot's padding, hold its nearest frame)."""
        s = self.settings
        pick = [order[min(max(i - first, 0), len(order) - 1)] for i in range(a, b)]
        seg = np.stack([self.seg[f] for f in pick]).astype(np.float32)
        generate = np.stack([grow(self.mask[f] > 0.5, s.mask_grow) for f in pick])
        moved = np.stack([self.moved[f] for f in pick]).astype(np.float32)
        fill = moved if s.fill == "background" else np.full_like(seg, modelspace.GRAY)
        video = np.where(generate[..., None], fill, seg).astype(np.float32)
        return video, generate.astype(np.float32), moved

    def finish(self, inp: EngineInput) -> EngineOutput:
        assert self.geo is not None and self.background is not None
        mask = self.mask.pop(inp.frame).astype(np.float32)
        moved = self.moved.pop(inp.frame).astype(np.float32)
        return detail.finish(self.geo, self.color, self.generated.pop(inp.frame), mask=mask,
                             moved=self.geo.content(moved),
                             plate=self.background.at(inp.frame), inp=inp,
                             detail=self.settings.detail,
                             tolerance=self.settings.detail_tolerance,
                             recomposite=self.spec.output.recomposite)
