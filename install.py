#!/usr/bin/env python3
"""Set up ActAnywhere for VFX in a virtual environment, then run the demo or the tests.

    python3 install.py demo     # create .venv, install, run the built-in demo shot
    python3 install.py test     # create .venv, install with test tools, run the whole suite
    python3 install.py setup    # only create .venv and install
    python3 install.py nuke     # set up, then add the Nuke plugin to ~/.nuke/init.py
    python3 install.py blender  # set up, then build the Blender extension zip (dist/)

Options: --venv DIR (default .venv), --torch none|cpu|cuda. Default: `test` and `demo` install
the CUDA build of torch 2.12 with torchvision 0.27 (it runs on the CPU too; CI exercises the
model with it, the demo runs the shipped model); `setup` installs no torch (the composite
engine needs none); `nuke` and `blender` install the CUDA build, as the hosts run the model.
`nuke` takes --nuke-dir DIR (default ~/.nuke) and --print (print the NUKE_PATH and
ACTANYWHERE_PYTHON lines to use instead of editing init.py). `blender` builds
dist/actanywhere-<version>.zip (--out DIR elsewhere) for Blender's Preferences > Get
Extensions > Install from Disk, its Worker Python set to this venv. `test` also makes venvs
with Blender's Python module for the Blender tests (.venv-bpy-5.0: bpy 5.0.1, .venv-bpy-4.5:
bpy 4.5; --bpy 5.0 or none for fewer); where bpy cannot be installed, those tests skip. See
docs/quickstart.md, docs/nuke.md and docs/blender.md. Standard library only; Python 3.11 or
newer.
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
    if _stamp(venv_dir) == digest:
        return py
    target = f"{ROOT}[{extras}]" if extras else ROOT
    _run([py, "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
    _run([py, "-m", "pip", "install", "--quiet", "-e", target, *TORCH[torch]])
    _stamp(venv_dir, digest)
    return py


def _stamp(venv_dir: str, value: str | None = None) -> str | None:
    """What a venv was last installed with (read), or record ``value``: an install runs only
    when what it should hold changed."""
    path = os.path.join(venv_dir, ".actanywhere-installed")
    if value is not None:
        with open(path, "w") as fh:
            fh.write(value)
        return value
    try:
        with open(path) as fh:
            return fh.read()
    except FileNotFoundError:
        return None


#: Blender's Python module from PyPI, each in a venv of its own (bpy needs numpy<2; the worker's
#: OpenImageIO needs numpy>=2); wheels exist for CPython 3.11
BPY = {"5.0": ["bpy==5.0.1", "numpy<2"], "4.5": ["bpy==4.5.*", "numpy<2"]}


def setup_bpy(venv_dir: str, version: str) -> str | None:
    """A venv with ``bpy`` for the Blender tests; its Python, or None (and a line saying why)
    when it cannot be installed here: those tests then skip."""
    py = _python(venv_dir)
    want = " ".join(BPY[version])
    if _stamp(venv_dir) == want:
        return py
    try:
        if not os.path.exists(py):
            print(f"creating virtual environment {venv_dir} (Blender {version} tests)",
                  flush=True)
            venv.EnvBuilder(with_pip=True, clear=False).create(venv_dir)
        _run([py, "-m", "pip", "install", "--quiet", *BPY[version]])
    except (subprocess.CalledProcessError, OSError) as exc:
        print(f"note: bpy for Blender {version} could not be installed ({exc}); its tests "
              "skip", flush=True)
        return None
    _stamp(venv_dir, want)
    return py


def blender_zip(out_dir: str, python: str) -> str:
    """Build the extension zip (blender_addon/build.py) with ``python`` as its worker."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "actanywhere_blender_build", os.path.join(ROOT, "blender_addon", "build.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build(out_dir, python=python)


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
    parser.add_argument("action", choices=["setup", "demo", "test", "nuke", "blender"],
                        nargs="?", default="setup")
    parser.add_argument("--nuke-dir", default=os.path.join(os.path.expanduser("~"), ".nuke"),
                        help="Nuke's user folder whose init.py gets the plugin (nuke)")
    parser.add_argument("--print", dest="print_only", action="store_true",
                        help="nuke: print the environment lines instead of editing init.py")
    parser.add_argument("--out", default=os.path.join(ROOT, "dist"),
                        help="blender: where the extension zip is written")
    parser.add_argument("--bpy", choices=["all", "5.0", "none"], default="all",
                        help="test: Blender versions to test against (bpy venvs to make)")
    parser.add_argument("--venv", default=os.path.join(ROOT, ".venv"))
    parser.add_argument("--torch", choices=sorted(TORCH), default=None,
                        help="none: no diffusion engine; cpu: CPU-only build; cuda: CUDA build "
                        "(default: cuda for test and demo, none for setup)")
    ns, extra_args = parser.parse_known_args(argv)
    if extra_args[:1] == ["--"]:
        extra_args = extra_args[1:]
    if ns.action in ("setup", "nuke", "blender") and extra_args:
        parser.error(f"{ns.action} takes no further arguments: {' '.join(extra_args)}")
    ns.venv = os.path.abspath(ns.venv)
    return ns, extra_args


def main(argv: list[str] | None = None) -> int:
    ns, extra_args = parse(argv)
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    try:
        # demo runs the shipped model (diffusion engine): it needs torch as much as the tests
        torch = ns.torch or ("none" if ns.action == "setup" else "cuda")
        extras = ["dev", "train", "takes", "opencue"] if ns.action == "test" else []
        if torch != "none":
            extras.append("model")
        if torch == "cuda":  # timm needs torchvision, which only this choice brings
            extras.append("edgetam")
        py = setup(ns.venv, ",".join(extras), torch)
        if ns.action == "demo":
            _run([py, "-m", "actanywhere", "demo", *extra_args], env=env, cwd=ROOT)
        elif ns.action == "test":
            versions = {"all": list(BPY), "5.0": ["5.0"], "none": []}[ns.bpy]
            found = [setup_bpy(f"{ns.venv}-bpy-{v}", v) for v in versions]
            env["ACTANYWHERE_BPY_PYTHONS"] = os.pathsep.join(p for p in found if p)
            _run([py, "-m", "pytest", "-q", *extra_args], env=env, cwd=ROOT)
        elif ns.action == "blender":
            zip_path = blender_zip(ns.out, py)
            print(f"Blender extension: {zip_path}\nIn Blender 4.2+: Edit > Preferences > Get "
                  "Extensions > (v) > Install from Disk..., pick that file; the panel is in "
                  f"the Sequencer's sidebar (N), tab ActAnywhere. Its worker: {py} "
                  "(docs/blender.md).")
        elif ns.action == "nuke":
            print(nuke_init(ns.nuke_dir, py, ns.print_only))
    except subprocess.CalledProcessError as exc:
        return exc.returncode or 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
