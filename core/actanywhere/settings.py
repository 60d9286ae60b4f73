"""The settings sections of a ShotSpec that belong to one engine each (``composite``,
``diffusion``, ``vace``), and ``Strict``, the base of every section."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Strict(BaseModel):
    """Unknown fields are errors (a misspelt setting must not be silently ignored); no text
    holds a NUL character (no path can: the system would refuse it later, less clearly)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, v: object) -> object:
        if isinstance(v, str) and "\x00" in v:
            raise ValueError("contains a NUL character (\\0); remove it")
        return v


class CompositeSettings(Strict):
    harmonize: float = Field(0.0, ge=0.0, le=1.0,
                             description="0: subject untouched (a compositor's plate stays as "
                             "shot), 1: the subject's mean over the shot matches the background; "
                             "one gain per shot")
    shadow: float = Field(0.5, ge=0.0, le=1.0, description="Contact shadow opacity where the "
                          "subject touches the ground (0: none)")
    shadow_offset: tuple[float, float] = Field(
        (0.0, 0.01), description="How far the contact shadow reaches from the subject's "
        "lowest points, (x, y) as a fraction of plate height: darkest under the feet, it "
        "fades toward (x, y) from there; y > 0 toward the camera (down the frame), y < 0 away "
        "(a light in front of the subject), x leans it sideways; (0, 0) pools it round them")
    shadow_softness: float = Field(0.02, gt=0.0, le=0.5,
                                   description="Contact shadow blur radius as a fraction of "
                                   "plate height: how far it spreads round the feet and how "
                                   "soft its edges are")


class DiffusionSettings(Strict):
    resolution: int = Field(256, ge=64, le=2048, description="Model short side, multiple of 64")
    frames_per_window: int = Field(16, ge=1, le=32, description="Frames denoised together")
    overlap: int = Field(4, ge=0, le=31, description="Frames shared by adjacent windows")
    steps: int = Field(25, ge=1, le=1000, description="Denoising steps")
    guidance: float = Field(4.0, ge=1.0, le=50.0, description="Classifier-free guidance scale")
    scheduler: Literal["ddim", "dpmsolver++", "euler_a"] = Field("ddim", description="Sampler")
    seed: int = Field(0, description="Random seed (same seed + inputs + device = same output)")
    condition: Literal["background", "composite"] = Field(
        "background", description="Condition image: the background plate, or the subject of "
        "condition_frame composited over it")
    condition_frame: int | None = Field(None, description="Plate frame for condition=composite; "
                                        "default: the first frame")
    init_strength: float = Field(
        0.0, ge=0.0, le=1.0, description="Start sampling from the background plate moved with "
        "the shot's motion (img2img): 0 starts from noise, 0.5 keeps its layout and camera "
        "path and lets the model relight and add contact, 1 keeps it as is")
    detail: Literal["plate", "model"] = Field(
        "plate", description="Background at plate size: plate keeps the moved background "
        "plate's detail and highlights where the model kept its content (the model's shading "
        "on top), model is the model frame enlarged")
    detail_tolerance: float = Field(
        0.25, gt=0.0, le=1.0, description="detail=plate: how far (display-referred, 0-1) the "
        "model may differ from the plate and still count as keeping it; lower keeps more of "
        "the model")
    shot_frames: str | None = Field(
        None, description="The whole shot's frames (e.g. 1001-1400) when this job renders "
        "one part of it (the farm's split of a long shot, docs/farm.md): the noise and the "
        "windows are the whole shot's, so parts agree where they overlap")
    steady: float = Field(
        3.0, ge=0.0, le=12.0, description="detail=plate: the model's change to the moved "
        "background averaged over neighbouring frames (a Gaussian of this many frames, moved "
        "with the camera), so it does not boil; 0 takes each frame alone")
    model_colour: float = Field(
        0.0, ge=0.0, le=1.0, description="detail=plate: how much of the model's change of "
        "hue reaches the plate (0 keeps the background's hue and the model's light only, 1 "
        "the model's colour too)")
    model_exposure: bool = Field(
        False, description="detail=plate: keep the model's change of the frame's overall "
        "brightness (off: the background's exposure is kept, the model's shadows and local "
        "light stay)")
    dtype: Literal["auto", "fp32", "fp16", "bf16"] = Field(
        "auto", description="Weights and activations: auto is fp16 on CUDA, fp32 on the CPU")
    decode_chunk: int = Field(8, ge=1, le=64, description="Frames the VAE decodes at once "
                              "(halved automatically on CUDA out-of-memory)")
    compile: bool = Field(False, description="torch.compile the UNet (CUDA; slow first window)")
    allow_pickle: bool = Field(False, description="Accept .bin/.ckpt pickle weights (can run "
                               "code; only for files you trust)")

    @field_validator("resolution")
    @classmethod
    def _multiple_of_64(cls, v: int) -> int:
        if v % 64:
            raise ValueError(f"{v} is not a multiple of 64; use e.g. {max(64, v // 64 * 64)}")
        return v

    @model_validator(mode="after")
    def _overlap_fits(self) -> DiffusionSettings:
        if self.frames_per_window > 1 and self.overlap >= self.frames_per_window:
            raise ValueError(f"overlap {self.overlap} must be smaller than frames_per_window "
                             f"{self.frames_per_window}")
        return self




