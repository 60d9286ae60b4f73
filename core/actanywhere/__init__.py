"""ActAnywhere for VFX: subject-conditioned background video generation for compositing."""

__version__ = "0.1.0"
