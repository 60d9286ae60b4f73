"""The ``diffusion`` engine: ActAnywhere on a whole shot, wired into the job pipeline.

Importing this module is cheap (no torch): ``check`` runs where torch is not installed, and
the model code (``actanywhere.model``) is imported when the engine is made.

The job hands every plate frame to :meth:`add` (reduced at once to the model frame, so a long
2K shot costs little memory), calls :meth:`generate` once (overlapping windows; the condition
moved along the shot's camera path when the background moves, as tokens per window and, for
models with the spatial pathway, as latents per frame), then :meth:`finish` per output frame:
the generated background back at plate size (``diffusion.detail``: with the moved plate's own
detail and highlights where the model kept it, ``detail.py``) and, with
``output.recomposite``, the original subject over it through the plate's matte.
"""

from __future__ import annotations

import json
import os
import threading

import numpy as np

from ..errors import JobCancelled, ModelError, SpecError
from ..media.color import ColorContext
from ..model import SHIPPED, modelspace
from ..motion.backdrop import Backdrop
from ..progress import ProgressEvent, Reporter, null_reporter
from ..spec import DiffusionSettings
from . import detail, steady
from .base import EngineInput, ShotEngine, importable, over, settings_from, span, subject_of

NEEDS = ("torch", "diffusers", "transformers")
MANIFEST = "actanywhere.json"  # model.checkpoint.MANIFEST (that module imports torch)


def recommended(settings: DiffusionSettings, manifest: dict
                ) -> tuple[DiffusionSettings, dict[str, object]]:
    """(``settings`` with the model's recommended settings (its manifest) in every field the
    job left unset, the fields so filled and their values); nothing filled when they do not
    fit the explicit ones (e.g. the recommended overlap and an explicit window)."""
    rec = {k: v for k, v in (manifest.get("recommended") or {}).items()
           if k in DiffusionSettings.model_fields and k not in settings.model_fields_set}
    if not rec:
        return settings, {}
    explicit = settings.model_dump(include=settings.model_fields_set)
    try:
        return DiffusionSettings.model_validate({**rec, **explicit}), rec
    except ValueError:
        return settings, {}


def with_recommended(settings: DiffusionSettings, manifest: dict, report: Reporter
                     ) -> DiffusionSettings:
    """The model's recommended settings (its manifest) for every field the job left unset."""
    merged, rec = recommended(settings, manifest)
    if rec:
        report(ProgressEvent("load", message="model defaults: " + ", ".join(
            f"{k} {v}" for k, v in rec.items())))
    return merged


def read_manifest(model: str) -> dict:
    """The model folder's manifest (``actanywhere.json``) read as JSON, without torch; {}
    when the folder has none (loading the model reports that)."""
    path = os.path.join(model, MANIFEST)
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: cannot read the model's manifest ({exc}); reinstall or "
                         "re-save the model") from None
    return data if isinstance(data, dict) else {}


