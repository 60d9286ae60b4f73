"""The optional libraries SAM needs, imported with one clear error when they are missing."""

from __future__ import annotations

from types import SimpleNamespace

from ...errors import ModelError


def need() -> SimpleNamespace:
    """torch and segment-anything's parts, or ModelError saying how to install them."""
    try:
        import torch
        from segment_anything.modeling import (
            ImageEncoderViT,
            MaskDecoder,
            PromptEncoder,
            Sam,
            TwoWayTransformer,
        )
        from segment_anything.utils.transforms import ResizeLongestSide
    except ImportError as exc:
        raise ModelError(
            f"SAM needs torch, torchvision and segment-anything ({exc}); install with "
            "`python3 install.py setup --torch cuda` (the CPU-only torch build has no "
            "torchvision)") from exc
    return SimpleNamespace(torch=torch, ImageEncoderViT=ImageEncoderViT,
                           MaskDecoder=MaskDecoder, PromptEncoder=PromptEncoder, Sam=Sam,
                           TwoWayTransformer=TwoWayTransformer,
                           ResizeLongestSide=ResizeLongestSide)
