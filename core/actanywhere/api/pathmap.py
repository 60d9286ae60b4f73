"""Path maps between a client's mounts and a remote worker's: pure functions, standard library
only (Python 3.10+), so hosts map paths before a spec leaves them.

A map is a pair of prefixes, the client's and the worker's (``S:\\show`` -> ``/mnt/show``,
``/Volumes/show`` -> ``/mnt/show``). A path is under a prefix when it equals it or continues
it with a separator: ``/mnt/show`` never matches ``/mnt/show2``. A Windows-style prefix (a
drive letter or a ``\\\\server\\share``) takes ``\\`` and ``/`` alike and matches without regard
to case, as Windows does; a POSIX prefix matches exactly. The longest matching prefix wins;
the rest of the path is joined with the target side's separator.

``spec_to_worker`` maps every path of a ShotSpec dict (``PATH_FIELDS``, the ShotSpec's fields
that hold paths) and names a path under no map; ``job_to_client`` and ``take_to_client`` map
what the worker returns the other way round, leaving a path under no map as it is.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_DRIVE = re.compile(r"^[A-Za-z]:(?:[\\/]|$)")
_SEPARATORS = re.compile(r"[\\/]+")

#: the ShotSpec fields that hold paths, as ``section.field`` (``matte.keys.*.matte``: each
#: key frame's painted matte). Read by the worker's access check too.
PATH_FIELDS = ("plate.path", "matte.path", "matte.keys.*.matte", "matte.sam.checkpoint",
               "matte.sam.cache_dir", "matte.sam.resume_from", "background.path",
               "motion.path", "motion.weights", "engine.model", "color.config", "output.path")
#: of a take (``GET /v1/takes``), the fields that hold paths
TAKE_FIELDS = ("output", "record", "proxy", "plate_proxy", "contact_sheet")


class PathMapError(ValueError):
    """A path that maps nowhere (``field``: the spec field), or a map that cannot be read;
    the message is one line."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def windows_style(path: str) -> bool:
    """Whether ``path`` is a Windows path: a drive letter or a UNC ``\\\\server\\share``."""
    return bool(_DRIVE.match(path)) or path.startswith(("\\\\", "//")) and len(path) > 2 \
        and path[2] not in "\\/"


def _parts(path: str) -> tuple[str, list[str]]:
    """``path`` as its anchor (``S:``, ``//server``, or ``/``) and its components."""
    if windows_style(path):
        if _DRIVE.match(path):
            anchor, rest = path[:2], path[2:]
        else:
            server, _, rest = path[2:].replace("\\", "/").partition("/")
            anchor = "//" + server
        return anchor, [p for p in _SEPARATORS.split(rest) if p]
    return ("/" if path.startswith("/") else ""), [p for p in path.split("/") if p]


def _absolute(path: str) -> bool:
    return windows_style(path) or path.startswith("/")


@dataclass(frozen=True)
class Rule:
    """One map: the client's prefix and the worker's."""

    client: str
    worker: str

    def __str__(self) -> str:
        return f"{self.client} -> {self.worker}"


def _match(path: str, prefix: str) -> list[str] | None:
    """The components of ``path`` after ``prefix``, or None when it is not under it."""
    fold = windows_style(prefix)
    if fold != windows_style(path):
        return None
    anchor, parts = _parts(path)
    want_anchor, want = _parts(prefix)
    if fold:
        anchor, want_anchor = anchor.lower(), want_anchor.lower()
        head = [p.lower() for p in parts[:len(want)]]
        want = [p.lower() for p in want]
    else:
        head = parts[:len(want)]
    if anchor != want_anchor or head != want:
        return None
    return parts[len(want):]


def _join(prefix: str, rest: list[str]) -> str:
    """``rest`` under ``prefix``, with the prefix's own separator."""
    sep = "\\" if windows_style(prefix) else "/"
    base = prefix.rstrip("\\/") or prefix[:1]
    if not rest:
        return base + (sep if _DRIVE.match(base) and len(base) == 2 else "")
    if base.endswith(("\\", "/")):  # a root: "/" or "S:\"
        return base + sep.join(rest)
    return base + sep + sep.join(rest)


def _map(path: str, pairs: list[tuple[str, str, Rule]]) -> tuple[str, Rule] | None:
    best: tuple[int, str, Rule] | None = None
    for source, target, rule in pairs:
        rest = _match(path, source)
        if rest is None:
            continue
        depth = len(_parts(source)[1])
        if best is None or depth > best[0]:
            best = (depth, _join(target, rest), rule)
    return (best[1], best[2]) if best is not None else None


def to_worker(path: str, rules: Sequence[Rule]) -> tuple[str, Rule] | None:
    """``path`` as the worker sees it and the map used, or None when no map's client prefix
    holds it."""
    return _map(path, [(r.client, r.worker, r) for r in rules])


