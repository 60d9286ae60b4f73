"""Shots and takes as render-farm jobs (docs/farm.md): Open Job Description bundles.

``wedge``: ShotSpecs times a wedge of values -> takes; ``openjd``: the job template;
``bundle``: the job bundle folder (template, parameter values, the takes' specs).
"""
