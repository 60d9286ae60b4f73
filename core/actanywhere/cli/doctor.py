"""``actanywhere doctor``: what this installation can do, and what is missing."""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import platform
import sys
from typing import Any


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def check(model_dirs: list[str] | None = None) -> dict[str, Any]:
    """A JSON-ready report; ``ok`` is False when something the composite engine needs fails."""
    report: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "executable": sys.executable,
        "packages": {d: _version(d) for d in ("actanywhere", "numpy", "OpenImageIO",
                                              "opencolorio", "fileseq", "typer", "pydantic",
                                              "torch", "diffusers", "transformers", "timm",
                                              "safetensors", "segment-anything", "torchvision",
                                              "opencv-python-headless")},
        "hf_hub_offline": os.environ.get("HF_HUB_OFFLINE") == "1",
        "problems": [],
    }
    problems: list[str] = report["problems"]
    try:
        import OpenImageIO as oiio

        report["oiio_formats"] = sorted(
            f.split(":")[0] for f in oiio.get_string_attribute("extension_list").split(";"))
        if "openexr" not in report["oiio_formats"]:
            problems.append("OpenImageIO has no OpenEXR support; reinstall OpenImageIO")
    except ImportError as exc:
        problems.append(f"OpenImageIO does not import ({exc}); run python install.py")
    try:
        from ..media.color import ColorContext

        ctx = ColorContext()
        report["ocio_config"] = ctx.ref
        report["ocio_working_space"] = ctx.working_space
    except Exception as exc:  # noqa: BLE001 - report any failure as a problem
        problems.append(f"OpenColorIO config does not load ({exc}); unset $OCIO or fix it")
    report["torch"] = _torch()
    report["mattes"] = _mattes()
    problems.extend(report["mattes"].pop("problems"))
    dirs = list(model_dirs or [])
    if os.environ.get("ACTANYWHERE_MODEL"):
        dirs.append(os.environ["ACTANYWHERE_MODEL"])
    from ..model import SHIPPED  # a path constant; no torch import

    report["shipped_model"] = _model_dir(SHIPPED)
    if not report["shipped_model"].get("exists"):
        problems.append(f"{SHIPPED}: the shipped model is missing; reinstall the package")
    else:
        problems.extend(report["shipped_model"].get("problems", []))
    report["models"] = {d: _model_dir(d) for d in dirs}
    for d, m in report["models"].items():
        if not m.get("exists"):
            problems.append(f"{d}: model folder does not exist")
        problems.extend(m.get("problems", []))
    report["ok"] = not problems
    return report


def _mattes() -> dict[str, Any]:
    """Which matte sources work here (docs/mattes.md)."""
    from ..catalog import matte_sources
    from ..matte import source_class

    info: dict[str, Any] = {"sources": [], "problems": []}
    for name in matte_sources():  # every registered source whose module imports here
        try:
            source_class(name)
        except ImportError as exc:
            info["problems"].append(f"matte source {name}: {exc}; run python3 install.py")
        else:
            info["sources"].append(name)
    try:  # SAM's module imports torch only when used: ask for what it will need
        importlib.import_module("segment_anything.utils.transforms")  # imports torchvision
    except ImportError as exc:
        info["sources"] = [n for n in info["sources"] if n != "sam"]
        info["sam_note"] = (f"SAM unavailable ({exc}); `python3 install.py setup --torch cuda` "
                            "installs torch with torchvision")
    try:  # sam2 imports torch and transformers only when used: are they there?
        for module in ("torch", "transformers"):
            if importlib.util.find_spec(module) is None:
                raise ImportError(f"No module named {module!r}")
    except ImportError as exc:
        info["sources"] = [n for n in info["sources"] if n not in ("sam2", "sam3")]
        info["sam2_note"] = (f"SAM 2 unavailable ({exc}); `python3 install.py setup` installs "
                             "torch and transformers")
    else:
        if importlib.util.find_spec("timm") is None:
            info["edgetam_note"] = ("sam2 takes SAM 2.1 folders; EdgeTAM folders need timm, "
                                    "which `python3 install.py setup --torch cuda` installs")
    ckpt = os.environ.get("ACTANYWHERE_SAM_CHECKPOINT")
    if ckpt:
        info["sam_checkpoint"] = ckpt
        if not os.path.isfile(ckpt):
            info["problems"].append(f"{ckpt}: $ACTANYWHERE_SAM_CHECKPOINT does not exist")
    return info


def _torch() -> dict[str, Any]:
    try:
        torch = importlib.import_module("torch")
    except ImportError:
        return {"installed": False,
                "note": "torch is not installed: the diffusion engine is unavailable"}
    info: dict[str, Any] = {"installed": True, "version": torch.__version__,
                            "cuda_build": torch.version.cuda,
                            "cuda_available": bool(torch.cuda.is_available())}
    if info["cuda_available"]:
        info["devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    else:
        info["note"] = "no CUDA GPU: the diffusion engine runs on the CPU, slowly"
    return info


def _model_dir(path: str) -> dict[str, Any]:
    if not os.path.isdir(path):
        return {"exists": False, "note": "not a folder"}
    try:
        from ..model import checkpoint
    except ImportError as exc:
        return {"exists": True, "note": f"cannot check without torch/diffusers ({exc.msg})"}
    report = checkpoint.verify(path, hashes=False)
    return {"exists": True, "ok": not report.problems, "problems": report.problems,
            "components": {c.name: c.parameters for c in report.components},
            "architecture": report.manifest.get("architecture", {})}
