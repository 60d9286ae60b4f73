"""Send to farm from the hosts (issue 35): the Nuke node's button and the Blender panel's
operator export the take's job bundle into the farm folder on a thread of their own; the
take waits in the host's list as queued on the farm; the bundle run for real with ``openjd
run`` (skipped where openjd-cli is missing) makes the take done and viewable. Without the
Deadline Cloud CLI, the host shows the bundle and the command that submits it. The fake
``nuke`` is the one double; Blender is the real ``bpy``."""

# ruff: noqa: F811 - the fixtures imported from test_nuke and test_blender
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import read_exr
from test_blender import blender  # noqa: F401 - the fixture
from test_nuke import _node, _press, _pump_until, _render_downstream, comp, nuke  # noqa: F401

from actanywhere.api import Takes, farm
from actanywhere.api.takes import Take

BIN = os.path.dirname(sys.executable)
OPENJD = shutil.which("openjd", path=BIN) or shutil.which("openjd")
DEADLINE = shutil.which("deadline")


def _openjd_run(bundle: str) -> None:
    if OPENJD is None:
        pytest.skip("openjd-cli is not installed: the bundle was not run")
    r = subprocess.run([OPENJD, "run", os.path.join(bundle, "template.yaml"), "-p",
                        "file://" + os.path.join(bundle, "openjd_parameters.json")],
                       capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1"))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]


@pytest.fixture
def no_deadline(monkeypatch):
    """A PATH without Deadline Cloud's CLI (the case this machine has), whatever it holds."""
    if DEADLINE is not None:
        path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep)
                               if not os.path.isfile(os.path.join(p, "deadline")))
        monkeypatch.setenv("PATH", path)
    assert shutil.which("deadline") is None


def test_deadline_is_found_only_where_it_is_set_up(no_deadline):
    exe, why = farm.deadline_ready(timeout=5)
    assert exe is None and why == "the Deadline Cloud CLI (deadline) is not installed here"


@pytest.mark.skipif(DEADLINE is None, reason="the Deadline Cloud CLI is not installed")
def test_the_deadline_cli_check_answers_without_hanging():
    r = subprocess.run([DEADLINE, "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "bundle" in r.stdout
    exe, why = farm.deadline_ready(timeout=30)
    assert (exe, why) == (DEADLINE, "") or (exe is None and "deadline config" in why)


def test_nuke_send_to_farm_queues_a_take_the_farm_makes_viewable(comp, no_deadline):
    from actanywhere_nuke import node as plugin

    tmp = comp["tmp"]
    node = _node(comp)
    farm_dir = tmp / "farm"
    node["farm_folder"].setValue(str(farm_dir))
    _press(node, "send_to_farm")
    assert "exporting into" in node["status"].value()  # the button returned at once
    _press(node, "send_to_farm")  # pressed again meanwhile: said, nothing exported twice
    assert "still exporting" in nuke._messages.pop()
    _pump_until(lambda: node.fullName() not in plugin.FARM_SENDS, timeout=300)
    (bundle,) = [str(p) for p in farm_dir.iterdir()]
    assert os.path.basename(bundle).startswith(node.name() + "_")
    assert os.path.isfile(os.path.join(bundle, "template.yaml"))
    root = tmp / "comp" / "actanywhere" / node.name()
    status = node["status"].value()
    assert status == (f"take_001 queued on the farm: bundle {bundle}; submit it with: "
                      f"deadline bundle submit {bundle} (the Deadline Cloud CLI (deadline) is "
                      "not installed here)")
    assert nuke._messages == [f"ActAnywhere ({node.name()}): {status}"]
    assert node["take"].values() == ["take_001: composite (farm), queued on the farm"]
    assert not node["has_take"].value()
    take = Takes(str(root)).get("take_001")
    assert take.status == "queued" and take.job is None
    assert take.spec["plate"]["path"] == str(tmp / "shot" / "plate" / "plate.####.exr")
    _openjd_run(bundle)
    plugin.refresh(node, select="take_001")  # Refresh, once the farm is done
    (item,) = node["take"].values()
    assert item.startswith("take_001: composite") and item.endswith(", done"), item
    assert node["has_take"].value()
    assert node["take_file"].value() == str(root / "take_001" / f"{node.name()}.####.exr")
    done = Take.load(str(root / "take_001"))
    assert done.status == "done" and done.written == 4
    px, _ = read_exr(root / "take_001" / f"{node.name()}.1001.exr")
    assert np.allclose(_render_downstream(node, tmp / "render"), px[..., :4], atol=1e-3)


def test_nuke_send_to_farm_errors_are_one_line(comp, no_deadline, monkeypatch):
    node = _node(comp)
    monkeypatch.delenv("ACTANYWHERE_PYTHON")
    _press(node, "send_to_farm")
    assert len(nuke._messages) == 1 and "set ACTANYWHERE_PYTHON" in nuke._messages[0]
    monkeypatch.setenv("ACTANYWHERE_PYTHON", sys.executable)
    node.setInput(1, None)
    nuke._messages.clear()
    _press(node, "send_to_farm")
    assert len(nuke._messages) == 1 and "connect the bg input" in nuke._messages[0]
    assert node["status"].value().startswith("error: Send to farm: ")
    assert os.listdir(comp["tmp"] / "comp" / "actanywhere" / "farm") == []  # nothing left


def test_blender_send_to_farm_queues_a_take_the_farm_makes_a_strip(blender, no_deadline):
    from conftest import make_shot

    tmp = blender.tmp
    plate, bg = make_shot(tmp / "sh010", frames=range(1001, 1005))
    farm_dir = tmp / "farm"
    out, console = blender("farm", {"plate_dir": str(plate.parent), "bg": str(bg),
                                    "farm": str(farm_dir)})
    assert "Traceback" not in console, console[-3000:]
    assert out["send"] == ["FINISHED"] and "exporting into" in out["while_exporting"]
    assert out["timer_registered"]
    (bundle,) = [str(p) for p in farm_dir.iterdir()]
    (take,) = out["state"]["takes"]
    # the strip is named "plate", a name the exporter does not give a shot: it named the
    # shot after the plate's folder, and the list holds the take where it went
    folder = tmp / "edit" / "actanywhere" / "sh010" / "take_001"
    assert take["folder"] == str(folder) and take["status"] == "queued"
    assert take["message"] == "queued on the farm"
    assert out["state"]["status"] == (
        f"take_001 queued on the farm: bundle {bundle}; submit it with: deadline bundle submit "
        f"{bundle} (the Deadline Cloud CLI (deadline) is not installed here)")
    assert Take.load(str(folder)).status == "queued"
    _openjd_run(bundle)
    back, console = blender("farm_back", {})
    assert "Traceback" not in console, console[-3000:]
    assert back["before"]["takes"][0]["status"] == "queued"  # saved with the .blend
    assert back["refresh"] == ["FINISHED"]
    (take,) = back["after"]["takes"]
    assert take["status"] == "done" and take["written"] == 4, take
    assert "1 back from the farm" in back["after"]["status"]
    strip = back["after"]["strips"]["plate take_001"]
    assert strip["files"] == [f"sh010.{f}.exr" for f in range(1001, 1005)]
    assert os.path.realpath(strip["directory"]) == os.path.realpath(folder)
