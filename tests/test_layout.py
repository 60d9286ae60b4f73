"""The package's layout keeps the architecture docs/architecture.md draws: no import cycles
between modules, and each layer imports only what it may (read from the source, as Python
would import it at module load; imports inside functions are the lazy ones and are free)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "core" / "actanywhere"


def _module(path: Path) -> str:
    parts = ["actanywhere", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module(p): p for p in ROOT.rglob("*.py")}


def _absolute(name: str, node: ast.ImportFrom) -> str:
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    base = node.module or ""
    if node.level:
        anchor = package.split(".")
        anchor = anchor[: len(anchor) - node.level + 1]
        base = ".".join(anchor + ([base] if base else []))
    return base


def _imports(name: str, nodes) -> set[str]:
    out: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(name, node)
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES)
    return out


def _every_import(name: str) -> set[str]:
    """Every module ``name`` imports, at load or later inside a function."""
    return _imports(name, ast.walk(ast.parse(MODULES[name].read_text())))


def _top_level_imports(name: str) -> set[str]:
    """Modules ``name`` imports when it is loaded (not inside functions or TYPE_CHECKING)."""
    out: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, (ast.If, ast.Try)):
                visit(node.body)
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)
                visit(node.orelse)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                out.update(_imports(name, [node]))

    visit(ast.parse(MODULES[name].read_text()).body)
    return out


# every import, lazy ones included (the old engines <-> model/engine cycle was half lazy); a
# module's edges to its own parent packages are left out: Python initialises a package
# before its parts, so a part reading its package's names is not a cycle
GRAPH = {m: {i for i in _every_import(m) if i in MODULES and i != m
             and not m.startswith(i + ".")} for m in MODULES}


def _reach(start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in GRAPH[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_no_import_cycles():
    """No module needs itself to load (the cycle the engines once had with model/)."""
    cycles = sorted(m for m in GRAPH if m in _reach(m))
    assert not cycles, cycles


def _imports_anywhere(name: str) -> set[str]:
    """Everything (third-party included) imported at load by ``name`` and by what it loads."""
    seen, todo, found = {name}, [name], set()
    while todo:
        for imp in _top_level_imports(todo.pop()):
            found.add(imp.split(".")[0] if not imp.startswith("actanywhere") else imp)
            if imp in MODULES and imp not in seen:
                seen.add(imp)
                todo.append(imp)
    return found


@pytest.mark.parametrize("module,forbidden", [
    # data and names: no image library, no model library
    ("actanywhere.spec", {"OpenImageIO", "torch", "diffusers", "cv2"}),
    ("actanywhere.engines", {"numpy", "torch"}),
    ("actanywhere.matte", {"numpy", "torch"}),
    ("actanywhere.media.formats", {"OpenImageIO", "numpy"}),
    # the composite path and the diffusion engine's check never load torch
    ("actanywhere.engines.composite", {"torch", "diffusers"}),
    ("actanywhere.engines.diffusion", {"torch", "diffusers"}),
    ("actanywhere.shot.job", {"torch", "diffusers"}),
    ("actanywhere.worker.server", {"torch", "diffusers", "numpy"}),
    ("actanywhere.model.cache", {"torch"}),
    # matte algorithms do not depend on the settings' module; plates not on mattes
    ("actanywhere.matte.keyer", {"actanywhere.spec", "torch"}),
    ("actanywhere.matte.track", {"actanywhere.spec", "torch"}),
    ("actanywhere.matte.grabcut", {"actanywhere.spec", "torch"}),
    ("actanywhere.matte.refine", {"actanywhere.spec", "torch"}),
    ("actanywhere.shot.plate", {"actanywhere.matte.shot", "actanywhere.matte.channels",
                           "actanywhere.matte.source", "torch"}),
    # training data is numpy/torch, not the diffusers pipeline
    ("actanywhere.train.dataset", {"diffusers", "actanywhere.model.pipeline"}),
    # hosts import these: the standard library only
    ("actanywhere.api", {"numpy", "pydantic", "OpenImageIO", "torch"}),
    ("actanywhere.errors", {"numpy", "pydantic"}),
])
def test_layers_import_only_what_they_may(module, forbidden):
    found = _imports_anywhere(module)
    assert not (found & forbidden), (module, sorted(found & forbidden))


def test_the_graph_is_read():  # the checks above would pass on an empty graph
    assert "actanywhere.spec" in _imports_anywhere("actanywhere.shot.job")
    assert "numpy" in _imports_anywhere("actanywhere.shot.job")
    assert "torch" in _imports_anywhere("actanywhere.model.pipeline")
    assert {"actanywhere.matte.sam.loader", "actanywhere.matte.sam.segmenter"} <= \
        GRAPH["actanywhere.matte.sam"]


def test_the_host_layer_is_standard_library_only():
    """Nuke's and Blender's Pythons import actanywhere.api: every module in it, and everything
    they import (lazily too), is the standard library or the api itself (errors.py, the
    engine catalog and the package's __init__ import nothing else)."""
    import sys

    api = [m for m in MODULES if m == "actanywhere.api" or m.startswith("actanywhere.api.")]
    assert len(api) >= 6
    allowed = {"actanywhere", "actanywhere.errors", "actanywhere.catalog"}
    seen, todo = set(api), list(api)
    while todo:
        for imp in _every_import(todo.pop()):
            top = imp.split(".")[0]
            if top == "__future__" or top in sys.stdlib_module_names:
                continue
            assert imp in MODULES, imp  # a third-party import
            assert imp in allowed or imp.startswith("actanywhere.api"), imp
            if imp not in seen:
                seen.add(imp)
                todo.append(imp)
    for name in allowed:  # the data-only leaves: the standard library and each other
        assert not {i for i in _every_import(name) if i.split(".")[0] not in
                    sys.stdlib_module_names} - {"__future__"} - allowed, name


def test_records_and_progress_load_no_http_client():
    """Reading take records or reporting progress imports no HTTP client: ``api`` hands its
    names out lazily and a take's worker session is a module of its own."""
    import subprocess
    import sys

    code = ("import sys, actanywhere.progress, actanywhere.api.takes, actanywhere.api\n"
            "print(sorted(m for m in ('http.client', 'urllib.request', 'actanywhere.api.client')"
            " if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr
