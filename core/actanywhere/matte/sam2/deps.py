"""The optional libraries the video models need, imported with one clear error when missing."""

from __future__ import annotations

import importlib.util
from types import SimpleNamespace

from ...errors import ModelError

#: config.json ``model_type`` -> (transformers model class, what it is)
KINDS = {
    "sam2_video": ("Sam2VideoModel", "SAM 2.1"),
    "edgetam_video": ("EdgeTamVideoModel", "EdgeTAM"),
}


def need(source: str = "sam2", processor: str = "Sam2VideoProcessor") -> SimpleNamespace:
    """torch, transformers and the source's video processor class (``processor``), or
    ModelError naming the install."""
    try:
        import torch
        import transformers

        cls = getattr(transformers, processor)
    except (ImportError, AttributeError) as exc:
        raise ModelError(f"matte.source {source} needs torch and a transformers with the "
                         f"{processor} ({exc}); install the model extra (`python3 install.py "
                         "setup`) or upgrade transformers") from exc
    return SimpleNamespace(torch=torch, transformers=transformers, processor=cls)


def model_class(name: str, config_file: str):
    """transformers' class ``name``; ModelError when this transformers lacks it."""
    transformers = need().transformers
    cls = getattr(transformers, name, None)
    if cls is None:
        raise ModelError(f"{config_file}: transformers {transformers.__version__} has no "
                         f"{name}; upgrade transformers")
    return cls


def need_timm(config_file: str) -> None:
    """EdgeTAM's image encoder is a timm RepViT: ModelError naming timm when it is missing."""
    if importlib.util.find_spec("timm") is None:
        raise ModelError(f"{config_file}: EdgeTAM's image encoder (RepViT) comes from the timm "
                         "package, which is not installed; `pip install timm`, or use a SAM 2.1 "
                         "folder (facebook/sam2.1-hiera-tiny)")
