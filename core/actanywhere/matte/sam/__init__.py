"""Segment Anything (the official ``segment-anything`` package) from local checkpoints.

One part per file: ``arch`` reads the architecture from the checkpoint itself (embedding width,
depth, heads from the relative-position tables, which blocks attend globally, input size), so
the official vit_b, vit_l and vit_h files and the tiny models the tests build load through the
same code; ``builder`` builds it; ``loader`` finds, reads and checks checkpoints (warm once per
process); ``cache`` keeps image embeddings by content in memory and on disk; ``segmenter``
turns prompts into mattes through the model's own modules; ``source`` is the registered
``sam`` matte source. Torch is imported only when a SAM part is used.
"""

from .arch import KNOWN, Arch, infer_arch
from .builder import build
from .cache import Embedding, EmbeddingCache, cache_folder, shared_cache
from .loader import ENV, SamModel, checkpoint_path, load, read_state_dict
from .segmenter import SamSegmenter
from .source import SamSource

__all__ = ["ENV", "KNOWN", "Arch", "Embedding", "EmbeddingCache", "SamModel", "SamSegmenter",
           "SamSource", "build", "cache_folder", "checkpoint_path", "infer_arch", "load",
           "read_state_dict", "shared_cache"]
