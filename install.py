#!/usr/bin/env python3
"""Set up ActAnywhere for VFX in a virtual environment, then run the demo or the tests.

    python3 install.py demo     # create .venv, install, run the built-in demo shot
    python3 install.py test     # create .venv, install with test tools, run the whole suite
    python3 install.py setup    # only create .venv and install

Options: --venv DIR (default .venv), --torch none|cpu|cuda. Default: `test` and `demo` install
the CUDA build of torch 2.12 with torchvision 0.27 (it runs on the CPU too; CI exercises the
model with it, the demo runs the shipped model); `setup` installs no torch (the composite
engine needs none). See docs/quickstart.md. Standard library only; Python 3.11 or newer.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import venv

ROOT = os.path.dirname(os.path.abspath(__file__))
TORCH = {
    "none": [],
    # CPU-only build; on this project's machines a local wheel of 2.13.0 is on pip's find-links.
    "cpu": ["torch>=2.12,<2.14"],
    # CUDA build from PyPI (about 4.8 GB) with the matching torchvision, for GPU users and SAM.
    "cuda": ["torch==2.12.*", "torchvision==0.27.*"],
}


def _run(cmd: list[str], **kw) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kw)


def _python(venv_dir: str) -> str:
    sub = "Scripts" if os.name == "nt" else "bin"
    return os.path.join(venv_dir, sub, "python.exe" if os.name == "nt" else "python")


def setup(venv_dir: str, extras: str, torch: str) -> str:
    """Create the venv and install the package (editable) once per pyproject/option change."""
    if sys.version_info < (3, 11):
        sys.exit(f"error: Python 3.11 or newer is needed, this is {sys.version.split()[0]}; "
                 "run install.py with python3.11")
    py = _python(venv_dir)
    if not os.path.exists(py):
        print(f"creating virtual environment {venv_dir}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=False).create(venv_dir)
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as fh:
        digest = hashlib.sha256(fh.read() + f"{extras}|{torch}".encode()).hexdigest()
    stamp = os.path.join(venv_dir, ".actanywhere-installed")
    if os.path.exists(stamp):
        with open(stamp) as fh:
            if fh.read() == digest:
                return py
    target = f"{ROOT}[{extras}]" if extras else ROOT
    _run([py, "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
    _run([py, "-m", "pip", "install", "--quiet", "-e", target, *TORCH[torch]])
    with open(stamp, "w") as fh:
        fh.write(digest)
    return py


def parse(argv: list[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    """(options, arguments for the demo or pytest). Options may come before or after the
    action; what this parser does not know, or everything after "--", is passed on."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["setup", "demo", "test"], nargs="?", default="setup")
    parser.add_argument("--venv", default=os.path.join(ROOT, ".venv"))
    parser.add_argument("--torch", choices=sorted(TORCH), default=None,
                        help="none: no diffusion engine; cpu: CPU-only build; cuda: CUDA build "
                        "(default: cuda for test and demo, none for setup)")
    ns, extra_args = parser.parse_known_args(argv)
    if extra_args[:1] == ["--"]:
        extra_args = extra_args[1:]
    if ns.action == "setup" and extra_args:
        parser.error(f"setup takes no further arguments: {' '.join(extra_args)}")
    ns.venv = os.path.abspath(ns.venv)
    return ns, extra_args


def main(argv: list[str] | None = None) -> int:
    ns, extra_args = parse(argv)
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    try:
        # demo runs the shipped model (diffusion engine): it needs torch as much as the tests
        torch = ns.torch or ("none" if ns.action == "setup" else "cuda")
        extras = ["dev", "train"] if ns.action == "test" else []
        if torch != "none":
            extras.append("model")
        py = setup(ns.venv, ",".join(extras), torch)
        if ns.action == "demo":
            _run([py, "-m", "actanywhere", "demo", *extra_args], env=env, cwd=ROOT)
        elif ns.action == "test":
            _run([py, "-m", "pytest", "-q", *extra_args], env=env, cwd=ROOT)
    except subprocess.CalledProcessError as exc:
        return exc.returncode or 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
