#!/usr/bin/env python3
"""Set up ActAnywhere for VFX in a virtual environment, then run the demo or the tests.

    python3 install.py demo     # create .venv, install, run the built-in demo shot
    python3 install.py test     # create .venv, install with test tools, run the whole suite
    python3 install.py setup    # only create .venv and install
    python3 install.py nuke     # set up, then add the Nuke plugin to ~/.nuke/init.py

Options: --venv DIR (default .venv), --torch none|cpu|cuda. Default: `test` and `demo` install
the CUDA build of torch 2.12 with torchvision 0.27 (it runs on the CPU too; CI exercises the
model with it, the demo runs the shipped model); `setup` installs no torch (the composite
engine needs none; `nuke` installs the CUDA build, as the node runs the model). `nuke` takes
--nuke-dir DIR (default ~/.nuke) and --print (print the NUKE_PATH and ACTANYWHERE_PYTHON lines
to use instead of editing init.py). See docs/quickstart.md and docs/nuke.md. Standard library
only; Python 3.11 or newer.
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


NUKE_BEGIN = "# >>> ActAnywhere (added by install.py nuke; run it again to update) >>>"
NUKE_END = "# <<< ActAnywhere <<<"


def nuke_init(nuke_dir: str, python: str, print_only: bool = False) -> str:
    """Add the plugin to Nuke's user ``init.py`` (once: a second run replaces its own block,
    the rest of the file is kept) and record the worker venv's Python the node starts;
    ``print_only``: the lines to use instead. Returns what to tell the user."""
    plugin = os.path.join(ROOT, "nuke_plugin")
    if print_only:
        sep = ";" if os.name == "nt" else ":"
        return (f"NUKE_PATH={plugin}{sep}$NUKE_PATH\nACTANYWHERE_PYTHON={python}")
    block = "\n".join([
        NUKE_BEGIN, "import os as _aa_os", "import nuke as _aa_nuke",
        f"_aa_os.environ.setdefault('ACTANYWHERE_PYTHON', {python!r})",
        f"_aa_nuke.pluginAddPath({plugin!r})", NUKE_END])
    path = os.path.join(nuke_dir, "init.py")
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        text = ""
    if NUKE_BEGIN in text and NUKE_END in text:
        head, _, rest = text.partition(NUKE_BEGIN)
        text = head + block + rest.partition(NUKE_END)[2]
    else:
        text = text + ("\n" if text and not text.endswith("\n") else "") + block + "\n"
    os.makedirs(nuke_dir, exist_ok=True)
    tmp = path + ".actanywhere-tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)
    return (f"Nuke plugin added to {path}; the node starts its worker with {python}. "
            "Restart Nuke: the node is in the Nodes toolbar under ActAnywhere (docs/nuke.md).")


def parse(argv: list[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    """(options, arguments for the demo or pytest). Options may come before or after the
    action; what this parser does not know, or everything after "--", is passed on."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["setup", "demo", "test", "nuke"], nargs="?",
                        default="setup")
    parser.add_argument("--nuke-dir", default=os.path.join(os.path.expanduser("~"), ".nuke"),
                        help="Nuke's user folder whose init.py gets the plugin (nuke)")
    parser.add_argument("--print", dest="print_only", action="store_true",
                        help="nuke: print the environment lines instead of editing init.py")
    parser.add_argument("--venv", default=os.path.join(ROOT, ".venv"))
    parser.add_argument("--torch", choices=sorted(TORCH), default=None,
                        help="none: no diffusion engine; cpu: CPU-only build; cuda: CUDA build "
                        "(default: cuda for test and demo, none for setup)")
    ns, extra_args = parser.parse_known_args(argv)
    if extra_args[:1] == ["--"]:
        extra_args = extra_args[1:]
    if ns.action in ("setup", "nuke") and extra_args:
        parser.error(f"{ns.action} takes no further arguments: {' '.join(extra_args)}")
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
        elif ns.action == "nuke":
            print(nuke_init(ns.nuke_dir, py, ns.print_only))
    except subprocess.CalledProcessError as exc:
        return exc.returncode or 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
