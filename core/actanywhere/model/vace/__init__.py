"""Wan VACE from a diffusers folder: ``folder`` (what is there, checked before any weight is
read), ``load`` (offline, to a ``WanVACEPipeline`` on the CPU), ``memory`` (placing it on the
device, offload, fp8, the GPU memory estimate) and ``pipeline`` (one window, with the prompt
encoded once and a start part-way down the schedule). The engine is ``engines/vace.py``."""
