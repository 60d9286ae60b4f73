"""The SAM 3 video model folders ``matte.source sam3`` takes (as transformers saves
facebook/sam3; downloaded beforehand, nothing here downloads)::

    DIR/config.json             model_type sam3_video
    DIR/model.safetensors       (or shards + index; pytorch_model.bin only with allow_pickle)
    DIR/processor_config.json   the Sam3VideoProcessor's settings
    DIR/tokenizer.json          the CLIP tokenizer of the text prompts (or vocab.json)
"""

from __future__ import annotations

from ..sam2.folder import Family

ENV = "ACTANYWHERE_SAM3_MODEL"

SAM3 = Family(
    source="sam3", what="SAM 3", env=ENV, kinds={"sam3_video": ("Sam3VideoModel", "SAM 3")},
    example="facebook/sam3", processor="Sam3VideoProcessor",
    near={"sam3": "the image model's config; transformers saves the video model "
                  "(Sam3VideoModel) with model_type sam3_video",
          "sam3_tracker_video": "the tracker alone, prompted by points and boxes; matte.source "
                                "sam3 needs the whole video model (text detector + tracker)",
          "sam2_video": "a SAM 2 model: use matte.source sam2"},
    extra=((("tokenizer.json", "vocab.json"), "the CLIP tokenizer of the text prompts"),),
    renamed=True)
