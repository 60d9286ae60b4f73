"""``actanywhere model init``: a complete, loadable checkpoint from local parts or random
weights (never downloads)."""

from __future__ import annotations

from ..errors import SpecError
from . import checkpoint
from .components import ARCHITECTURES, build_random

CONDITIONS = ("embed", "patches")


def init(out: str, *, unet: str | None = None, motion_adapter: str | None = None,
         image_encoder: str | None = None, vae: str | None = None, random: str | None = None,
         condition: str = "embed", seed: int = 0, overwrite: bool = False,
         allow_pickle: bool = False) -> str:
    """Write the checkpoint folder ``out``; returns its path. Either all four part folders
    (SD 1.5 UNet, AnimateDiff motion adapter, CLIP ViT-L/14, SD VAE) or ``random`` (one of
    ``components.ARCHITECTURES``)."""
    if condition not in CONDITIONS:
        raise SpecError(f"--condition {condition!r}: use embed or patches")
    parts = [unet, motion_adapter, image_encoder, vae]
    if random:
        if any(parts):
            raise SpecError("--random builds random weights; do not also pass component folders")
        if random not in ARCHITECTURES:
            raise SpecError(f"--random {random!r}: use one of {', '.join(ARCHITECTURES)}")
        comps = build_random(random, seed=seed, condition=condition)  # type: ignore[arg-type]
        trained = {name: "random (untrained)" for name in comps.modules()}
        source: dict = {"random": random, "seed": seed}
    else:
        if not all(parts):
            raise SpecError("model init needs --unet, --motion-adapter, --image-encoder and --vae "
                            f"(folders you downloaded), or --random {'|'.join(ARCHITECTURES)}")
        from .assemble import from_parts

        comps, trained, source = from_parts(unet, motion_adapter, image_encoder, vae,  # type: ignore[arg-type]
                                            condition=condition,  # type: ignore[arg-type]
                                            allow_pickle=allow_pickle)
    return checkpoint.save(comps, out, trained=trained, source=source, overwrite=overwrite)
