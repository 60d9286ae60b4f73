"""Nothing lost: no job, join, export or delete writes over, moves or removes a file it did
not create, and outputs over inputs are refused before the first pixel (issue 30, 1-3)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import make_shot, write_exr

from actanywhere import spec
from actanywhere.api import takes as takes_mod
from actanywhere.errors import OutputError
from actanywhere.farm import join
from actanywhere.shot import job

BIN = os.path.dirname(sys.executable)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "actanywhere", *map(str, args)],
                          capture_output=True, text=True,
                          env=dict(os.environ, HF_HUB_OFFLINE="1"))


def _digests(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (relative path -> sha256)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _data(plate, bg, out, **extra):
    return {"plate": {"path": str(plate)}, "background": {"path": str(bg)},
            "output": {"path": str(out), "proxy_width": 64},
            "composite": {"harmonize": 0.0, "shadow": 0.0}, **extra}


@pytest.fixture
def split_take(tmp_path):
    """A shot (frames 1-10) whose two parts (1-6, 5-10) are on disk, and the take's spec."""
    plate, bg = make_shot(tmp_path / "sh010", frames=range(1, 11), size=(64, 36))
    parts = join.plan(list(range(1, 11)), 6, 2)
    for p in parts:
        d = _data(plate, bg, join.part_pattern(str(tmp_path / "parts"), p, "sh010"))
        d["plate"]["frames"] = f"{p[0]}-{p[-1]}"
        d["output"]["proxy"] = False
        job.run(spec.from_dict(d))
    spec_path = _write(tmp_path / "take_spec.json",
                       _data(plate, bg, tmp_path / "take_001" / "sh010.####.exr"))
    return tmp_path, plate, parts, spec_path


def _join(root, parts, spec_path, output):
    args = ["farm", "join", "--spec", spec_path, "--parts-dir", root / "parts",
            "--stem", "sh010", "--output", output, "--progress", "none"]
    for p in parts:
        args += ["--part", f"{p[0]}-{p[-1]}"]
    return _cli(*args)


def test_farm_join_refuses_an_output_over_the_plate(split_take):
    root, plate, parts, spec_path = split_take
    before = _digests(root / "sh010")
    r = _join(root, parts, spec_path, plate)
    assert r.returncode == 4, r.stderr
    assert "would overwrite an input" in r.stderr and "plate.0001.exr" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert _digests(root / "sh010") == before  # no plate frame, proxy or record written


def test_farm_join_refuses_an_output_over_a_part_and_the_background(split_take):
    root, _, parts, spec_path = split_take
    before = _digests(root / "parts")
    part = join.part_pattern(str(root / "parts"), parts[1], "sh010")
    r = _join(root, parts, spec_path, part)
    assert r.returncode == 4 and "would overwrite an input" in r.stderr, r.stderr
    assert _digests(root / "parts") == before
    # the background where the take's record goes: refused too
    data = json.loads(spec_path.read_text())
    out = root / "joined" / "sh010.####.exr"
    bg = root / "joined" / "take.json"
    bg.parent.mkdir()
    bg.write_bytes((root / "sh010" / "bg.exr").read_bytes())
    data["background"]["path"] = str(bg)
    spec_path.write_text(json.dumps(data))
    r = _join(root, parts, spec_path, out)
    assert r.returncode == 4 and "take.json: a proxy or take record would overwrite an " \
        "input" in r.stderr, r.stderr
    assert sorted(os.listdir(root / "joined")) == ["take.json"]


def test_farm_join_writes_the_take_when_nothing_overlaps(split_take):
    root, _, parts, spec_path = split_take
    r = _join(root, parts, spec_path, root / "take_001" / "sh010.####.exr")
    assert r.returncode == 0, r.stderr
    assert len([n for n in os.listdir(root / "take_001") if n.endswith(".exr")]) == 10


def test_deleting_a_take_beside_the_plate_moves_only_its_own_files(tmp_path):
    shot = tmp_path / "sh010"
    plate, bg = make_shot(shot, frames=range(1, 4), size=(64, 36))
    (shot / "plate" / "notes.txt").write_text("the plate's notes")
    inputs = _digests(shot)
    out = shot / "plate" / "comp.####.exr"  # the take's frames beside the plate's
    job.run(spec.from_dict(_data(plate, bg, out)))
    take = takes_mod.for_output(str(out))
    assert take is not None and len(take.files()) == 3
    target = takes_mod.trash(take, str(shot))
    kept = {k: v for k, v in _digests(shot).items() if not k.startswith(".trash")}
    assert kept == inputs  # plate, background, notes: all where they were, unchanged
    moved = sorted(str(p.relative_to(target)) for p in Path(target).rglob("*") if p.is_file())
    assert moved == ["comp.0001.exr", "comp.0002.exr", "comp.0003.exr",
                     "proxy/comp.0001.jpg", "proxy/comp.0002.jpg", "proxy/comp.0003.jpg",
                     "proxy/comp.contact.jpg", "proxy/comp.plate.0001.jpg",
                     "proxy/comp.plate.0002.jpg", "proxy/comp.plate.0003.jpg", "take.json"]
    assert not (shot / "plate" / "proxy").exists()  # emptied by the move, so removed


def test_deleting_a_take_folder_keeps_what_else_it_holds(tmp_path):
    plate, bg = make_shot(tmp_path / "src", frames=range(1, 3), size=(64, 36))
    root = tmp_path / "shots"
    job.run(spec.from_dict(_data(plate, bg, root / "take_001" / "c.####.exr")))
    job.run(spec.from_dict(_data(plate, bg, root / "take_002" / "c.####.exr")))
    (root / "take_001" / "reference.exr").write_bytes((tmp_path / "src" / "bg.exr").read_bytes())
    for name in ("take_001", "take_002"):
        takes_mod.trash(takes_mod.Takes(str(root)).get(name), str(root))
    assert sorted(os.listdir(root / "take_001")) == ["reference.exr"]
    assert not (root / "take_002").exists()  # only the take's own files: the folder goes
    assert len(os.listdir(root / ".trash")) == 2


def test_a_painted_key_matte_is_never_overwritten(tmp_path):
    plate, bg = make_shot(tmp_path / "sh010", frames=range(1, 4), size=(64, 36))
    out = tmp_path / "out" / "comp.####.exr"
    key = tmp_path / "out" / "comp.0002.exr"
    key.parent.mkdir()
    write_exr(key, np.ones((36, 64, 1), np.float32), channels=("A",))
    before = key.read_bytes()
    data = _data(plate, bg, out, matte={"source": "grabcut", "keys": [
        {"frame": 2, "matte": str(key)}]})
    data["output"]["existing"] = "overwrite"
    with pytest.raises(OutputError, match="comp.0002.exr: output would overwrite an input"):
        job.check(spec.from_dict(data))
    r = _cli("generate", "--plate", plate, "--background", bg, "--output", out,
             "--existing", "overwrite", "--matte-source", "grabcut", "--key-matte",
             f"2:{key}", "--progress", "none")
    assert r.returncode == 4 and "would overwrite an input" in r.stderr, r.stderr
    assert key.read_bytes() == before and sorted(os.listdir(key.parent)) == ["comp.0002.exr"]


def test_a_background_where_the_proxies_go_is_refused(tmp_path):
    plate, bg = make_shot(tmp_path / "sh010", frames=range(1, 3), size=(64, 36))
    sheet = tmp_path / "out" / "proxy" / "comp.contact.jpg"
    sheet.parent.mkdir(parents=True)
    import OpenImageIO as oiio

    buf = oiio.ImageBuf(oiio.ImageSpec(64, 36, 3, "uint8"))
    assert buf.write(str(sheet))
    before = sheet.read_bytes()
    data = _data(plate, str(sheet), tmp_path / "out" / "comp.####.exr")
    r = _cli("generate", "--spec", _write(tmp_path / "s.json", data), "--progress", "none")
    assert r.returncode == 4, r.stderr
    assert "comp.contact.jpg: a proxy or take record would overwrite an input" in r.stderr
    assert sheet.read_bytes() == before
    assert sorted(os.listdir(tmp_path / "out")) == ["proxy"]  # no frame, no record


def _write(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def test_farm_export_never_writes_over_an_input_spec(tmp_path):
    plate, bg = make_shot(tmp_path / "sh010", frames=range(1, 4), size=(64, 36))
    data = _data(plate, bg, tmp_path / "unused" / "c.####.exr")
    inside = _write(tmp_path / "bundle" / "specs" / "sh010" / "take_001.json", data)
    top = _write(tmp_path / "bundle" / "template.yaml", data)
    for spec_path in (inside, top):
        before = spec_path.read_bytes()
        r = _cli("farm", "export", spec_path, "--out", tmp_path / "bundle", "--output-root",
                 tmp_path / "renders")
        assert r.returncode == 4, r.stderr
        assert f"{spec_path}: the bundle in" in r.stderr and "would overwrite" in r.stderr
        assert spec_path.read_bytes() == before
    assert not (tmp_path / "renders").exists()  # refused before any take was reserved


def test_a_second_export_to_one_folder_cancels_the_first_exports_unstarted_takes(tmp_path):
    plate, bg = make_shot(tmp_path / "sh010", frames=range(1, 4), size=(64, 36))
    spec_path = _write(tmp_path / "sh010.json",
                       _data(plate, bg, tmp_path / "unused" / "c.####.exr"))
    args = ["farm", "export", spec_path, "--out", tmp_path / "bundle", "--output-root",
            tmp_path / "renders", "--wedge", "composite.shadow=0,0.5"]
    assert _cli(*args).returncode == 0
    first = takes_mod.Takes(str(tmp_path / "renders" / "sh010")).list()
    assert [t.status for t in first] == ["queued", "queued"]
    r = _cli(*args)
    assert r.returncode == 0, r.stderr
    assert "2 take(s) it had reserved and never started marked cancelled" in r.stdout
    after = {t.name: t for t in takes_mod.Takes(str(tmp_path / "renders" / "sh010")).list()}
    assert [after[t.name].status for t in first] == ["cancelled", "cancelled"]
    assert "replaced by a later farm export" in after["take_001"].error
    assert [after[n].status for n in ("take_003", "take_004")] == ["queued", "queued"]
    bundle = json.loads((tmp_path / "bundle" / "bundle.json").read_text())
    assert [os.path.basename(t) for t in bundle["takes"]] == ["take_003", "take_004"]