class DiffusionEngine(ShotEngine):
    name = "diffusion"

    @classmethod
    def check(cls, spec, frames: list[int]) -> None:
        d = spec.diffusion
        if d.condition == "composite" and d.condition_frame is not None and \
                d.condition_frame not in frames:
            raise ModelError(f"diffusion.condition_frame {d.condition_frame} is not in the "
                             f"shot's frames ({frames[0]}-{frames[-1]}); pick a plate frame")
        span(d.shot_frames, frames, "diffusion.shot_frames")
        cls._installed(spec)

    @classmethod
    def effective(cls, spec):
        """The model's recommended settings (its manifest) in the fields the spec leaves
        unset, as the engine applies them when it loads the model."""
        settings, rec = recommended(spec.diffusion,
                                    read_manifest(spec.engine.model or SHIPPED))
        if not rec:
            return spec, settings_from(spec)
        return spec.model_copy(update={"diffusion": settings}), settings_from(spec, rec)

    @classmethod
    def check_split(cls, spec, name: str) -> None:
        if spec.diffusion.condition == "composite":
            raise SpecError(f"{name}: diffusion.condition composite takes one plate frame that "
                            "not every part reads; use condition background to --split")

    @classmethod
    def part_settings(cls, spec, overlap: int) -> tuple[dict[str, object], str | None]:
        """Steady shading averages a frame with neighbours up to three ``steady`` frames
        away, which a part does not have beyond its ends: in parts it reaches at most half
        the shared frames, so each part is steady where the join hands over."""
        d = spec.diffusion
        most = round(overlap / 6, 2)
        if d.detail != "plate" or d.steady <= most:
            return {}, None
        return {"steady": most}, (
            f"diffusion.steady {d.steady:g} is {most:g} in the parts of a split take (a part "
            f"has only the {overlap} frames it shares with the next to steady its ends); a "
            f"larger --split-overlap keeps more (up to {6 * d.steady:g})")

    @staticmethod
    def _installed(spec) -> None:
        """torch and the model folder are there."""
        lacking = [m for m in NEEDS if not importable(m)]
        if lacking:
            raise ModelError(f"engine 'diffusion' needs {', '.join(lacking)} (not installed); "
                             "install them with: python3 install.py setup --torch cpu (or cuda)")
        if not spec.engine.model and not os.path.isdir(SHIPPED):
            raise ModelError(f"engine.model: no model folder given and the shipped model "
                             f"({SHIPPED}) is missing; pass --model DIR or reinstall")

    def __init__(self, spec, color: ColorContext, report: Reporter = null_reporter) -> None:
        self._installed(spec)
        from ..model import cache, device

        model = spec.engine.model or SHIPPED
        self.spec, self.color, self.report = spec, color, report
        # a job's spec comes with them filled (``effective``); an engine made directly fills them
        self.settings = with_recommended(spec.diffusion, read_manifest(model), report)
        self.device, self.dtype, warning = device.choose(spec.engine.device,
                                                         self.settings.dtype)
        if warning:
            report(ProgressEvent("warning", message=warning))
        what = model if spec.engine.model else "the shipped small model (synthetic-trained)"
        report(ProgressEvent("load", message=f"model {what} on {self.device} "
                             f"({str(self.dtype).removeprefix('torch.')})"))
        compiled = self.settings.compile and self.device.type == "cuda"
        warm = cache.active()
        if warm is None:
            self.pipe = self._load(model, compiled)
        else:
            key = cache.key_for(model, self.device, self.dtype, compiled)
            self.pipe = warm.get(key, lambda: self._load(model, compiled))
        if self.settings.frames_per_window > self.pipe.max_frames:
            raise ModelError(f"diffusion.frames_per_window {self.settings.frames_per_window} "
                             f"exceeds this model's {self.pipe.max_frames} frames; lower it")
        self.geo: modelspace.Geometry | None = None
        self.background: Backdrop | None = None
        self.condition: np.ndarray | None = None
        self.seg: dict[int, np.ndarray] = {}
        self.mask: dict[int, np.ndarray] = {}
        self.generated: dict[int, np.ndarray] = {}
        #: frame -> its moved background in model space, made for the condition or the start
        #: video and kept until ``finish`` needs it for the plate detail
        self.moved: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()

    def prepare(self, background: Backdrop, pixel_aspect: float) -> None:
        h, w = background.still.shape[:2]
        self.geo = modelspace.Geometry.fit(w, h, self.settings.resolution, pixel_aspect)
        self.background = background
        if self.settings.condition == "background":
            self.condition = modelspace.condition(self.geo, self.color, background.still)

    def _load(self, model: str, compiled: bool):
        import torch

        from ..model import checkpoint
        from ..model.pipeline import ActAnywherePipeline

        try:
            parts = checkpoint.load(model, dtype=self.dtype, device=self.device,
                                    allow_pickle=self.settings.allow_pickle)
        except torch.cuda.OutOfMemoryError as exc:
            raise ModelError(f"{model}: the model does not fit in GPU memory; use "
                             "diffusion.dtype fp16, free the GPU from other processes, or "
                             "--device cpu") from exc
        pipe = ActAnywherePipeline.from_components(parts)
        if compiled:
            pipe.unet = torch.compile(pipe.unet)
        return pipe

    def add(self, inp: EngineInput) -> None:
        assert self.geo is not None and self.background is not None, "prepare() first"
        subject = subject_of(inp)
        seg, mask = modelspace.foreground(self.geo, self.color, subject, inp.matte)
        cond_frame = self.settings.condition_frame
        with self._lock:
            earliest = not self.seg or inp.frame < min(self.seg)
            self.seg[inp.frame], self.mask[inp.frame] = seg, mask
            wants = inp.frame == cond_frame if cond_frame is not None else earliest
            if self.settings.condition == "composite" and wants:
                comp = over(subject, inp.matte, self.background.at(inp.frame))
                self.condition = modelspace.condition(self.geo, self.color, comp)

    def generate(self, cancel: threading.Event | None = None) -> None:
        import torch

        from ..model import device
        from ..model.pipeline import Interrupted, make_scheduler, steps_to_run

        s = self.settings
        order = sorted(self.seg)
        if self.condition is None:
            raise ModelError(f"diffusion.condition_frame {s.condition_frame} is not in the "
                             "shot's frames; pick a plate frame")
        seg = np.stack([self.seg[f] for f in order])
        mask = np.stack([self.mask[f] for f in order])
        condition, init, spatial = self._moved(order)
        window = min(s.frames_per_window, len(order))
        total = steps_to_run(s.steps, s.init_strength if init is not None else 0.0)

        def step(done: int, steps: int) -> None:
            self.report(ProgressEvent("denoise", done, steps))

        self.report(ProgressEvent("denoise", 0, total, message=f"{len(order)} frames at "
                                  f"{self.geo.model_w}x{self.geo.model_h}, window {window}"
                                  + (f", from the moved background ({s.init_strength:g})"
                                     if init is not None else "")))
        # a fresh scheduler of the chosen kind for every shot (it keeps per-run state)
        self.pipe.scheduler = make_scheduler(s.scheduler, dict(self.pipe.scheduler.config))
        while True:
            try:
                video = self.pipe(seg, mask, condition, num_inference_steps=s.steps,
                                  guidance_scale=s.guidance, seed=s.seed, window=window,
                                  overlap=min(s.overlap, window - 1),
                                  decode_chunk=s.decode_chunk, init=init,
                                  init_strength=s.init_strength, spatial=spatial,
                                  callback=step, cancel=cancel,
                                  span=span(s.shot_frames, order, "diffusion.shot_frames")).frames
                break
            except Interrupted as exc:
                raise JobCancelled(str(exc)) from None
            except torch.cuda.OutOfMemoryError as exc:
                torch.cuda.empty_cache()
                if window <= 8:
                    raise ModelError(device.oom_message(s.resolution, window,
                                                        s.decode_chunk)) from exc
                window //= 2
                self.report(ProgressEvent("warning", message="CUDA out of memory; retrying "
                                          f"with {window} frames per window"))
        self.generated = dict(zip(order, video, strict=True))
        self.seg.clear()  # the masks stay until each frame's finish (the plate detail's guard)
        if self._steadied:
            self._steady(order)

    @property
    def _steadied(self) -> bool:
        """Whether the frames are reduced to steady shading (``steady.py``) before the plate
        detail."""
        return self.settings.detail == "plate" and self.settings.steady > 0

    def _steady(self, order: list[int]) -> None:
        """The model's frames with only their steadied shading over the moved background
        (``steady.py``): the subject's echo filled first, every frame's moved background
        made (kept for ``finish``)."""
        assert self.geo is not None and self.background is not None
        s, bd = self.settings, self.background
        for f in order:
            if f not in self.moved:
                self.moved[f] = self._moved_to(f)
        filled = {f: detail.without_subject(self.generated[f], 1.0 - self.mask[f])
                  for f in order}
        self.generated = steady.steady(filled, self.moved, self.mask, geo=self.geo,
                                       motion=bd.motion if bd.moving else None,
                                       frames=s.steady, colour=s.model_colour,
                                       exposure=s.model_exposure)

    def _moved_to(self, frame: int, plate: np.ndarray | None = None) -> np.ndarray:
        """The background moved to ``frame`` in model space: a still background is the
        condition; else the moved plate (``plate``, or warped now) converted."""
        assert self.geo is not None and self.background is not None
        if not self.background.moving and self.settings.condition == "background":
            return self.condition
        return modelspace.condition(self.geo, self.color,
                                    self.background.at(frame) if plate is None else plate)

    def _moved(self, order: list[int]
               ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """In model space: the condition (one image, or one per frame when the background
        moves with the camera and is the condition), the start video (``init_strength`` > 0)
        and the spatial pathway's input (models that have it): the condition moved to each
        frame, padded to the model frame as the start video is."""
        assert self.geo is not None and self.background is not None and \
            self.condition is not None
        bd, s = self.background, self.settings
        per_frame = bd.moving and s.condition == "background"
        if per_frame or s.init_strength > 0:
            for f in order:  # each frame's background warped once, at plate size
                self.moved[f] = modelspace.condition(self.geo, self.color, bd.at(f))
        condition = np.stack([self.moved[f] for f in order]) if per_frame else self.condition
        init = np.stack([modelspace.initial(self.geo, self.moved[f]) for f in order]) \
            if s.init_strength > 0 else None
        spatial = None
        if self.pipe.condition_projector.latents:
            if not per_frame:
                spatial = modelspace.initial(self.geo, self.condition)
            elif init is not None:
                spatial = init  # the same moved frames, already padded
            else:
                spatial = np.stack([modelspace.initial(self.geo, c) for c in condition])
        return condition, init, spatial

    def finish(self, inp: EngineInput):
        assert self.geo is not None and self.background is not None
        moved = self.moved.pop(inp.frame, None)
        plate = self.background.at(inp.frame) if self.settings.detail == "plate" else None
        if plate is not None and moved is None:
            moved = self._moved_to(inp.frame, plate)
        return detail.finish(self.geo, self.color, self.generated[inp.frame],
                             mask=self.mask.pop(inp.frame), moved=moved, plate=plate, inp=inp,
                             detail=self.settings.detail,
                             tolerance=self.settings.detail_tolerance,
                             recomposite=self.spec.output.recomposite,
                             filled=self._steadied)
