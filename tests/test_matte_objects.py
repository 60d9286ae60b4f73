"""matte.objects: several objects, each with its own prompts, tracked (in one session for
sam3, and for sam2 objects keyed on the same frames; one track each for grabcut), written as
their own layers ``matte.<name>.A`` beside the subject matte, their union; and the settings'
refusals, one line each. Real EXR plates, read back with OpenImageIO; grabcut needs no model,
sam2 and sam3 use the tiny random models of tests/sam2_tiny.py and tests/sam3_tiny.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import read_exr, write_exr
from matte_shots import walking_shot, write_sequence

from actanywhere.spec import MatteSpec, ShotSpec, ValidationError, format_errors

W, H, N = 160, 96, 5
FIRST = 1001
LEFT = [6.0, 26.0, 80.0, 95.0]  # around the subject walking right
RIGHT = [80.0, 26.0, 154.0, 95.0]  # around its mirror image, walking left
LOOSE = {"refine": {"temporal": 0}, "allow_empty": True}


@pytest.fixture(scope="module")
def shot(tmp_path_factory):
    """Two subjects: the walking disc, and another (its own texture) mirrored, walking left."""
    frames, _ = walking_shot(N, width=W, height=H, speed=3)
    others, mattes = walking_shot(N, width=W, height=H, speed=3, seed=1)
    flip = [(o[:, ::-1], m[:, ::-1, None]) for o, m in zip(others, mattes, strict=True)]
    both = [f * (1 - m) + o * m for f, (o, m) in zip(frames, flip, strict=True)]
    return write_sequence(str(tmp_path_factory.mktemp("plate")), both, first=FIRST)


def cli(*args):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "actanywhere", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=600)


def boxed(name, box, frame=FIRST):
    return {"name": name, "keys": [{"frame": frame, "boxes": [box]}]}


def layers(path):
    """{channel: pixels} of an EXR, read with OpenImageIO."""
    px, s = read_exr(path)
    return {c: px[..., i] for i, c in enumerate(s.channelnames)}


def assert_union(ch, names, key="A"):
    objs = [ch[f"matte.{n}.A"] for n in names]
    assert all(o.shape == (H, W) for o in objs)
    np.testing.assert_allclose(ch[key], np.maximum.reduce(objs), atol=1e-3)


# ------------------------------------------------------------------------------ settings
def refusal(matte: dict) -> str:
    with pytest.raises(ValidationError) as err:
        MatteSpec.model_validate(matte)
    msg = format_errors(err.value)
    assert "\n" not in msg
    return msg


def test_object_settings_are_refused_in_one_line_naming_the_field():
    two = [boxed("left", LEFT), boxed("left", RIGHT)]
    assert "name 'left' given more than once" in refusal({"source": "grabcut", "objects": two})
    msg = refusal({"source": "grabcut", "objects": [boxed("left.arm", LEFT)]})
    assert "matte.objects.0.name" in msg or "objects.0.name" in msg
    assert "'left.arm' cannot be an EXR layer name" in msg
    msg = refusal({"source": "grabcut", "objects": [boxed("a", LEFT)],
                   "keys": [{"frame": FIRST, "boxes": [RIGHT]}]})
    assert "give the prompts in the objects" in msg
    msg = refusal({"source": "alpha", "objects": [boxed("a", LEFT)]})
    assert "source alpha is not tracked from prompts" in msg
    msg = refusal({"source": "sam2", "objects": [{"name": "a"}]})
    assert "matte.objects a: needs at least one key frame" in msg
    msg = refusal({"source": "sam2", "objects": [{**boxed("a", LEFT), "text": "person"}]})
    assert "matte.objects a: source sam2 takes no text prompt; use source sam3" in msg
    assert "matte.objects b: source sam3 needs its text" in refusal(
        {"source": "sam3", "objects": [{"name": "b"}]})
    msg = refusal({"source": "grabcut", "objects": [
        {"name": "a", "keys": [{"frame": 1, "boxes": [LEFT]}, {"frame": 1, "boxes": [RIGHT]}]}]})
    assert "object a: key frame(s) [1] given more than once" in msg

    with pytest.raises(ValidationError) as err:
        ShotSpec.model_validate({"plate": {"path": "p.####.exr"}, "background": {"path": "b"},
                                 "output": {"path": "o.####.exr", "layers": ["objects"]}})
    assert "output.layers: objects writes matte.<name>.A for each of matte.objects, and there " \
        "are none" in format_errors(err.value)


def test_segment_cli_refuses_bad_objects_in_one_line(shot, tmp_path):
    spec = tmp_path / "s.json"
    spec.write_text(json.dumps({"matte": {"source": "grabcut",
                                          "objects": [boxed("a", LEFT), boxed("a", RIGHT)]}}))
    r = cli("segment", "--spec", spec, "--plate", shot, "-o", tmp_path / "m" / "m.####.exr")
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode != 0 and len(lines) == 1, r.stderr
    assert "matte.objects: name 'a' given more than once" in lines[0]
    spec.write_text(json.dumps({"matte": {"source": "grabcut",
                                          "objects": [boxed("a", LEFT, frame=5)]}}))
    r = cli("segment", "--spec", spec, "--plate", shot, "-o", tmp_path / "m" / "m.####.exr")
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode != 0 and len(lines) == 1, r.stderr
    assert "matte.objects a: key frame 5 is outside the plate frames" in lines[0]


# ------------------------------------------------------------------------------ grabcut
def test_two_grabcut_objects_are_two_layers_and_the_matte_is_their_union(shot, tmp_path):
    spec = tmp_path / "s.json"
    spec.write_text(json.dumps({"matte": {"source": "grabcut", **LOOSE,
                                          "objects": [boxed("left", LEFT),
                                                      boxed("right", RIGHT)]}}))
    r = cli("segment", "--spec", spec, "--plate", shot, "-o", tmp_path / "m" / "m.####.exr",
            "--preview", "", "--progress", "none")
    assert r.returncode == 0, r.stderr
    for f in (FIRST, FIRST + N - 1):
        ch = layers(tmp_path / "m" / f"m.{f}.exr")
        assert set(ch) == {"A", "matte.left.A", "matte.right.A"}
        assert_union(ch, ["left", "right"])
        left, right = ch["matte.left.A"] > 0.5, ch["matte.right.A"] > 0.5
        assert left.any() and right.any() and not np.array_equal(left, right)
        assert (left[:, :80].mean() > left[:, 80:].mean()) and \
            (right[:, 100:].mean() > right[:, :100].mean())  # each stays in its box's part


def test_generate_writes_the_object_layers(shot, tmp_path):
    spec = tmp_path / "s.json"
    spec.write_text(json.dumps({"matte": {"source": "grabcut", **LOOSE,
                                          "objects": [boxed("left", LEFT),
                                                      boxed("right", RIGHT)]}}))
    bg = tmp_path / "bg.exr"
    write_exr(bg, np.full((H, W, 3), 0.3, np.float32), ("R", "G", "B"))
    r = cli("generate", "--spec", spec, "--plate", shot, "--background", bg,
            "--layers", "rgba,matte,objects", "-o", tmp_path / "g" / "c.####.exr",
            "--progress", "none")
    assert r.returncode == 0, r.stderr
    ch = layers(tmp_path / "g" / f"c.{FIRST + 2}.exr")
    assert {"R", "G", "B", "A", "matte.A", "matte.left.A", "matte.right.A"} <= set(ch)
    assert_union(ch, ["left", "right"], key="matte.A")


# ------------------------------------------------------------------------------ models
@pytest.mark.parametrize("right_key", [FIRST, FIRST + 3], ids=["one-session", "two-sessions"])
def test_two_sam2_objects_as_layers_of_a_plate_copy(shot, tmp_path, right_key):
    pytest.importorskip("transformers")
    import sam2_tiny

    tiny = sam2_tiny.save(str(tmp_path / "sam2"))
    spec = tmp_path / "s.json"
    spec.write_text(json.dumps({"matte": {"source": "sam2", **LOOSE,
                                          "objects": [boxed("left", LEFT),
                                                      boxed("right", RIGHT, right_key)]}}))
    r = cli("segment", "--spec", spec, "--plate", shot, "--sam-checkpoint", tiny,
            "--layer", "subject", "-o", tmp_path / "m" / "m.####.exr", "--preview", "",
            "--progress", "none")
    assert r.returncode == 0, r.stderr
    ch = layers(tmp_path / "m" / f"m.{FIRST + 1}.exr")
    assert {"R", "G", "B", "subject.A", "matte.left.A", "matte.right.A"} <= set(ch)
    assert_union(ch, ["left", "right"], key="subject.A")


def test_two_sam3_objects_from_one_session(shot, tmp_path):
    pytest.importorskip("transformers")
    import sam3_tiny

    tiny = sam3_tiny.save(str(tmp_path / "sam3"))
    spec = tmp_path / "s.json"
    spec.write_text(json.dumps({"matte": {"source": "sam3", **LOOSE, "objects": [
        {"name": "people", "text": "person"},
        {"name": "one_car", "text": "car",
         "keys": [{"frame": FIRST + 1, "boxes": [[0, 0, W, H]]}]}]}}))
    r = cli("segment", "--spec", spec, "--plate", shot, "--sam-checkpoint", tiny,
            "-o", tmp_path / "m" / "m.####.exr", "--preview", "", "--progress", "json")
    assert r.returncode == 0, r.stderr
    events = [json.loads(ln) for ln in r.stdout.splitlines() if ln.startswith("{")]
    # one session for both texts: one matte step per frame, not one per frame and object
    assert sum(e["stage"] == "matte" and "frame" in e for e in events) == N
    for f in (FIRST, FIRST + N - 1):
        ch = layers(tmp_path / "m" / f"m.{f}.exr")
        assert set(ch) == {"A", "matte.people.A", "matte.one_car.A"}
        assert_union(ch, ["people", "one_car"])
