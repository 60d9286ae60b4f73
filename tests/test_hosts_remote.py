"""The hosts on a shared worker (issue 35): the Nuke node's worker connection knob and the
Blender add-on's preferences name a connection file; the take runs on a real worker serving
TLS on 127.0.0.1 (``serve --make-cert``, a tokens file), its paths mapped to the worker's
mount and back, so the host reads the take from its own mount. The fake ``nuke`` is the one
double; Blender is the real ``bpy``."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from test_blender import blender  # noqa: F401 - the fixture
from test_nuke import _finished, _node, _press, _pump_until, comp, nuke  # noqa: F401
from test_worker_remote import pki, studio  # noqa: F401 - the fixtures

from actanywhere.api import Client, Takes, WorkerError


def _share(studio, tmp_path):  # noqa: F811 - the fixture's value
    """The worker's mount and this machine's (a link to it, as one share mounted twice), the
    shot on it, and alice's connection file (readable by her only) with the path map."""
    worker_root = tmp_path / "mnt" / "show"
    shutil.copytree(studio.root / "shot", worker_root / "sh010")
    client_root = tmp_path / "Volumes" / "show"
    client_root.parent.mkdir()
    client_root.symlink_to(worker_root)
    conn = tmp_path / "home" / "alice.json"
    conn.parent.mkdir()
    shutil.copy(studio.cert, conn.parent / "worker.crt")
    conn.write_text(json.dumps({"url": studio.url, "token": studio.tokens["alice"],
                                "ca": "worker.crt",
                                "path_maps": {str(client_root): str(worker_root)}}))
    conn.chmod(0o600)
    return worker_root, client_root, conn


def test_a_nuke_node_runs_its_take_on_the_shared_worker_of_its_connection_file(
        studio, comp, tmp_path):  # noqa: F811
    from actanywhere_nuke import node as plugin

    worker_root, client_root, conn = _share(studio, tmp_path)
    comp["plate"]["file"].setValue(str(client_root / "sh010" / "plate" / "plate.####.exr"))
    comp["plate"]["first"].setValue(1)
    comp["plate"]["last"].setValue(2)
    comp["bg"]["file"].setValue(str(client_root / "sh010" / "bg.exr"))
    node = _node(comp)
    node["worker_connection"].setValue(str(conn))
    node["output_folder"].setValue(str(client_root / "takes"))
    _press(node, "generate")
    assert nuke._messages == [], nuke._messages
    run = plugin.RUNS[node.fullName()]
    _pump_until(_finished(node), timeout=120)
    assert "take_001 done: 2 frames" in node["status"].value(), node["status"].value()
    # the host reads the take from its own mount: the knobs, the Read, the job's outputs
    folder = client_root / "takes" / "take_001"  # the output folder holds the takes
    assert node["take_file"].value() == str(folder / f"{node.name()}.####.exr")
    assert node["has_take"].value()
    assert run.handle.job["outputs"] == [str(folder / f"{node.name()}.{f:04d}.exr")
                                         for f in (1, 2)]
    assert all(os.path.isfile(p) for p in run.handle.job["outputs"])
    _press(node, "read_from_take")
    read = nuke.allNodes("Read", nuke.root())[-1]
    assert read["file"].value() == str(folder / f"{node.name()}.####.exr")
    take = Takes(str(folder.parent)).get("take_001")
    assert take.status == "done" and take.written == 2 and take.output == read["file"].value()
    # the take's record keeps the spec as this machine sent it (to run it again from here)
    assert take.spec["output"]["path"] == read["file"].value()
    assert take.spec["plate"]["path"].startswith(str(client_root / "sh010"))
    # the worker read and wrote its own mount's paths, as alice's job
    seen = studio.admin.job(take.job)
    assert seen["spec"]["plate"]["path"].startswith(str(worker_root / "sh010"))
    assert seen["spec"]["output"]["path"].startswith(str(worker_root / "takes"))
    assert seen.get("owner", "alice") == "alice"
    # no worker was started on this machine
    with pytest.raises(WorkerError):
        Client.from_state(str(comp["state"]))


@pytest.mark.parametrize("case", ["readable by others", "missing", "no map"])
def test_a_nuke_connection_that_cannot_be_used_is_one_line(studio, comp, tmp_path,  # noqa: F811
                                                           case):
    _, _, conn = _share(studio, tmp_path)
    want = {"readable by others": "lets other users read your token",
            "missing": "no such connection file", "no map": "under none of the path maps"}
    if case == "readable by others":
        conn.chmod(0o644)
    elif case == "missing":
        conn = tmp_path / "nowhere.json"
    node = _node(comp)  # the plate is not on the share: "no map"
    node["worker_connection"].setValue(str(conn))
    _press(node, "generate")
    _pump_until(_finished(node), timeout=60)
    assert len(nuke._messages) == 1 and want[case] in nuke._messages[0], nuke._messages
    assert "\n" not in nuke._messages[0] and node["status"].value().startswith("error:")
    takes = Takes(str(comp["tmp"] / "comp" / "actanywhere" / node.name())).list()
    if case == "no map":  # said by the client before anything was sent: the take failed
        assert [(t.status, t.job) for t in takes] == [("failed", None)]
    else:  # said before a take folder was made
        assert takes == []


def test_a_blender_take_runs_on_the_shared_worker_of_the_preferences(
        blender, studio, tmp_path):  # noqa: F811
    worker_root, client_root, conn = _share(studio, tmp_path)
    out, console = blender("remote", {
        "plate_dir": str(client_root / "sh010" / "plate"),
        "bg": str(client_root / "sh010" / "bg.exr"), "output": str(client_root / "takes"),
        "connection": str(conn)})
    assert "Traceback" not in console, console[-3000:]
    # a token with no worker: one line, no take folder made
    assert out["no_worker"] == ["CANCELLED"] and out["no_worker_takes"] == 0
    assert out["no_worker_status"].startswith("error: the add-on's preferences set a token")
    assert "\n" not in out["no_worker_raised"] and "Worker URL" in out["no_worker_raised"]
    assert out["generate"] == ["FINISHED"]
    take = out["state"]["takes"][0]
    assert take["status"] == "done", (take, console[-3000:])
    folder = client_root / "takes" / "plate" / "take_001"
    assert take["folder"] == str(folder) and take["output"].startswith(str(folder))
    strip = out["state"]["strips"]["plate take_001"]
    assert os.path.realpath(strip["directory"]) == os.path.realpath(folder)
    assert strip["directory"].startswith(str(client_root))  # this machine's mount
    assert strip["files"] == ["plate.0001.exr", "plate.0002.exr"]
    record = Takes(str(folder.parent)).get("take_001")
    seen = studio.admin.job(record.job)
    assert seen["spec"]["output"]["path"].startswith(str(worker_root / "takes"))
    assert not (blender.tmp / "state").exists()  # no worker was started on this machine
