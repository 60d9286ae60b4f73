"""The objects field both hosts share (``actanywhere.api.objects``): its syntax, what it
gives (``matte.objects`` the worker's schema takes) and its one-line errors. The hosts
themselves are driven in tests/test_nuke.py and tests/test_blender.py."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from actanywhere import spec
from actanywhere.api import objects
from actanywhere.errors import SpecError

SOURCE = Path(objects.__file__)


def _refused(text: str, source: str | None = "grabcut") -> str:
    with pytest.raises(SpecError) as err:
        objects.parse(text, source)
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def test_the_module_is_stdlib_python_310_and_matches_the_schema():
    tree = ast.parse(SOURCE.read_text(), feature_version=(3, 10))
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
                for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree)
                 if isinstance(n, ast.ImportFrom) and n.module and not n.level}
    assert imported <= {"__future__", "re"}, imported
    assert objects.OBJECT_NAME == spec.OBJECT_NAME
    assert objects.TEXT_SOURCES == spec.TEXT_SOURCES


def test_one_object_per_line_with_boxes_points_and_text():
    text = ("# the plate's two actors\n"
            "hero: box 1001:40,20,300,500; point 1001:170,260 1001:90,30,0\n"
            "\n"
            "  dog :  point 1010:600,400 ; box 1001:500,300,700,480 1020:510,300,710,480 ;\n")
    assert objects.parse(text) == [
        {"name": "hero", "keys": [{"frame": 1001, "points": [[170.0, 260.0, 1],
                                                             [90.0, 30.0, 0]],
                                   "boxes": [[40.0, 20.0, 300.0, 500.0]]}]},
        {"name": "dog", "keys": [
            {"frame": 1001, "boxes": [[500.0, 300.0, 700.0, 480.0]]},
            {"frame": 1010, "points": [[600.0, 400.0, 1]]},
            {"frame": 1020, "boxes": [[510.0, 300.0, 710.0, 480.0]]}]}]
    # a one-line field (Blender's): | separates objects as a new line does
    assert objects.parse("a: box 1:1,2,3,4 | b: point 1:5,6") == objects.parse(
        "a: box 1:1,2,3,4\nb: point 1:5,6")
    # the same kind twice, items in any case
    assert objects.parse("a: POINT 1:1,2; point 1:3,4")[0]["keys"] == [
        {"frame": 1, "points": [[1.0, 2.0, 1], [3.0, 4.0, 1]]}]
    assert objects.parse("") == [] and objects.parse(" \n# none yet\n|") == []


def test_text_for_sam3_and_what_the_schema_takes():
    found = objects.parse("hero: text man in a red coat\ndog: text dog; box 1001:1,2,30,40",
                          "sam3")
    assert found == [{"name": "hero", "keys": [], "text": "man in a red coat"},
                     {"name": "dog", "keys": [{"frame": 1001, "boxes": [[1.0, 2.0, 30.0,
                                                                         40.0]]}],
                      "text": "dog"}]
    assert [o.text for o in spec.MatteSpec.model_validate(
        {"source": "sam3", "objects": found}).objects] == ["man in a red coat", "dog"]
    boxes = objects.parse("left: box 1001:6,26,80,95\nright: box 1001:80,26,154,95",
                          "grabcut")
    matte = spec.MatteSpec.model_validate({"source": "grabcut", "objects": boxes})
    assert [o.name for o in matte.objects] == ["left", "right"]
    assert objects.layers(boxes) == ["matte.left", "matte.right"]
    assert objects.OUTPUT_LAYERS == ["rgba", "bg", "matte", "objects"]


@pytest.mark.parametrize(("text", "source", "want"), [
    ("box 1001:1,2,3,4", "grabcut", "objects line 1: 'box 1001:1,2,3,4' does not start with "
     "a name and ':'; write "
     "NAME: box FRAME:X0,Y0,X1,Y1; point FRAME:X,Y[,LABEL]; text WORDS (e.g. hero: box "
     "1001:40,20,300,500)"),
    ("hero box 1001:1,2,3,4", "grabcut", "objects line 1: 'hero box 1001:1,2,3,4' does not "
     "start with a name and ':'; write NAME: "),
    ("hero", "grabcut", "objects line 1: 'hero' does not start with a name and ':'"),
    ("\n\n2d: box 1:1,2,3,4", "grabcut", "objects line 3: name '2d' cannot be an EXR layer "
     "name; use letters, digits and _"),
    ("left.arm: box 1:1,2,3,4", "grabcut", "objects line 1: name 'left.arm' cannot be an EXR "
     "layer name"),
    ("a" * 33 + ": box 1:1,2,3,4", "grabcut", f"objects line 1: name {'a' * 33!r} cannot be "
     "an EXR layer name"),
    ("hero: boxes 1:1,2,3,4", "grabcut", "objects line 1 (hero): 'boxes 1:1,2,3,4' is not a "
     "box, point or text; write NAME: "),
    ("hero: box 1:1,2,3", "grabcut", "objects line 1 (hero): box '1:1,2,3': expected 4 "
     "comma-separated numbers after FRAME:"),
    ("hero: point 1:1", "grabcut", "objects line 1 (hero): point '1:1': expected 2 or 3 "
     "comma-separated numbers"),
    ("hero: point 1,2", "grabcut", "objects line 1 (hero): point '1,2': write FRAME:VALUES, "
     "e.g. point 1001:812,440"),
    ("hero: point x:1,2", "grabcut", "objects line 1 (hero): point 'x:1,2': write "
     "FRAME:VALUES"),
    ("hero: box", "grabcut", "objects line 1 (hero): box needs a value; write NAME: "),
    ("hero:", "grabcut", "objects line 1 (hero): no box, point or text; write NAME: "),
    ("hero: ;;", "grabcut", "objects line 1 (hero): no box, point or text"),
    ("a: box 1:1,2,3,4\nb: box 1:1,2,3,4\na: point 1:1,1", "grabcut", "objects line 3: name "
     "'a' is already line 1; give each object its own name"),
    ("hero: text person", "grabcut", "objects line 1 (hero): matte grabcut takes no text; give "
     "boxes or points (or pick matte sam3)"),
    ("hero: box 1:1,2,3,4", "sam3", "objects line 1 (hero): matte sam3 finds objects by text; "
     "add '; text WORDS', e.g. hero: text person"),
])
def test_a_bad_line_is_one_line_naming_it_and_the_fix(text, source, want):
    assert _refused(text, source).startswith(want)


def test_the_field_name_is_the_hosts():
    with pytest.raises(SpecError, match=r"^Objects line 2 \(dog\): "):
        objects.parse("hero: box 1:1,2,3,4 | dog: box 1:2", "sam2", field="Objects")
    # no source: only the syntax is checked
    assert objects.parse("hero: text x")[0] == {"name": "hero", "keys": [], "text": "x"}
