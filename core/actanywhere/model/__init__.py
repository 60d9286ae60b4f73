"""The ActAnywhere diffusion model: components, checkpoints, pipeline and engine (needs torch).

Import the submodules directly; nothing heavy is imported by ``actanywhere`` itself.
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
    path = os.path.join(model or SHIPPED, "actanywhere.json")
    try:
        with open(path, "rb") as fh:
            return hashlib.sha256(fh.read()).hexdigest()[:16]
    except OSError:
        return ""
