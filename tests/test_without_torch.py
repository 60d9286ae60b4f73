"""The package where torch is not installed: a compositor's install without the model extras.

A fresh interpreter runs with an import hook that makes torch and the model libraries
unimportable (as on a machine that never installed them): the CLI, the spec, the plan and the
composite engine must work, and the diffusion engine must refuse at check time, before any
pixel is read, with the install line.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from conftest import make_shot, read_exr

BLOCK = textwrap.dedent("""
    import importlib.abc, sys
    BLOCKED = ("torch", "diffusers", "transformers", "accelerate", "segment_anything",
               "torchvision", "safetensors")
    class NotInstalled(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None
    sys.meta_path.insert(0, NotInstalled())
    from actanywhere.cli import main
    code = main(sys.argv[1:])
    leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    print("LEAKED " + ",".join(leaked), file=sys.stderr)
    sys.exit(code)
""")


def run_cli(*args):
    return subprocess.run([sys.executable, "-c", BLOCK, *map(str, args)], capture_output=True,
                          text=True, timeout=300, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin"})


def test_composite_runs_and_imports_no_model_library(tmp_path):
    plate, bg = make_shot(tmp_path)
    out = tmp_path / "out" / "comp.####.exr"
    r = run_cli("generate", "--plate", plate, "--background", bg, "-o", out,
                "--engine", "composite", "--progress", "none")
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines()[-1] == "LEAKED ", r.stderr  # none of them was imported
    px, spec = read_exr(tmp_path / "out" / "comp.0001.exr")
    assert set(spec.channelnames) == {"R", "G", "B", "A", "bg.R", "bg.G", "bg.B", "matte.A"}
    assert json.loads(spec.get_string_attribute("actanywhere:spec"))["engine"]["name"] == \
        "composite"


def test_diffusion_is_refused_before_any_pixel_with_the_install_line(tmp_path):
    plate, bg = make_shot(tmp_path)
    r = run_cli("generate", "--plate", plate, "--background", bg, "-o",
                tmp_path / "out" / "comp.####.exr", "--engine", "diffusion", "--progress", "none")
    assert r.returncode == 5, r.stderr
    first = r.stderr.splitlines()[0]
    assert first.startswith("error: engine 'diffusion' needs torch, diffusers, transformers")
    assert "python3 install.py setup --torch" in first
    assert not (tmp_path / "out").exists()  # refused at check: nothing made


def test_info_and_doctor_work_and_say_torch_is_missing(tmp_path):
    plate, _ = make_shot(tmp_path)
    r = run_cli("info", plate, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["consistent"] is True
    r = run_cli("doctor", "--json")
    report = json.loads(r.stdout)
    assert report["torch"] == {"installed": False, "note": "torch is not installed: the "
                               "diffusion engine is unavailable"}
    assert report["mattes"]["sources"] == ["alpha", "file", "keyer", "grabcut"]
    assert "SAM unavailable" in report["mattes"]["sam_note"]
