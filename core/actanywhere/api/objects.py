"""Several matte objects typed as text in a host's field (Nuke's ``objects`` knob, Blender's
Objects field), turned into the ShotSpec's ``matte.objects`` (standard library only).

One object per line (in a one-line field, ``|`` separates objects as a new line does)::

    NAME: ITEM; ITEM; ...

ITEM is one of::

    box FRAME:X0,Y0,X1,Y1 [FRAME:X0,Y0,X1,Y1 ...]
    point FRAME:X,Y[,LABEL] [FRAME:X,Y[,LABEL] ...]   (LABEL 1: the object, 0: not it)
    text WORDS                                          (sam3: what to find, e.g. person)

e.g. ``hero: box 1001:40,20,300,500; point 1001:170,260`` or ``dog: text dog``. NAME becomes
the EXR layer ``matte.<NAME>.A``: letters, digits and _, starting with a letter. Blank lines
and lines starting with ``#`` are skipped. Every mistake is one SpecError naming the line and
its fix, so a host says it before any job is sent.
"""

from __future__ import annotations

import re

from ..errors import SpecError
from .prompts import key_frames

#: an object's name (the ShotSpec's ``spec.OBJECT_NAME``; tests hold them equal)
OBJECT_NAME = r"^[A-Za-z][A-Za-z0-9_]{0,31}$"
#: the sources prompted by a text (the ShotSpec's ``spec.TEXT_SOURCES``)
TEXT_SOURCES = ("sam3",)
#: the syntax, as the errors repeat it
SYNTAX = ("NAME: box FRAME:X0,Y0,X1,Y1; point FRAME:X,Y[,LABEL]; text WORDS "
          "(e.g. hero: box 1001:40,20,300,500)")
ITEMS = ("box", "point", "text")


def lines(text: str) -> list[tuple[int, str]]:
    """(line number from 1, line) of the objects written in ``text``: newlines and ``|``
    separate them; blank lines and ``#`` comments are left out (but counted)."""
    out = []
    for number, line in enumerate(re.split(r"\r?\n|\|", text or ""), 1):
        line = line.strip()
        if line and not line.startswith("#"):
            out.append((number, line))
    return out


def parse(text: str, source: str | None = None, field: str = "objects") -> list[dict]:
    """``matte.objects`` from ``text`` (the syntax above): ``[{"name", "keys", "text"?}]``,
    in the order written; [] when there is none. ``source``: the matte source, so a text
    given to a source that takes none (or none given to one that needs it) is said here.
    SpecError ``"{field} line N: ...; write ..."`` for the first bad line."""
    out: list[dict] = []
    seen: dict[str, int] = {}
    for number, line in lines(text):
        where = f"{field} line {number}"
        obj = _object(line, where)
        if obj["name"] in seen:
            raise SpecError(f"{where}: name {obj['name']!r} is already line "
                            f"{seen[obj['name']]}; give each object its own name")
        seen[obj["name"]] = number
        _check_source(obj, source, where)
        out.append(obj)
    return out


def _object(line: str, where: str) -> dict:
    name, sep, rest = line.partition(":")
    name = name.strip()
    if not sep or not name or re.search(r"\s", name):
        raise SpecError(f"{where}: {line!r} does not start with a name and ':'; write "
                        f"{SYNTAX}")
    if not re.match(OBJECT_NAME, name):
        raise SpecError(f"{where}: name {name!r} cannot be an EXR layer name; use letters, "
                        "digits and _ (starting with a letter, at most 32), e.g. hero")
    points: list[str] = []
    boxes: list[str] = []
    words: list[str] = []
    for item in (i.strip() for i in rest.split(";")):
        if not item:
            continue
        kind, _, values = item.partition(" ")
        kind, values = kind.strip().lower(), values.strip()
        if kind not in ITEMS:
            raise SpecError(f"{where} ({name}): {item!r} is not a box, point or text; "
                            f"write {SYNTAX}")
        if not values:
            raise SpecError(f"{where} ({name}): {kind} needs a value; write {SYNTAX}")
        if kind == "text":
            words.append(values)
        else:
            (points if kind == "point" else boxes).extend(values.split())
    if not points and not boxes and not words:
        raise SpecError(f"{where} ({name}): no box, point or text; write {SYNTAX}")
    try:
        keys = key_frames(points, boxes, names=("point", "box", "matte"))
    except SpecError as exc:
        raise SpecError(f"{where} ({name}): {exc}") from None
    obj: dict = {"name": name, "keys": keys}
    if words:
        obj["text"] = " ".join(words)
    return obj


def _check_source(obj: dict, source: str | None, where: str) -> None:
    if source is None:
        return
    name = obj["name"]
    if source in TEXT_SOURCES and "text" not in obj:
        raise SpecError(f"{where} ({name}): matte {source} finds objects by text; add "
                        f"'; text WORDS', e.g. {name}: text person")
    if source not in TEXT_SOURCES and "text" in obj:
        raise SpecError(f"{where} ({name}): matte {source} takes no text; give boxes or "
                        f"points (or pick matte {' or '.join(TEXT_SOURCES)})")
    if source not in TEXT_SOURCES and not obj["keys"]:
        raise SpecError(f"{where} ({name}): matte {source} needs a box or point on a key "
                        "frame, e.g. box 1001:40,20,300,500")


def layers(objects: list[dict]) -> list[str]:
    """The EXR layers a take of these objects carries: ``matte.<name>`` each."""
    return [f"matte.{o['name']}" for o in objects]


#: ``output.layers`` of a take with objects: the usual ones and ``objects``
OUTPUT_LAYERS = ["rgba", "bg", "matte", "objects"]
