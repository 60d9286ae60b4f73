#!/usr/bin/env python3
"""Build the Blender extension: ``extension/`` plus the standard-library host layer of the core
(``actanywhere/api``, bundled as ``vendor/actanywhere``: no ``sys.path`` changes, no wheels) as
the zip Blender installs (Preferences > Get Extensions > Install from Disk).

    python3 blender_addon/build.py [--out DIR] [--python VENV_PYTHON]

``--python``: the worker's Python the add-on's preferences start with (``install.py blender``
passes the venv it made). Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import zipfile

import tomllib

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "extension")
CORE = os.path.join(os.path.dirname(HERE), "core", "actanywhere")
#: what the add-on needs of the core: the host layer, the errors it raises and the engine
#: catalog it asks (data only)
VENDORED = ["__init__.py", "errors.py", "catalog.py", "api"]


def manifest() -> dict:
    with open(os.path.join(SOURCE, "blender_manifest.toml"), "rb") as fh:
        return tomllib.load(fh)


def _files(root: str, prefix: str) -> list[tuple[str, str]]:
    out = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(names):
            if name.endswith((".pyc", ".pyo")):
                continue
            path = os.path.join(folder, name)
            out.append((path, os.path.join(prefix, os.path.relpath(path, root))))
    return out


def contents() -> list[tuple[str, str]]:
    """(file on disk, name in the zip) for every file of the extension."""
    out = _files(SOURCE, "")
    for item in VENDORED:
        path = os.path.join(CORE, item)
        dest = os.path.join("vendor", "actanywhere", item)
        out += _files(path, dest) if os.path.isdir(path) else [(path, dest)]
    return out


def build(out_dir: str, python: str | None = None) -> str:
    """Write ``<out_dir>/<id>-<version>.zip`` (replaced atomically); its path."""
    info = manifest()
    os.makedirs(out_dir, exist_ok=True)
    target = os.path.join(out_dir, f"{info['id']}-{info['version']}.zip")
    tmp = target + ".tmp"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, name in contents():
            zf.write(path, name.replace(os.sep, "/"))
        zf.writestr("vendor/__init__.py", '"""Bundled at build time from core/actanywhere."""\n')
        if python:
            zf.writestr("defaults.json", json.dumps({"python": python}, indent=2) + "\n")
    os.replace(tmp, target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(HERE), "dist"))
    parser.add_argument("--python", default=None, help="the worker venv's python")
    ns = parser.parse_args(argv)
    print(build(ns.out, ns.python))
    return 0


if __name__ == "__main__":
    sys.exit(main())
