"""``farm export --format opencue``: the job spec XML serialised by OpenCue's own pyoutline
(a running Cuebot needs Java and PostgreSQL: the serialised job is what is tested), and its
layer commands run here as RQD runs them (frame tokens substituted, through the shell)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as Et

import numpy as np
import pytest
from conftest import make_shot, read_exr
from fileseq import FrameSet

from actanywhere import spec
from actanywhere.shot import job

pytest.importorskip("outline", reason="opencue-pyoutline is not installed")
BIN = os.path.dirname(sys.executable)


def _export(tmp_path, data, *args):
    path = tmp_path / "sh010.json"
    path.write_text(json.dumps(data))
    r = subprocess.run([sys.executable, "-m", "actanywhere", "farm", "export", str(path),
                        "--out", str(tmp_path / "bundle"), "--output-root",
                        str(tmp_path / "renders"), "--format", "opencue", "--command",
                        os.path.join(BIN, "actanywhere"), *map(str, args)],
                       capture_output=True, text=True, cwd=tmp_path,
                       env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert r.returncode == 0, r.stderr
    assert "opencue.api.launchSpec" in r.stdout
    return Et.parse(tmp_path / "bundle" / "job.xml").getroot()


def _layers(root):
    return {la.get("name"): {c.tag: (c.text or "") for c in la}
            for la in root.iter("layer")}


def _run_frames(layer):
    """Each chunk of the layer's range, as RQD runs it: tokens replaced, through sh."""
    frames = list(FrameSet(layer["range"]))
    size = int(layer["chunk"])
    for i in range(0, len(frames), size):
        chunk = frames[i : i + size]
        cmd = layer["cmd"].replace("#FRAME_START#", str(chunk[0])) \
            .replace("#FRAME_END#", str(chunk[-1])).replace("#IFRAME#", str(chunk[0]))
        r = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True,
                           env=dict(os.environ, HF_HUB_OFFLINE="1"))
        assert r.returncode == 0, r.stderr[-2000:]


def test_composite_takes_are_chunked_layers_whose_commands_equal_direct_generate(tmp_path):
    plate, bg = make_shot(tmp_path / "sh010", frames=range(1, 8), size=(96, 54))
    data = {"plate": {"path": str(plate)}, "background": {"path": str(bg)},
            "output": {"path": str(tmp_path / "u" / "c.####.exr")},
            "composite": {"harmonize": 0.0}}
    root = _export(tmp_path, data, "--wedge", "composite.shadow=0,0.6", "--chunk", "3")
    assert root.find("job").get("name") == "ActAnywhere"
    layers = _layers(root)
    assert sorted(layers) == ["sh010_take_001", "sh010_take_002"]
    layer = layers["sh010_take_001"]
    assert (layer["range"], layer["chunk"], layer["memory"]) == ("1-7", "3", "16g")
    assert "gpus" not in layer  # composite: no GPU asked for
    assert "--frames #FRAME_START#-#FRAME_END#" in layer["cmd"]
    assert root.find("depends") is None or not list(root.find("depends"))
    for name in layers:
        _run_frames(layers[name])
    for take in ("take_001", "take_002"):
        d = json.loads((tmp_path / "bundle" / "specs" / "sh010" / f"{take}.json").read_text())
        d["output"]["path"] = str(tmp_path / "direct" / take / "c.####.exr")
        job.run(spec.from_dict(d))
        for f in range(1, 8):
            a, _ = read_exr(tmp_path / "renders" / "sh010" / take / f"sh010.{f:04d}.exr")
            b, _ = read_exr(tmp_path / "direct" / take / f"c.{f:04d}.exr")
            assert np.array_equal(a, b), (take, f)


def test_a_split_diffusion_take_is_part_layers_and_a_join_that_depends_on_them(tmp_path):
    plate, bg = make_shot(tmp_path / "sh010", frames=range(1, 13), size=(96, 54))
    data = {"plate": {"path": str(plate)}, "background": {"path": str(bg)},
            "output": {"path": str(tmp_path / "u" / "c.####.exr")},
            "engine": {"name": "diffusion", "device": "cpu"}}
    root = _export(tmp_path, data, "--wedge", "diffusion.seed=1,2", "--split", "8",
                   "--split-overlap", "2", "--gpu-memory", "24")
    layers = _layers(root)
    assert sorted(layers) == ["sh010_take_001_1-8", "sh010_take_001_7-12",
                              "sh010_take_001_join", "sh010_take_002_1-8",
                              "sh010_take_002_7-12", "sh010_take_002_join"]
    part = layers["sh010_take_002_7-12"]
    assert (part["range"], part["gpus"], part["gpu_memory"]) == ("1", "1", "24g")
    assert "--frames 7-12 --no-proxy" in part["cmd"] and "take_002.json" in part["cmd"]
    assert "/take_002/parts/7-12/" in part["cmd"]
    joined = layers["sh010_take_002_join"]
    assert "farm join" in joined["cmd"] and "--part 1-8 --part 7-12" in joined["cmd"]
    assert "gpus" not in joined
    deps = {(d.findtext("deplayer"), d.findtext("onlayer"), d.get("type"))
            for d in root.iter("depend")}
    assert deps == {(f"sh010_{t}_join", f"sh010_{t}_{p}", "LAYER_ON_LAYER")
                    for t in ("take_001", "take_002") for p in ("1-8", "7-12")}
    spec_data = json.loads((tmp_path / "bundle" / "specs" / "sh010" / "take_001.json")
                           .read_text())
    # only what the artist set (and the split): the model's recommended settings fill the rest
    # the parts steady over what their 2 shared frames hold (diffusion.part_settings)
    assert spec_data["diffusion"] == {"seed": 1, "shot_frames": "1-12", "steady": 0.33}