def to_client(path: str, rules: Sequence[Rule], *, windows: bool = False
              ) -> tuple[str, Rule] | None:
    """``path`` (the worker's) as the client sees it, or None. Where several maps share a
    worker prefix, one whose client side is this platform's kind (``windows``) is taken."""
    mine = [r for r in rules if windows_style(r.client) == windows]
    return _map(path, [(r.worker, r.client, r) for r in mine]) or \
        _map(path, [(r.worker, r.client, r) for r in rules])


def parse(value: Any, setting: str) -> tuple[Rule, ...]:
    """Maps from a connection file's ``path_maps`` (an object ``{client: worker}`` or a list of
    ``[client, worker]`` pairs) or from ``CLIENT=WORKER;CLIENT=WORKER`` text. PathMapError
    naming ``setting`` when a map is not a pair of absolute prefixes."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        pairs: list[Any] = [p.split("=", 1) for p in value.split(";") if p.strip()]
    elif isinstance(value, Mapping):
        pairs = list(value.items())
    elif isinstance(value, list):
        pairs = value
    else:
        raise PathMapError(f"{setting}: path maps are an object {{\"client prefix\": \"worker "
                           "prefix\"}}, not " + type(value).__name__)
    rules = []
    for pair in pairs:
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2
                and all(isinstance(p, str) for p in pair)):
            raise PathMapError(f"{setting}: {pair!r} is not a map; give CLIENT=WORKER (text) "
                               "or [\"client prefix\", \"worker prefix\"]")
        client, worker = (p.strip() for p in pair)
        for side, prefix in (("client", client), ("worker", worker)):
            if not _absolute(prefix):
                raise PathMapError(f"{setting}: the {side} prefix {prefix!r} of {client} -> "
                                   f"{worker} is not an absolute path; give a drive, a share "
                                   "or a folder from /")
        rules.append(Rule(client, worker))
    return tuple(rules)


# ------------------------------------------------------------------------- spec and answers
def spec_paths(spec: Mapping[str, Any]) -> Iterator[tuple[str, dict, Any]]:
    """``(field, holder, key)`` for each path set in a ShotSpec dict (a text, not a URL like
    ``ocio://default``), in ``PATH_FIELDS`` order; ``holder[key]`` is the path."""
    for field in PATH_FIELDS:
        yield from _walk(spec, field.split("."), "")


def _walk(node: Any, steps: list[str], where: str) -> Iterator[tuple[str, dict, Any]]:
    if not steps:
        return
    head, rest = steps[0], steps[1:]
    if head == "*":
        for i, item in enumerate(node if isinstance(node, list) else []):
            yield from _walk(item, rest, f"{where}.{i}")
        return
    if not isinstance(node, Mapping):
        return
    here = f"{where}.{head}" if where else head
    if rest:
        yield from _walk(node.get(head), rest, here)
        return
    value = node.get(head)
    if isinstance(value, str) and value and "://" not in value:
        yield here, node, head  # type: ignore[misc]


def spec_to_worker(spec: Mapping[str, Any], rules: Sequence[Rule], *, setting: str = "path_maps",
                   keep: Collection[str] = ()
                   ) -> tuple[dict[str, Any], dict[str, tuple[str, Rule]]]:
    """A copy of ``spec`` with every path mapped to the worker's, and for each mapped field
    the client's path and the map used; the fields in ``keep`` (paths already the worker's:
    uploaded copies) are left as they are. No ``rules``: the spec as it is. PathMapError
    naming the field and ``setting`` for a path under no map."""
    out = copy.deepcopy(dict(spec))
    mapped: dict[str, tuple[str, Rule]] = {}
    if not rules:
        return out, mapped
    for field, holder, key in list(spec_paths(out)):
        if field in keep:
            continue
        found = to_worker(holder[key], rules)
        if found is None:
            maps = ", ".join(map(str, rules))
            raise PathMapError(f"{field}: {holder[key]} is under none of the path maps ({maps});"
                               f" add a map for its share to {setting}, or use a path on a "
                               "mapped share", field)
        mapped[field] = (holder[key], found[1])
        holder[key] = found[0]
    return out, mapped


def _back(path: Any, rules: Sequence[Rule], windows: bool) -> Any:
    if not isinstance(path, str) or not path:
        return path
    found = to_client(path, rules, windows=windows)
    return found[0] if found is not None else path


def job_to_client(job: dict[str, Any], rules: Sequence[Rule], *, windows: bool = False
                  ) -> dict[str, Any]:
    """A worker's job record with its spec's paths and its outputs as the client sees them
    (in place, and returned); a path under no map is left as it is."""
    if not rules:
        return job
    if isinstance(job.get("spec"), dict):
        for _, holder, key in list(spec_paths(job["spec"])):
            holder[key] = _back(holder[key], rules, windows)
    if isinstance(job.get("outputs"), list):
        job["outputs"] = [_back(p, rules, windows) for p in job["outputs"]]
    return job


def take_to_client(take: dict[str, Any], rules: Sequence[Rule], *, windows: bool = False
                   ) -> dict[str, Any]:
    """A worker's take (``GET /v1/takes``) with its files as the client sees them."""
    for key in TAKE_FIELDS if rules else ():
        if key in take:
            take[key] = _back(take[key], rules, windows)
    return take
