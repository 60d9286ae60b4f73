"""The fake ``nukescripts`` (with the fake ``nuke``): only ``panels``, as Foundry documents it."""

from . import panels

__all__ = ["panels"]
