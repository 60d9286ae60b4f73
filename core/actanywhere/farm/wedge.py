"""A wedge: ShotSpecs times lists of values for any ShotSpec field -> one take per combination."""

from __future__ import annotations

import copy
import itertools
import os
import re
from dataclasses import dataclass
from typing import Any

from ..errors import SpecError
from ..media import frames as frames_mod
from ..spec import ShotSpec, from_dict


@dataclass
class Take:
    """One (shot, take) of an export: the shot's name, the take's folder name, its spec."""

    shot: str
    name: str
    spec: ShotSpec
    values: dict[str, Any]
    frames: str = ""  # the take's frames' file name, e.g. sh010_comp.####.exr (``names``)


def parse(items: list[str]) -> dict[str, list[Any]]:
    """``["diffusion.seed=1,2,3", "background.path=a.exr,b.exr"]`` -> field -> values
    (numbers become numbers)."""
    out: dict[str, list[Any]] = {}
    for item in items:
        field, sep, values = item.partition("=")
        if not sep or not field.strip() or not values.strip():
            raise SpecError(f"--wedge {item!r}: write FIELD=V1,V2,... e.g. diffusion.seed=1,2,3")
        out[field.strip()] = [_value(v.strip()) for v in values.split(",") if v.strip()]
    return out


def _value(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


GENERIC = {"plate", "plates", "img", "images", "exr", "frames", "src", "source", "input", ""}
#: output file names that name no shot (then the plate's name is used)
GENERIC_OUTPUT = GENERIC | {"out", "output", "outputs", "comp", "comps", "render", "renders",
                            "result", "results", "beauty"}


def names(spec: ShotSpec, used: set[str]) -> tuple[str, str]:
    """(the shot's step-safe name, unique among ``used``; its takes' frames' file name).
    Both follow ``output.path``'s file name (``sh010_comp`` and ``sh010_comp.####.exr`` of
    out/sh010_comp.####.exr), unless its stem is generic (comp, out, render...) or a single
    character: then the shot is named after the plate (``shot_name``) and so are its frames
    (``sh010.####.exr``). docs/farm.md."""
    try:
        name = os.path.basename(frames_mod.template(spec.output.path))
    except SpecError:
        name = ""
    stem = name.split("#", 1)[0].rstrip("._- ")
    if len(stem) < 2 or stem.lower() in GENERIC_OUTPUT:
        shot = shot_name(spec, used)
        return shot, f"{shot}.####.exr"
    return _unique(stem, used), re.sub(r"[^A-Za-z0-9_.#-]", "_", name)


def shot_name(spec: ShotSpec, used: set[str]) -> str:
    """A step-safe name for a shot (unique among ``used``) from its plate: the plate file's
    stem, or the nearest folder above it, skipping generic names (``sh010`` of
    sh010/plate/plate.####.exr)."""
    path = os.path.abspath(spec.plate.path)
    candidates = [re.split(r"[.#%@$]", os.path.basename(path))[0]]
    folder = os.path.dirname(path)
    for _ in range(3):
        candidates.append(os.path.basename(folder))
        folder = os.path.dirname(folder)
    return _unique(next((c for c in candidates if c.lower() not in GENERIC), "shot"), used)


def _unique(stem: str, used: set[str]) -> str:
    """``stem`` made step-safe (letters, digits, _; 40 at most), ``_2``... when used."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", stem)[:40] or "shot"
    base, n = name, 2
    while name in used:
        name, n = f"{base}_{n}", n + 1
    used.add(name)
    return name


def expand(shots: list[ShotSpec], wedge: dict[str, list[Any]]) -> list[Take]:
    """Every shot times every combination of the wedge's values, as takes ``take_001`` ...
    per shot (numbers are made final by ``bundle.reserve``)."""
    fields = list(wedge)
    combos = list(itertools.product(*(wedge[f] for f in fields))) or [()]
    used: set[str] = set()
    takes: list[Take] = []
    for spec in shots:
        shot, frames = names(spec, used)
        for i, combo in enumerate(combos, start=1):
            # unset fields stay unset: the model's recommended settings fill them at run time
            data = copy.deepcopy(spec.model_dump(mode="json", exclude_unset=True))
            values = dict(zip(fields, combo, strict=True))
            for field, value in values.items():
                _set(data, field, value)
            try:
                take_spec = from_dict(data)
            except SpecError as exc:
                raise SpecError(f"--wedge {', '.join(f'{k}={v}' for k, v in values.items())}: "
                                f"{exc}") from None
            takes.append(Take(shot, f"take_{i:03d}", take_spec, values, frames))
    return takes


def _set(data: dict[str, Any], field: str, value: Any) -> None:
    parts = field.split(".")
    node = data
    for part in parts[:-1]:
        node.setdefault(part, {})  # a section the spec left unset (an unknown one is refused)
        if not isinstance(node.get(part), dict):
            raise SpecError(f"--wedge {field}: {part!r} is not a ShotSpec section "
                            "(docs/shotspec.md lists the fields)")
        node = node[part]
    node[parts[-1]] = value
