"""No shared storage, several workers (issue 35): real TLS worker processes on 127.0.0.1
whose disks the client does not share (``transfer: upload``, or ``auto`` with a path map to
a folder the worker lacks), the client sending the inputs in chunks, resuming, fetching the
take; the upload limit, the cleanup, other users kept out; a take sent to the worker where
its engine is warm, else the shortest queue, an unreachable worker skipped."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import make_shot, stop_worker
from test_worker_remote import _blocker, _env, cli, raw, serve, spec

from actanywhere.api import Client, WorkerError, remote
from actanywhere.worker import tokens


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    root = tmp_path_factory.mktemp("pki")
    r = cli("serve", "--make-cert", root, "--host", "127.0.0.1")
    assert r.returncode == 0, r.stderr
    return SimpleNamespace(cert=str(root / "worker.crt"), key=str(root / "worker.key"))


def _worker(pki, root: Path, *flags) -> SimpleNamespace:
    token_file = root / "tokens.json"
    issued = {name: tokens.add(str(token_file), name) for name in ("alice", "bob")}
    proc, admin = serve(root / "state", "--listen", "127.0.0.1:0", "--tls-cert", pki.cert,
                        "--tls-key", pki.key, "--tokens", token_file,
                        "--max-auth-failures", "1000", *flags)
    return SimpleNamespace(url=admin.url, cert=pki.cert, tokens=issued, admin=admin,
                           proc=proc, state=root / "state", root=root)


def _stop(worker: SimpleNamespace) -> str:
    stop_worker(worker.proc, worker.admin)
    err = worker.proc.stderr.read().decode()
    assert "Traceback" not in err, err
    return err


@pytest.fixture(scope="module")
def studio(pki, tmp_path_factory):
    """A TLS worker for alice and bob; the shot is on the client's disk only (as far as the
    takes here go: they name it through transfer=upload, or a map to a folder the worker
    lacks)."""
    root = tmp_path_factory.mktemp("studio")
    worker = _worker(pki, root)
    worker.plate, worker.bg = make_shot(root / "client" / "shot", frames=range(1, 4))
    yield worker
    _stop(worker)


def client_of(studio, name: str, transfer: str = "upload", maps=()) -> Client:
    return Client.remote(remote.Remote(studio.url, studio.tokens[name], studio.cert,
                                       tuple(maps), transfer=transfer))


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.startswith(".")}


# ----------------------------------------------------------------------------- the tests
def test_a_take_runs_from_uploaded_files_and_comes_back_equal(studio, tmp_path):
    alice = client_of(studio, "alice")
    alice.chunk_bytes = 4096  # several chunks a frame
    heard: list[dict] = []
    alice.on_transfer = heard.append
    out = tmp_path / "take_001" / "c.####.exr"
    job = alice.submit(spec(studio.plate, studio.bg, out))
    final = alice.wait(job, poll=1, timeout=120)
    assert final["status"] == "done", final
    # the worker read its own copies and wrote into the upload's folder ...
    seen = studio.admin.job(job)
    uploads = str(studio.state / "uploads")
    assert seen["spec"]["plate"]["path"].startswith(uploads)
    assert seen["spec"]["background"]["path"].startswith(uploads)
    worker_take = Path(seen["outputs"][0]).parent
    assert str(worker_take).startswith(uploads)
    # ... and the client has the take where it asked for it, byte for byte the worker's
    assert final["spec"]["output"]["path"] == str(out)
    assert final["outputs"] == [str(out).replace("####", f"{f:04d}") for f in (1, 2, 3)]
    mine, theirs = _tree(out.parent), _tree(worker_take)
    record, their_record = json.loads(mine.pop("take.json")), json.loads(theirs.pop("take.json"))
    assert mine == theirs and any(name.startswith("proxy/") for name in mine)
    assert {"c.0001.exr", "c.0002.exr", "c.0003.exr"} <= set(mine)
    # the record says where the take is here: its folder, output and inputs the user's
    assert record["folder"] == str(out.parent) and record["output"] == str(out)
    assert record["spec"]["plate"]["path"] == str(studio.plate)
    assert record["spec"]["background"]["path"] == str(studio.bg)
    assert {k: v for k, v in record.items() if k not in ("folder", "output", "spec")} == \
        {k: v for k, v in their_record.items() if k not in ("folder", "output", "spec")}
    # one event per file sent and per file fetched
    sent = [e["message"] for e in heard if e["message"].startswith("upload ")]
    assert len(sent) == 4 and all("sent" in m for m in sent)  # 3 frames, the background
    fetched = [e for e in heard if e["message"].startswith("download ")]
    assert len(fetched) == len(theirs) + 1 and fetched[-1]["done"] == fetched[-1]["total"]
    # the same take again: nothing sent, and the user's frames are not written over
    heard.clear()
    again = alice.submit(spec(studio.plate, studio.bg, tmp_path / "take_002" / "c.####.exr"))
    assert alice.wait(again, poll=1, timeout=120)["status"] == "done"
    assert all("already on the worker" in e["message"] for e in heard
               if e["message"].startswith("upload "))
    with pytest.raises(WorkerError, match="output.path: .* already has frames on this machine"):
        alice.submit(spec(studio.plate, studio.bg, out))


def test_a_host_take_is_sent_and_its_record_kept_in_step(studio, tmp_path):
    """``takes.start``, as Nuke and Blender run a take: the host's record made before the
    job is merged with the worker's (proxies, motion) and ends done, the frames fetched."""
    from actanywhere.api import MainThreadQueue, Takes, take_session

    take = Takes(str(tmp_path / "Node1")).new()
    main = MainThreadQueue()
    handle = take_session.start(take, spec(studio.plate, studio.bg, "unused.####.exr"),
                                lambda: client_of(studio, "bob"), main_thread=main.post)
    main.run_until(handle)
    assert handle.status == "done", handle.error
    record = json.loads((Path(take.folder) / "take.json").read_text())
    assert record["status"] == "done" and record["written"] == 3
    assert record["output"] == take.output and record["proxy"].startswith("proxy/")
    assert record["spec"]["plate"]["path"] == str(studio.plate)
    assert all(os.path.isfile(p) for p in handle.job["outputs"])
    assert handle.job["outputs"][0] == take.output.replace("####", "0001")


def test_auto_uploads_when_the_worker_cannot_see_the_files_through_the_cli(studio, tmp_path):
    """``generate --worker`` with a connection file whose map points at a folder the worker
    lacks: the access check refuses, the inputs are sent, the take comes back; the steps
    are printed."""
    conn = tmp_path / "gpu01.json"
    client_root = studio.root / "client"
    conn.write_text(json.dumps({
        "url": studio.url, "token": studio.tokens["bob"], "ca": studio.cert,
        "transfer": "auto", "path_maps": {str(client_root): "/nonexistent/mnt/show",
                                          str(tmp_path): "/nonexistent/mnt/out"}}))
    conn.chmod(0o600)
    out = tmp_path / "o" / "c.####.exr"
    r = cli("generate", "--plate", studio.plate, "--background", studio.bg, "-o", out,
            "--engine", "flat", "--worker", "--progress", "json",
            env=_env(ACTANYWHERE_CONNECTION=str(conn)), timeout=120)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.parent.glob("c.*.exr")) == [
        "c.0001.exr", "c.0002.exr", "c.0003.exr"]
    said = r.stdout + r.stderr
    assert "sending the inputs" in said and "upload plate/plate.0001.exr" in said
    assert "download c.0003.exr" in said and "Traceback" not in said


def test_an_interrupted_upload_goes_on_without_resending_whole_files(studio, tmp_path):
    plate, bg = make_shot(tmp_path / "shot", frames=range(1, 5), size=(96, 54))
    sizes = {p.name: p.stat().st_size for p in plate.parent.iterdir()}
    alice = client_of(studio, "alice")
    alice.chunk_bytes = 256
    first = sizes["plate.0001.exr"]
    assert sizes["plate.0002.exr"] > 256
    alice.stop_after_chunks = -(-first // 256) + 1  # the first frame and a chunk of the next
    heard: list[dict] = []
    alice.on_transfer = heard.append
    out = tmp_path / "o" / "c.####.exr"
    with pytest.raises(WorkerError) as err:
        alice.submit(spec(plate, bg, out))
    assert "upload stopped at byte 256 of plate/plate.0002.exr" in str(err.value)
    assert [e["message"] for e in heard] == [f"upload plate/plate.0001.exr: sent {first} bytes"]
    # a new client (another session of the host) sends the same take: it goes on
    again = client_of(studio, "alice")
    again.chunk_bytes = 256
    heard.clear()
    again.on_transfer = heard.append
    job = again.submit(spec(plate, bg, out))
    said = [e["message"] for e in heard if e["message"].startswith("upload ")]
    assert said[0] == "upload plate/plate.0001.exr: already on the worker"
    assert said[1].startswith("upload plate/plate.0002.exr: sent") and \
        said[1].endswith("(resumed at byte 256)")
    whole = sum(sizes.values()) + bg.stat().st_size
    assert again._sent[job].sent_bytes == whole - first - 256
    final = again.wait(job, poll=1, timeout=120)
    assert final["status"] == "done"
    worker_take = Path(studio.admin.job(job)["outputs"][0]).parent
    mine, theirs = _tree(out.parent), _tree(worker_take)
    assert mine.keys() == theirs.keys()
    assert all(mine[n] == theirs[n] for n in mine if n != "take.json")


def test_a_damaged_file_is_refused_and_the_chunk_offset_checked(studio, tmp_path):
    data = b"x" * 5000
    good = hashlib.sha256(data).hexdigest()
    token = studio.tokens["alice"]
    status, up, _ = raw(studio.url, studio.cert, "POST", "/v1/uploads", token=token, body={
        "key": "k1", "files": [{"name": "plate/a.exr", "size": 5000, "sha256": "0" * 64},
                               {"name": "bg/b.exr", "size": 5000, "sha256": good}]})
    assert status == 201 and up["files"]["plate/a.exr"] == {"size": 5000, "have": 0,
                                                            "complete": False}
    status, body = _put(studio, token, up["id"], "plate/a.exr", 0, data)
    assert status == 422 and body["field"] == "sha256" and "\n" not in body["error"]
    assert body["error"].startswith("plate/a.exr: its sha256 on the worker is ")
    assert "send it again" in body["error"]
    status, again, _ = raw(studio.url, studio.cert, "GET", f"/v1/uploads/{up['id']}",
                           token=token)
    assert again["files"]["plate/a.exr"]["have"] == 0  # dropped, not kept
    status, body = _put(studio, token, up["id"], "bg/b.exr", 100, data[:100])
    assert status == 409 and "send from byte 0" in body["error"]
    status, body = _put(studio, token, up["id"], "bg/b.exr", 0, data)
    assert status == 200 and body == {"name": "bg/b.exr", "have": 5000, "complete": True}
    for name in ("../x", "a/../../x", ".hidden/x", "a//b"):
        status, body, _ = raw(studio.url, studio.cert, "POST", "/v1/uploads", token=token,
                              body={"key": "k2", "files": [{"name": name, "size": 1,
                                                            "sha256": good}]})
        assert status == 422 and "not a file name inside an upload" in body["error"], name


def _put(studio, token: str, upload_id: str, name: str, offset: int, data: bytes):
    import http.client
    import ssl
    from urllib.parse import quote, urlparse

    parts = urlparse(studio.url)
    conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=30,
                                       context=ssl.create_default_context(cafile=studio.cert))
    try:
        conn.request("PUT", f"/v1/uploads/{upload_id}/files?name={quote(name, safe='')}&"
                     f"offset={offset}", data,
                     {"Authorization": f"Bearer {token}"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def test_another_user_can_neither_read_nor_use_an_upload(studio, tmp_path):
    alice, bob = client_of(studio, "alice"), client_of(studio, "bob")
    job = alice.submit(spec(studio.plate, studio.bg, tmp_path / "a" / "c.####.exr"))
    alice.wait(job, poll=1, timeout=120)
    sent = alice._sent[job]
    theirs = studio.admin.job(job)["spec"]
    for path in (f"/v1/uploads/{sent.upload_id}", f"/v1/uploads/{sent.upload_id}/takes/"
                 f"{sent.take}", f"/v1/uploads/{sent.upload_id}/takes/{sent.take}/file?"
                 "name=take.json"):
        status, body, _ = raw(studio.url, studio.cert, "GET", path, token=studio.tokens["bob"])
        assert status == 404 and f"no upload {sent.upload_id}" in body["error"], path
    status, body = _put(studio, studio.tokens["bob"], sent.upload_id, "plate/plate.0001.exr",
                        0, b"x")
    assert status == 404
    # bob naming alice's uploaded plate in his own job: refused, nothing run
    with pytest.raises(WorkerError) as err:
        bob.transfer = "shared"
        bob.submit(spec(theirs["plate"]["path"], theirs["background"]["path"],
                        tmp_path / "b" / "c.####.exr"))
    assert "plate.path: no upload" in str(err.value) and "HTTP 404" in str(err.value)
    assert not (tmp_path / "b").exists()


def test_the_upload_limit_and_the_cleanup(pki, tmp_path):
    """A worker with room for 200 KB of uploads, kept 2 s after their last use."""
    small = _worker(pki, tmp_path / "small", "--upload-limit", str(200e3 / 2**30),
                    "--upload-keep", str(2 / 3600))
    try:
        plate, bg = make_shot(tmp_path / "shot", frames=range(1, 3))
        big = tmp_path / "big"
        big.mkdir()
        (big / "bg.exr").write_bytes(os.urandom(300_000))
        alice = client_of(small, "alice")
        with pytest.raises(WorkerError) as err:
            alice.submit(spec(plate, big / "bg.exr", tmp_path / "o1" / "c.####.exr"))
        line = str(err.value)
        assert "HTTP 413" in line and "--upload-limit" in line and "\n" not in line
        job = alice.submit(spec(plate, bg, tmp_path / "o2" / "c.####.exr"))
        assert alice.wait(job, poll=1, timeout=120)["status"] == "done"
        folder = small.state / "uploads" / alice._sent[job].upload_id
        assert folder.is_dir()
        deadline = time.monotonic() + 20
        while folder.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not folder.exists()
        status, body, _ = raw(small.url, small.cert, "GET",
                              f"/v1/uploads/{alice._sent[job].upload_id}",
                              token=small.tokens["alice"])
        assert status == 404
        assert (tmp_path / "o2" / "c.0002.exr").is_file()  # the user's copy stays
    finally:
        err_text = _stop(small)
    assert f"removed upload {alice._sent[job].upload_id}: unused for --upload-keep" in err_text


def test_several_workers_warm_first_then_the_shortest_queue_unreachable_skipped(
        studio, pki, tmp_path):
    other = _worker(pki, tmp_path / "other")
    try:
        # studio has run the flat engine (the tests above): warm there
        assert {"engine": "flat", "model": None} in studio.admin.health()["warm"]
        assert other.admin.health()["warm"] == []
        pool = (remote.Remote(other.url, other.tokens["alice"], other.cert),
                remote.Remote(studio.url, studio.tokens["alice"], studio.cert))
        client = Client.remotes(pool)
        heard: list[dict] = []
        client.on_transfer = heard.append
        job = client.submit(spec(studio.plate, studio.bg, tmp_path / "w" / "c.####.exr"))
        assert client.url == studio.url
        assert heard[-1]["message"] == (f"worker {studio.url}: flat is warm there (0 job(s) "
                                        f"ahead; others: {other.url} 0)")
        assert client.wait(job, poll=1, timeout=120)["status"] == "done"
        # the composite engine is warm nowhere: the shortest queue (studio is busy)
        blocker = _blocker(studio, Client.remote(pool[1]), tmp_path)
        heard.clear()
        client = Client.remotes(pool[::-1])
        client.on_transfer = heard.append
        composite = dict(spec(studio.plate, studio.bg, tmp_path / "c" / "c.####.exr"),
                         engine={"name": "composite"})
        job = client.submit(composite)
        assert client.url == other.url
        assert heard[-1]["message"].startswith(f"worker {other.url}: the shortest queue (0 job")
        assert client.wait(job, poll=1, timeout=120)["status"] == "done"
        Client.remote(pool[1]).cancel(blocker)
        # an unreachable worker first in the list: skipped with a warning, one line
        dead = remote.Remote("https://127.0.0.1:9", studio.tokens["alice"], studio.cert)
        client = Client.remotes((dead, pool[0]))
        heard.clear()
        client.on_transfer = heard.append
        job = client.submit(spec(studio.plate, studio.bg, tmp_path / "d" / "c.####.exr"))
        warning = [e for e in heard if e["stage"] == "warning"]
        assert len(warning) == 1 and warning[0]["message"].startswith(
            "skipped the worker https://127.0.0.1:9: cannot reach the worker")
        assert "\n" not in warning[0]["message"] and client.url == other.url
        assert client.wait(job, poll=1, timeout=120)["status"] == "done"
    finally:
        _stop(other)


def test_the_workers_list_is_read_from_the_file_and_the_environment(tmp_path):
    conn = tmp_path / "c.json"
    conn.write_text(json.dumps({"token": "aa_x", "ca": "ca.crt", "transfer": "upload",
                                "workers": [{"url": "https://gpu01:8765"},
                                            {"url": "https://gpu02:8765", "token": "aa_y",
                                             "transfer": "auto"}]}))
    conn.chmod(0o600)
    found = remote.workers_from_env({"ACTANYWHERE_CONNECTION": str(conn)})
    assert [(w.url, w.token, w.transfer) for w in found] == [
        ("https://gpu01:8765", "aa_x", "upload"), ("https://gpu02:8765", "aa_y", "auto")]
    assert found[0].ca == str(tmp_path / "ca.crt")
    found = remote.workers_from_env({"ACTANYWHERE_WORKER": "https://a:1, https://b:2",
                                     "ACTANYWHERE_TOKEN": "aa_z"})
    assert [w.url for w in found] == ["https://a:1", "https://b:2"]
    with pytest.raises(remote.RemoteError, match="^ACTANYWHERE_TRANSFER: 'copy' is not a transfer"):
        remote.workers_from_env({"ACTANYWHERE_WORKER": "https://a:1",
                                 "ACTANYWHERE_TOKEN": "t", "ACTANYWHERE_TRANSFER": "copy"})


def test_a_worker_that_goes_away_mid_upload_is_one_line(pki, tmp_path):
    gone = _worker(pki, tmp_path / "gone")
    plate, bg = make_shot(tmp_path / "shot", frames=range(1, 3))
    alice = client_of(gone, "alice")
    alice.chunk_bytes = 1024

    def stop_it(ev: dict) -> None:
        gone.proc.kill()
        gone.proc.wait()

    alice.on_transfer = stop_it
    with pytest.raises(WorkerError) as err:
        alice.submit(spec(plate, bg, tmp_path / "o" / "c.####.exr"))
    assert str(err.value).startswith(f"cannot reach the worker at {gone.url}")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "o").exists()


def test_a_full_disk_on_the_worker_is_one_line_and_the_upload_goes_on(pki, tmp_path):
    """The worker's state folder on a 4 MiB tmpfs, filled while a file is being sent: 507
    naming the file, the worker still serving; with room again the file goes on from the
    bytes kept."""
    from test_faults import _fill, _small_disk

    with _small_disk(tmp_path / "disk", "4m") as disk:
        worker = _worker(pki, disk)
        try:
            data = os.urandom(200_000)
            token = worker.tokens["alice"]
            status, up, _ = raw(worker.url, worker.cert, "POST", "/v1/uploads", token=token,
                                body={"key": "k", "files": [{"name": "plate/a.exr",
                                                             "size": len(data), "sha256":
                                                             hashlib.sha256(data).hexdigest()}]})
            assert status == 201, up
            status, body = _put(worker, token, up["id"], "plate/a.exr", 0, data[:50_000])
            assert status == 200 and body["have"] == 50_000
            _fill(disk, 20_000)
            status, body = _put(worker, token, up["id"], "plate/a.exr", 50_000,
                                data[50_000:150_000])
            assert status == 507 and "\n" not in body["error"], body
            assert body["error"].startswith(str(worker.state / "uploads" / up["id"] / "in" /
                                                "plate" / "a.exr.part"))
            assert "the worker's disk is full" in body["error"]
            assert worker.admin.health()["ok"]
            for fill in disk.glob("fill-*"):
                fill.unlink()
            status, again, _ = raw(worker.url, worker.cert, "GET", f"/v1/uploads/{up['id']}",
                                   token=token)
            assert again["files"]["plate/a.exr"]["have"] == 50_000  # what was whole is kept
            status, body = _put(worker, token, up["id"], "plate/a.exr", 50_000, data[50_000:])
            assert status == 200 and body["complete"] is True
        finally:
            _stop(worker)
