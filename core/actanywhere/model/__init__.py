"""The ActAnywhere diffusion model: components, checkpoints, pipeline and engine (needs torch).

Import the submodules directly; nothing heavy is imported by ``actanywhere`` itself.
"""

import os

#: The small trained model shipped in the package (see docs/training.md): what the diffusion
#: engine uses when no model folder is given. A proof that the training path works, trained on
#: synthetic clips at 64 px, not a production model.
SHIPPED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shipped")
