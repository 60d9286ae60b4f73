"""The models: the ActAnywhere diffusion model (its parts ``components``, checkpoints, the
pipeline, its samplers ``schedulers`` and frame windows, ``model init`` with ``init`` and
``assemble``), Wan VACE folders (``vace/``), the device, and pipelines kept warm between jobs
(``cache``). The engines that run them in a job are ``engines/diffusion.py`` and
``engines/vace.py``.

Import the submodules directly; most need torch (``cache`` and ``windows`` do not). Nothing
heavy is imported by ``actanywhere`` or by this package itself: ``SHIPPED`` and
``model_hash`` need no torch.
"""

import hashlib
import os

#: The small trained model shipped in the package (see docs/training.md): what the diffusion
#: engine uses when no model folder is given. A proof that the training path works, trained on
#: synthetic clips at 64 px, not a production model.
SHIPPED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shipped")


def model_hash(model: str | None) -> str:
    """A short hash of a model folder's manifest (the shipped model when None); "" when it
    cannot be read. Takes record it, so two takes say whether they used the same weights."""
    for manifest in ("actanywhere.json", "model_index.json"):  # ours; a diffusers folder
        try:
            with open(os.path.join(model or SHIPPED, manifest), "rb") as fh:
                return hashlib.sha256(fh.read()).hexdigest()[:16]
        except OSError:
            continue
    return ""