#: the prompt a ``vace`` take uses when the ShotSpec gives none: it asks for nothing the
#: reference image does not show
NEUTRAL_PROMPT = ("a real filmed scene matching the reference image, natural light, steady "
                  "camera motion, sharp detail")
NEGATIVE_PROMPT = ("blurry, distorted, flicker, oversaturated, low quality, static frame, "
                   "text, watermark, cartoon")


class VaceSettings(Strict):
    """Wan VACE (docs/vace.md): the plate's subject over grey and a mask (white: generate) as
    the video, the background as the reference image, a text prompt."""

    prompt: str = Field(NEUTRAL_PROMPT, max_length=2000, description="What the background "
                        "shows (the reference image decides most of it)")
    negative_prompt: str = Field(NEGATIVE_PROMPT, max_length=2000,
                                 description="What to steer away from")
    resolution: int | None = Field(None, ge=32, le=1280, description="Model short side, "
                                   "multiple of 16; default: the model's own (480 for the "
                                   "1.3B model, 720 for 14B)")
    frames_per_window: int = Field(81, ge=5, le=81, description="Frames generated together: "
                                   "4k+1, at most the model's 81")
    overlap: int = Field(8, ge=0, le=40, description="Frames a window continues from the "
                         "previous window's output (VACE's clip extension), cross-faded")
    steps: int = Field(30, ge=1, le=1000, description="Denoising steps")
    guidance: float = Field(5.0, ge=1.0, le=50.0, description="Text guidance scale (1: off, "
                            "half the work)")
    guidance_2: float | None = Field(None, ge=1.0, le=50.0, description="Two-expert models "
                                     "(Wan2.2): the low-noise expert's scale; default guidance")
    conditioning_scale: float = Field(1.0, ge=0.0, le=4.0, description="How strongly the "
                                      "video, mask and reference steer the model")
    seed: int = Field(0, description="Random seed (same seed + inputs + device = same output)")
    init_strength: float = Field(
        0.0, ge=0.0, le=1.0, description="Start from the background moved with the shot's "
        "motion (img2img): 0 starts from noise, 1 keeps it as is")
    fill: Literal["grey", "background"] = Field(
        "grey", description="What the video shows where the model generates: grey (VACE's "
        "own convention) or the background moved with the shot's motion")
    mask_grow: int = Field(2, ge=-16, le=16, description="Model pixels the generated region "
                           "grows into the subject's soft edge (negative: shrinks)")
    color_match: bool = Field(True, description="Match each window's colour to the moved "
                              "background, so colour does not drift window after window")
    detail: Literal["plate", "model"] = Field(
        "plate", description="As diffusion.detail: plate keeps the moved background's own "
        "detail where the model kept its content")
    detail_tolerance: float = Field(0.25, gt=0.0, le=1.0,
                                    description="detail=plate: as diffusion.detail_tolerance")
    shot_frames: str | None = Field(
        None, description="The whole shot's frames when this job renders one part of it "
        "(the farm's split): the windows and noise are the whole shot's")
    dtype: Literal["auto", "fp32", "fp16", "bf16"] = Field(
        "auto", description="Transformer weights: auto is bf16 on CUDA, fp32 on the CPU (the "
        "VAE always decodes in fp32)")
    offload: Literal["auto", "none", "model", "group"] = Field(
        "auto", description="GPU memory: none keeps every part on the GPU, model moves each "
        "part there when it runs, group streams the transformer's blocks; auto picks none when "
        "the estimate fits the GPU, else model")
    fp8: bool = Field(False, description="Store the transformer's weights in fp8 (half the "
                      "memory of bf16, computed in bf16)")
    vae_tiling: bool = Field(True, description="Decode the VAE in tiles (less GPU memory)")
    allow_pickle: bool = Field(False, description="Accept .bin/.pt pickle weights (can run "
                               "code; only for files you trust)")

    @field_validator("resolution")
    @classmethod
    def _multiple_of_16(cls, v: int | None) -> int | None:
        if v is not None and v % 16:
            raise ValueError(f"{v} is not a multiple of 16; use e.g. {max(32, v // 16 * 16)}")
        return v

    @field_validator("frames_per_window")
    @classmethod
    def _four_k_plus_one(cls, v: int) -> int:
        if (v - 1) % 4:
            raise ValueError(f"{v} is not 4k+1 (the VAE packs 4 frames after the first); use "
                             f"{(v - 1) // 4 * 4 + 1}")
        return v

    @model_validator(mode="after")
    def _overlap_fits(self) -> VaceSettings:
        if self.overlap >= self.frames_per_window:
            raise ValueError(f"overlap {self.overlap} must be smaller than frames_per_window "
                             f"{self.frames_per_window}")
        return self
