"""SAM 2.1 and EdgeTAM video models (transformers' ``Sam2VideoModel``, ``EdgeTamVideoModel``)
as the ``sam2`` matte source, from local model folders.

One part per file: ``deps`` imports torch and transformers with one clear error; ``folder``
finds and checks a model folder from its JSON and weight headers (the class from config.json's
``model_type``); ``loader`` loads it offline onto its device, warm once per process;
``session`` drives one transformers inference session over a shot (frames fed as needed,
memory bounded); ``plan`` decides which frames are tracked from which anchor and in which
direction; ``tracker`` carries a plan out; ``resume`` reads what a stopped run wrote;
``segmenter`` is the shot's segmenter; ``source`` the registered ``sam2`` source. Torch and
transformers are imported only when a model is checked or used.
"""

from .folder import ENV, FolderInfo, inspect, model_folder
from .source import Sam2Source

__all__ = ["ENV", "FolderInfo", "Sam2Source", "inspect", "model_folder"]
