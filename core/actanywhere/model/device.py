"""Where the model runs and in which precision; CUDA out-of-memory turned into advice."""

from __future__ import annotations

import torch

from ..errors import ModelError

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def pick(device: str = "auto", field: str = "engine.device") -> torch.device:
    """The device every model of the project runs on (diffusion, SAM, training): ``auto`` is
    CUDA when torch sees a GPU, else the CPU; ``cuda`` without a GPU is an error naming
    ``field``."""
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelError(f"{field} cuda: no CUDA GPU is visible to torch "
                         f"(torch {torch.__version__}); use cpu or auto, or install the "
                         "CUDA build (python3 install.py setup --torch cuda)")
    if device == "cuda" or (device == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def choose(device: str = "auto", dtype: str = "auto") -> tuple[torch.device, torch.dtype, str]:
    """(device, dtype, warning or ""): CUDA in fp16 by default, the CPU always in fp32."""
    if pick(device).type == "cuda":
        dt = torch.float16 if dtype == "auto" else DTYPES[dtype]
        if dt is torch.bfloat16 and not torch.cuda.is_bf16_supported():
            raise ModelError("diffusion.dtype bf16: this GPU has no bfloat16; use fp16")
        return torch.device("cuda"), dt, ""
    warning = ("diffusion on the CPU in float32: expect minutes per window at full size; a CUDA "
               "GPU is 50-100x faster")
    if dtype not in ("auto", "fp32"):
        warning += f" (diffusion.dtype {dtype} ignored on the CPU)"
    return torch.device("cpu"), torch.float32, warning


def oom_message(resolution: int, window: int, decode_chunk: int) -> str:
    return (f"CUDA out of memory at resolution {resolution}, {window} frames per window, decode "
            f"chunk {decode_chunk}; lower diffusion.resolution or diffusion.frames_per_window "
            "(--resolution, --window), use diffusion.dtype fp16, or free the GPU from other "
            "processes")
