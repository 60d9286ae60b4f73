import json
from pathlib import Path

import pytest

from actanywhere import spec, spec_files
from actanywhere.errors import SpecError

MINIMAL = {"plate": {"path": "p.####.exr"}, "background": {"path": "bg.exr"},
           "output": {"path": "o.####.exr"}}


def test_minimal_spec_gets_defaults():
    s = spec.from_dict(MINIMAL)
    assert s.engine.name == "composite" and s.matte.source == "alpha"
    assert s.output.layers == ["rgba", "bg", "matte"] and s.output.compression == "zip"
    assert s.output.existing == "error" and s.plate.missing == "error"


@pytest.mark.parametrize("patch,field", [
    ({"plate": {}}, "plate.path"),
    ({"output": {"path": "o.####.exr", "compression": "lzw"}}, "output.compression"),
    ({"diffusion": {"resolution": 300}}, "diffusion.resolution"),
    ({"composite": {"harmonize": 2}}, "composite.harmonize"),
    ({"plate": {"path": "p.####.exr", "frames": "1-x"}}, "plate.frames"),
    ({"output": {"path": "o.####.exr", "compresion": "zip"}}, "output.compresion"),
    ({"engine": {"name": "magic"}}, "engine.name"),
    ({"version": 9}, "version"),
    ({"output": {"path": "o\x00.####.exr"}}, "output.path"),  # a NUL: refused, not a crash
    ({"matte": {"source": "sam", "keys": [{"frame": 1, "matte": "k\x00.exr"}]}},
     "matte.keys.0.matte"),
    ({"matte": {"memory_mb": -1}}, "matte.memory_mb"),
])
def test_invalid_fields_are_named(patch, field):
    with pytest.raises(SpecError) as err:
        spec.from_dict({**MINIMAL, **patch})
    msg = str(err.value)
    assert msg.startswith("invalid ShotSpec: ") and f"{field}:" in msg and "\n" not in msg


def test_json_and_toml_files_resolve_relative_paths(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps(MINIMAL))
    (tmp_path / "a.toml").write_text(
        '[plate]\npath = "p.####.exr"\n[background]\npath = "/abs/bg.exr"\n'
        '[output]\npath = "o.####.exr"\ncompression = "piz"\n')
    j = spec.from_dict(spec_files.load(str(tmp_path / "a.json")))
    t = spec.from_dict(spec_files.load(str(tmp_path / "a.toml")))
    assert j.plate.path == str(tmp_path / "p.####.exr")
    assert t.background.path == "/abs/bg.exr" and t.output.compression == "piz"


def test_bad_files(tmp_path):
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(SpecError, match="bad.json: not valid JSON"):
        spec_files.load(str(tmp_path / "bad.json"))
    with pytest.raises(SpecError, match="cannot read"):
        spec_files.load(str(tmp_path / "none.json"))


def test_merge_overrides_skip_none():
    merged = spec_files.merge(MINIMAL, {"plate": {"frames": "1-3", "layer": None}, "threads": None})
    assert merged["plate"] == {"path": "p.####.exr", "frames": "1-3"}
    s = spec.from_dict(merged)
    assert spec.from_dict(json.loads(spec_files.dump_json(s))) == s


def test_reference_doc_is_current():
    doc = (Path(__file__).resolve().parents[1] / "docs" / "shotspec.md").read_text()
    assert spec_files.reference_markdown() in doc, "regenerate the table in docs/shotspec.md"


def test_migrations_upgrade_step_by_step_and_newer_specs_are_refused():
    # a two-step chain (versions 1 -> 2 -> 3): each step sees the previous one's output
    steps = {1: lambda d: {"renamed": d.pop("old"), **d},
             2: lambda d: {**d, "seen": d["renamed"] * 2}}
    data = {"version": 1, "old": 21}
    out = spec.migrate(data, steps, target=3)
    assert out == {"version": 3, "renamed": 21, "seen": 42}
    assert data == {"version": 1, "old": 21}  # the caller's dict is left as it was
    assert spec.migrate({"version": 1, "old": 1}, {}, target=3) == {"version": 1, "old": 1}
    assert spec.migrate(data, steps) == data  # already the version this build reads
    assert spec.from_dict({k: v for k, v in MINIMAL.items() if k != "version"}).version == \
        spec.SPEC_VERSION
    with pytest.raises(SpecError, match=r"version: written by a newer ActAnywhere \(version 9\)"):
        spec.from_dict({**MINIMAL, "version": 9})


def test_absolute_paths_is_the_one_list_of_path_fields(tmp_path):
    from actanywhere.api.shotspec import absolute_paths

    data = {"plate": {"path": "p.####.exr"}, "background": {"path": "/abs/bg.exr"},
            "output": {"path": "out/c.####.exr"}, "engine": {"model": "m"},
            "matte": {"path": "m.####.exr", "keys": [{"frame": 1, "matte": "k.exr"}],
                      "sam": {"checkpoint": "sam.pth"}}, "color": {"config": "cfg.ocio"},
            "motion": {"source": "file", "path": "sh010/motion.json"}}
    absolute_paths(data, str(tmp_path))
    assert data["motion"]["path"] == str(tmp_path / "sh010" / "motion.json")
    assert data["color"]["config"] == str(tmp_path / "cfg.ocio")
    assert absolute_paths({"color": {"config": "ocio://default"}}, "/x") == \
        {"color": {"config": "ocio://default"}}  # a built-in config's URI is no path
    assert data["plate"]["path"] == str(tmp_path / "p.####.exr")
    assert data["background"]["path"] == "/abs/bg.exr"
    assert data["output"]["path"] == str(tmp_path / "out" / "c.####.exr")
    assert data["engine"]["model"] == str(tmp_path / "m")
    assert data["matte"]["keys"][0]["matte"] == str(tmp_path / "k.exr")
    assert data["matte"]["sam"]["checkpoint"] == str(tmp_path / "sam.pth")
