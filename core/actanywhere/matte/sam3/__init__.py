"""SAM 3 (transformers' ``Sam3VideoModel``: a text-prompted detector and a SAM 2 style tracker)
as the ``sam3`` matte source: every instance of a concept ("person") found and tracked through
the shot, from a local model folder.

``family`` names the folders it takes (checked and loaded by sam2's ``folder`` and ``loader``);
``session`` drives one streaming transformers session over the shot (memory bounded, no hub
kernel fetched); ``pick`` chooses instances under a key frame's points or boxes;
``segmenter`` is the shot's segmenter (one session for every object's text); ``source`` the
registered ``sam3`` source. Torch and transformers are imported only when a model is used.
"""

from .family import ENV, SAM3
from .source import Sam3Source

__all__ = ["ENV", "SAM3", "Sam3Source"]
