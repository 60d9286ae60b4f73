"""The ActAnywhere diffusion model: components, checkpoints, pipeline and engine (needs torch).

Import the submodules directly; nothing heavy is imported by ``actanywhere`` itself.
"""
