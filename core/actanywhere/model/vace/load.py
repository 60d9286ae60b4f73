"""Loading a Wan VACE folder: ``load`` checks it (``folder.inspect``) and builds the
diffusers ``WanVACEPipeline`` on the CPU, offline; ``memory.place`` then puts it on the
device."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from ...errors import ModelError
from .folder import inspect
from .memory import _torch_dtype, offline, one_line


def load(folder: str, *, dtype: Any, allow_pickle: bool = False):
    """The folder's ``diffusers.WanVACEPipeline`` on the CPU: transformer(s) and text encoder
    in ``dtype`` (torch dtype or "bf16"/"fp16"/"fp32"), the VAE in float32 as Wan recommends.
    ``inspect`` runs first; the hub is never contacted."""
    import diffusers
    import torch

    info = inspect(folder, allow_pickle=allow_pickle)
    td = _torch_dtype(dtype)
    safetensors = None if allow_pickle else True  # None: safetensors first, pickle allowed
    with offline(), _quiet():
        tokenizer = _load_tokenizer(info)
        try:
            if info.layout == "pipeline":
                return diffusers.WanVACEPipeline.from_pretrained(
                    info.path, dtype={"default": td, "vae": torch.float32}, tokenizer=tokenizer,
                    local_files_only=True, use_safetensors=safetensors)
            parts: dict[str, Any] = {}
            for name, part in info.parts.items():
                if name == "tokenizer":
                    continue
                lib = diffusers if part.library == "diffusers" else __import__(part.library)
                cls = getattr(lib, part.class_name)
                kw = {} if name == "scheduler" else {
                    "dtype": torch.float32 if name == "vae" else td,
                    "use_safetensors": safetensors}
                parts[name] = cls.from_pretrained(info.path, subfolder=name,
                                                  local_files_only=True, **kw)
            return diffusers.WanVACEPipeline(tokenizer=tokenizer, **parts,
                                             boundary_ratio=info.boundary_ratio)
        except ModelError:
            raise
        except Exception as exc:  # diffusers/transformers raise many types
            raise ModelError(f"{info.path}: cannot load the VACE pipeline ({type(exc).__name__}: "
                             f"{one_line(exc)}); re-download the folder or run `actanywhere "
                             f"model verify {info.path}`") from exc


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """No loading progress bars from diffusers or transformers (the job reports its own)."""
    from diffusers.utils import logging as dlog
    from transformers.utils import logging as tlog

    dlog.disable_progress_bar()
    tlog.disable_progress_bar()
    try:
        yield
    finally:
        dlog.enable_progress_bar()
        tlog.enable_progress_bar()


def _load_tokenizer(info: Any):
    """The tokenizer, loaded alone so that its failure names its folder."""
    import transformers

    folder = os.path.join(info.path, "tokenizer")
    cls = getattr(transformers, info.parts["tokenizer"].class_name, transformers.AutoTokenizer)
    try:
        tok = cls.from_pretrained(folder, local_files_only=True)
        tok("a", return_tensors="pt")
    except Exception as exc:  # tokenizers/sentencepiece raise many types
        raise ModelError(f"{folder}: the tokenizer does not load ({one_line(exc, 160)}); "
                         "re-download the tokenizer/ folder of the repo (transformers >= 5 reads "
                         "tokenizer.json)") from exc
    return tok
