"""install.py's argument handling: options before or after the action, the rest passed on."""

from __future__ import annotations

import importlib.util
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def install():
    spec = importlib.util.spec_from_file_location("install", os.path.join(ROOT, "install.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("argv, action, torch", [
    (["setup", "--torch", "cuda"], "setup", "cuda"),
    (["--torch", "cuda", "setup"], "setup", "cuda"),
    (["setup", "--torch", "cpu"], "setup", "cpu"),
    (["test", "--torch", "cpu"], "test", "cpu"),
    (["--torch=none", "demo"], "demo", "none"),
    (["demo"], "demo", None),
])
def test_options_in_either_order_are_honoured(install, argv, action, torch):
    ns, rest = install.parse(argv)
    assert (ns.action, ns.torch, rest) == (action, torch, [])


def test_venv_option_after_the_action(install, tmp_path):
    ns, rest = install.parse(["setup", "--venv", str(tmp_path / "env")])
    assert ns.venv == str(tmp_path / "env") and rest == []


def test_unknown_arguments_go_to_pytest_or_the_demo(install):
    ns, rest = install.parse(["test", "--torch", "cpu", "-k", "colour", "-x"])
    assert ns.torch == "cpu" and rest == ["-k", "colour", "-x"]
    ns, rest = install.parse(["test", "--", "--torch", "cpu"])  # after --: pytest's
    assert ns.torch is None and rest == ["--torch", "cpu"]
    ns, rest = install.parse(["demo", "--engine", "composite"])
    assert ns.action == "demo" and rest == ["--engine", "composite"]


def test_setup_rejects_arguments_it_would_ignore(install, capsys):
    with pytest.raises(SystemExit) as exc:
        install.parse(["setup", "--torhc", "cuda"])
    assert exc.value.code == 2
    assert "--torhc" in capsys.readouterr().err


def test_nuke_init_is_idempotent_and_keeps_the_users_lines(install, tmp_path):
    nuke_dir = tmp_path / ".nuke"
    nuke_dir.mkdir()
    (nuke_dir / "init.py").write_text("import nuke\nnuke.pluginAddPath('/studio/tools')")
    install.nuke_init(str(nuke_dir), "/venv/a/bin/python")
    install.nuke_init(str(nuke_dir), "/venv/b/bin/python")  # again, with another venv
    text = (nuke_dir / "init.py").read_text()
    assert text.count(install.NUKE_BEGIN) == 1 and text.startswith("import nuke\n")
    assert "'/studio/tools'" in text and "/venv/b/bin/python" in text
    assert "/venv/a/bin/python" not in text
    assert f"pluginAddPath({os.path.join(ROOT, 'nuke_plugin')!r})" in text
    compile(text, "init.py", "exec")  # Nuke can run it
    printed = install.nuke_init(str(tmp_path / "other"), "/venv/c/bin/python", print_only=True)
    assert "NUKE_PATH=" in printed and "ACTANYWHERE_PYTHON=/venv/c/bin/python" in printed
    assert not (tmp_path / "other").exists()
    ns, _ = install.parse(["nuke", "--nuke-dir", str(nuke_dir), "--print"])
    assert ns.action == "nuke" and ns.print_only and ns.nuke_dir == str(nuke_dir)


def test_blender_builds_the_extension_zip_with_the_venvs_python(install, tmp_path):
    import json
    import zipfile

    ns, _ = install.parse(["blender", "--out", str(tmp_path / "dist")])
    assert ns.action == "blender" and ns.out == str(tmp_path / "dist")
    path = install.blender_zip(ns.out, "/venv/x/bin/python")
    assert os.path.basename(path) == "actanywhere-0.1.0.zip"
    with zipfile.ZipFile(path) as zf:
        assert json.loads(zf.read("defaults.json")) == {"python": "/venv/x/bin/python"}
        names = zf.namelist()
    assert "blender_manifest.toml" in names and "vendor/actanywhere/api/takes.py" in names
    assert not [n for n in names if n.endswith(".pyc")]
    with pytest.raises(SystemExit):  # blender takes no arguments to pass on
        install.parse(["blender", "extra"])
    assert install.parse(["test", "--bpy", "none"])[0].bpy == "none"
