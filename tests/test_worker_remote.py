"""A shared worker (issue 35): real worker processes serving TLS on 127.0.0.1 with a
certificate made by `serve --make-cert`, a tokens file per user, the stdlib client reaching
them through real sockets (and from other processes), path maps, the fair queue."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import ssl
import stat
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlparse

import pytest
from conftest import REPO, make_shot, start_worker, stop_worker

from actanywhere.api import Client, WorkerError, pathmap, remote
from actanywhere.api.pathmap import PathMapError, Rule

TESTS = Path(__file__).resolve().parent
REMOTE_ENV = (remote.ENV_CONNECTION, remote.ENV_WORKER, remote.ENV_TOKEN, remote.ENV_CA,
              remote.ENV_PATH_MAPS)


def _env(**extra: str) -> dict[str, str]:
    """A worker's or client's environment: the ``flat`` test engine known, no remote worker
    set unless ``extra`` sets one."""
    env = {k: v for k, v in os.environ.items() if k not in REMOTE_ENV}
    env.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", ACTANYWHERE_ENGINES="fake_engine",
               PYTHONPATH=os.pathsep.join([str(TESTS), *filter(None, [env.get("PYTHONPATH")])]))
    env.update(extra)
    return env


def cli(*args, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "actanywhere", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=env or _env())


def serve(state: Path, *flags) -> tuple[subprocess.Popen, Client]:
    """``actanywhere serve`` as a process; (process, the worker's own admin client, which
    reads its connection file and trusts exactly its certificate)."""
    return start_worker(state, 300, *map(str, flags), env=_env())


def spec(plate, bg, out, **extra) -> dict:
    return {"plate": {"path": str(plate)}, "background": {"path": str(bg)},
            "output": {"path": str(out)}, "engine": {"name": "flat"}, "threads": 1, **extra}


def user(studio, name: str, path_maps=()) -> Client:
    """``name``'s client, reaching the worker as a remote host does (URL, token, CA)."""
    return Client.remote(remote.Remote(studio.url, studio.tokens[name], studio.cert,
                                       tuple(path_maps)))


def tls(ca: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca)


def raw(url: str, ca: str, method: str, path: str, body=None, token=None,
        source: str | None = None) -> tuple[int, dict, http.client.HTTPMessage]:
    """One HTTPS request (from ``source``'s address); (status, JSON body, headers)."""
    parts = urlparse(url)
    conn = http.client.HTTPSConnection(parts.hostname, parts.port, context=tls(ca), timeout=30,
                                       source_address=(source, 0) if source else None)
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    try:
        conn.request(method, path, json.dumps(body).encode() if body is not None else None,
                     headers)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"{}"), resp.headers
    finally:
        conn.close()


# --------------------------------------------------------------------------------- set-up
@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """The worker's certificate made by `serve --make-cert`, and another one (a wrong CA)."""
    root = tmp_path_factory.mktemp("pki")
    r = cli("serve", "--make-cert", root / "worker", "--host", "127.0.0.1")
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("\n") == 1 and "worker.crt" in r.stderr
    key = root / "worker" / "worker.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    r = cli("serve", "--make-cert", root / "worker")  # an existing pair is never replaced
    assert r.returncode == 4 and "exists" in r.stderr and r.stderr.count("\n") == 1
    assert cli("serve", "--make-cert", root / "other").returncode == 0
    return SimpleNamespace(cert=str(root / "worker" / "worker.crt"), key=str(key),
                           wrong=str(root / "other" / "worker.crt"))


@pytest.fixture(scope="module")
def studio(pki, tmp_path_factory):
    """One TLS worker with a tokens file (alice, bob, carol; boss an admin), at most 3 jobs
    queued per user; the shot every job uses."""
    from actanywhere.worker import tokens

    root = tmp_path_factory.mktemp("studio")
    token_file = root / "tokens.json"
    r = cli("serve", "tokens", "add", "alice", "--file", token_file)
    assert r.returncode == 0, r.stderr
    issued = {"alice": r.stdout.strip()}  # the token alone on stdout, said once
    assert issued["alice"].startswith("aa_") and issued["alice"] not in token_file.read_text()
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    for name in ("bob", "carol"):
        issued[name] = tokens.add(str(token_file), name)
    issued["boss"] = tokens.add(str(token_file), "boss", admin=True)
    plate, bg = make_shot(root / "shot", frames=range(1, 3))
    proc, admin = serve(root / "state", "--listen", "127.0.0.1:0", "--tls-cert", pki.cert,
                        "--tls-key", pki.key, "--tokens", token_file,
                        "--max-queued-per-user", "3", "--max-auth-failures", "1000")
    yield SimpleNamespace(url=admin.url, cert=pki.cert, wrong=pki.wrong, tokens=issued,
                          token_file=token_file, admin=admin, proc=proc, plate=plate, bg=bg,
                          root=root)
    stop_worker(proc, admin)
    err = proc.stderr.read().decode()
    assert "Traceback" not in err, err


# ----------------------------------------------------------------------------- the tests
def test_tokens_are_checked_and_a_refused_request_runs_nothing(studio, tmp_path):
    assert studio.url.startswith("https://127.0.0.1:")
    alice = user(studio, "alice")
    health = alice.health()
    assert health["user"] == "alice" and health["admin"] is False
    good = spec(studio.plate, studio.bg, tmp_path / "o" / "c.####.exr")
    before = len(studio.admin.jobs())
    for token in (None, "aa_wrong", studio.tokens["alice"][:-1] + "x"):
        status, body, _ = raw(studio.url, studio.cert, "POST", "/v1/jobs", {"spec": good},
                              token=token)
        assert status == 401 and "token" in body["error"], body
    # revoked while the worker runs (the file rewritten by the CLI): refused at once
    carol = user(studio, "carol")
    assert carol.health()["user"] == "carol"
    r = cli("serve", "tokens", "revoke", "carol", "--file", studio.token_file)
    assert r.returncode == 0 and "revoked carol" in r.stderr
    with pytest.raises(WorkerError, match=r"refused the token \(ACTANYWHERE_TOKEN\).*revoked"):
        carol.submit(good)
    listed = cli("serve", "tokens", "list", "--file", studio.token_file).stdout
    assert [line.split("\t")[:2] for line in listed.splitlines()] == [
        ["alice", "user"], ["bob", "user"], ["boss", "admin"]]
    assert len(studio.admin.jobs()) == before  # nothing was queued or run
    assert not (tmp_path / "o").exists()


def test_a_damaged_tokens_file_refuses_its_tokens_until_fixed(studio):
    bob = user(studio, "bob")
    saved = studio.token_file.read_bytes()
    try:
        studio.token_file.write_text("{not json")
        with pytest.raises(WorkerError, match="cannot read its tokens file"):
            bob.health()
        assert studio.admin.health()["ok"]  # the worker's own token still works
    finally:
        studio.token_file.write_bytes(saved)
        os.chmod(studio.token_file, 0o600)
    assert bob.health()["user"] == "bob"


def test_the_certificate_is_checked_against_the_ca_setting(studio, tmp_path):
    wrong = remote.Remote(studio.url, studio.tokens["alice"], studio.wrong, ca_setting="X_CA")
    with pytest.raises(WorkerError) as err:
        Client.remote(wrong)
    assert "certificate is not trusted" in str(err.value) and "X_CA" in str(err.value)
    # a host's own process: the TD's connection file, nothing but the standard library
    conn = tmp_path / "gpu01.json"
    conn.write_text(json.dumps({"url": studio.url, "token": studio.tokens["alice"],
                                "ca": os.path.relpath(studio.wrong, tmp_path)}))
    conn.chmod(0o600)
    code = f"""
import sys
sys.path.insert(0, {str(REPO / "core")!r})
from actanywhere.api import Client, WorkerError
try:
    print("user", Client.connect().health()["user"])
except WorkerError as exc:
    print(exc)
"""
    run = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                         timeout=60, env=_env(ACTANYWHERE_CONNECTION=str(conn)))
    line = run.stdout.strip()
    assert run.returncode == 0 and line.count("\n") == 0, run.stderr
    assert "certificate is not trusted" in line and f"ca in the connection file {conn}" in line
    conn.write_text(json.dumps({"url": studio.url, "token": studio.tokens["alice"],
                                "ca": studio.cert}))
    run = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                         timeout=60, env=_env(ACTANYWHERE_CONNECTION=str(conn)))
    assert run.stdout.strip() == "user alice", run.stdout + run.stderr
    conn.chmod(0o644)  # the token readable by others: refused, naming the file and the fix
    run = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                         timeout=60, env=_env(ACTANYWHERE_CONNECTION=str(conn)))
    assert run.stdout.strip() == f"{conn}: mode 0644 lets other users read your token; " \
        f"chmod 600 {conn}"


def test_generate_reaches_the_remote_worker_and_says_a_wrong_ca_in_one_line(studio, tmp_path):
    out = tmp_path / "g" / "c.####.exr"
    env = _env(ACTANYWHERE_WORKER=studio.url, ACTANYWHERE_TOKEN=studio.tokens["bob"],
               ACTANYWHERE_CA=studio.wrong)
    flags = ["generate", "--plate", studio.plate, "--background", studio.bg, "-o", out,
             "--engine", "flat", "--worker"]
    r = cli(*flags, env=env, timeout=120)
    assert r.returncode == 5 and r.stderr.count("\n") == 1, r.stderr  # as any unreachable worker
    assert r.stderr.startswith("error:") and "not trusted" in r.stderr
    assert "ACTANYWHERE_CA" in r.stderr and "Traceback" not in r.stderr
    r = cli(*flags, env=dict(env, ACTANYWHERE_CA=studio.cert), timeout=120)
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(out.parent))[:2] == ["c.0001.exr", "c.0002.exr"]
    mine = user(studio, "bob").jobs()
    assert mine[0]["owner"] == "bob" and mine[0]["spec"]["output"]["path"] == str(out)


def test_users_see_and_cancel_only_their_own_jobs_admins_all(studio, tmp_path):
    alice, bob, boss = user(studio, "alice"), user(studio, "bob"), user(studio, "boss")
    job = alice.submit(spec(studio.plate, studio.bg, tmp_path / "a" / "c.####.exr"))
    assert alice.wait(job, poll=1, timeout=60)["status"] == "done"
    assert job in [j["id"] for j in alice.jobs()]
    assert job not in [j["id"] for j in bob.jobs()]
    assert all(j["owner"] == "bob" for j in bob.jobs())
    assert all(t["owner"] == "bob" for t in bob.takes())
    for call in (bob.job, bob.cancel, bob.resume, lambda i: bob.events(i)):
        with pytest.raises(WorkerError, match=f"no job {job}.*HTTP 404"):
            call(job)
    with pytest.raises(WorkerError, match="only an admin.*HTTP 403"):
        bob.shutdown()
    assert {j["owner"] for j in boss.jobs()} >= {"alice"}
    assert job in [t["id"] for t in boss.takes()]
    assert boss.job(job)["owner"] == "alice" and studio.admin.job(job)["owner"] == "alice"
    with pytest.raises(WorkerError, match="done; nothing to cancel"):
        boss.cancel(job)  # the admin reaches it (409: it is over), unlike bob (404)


def _blocker(studio, client: Client, tmp_path) -> str:
    """A 600-frame job of ``client``'s that keeps the runner busy until it is cancelled."""
    plate = tmp_path / "long" / "plate.####.exr"
    plate.parent.mkdir(parents=True)
    first = Path(str(studio.plate).replace("####", "0001"))
    for f in range(1, 601):
        os.link(first, plate.parent / f"plate.{f:04d}.exr")
    job = client.submit(spec(plate, studio.bg, tmp_path / "long_out" / "c.####.exr"))
    deadline = time.monotonic() + 60
    while (status := client.job(job)["status"]) == "queued" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert status == "running", status
    return job


def test_the_queue_is_fair_across_users_and_limited_per_user(studio, tmp_path):
    alice, bob = user(studio, "alice"), user(studio, "bob")
    blocker = _blocker(studio, alice, tmp_path)  # alice's job runs: her turn was last
    mine = [alice.submit(spec(studio.plate, studio.bg, tmp_path / f"a{i}" / "c.####.exr"))
            for i in range(3)]
    with pytest.raises(WorkerError) as err:  # a fourth queued job of hers is one too many
        alice.submit(spec(studio.plate, studio.bg, tmp_path / "a3" / "c.####.exr"))
    assert "HTTP 429" in str(err.value) and "--max-queued-per-user" in str(err.value)
    assert "\n" not in str(err.value) and not (tmp_path / "a3").exists()
    theirs = [bob.submit(spec(studio.plate, studio.bg, tmp_path / f"b{i}" / "c.####.exr"))
              for i in range(2)]
    assert alice.job(blocker)["status"] == "running"  # all five were queued meanwhile
    alice.cancel(blocker)
    finals = {j: c.wait(j, poll=1, timeout=120) for c, ids in ((alice, mine), (bob, theirs))
              for j in ids}
    assert {f["status"] for f in finals.values()} == {"done"}
    order = sorted(finals, key=lambda j: finals[j]["started"])
    # round-robin: bob first (alice's turn was the blocker), then each in turn
    assert order == [theirs[0], mine[0], theirs[1], mine[1], mine[2]]
    assert alice.job(blocker)["status"] == "cancelled"


def test_the_fair_queue_in_the_store(tmp_path):
    """The order the runner takes jobs in, through the store itself: round-robin across
    owners by whose last turn is oldest, first come first served within an owner."""
    from actanywhere.worker.store import JobStore, QueueFull

    store = JobStore(str(tmp_path / "jobs.sqlite"))
    a = [store.submit({"n": i}, owner="alice") for i in range(4)]
    b = [store.submit({"n": i}, owner="bob") for i in range(2)]
    c = store.submit({"n": 0}, owner="carol", max_queued=1)
    with pytest.raises(QueueFull, match="carol has 1 jobs queued"):
        store.submit({"n": 1}, owner="carol", max_queued=1)
    taken = []
    while (job := store.claim_next()) is not None:
        taken.append(job["id"])
        store.finish(job["id"], "done", exit_code=0)
        if len(taken) == 2:  # a newcomer is served before those who had a turn
            d = store.submit({"n": 0}, owner="dave")
    assert taken == [a[0], b[0], c, d, a[1], b[1], a[2], a[3]]
    local = [store.submit({"n": i}) for i in range(3)]  # one owner: first in, first out
    assert [store.claim_next()["id"] for _ in local] == local


def test_paths_map_to_the_worker_and_back(studio, tmp_path):
    # the worker's mount and the client's are two folders holding the same files (one a
    # link to the other, as a share mounted twice)
    worker_root = tmp_path / "mnt" / "show"
    shutil.copytree(studio.root / "shot", worker_root / "sh010")
    client_root = tmp_path / "Volumes" / "show"
    client_root.parent.mkdir()
    client_root.symlink_to(worker_root)
    maps = [Rule(str(client_root), str(worker_root))]
    alice = user(studio, "alice", maps)
    plate = client_root / "sh010" / "plate" / "plate.####.exr"
    out = client_root / "sh010" / "out" / "c.####.exr"
    job = alice.submit(spec(plate, client_root / "sh010" / "bg.exr", out))
    final = alice.wait(job, poll=1, timeout=60)
    assert final["status"] == "done"
    # the worker read and wrote its own paths ...
    seen = studio.admin.job(job)
    assert seen["spec"]["plate"]["path"] == str(worker_root / "sh010" / "plate" /
                                                "plate.####.exr")
    assert all(p.startswith(str(worker_root)) for p in seen["outputs"])
    # ... and the client is given its own, which it can open
    assert final["spec"]["output"]["path"] == str(out)
    assert final["outputs"] == [str(out).replace("####", f"{f:04d}") for f in (1, 2)]
    assert all(os.path.isfile(p) for p in final["outputs"])
    take = next(t for t in alice.takes() if t["id"] == job)
    assert take["output"] == str(out) and take["record"] == str(out.parent / "take.json")
    assert take["contact_sheet"].startswith(str(client_root))
    # a path under no map: one line naming the field and the setting, nothing sent
    with pytest.raises(WorkerError) as err:
        alice.submit(spec(plate, tmp_path / "elsewhere" / "bg.exr", out))
    assert str(err.value).startswith("background.path: ")
    assert "add a map for its share to ACTANYWHERE_PATH_MAPS" in str(err.value)
    # a map to a folder the worker lacks: the worker's path and the map used, one line
    gone = [Rule(str(client_root), str(tmp_path / "nowhere" / "show"))]
    with pytest.raises(WorkerError) as err:
        user(studio, "alice", gone).submit(spec(plate, client_root / "sh010" / "bg.exr",
                                                client_root / "o2" / "c.####.exr"))
    line = str(err.value)
    assert "plate.path: " + str(tmp_path / "nowhere" / "show" / "sh010" / "plate") in line
    assert "as the worker sees it" in line and f"mapped by {gone[0]}" in line
    assert str(plate) in line and "\n" not in line and "HTTP 422" in line


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs 127.0.0.2 (Linux)")
def test_failed_attempts_are_limited_per_address(pki, tmp_path):
    from actanywhere.worker import tokens

    token_file = tmp_path / "tokens.json"
    alice = tokens.add(str(token_file), "alice")
    plate, bg = make_shot(tmp_path / "shot", frames=range(1, 3))
    proc, admin = serve(tmp_path / "state", "--listen", "127.0.0.1:0", "--tls-cert", pki.cert,
                        "--tls-key", pki.key, "--tokens", token_file,
                        "--max-auth-failures", "3")
    try:
        good = {"spec": spec(plate, bg, tmp_path / "o" / "c.####.exr")}
        for _ in range(3):
            assert raw(admin.url, pki.cert, "GET", "/v1/health", token="aa_guess")[0] == 401
        # locked out: even the right token is refused, with when to try again; nothing runs
        status, body, headers = raw(admin.url, pki.cert, "POST", "/v1/jobs", good, token=alice)
        assert status == 429 and "too many failed token attempts" in body["error"]
        assert 1 <= int(headers["Retry-After"]) <= 60 and "\n" not in body["error"]
        with pytest.raises(WorkerError, match="HTTP 429"):
            admin.health()
        # another address is not held up by it
        status, body, _ = raw(admin.url, pki.cert, "GET", "/v1/jobs", token=admin.token,
                              source="127.0.0.2")
        assert status == 200 and body["jobs"] == []
        assert not (tmp_path / "o").exists()
    finally:
        stop_worker(proc)
    err = proc.stderr.read().decode()
    assert "Traceback" not in err, err


def test_listening_needs_tls_or_insecure_and_a_private_tokens_file(pki, tmp_path):
    from actanywhere.worker import tokens

    token_file = tmp_path / "tokens.json"
    token = tokens.add(str(token_file), "alice")
    state = tmp_path / "state"
    r = cli("serve", "--state-dir", state, "--listen", "127.0.0.1:0", "--tokens", token_file)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--tls-cert" in r.stderr
    token_file.chmod(0o644)
    r = cli("serve", "--state-dir", state, "--listen", "127.0.0.1:0", "--tls-cert", pki.cert,
            "--tls-key", pki.key, "--tokens", token_file)
    assert r.returncode == 2 and r.stderr == (f"error: {token_file}: mode 0644 lets other "
                                              f"users read the tokens; chmod 600 {token_file}\n")
    token_file.chmod(0o600)
    proc, admin = serve(state, "--listen", "127.0.0.1:0", "--insecure", "--tokens", token_file)
    try:
        assert admin.url.startswith("http://")
        client = Client.remote(remote.Remote(admin.url, token))
        assert client.health()["user"] == "alice"
    finally:
        stop_worker(proc, admin)
    err = proc.stderr.read().decode().splitlines()
    warnings = [line for line in err if line.startswith("warning:")]
    assert len(warnings) == 1 and "--insecure" in warnings[0] and "unencrypted" in warnings[0]


@pytest.mark.slow
def test_schema_fuzzing_of_the_remote_api_finds_no_server_error(studio, tmp_path):
    """schemathesis against the TLS worker with a user's token (not an admin's: stopping
    the worker is a 403 then, so it is fuzzed too): seeded, 20 s at most."""
    pytest.importorskip("schemathesis")
    exe = os.path.join(os.path.dirname(sys.executable), "schemathesis")
    alice = user(studio, "alice")
    job = alice.submit(spec(studio.plate, studio.bg, tmp_path / "o" / "c.####.exr"))
    alice.wait(job, poll=1, timeout=60)
    from actanywhere.worker.openapi import OPENAPI

    schema = tmp_path / "openapi.json"
    schema.write_text(json.dumps(OPENAPI))
    config = tmp_path / "schemathesis.toml"
    config.write_text(f'[parameters]\n"path.id" = "{job}"\n')
    r = subprocess.run([exe, "--no-color", "--config-file", str(config), "run", str(schema),
                        "--url", studio.url, "--tls-verify", studio.cert,
                        "-H", f"Authorization: Bearer {studio.tokens['alice']}",
                        "--checks", "all", "--exclude-checks", "positive_data_acceptance",
                        "--phases", "coverage,fuzzing", "-n", "10", "--seed", "1", "-w", "1",
                        "--max-time", "20", "--request-timeout", "40"],
                       capture_output=True, text=True, timeout=150, cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-6000:]
    assert " passed" in r.stdout and studio.admin.health()["ok"]
    assert alice.job(job)["status"] == "done"


# ------------------------------------------------------------------- the pure path maps
MAPS = pathmap.parse({"S:\\show": "/mnt/show", "/Volumes/show": "/mnt/show",
                      "\\\\filer\\proj": "/mnt/proj"}, "test")


@pytest.mark.parametrize("client,worker", [
    ("S:\\show\\sh010\\plate.####.exr", "/mnt/show/sh010/plate.####.exr"),
    ("s:\\show\\sh010\\plate.####.exr", "/mnt/show/sh010/plate.####.exr"),  # drive's case
    ("S:\\SHOW\\sh010", "/mnt/show/sh010"),  # Windows paths match whatever their case
    ("S:/show/sh010/bg.exr", "/mnt/show/sh010/bg.exr"),  # forward slashes on Windows
    ("S:\\show/sh010\\\\bg.exr", "/mnt/show/sh010/bg.exr"),  # mixed and doubled
    ("S:\\show", "/mnt/show"),
    ("S:\\show\\", "/mnt/show"),
    ("/Volumes/show/sh010/c.%04d.exr", "/mnt/show/sh010/c.%04d.exr"),
    ("/Volumes/show/", "/mnt/show"),
    ("\\\\filer\\proj\\a\\b.exr", "/mnt/proj/a/b.exr"),  # UNC
    ("//filer/proj/a/b.exr", "/mnt/proj/a/b.exr"),
    ("\\\\FILER\\Proj\\a", "/mnt/proj/a"),
    ("S:\\show2\\sh010", None),  # a prefix matches whole components only
    ("S:\\sho", None),
    ("T:\\show\\sh010", None),
    ("/Volumes/show2/x.exr", None),
    ("/volumes/show/x.exr", None),  # POSIX paths match exactly
    ("/Volumes", None),
    ("Volumes/show/x.exr", None),  # relative
    ("show\\sh010", None),
    ("\\\\filer\\projects\\a", None),
    ("", None),
])
def test_paths_map_to_the_worker(client, worker):
    found = pathmap.to_worker(client, MAPS)
    assert (found[0] if found else None) == worker


@pytest.mark.parametrize("worker,windows,client", [
    ("/mnt/show/sh010/out/c.0001.exr", True, "S:\\show\\sh010\\out\\c.0001.exr"),
    ("/mnt/show/sh010/out/c.0001.exr", False, "/Volumes/show/sh010/out/c.0001.exr"),
    ("/mnt/show", True, "S:\\show"),
    ("/mnt/proj/a/b.exr", False, "\\\\filer\\proj\\a\\b.exr"),  # only a Windows map: taken
    ("/mnt/show2/x.exr", True, None),
    ("/mnt/sho", False, None),
    ("/MNT/show/x", False, None),
])
def test_paths_map_back_to_the_client(worker, windows, client):
    found = pathmap.to_client(worker, MAPS, windows=windows)
    assert (found[0] if found else None) == client


def test_the_longest_prefix_wins_and_roots_map():
    maps = pathmap.parse([["/mnt/show", "S:\\show"], ["/mnt/show/sh010/plates", "P:\\"],
                          ["S:\\", "/mnt/s"]], "test")
    assert pathmap.to_worker("/mnt/show/sh010/plates/a.exr", maps)[0] == "P:\\a.exr"
    assert pathmap.to_worker("/mnt/show/sh010/platesX/a", maps)[0] == "S:\\show\\sh010\\platesX\\a"
    assert pathmap.to_worker("/mnt/show/sh010/plates", maps)[0] == "P:\\"
    assert pathmap.to_worker("s:\\any\\thing", maps)[0] == "/mnt/s/any/thing"
    rule = pathmap.to_worker("/mnt/show/x", maps)[1]
    assert rule == Rule("/mnt/show", "S:\\show") and str(rule) == "/mnt/show -> S:\\show"
    for path in ("S:\\show\\a\\b.exr", "/Volumes/show/a/b.exr", "\\\\filer\\proj\\x"):
        there = pathmap.to_worker(path, MAPS)[0]
        back = pathmap.to_client(there, MAPS, windows=path[0] != "/")[0]
        assert back == path  # both ways, each side in its own form


def test_path_maps_are_read_or_refused_in_one_line():
    text = pathmap.parse("S:\\show=/mnt/show; /Volumes/show=/mnt/show", "ENV")
    assert text == (Rule("S:\\show", "/mnt/show"), Rule("/Volumes/show", "/mnt/show"))
    for bad, words in (([["show", "/mnt/show"]], "the client prefix 'show'"),
                       ({"S:\\show": "mnt/show"}, "the worker prefix 'mnt/show'"),
                       ([["S:\\show"]], "is not a map"), ("S:\\show", "is not a map"),
                       (5, "not int")):
        with pytest.raises(PathMapError) as err:
            pathmap.parse(bad, "path_maps in c.json")
        assert str(err.value).startswith("path_maps in c.json: ") and words in str(err.value)
    assert pathmap.parse(None, "x") == () and pathmap.parse("", "x") == ()


def _every_path(prefix: str) -> dict:
    return {"plate": {"path": f"{prefix}/p/p.####.exr", "frames": "1-2"},
            "matte": {"source": "sam", "path": f"{prefix}/m/m.####.exr",
                      "keys": [{"frame": 1, "matte": f"{prefix}/k1.exr"},
                               {"frame": 2, "points": [[1, 2, 1]]}],
                      "sam": {"checkpoint": f"{prefix}/sam.pth", "cache_dir": f"{prefix}/c",
                              "resume_from": f"{prefix}/m/r.####.exr"}},
            "background": {"path": f"{prefix}/bg.exr"},
            "motion": {"source": "file", "path": f"{prefix}/motion.json",
                       "weights": f"{prefix}/w.safetensors"},
            "engine": {"name": "diffusion", "model": f"{prefix}/model"},
            "color": {"config": "ocio://default"}, "output": {"path": f"{prefix}/o/c.####.exr"}}


def test_every_path_of_a_spec_maps_both_ways():
    maps = (Rule("S:\\show", "/mnt/show"),)
    client = _every_path("S:\\show")
    sent, mapped = pathmap.spec_to_worker(client, maps, setting="ENV")
    assert sent == _every_path("/mnt/show") and client == _every_path("S:\\show")
    assert set(mapped) == {"plate.path", "matte.path", "matte.keys.0.matte",
                           "matte.sam.checkpoint", "matte.sam.cache_dir",
                           "matte.sam.resume_from", "background.path",
                           "motion.path", "motion.weights", "engine.model", "output.path"}
    assert mapped["plate.path"] == ("S:\\show/p/p.####.exr", maps[0])
    back = pathmap.job_to_client({"spec": sent, "outputs": ["/mnt/show/o/c.0001.exr",
                                                             "/elsewhere/x.exr"]},
                                 maps, windows=True)
    assert back["outputs"] == ["S:\\show\\o\\c.0001.exr", "/elsewhere/x.exr"]
    assert back["spec"]["background"]["path"] == "S:\\show\\bg.exr"
    with pytest.raises(PathMapError) as err:
        pathmap.spec_to_worker(dict(client, background={"path": "T:\\bg.exr"}), maps,
                               setting="ENV")
    assert err.value.field == "background.path" and str(err.value).startswith(
        "background.path: T:\\bg.exr is under none of the path maps (S:\\show -> /mnt/show)")
    assert pathmap.spec_to_worker(client, ())[0] == client  # no maps: as it is


def test_the_path_fields_are_the_ones_the_spec_makes_absolute():
    """``PATH_FIELDS`` and ``shotspec.absolute_paths`` name the same fields (the cache folder
    only here: it is not a file the job reads)."""
    from actanywhere.api.shotspec import absolute_paths

    relative = _every_path("rel")
    fixed = absolute_paths(json.loads(json.dumps(relative)), "/base")
    changed = {f for f, holder, key in pathmap.spec_paths(fixed)
               if holder[key].startswith("/base/")}
    assert changed | {"matte.sam.cache_dir"} == {f for f, _, _ in pathmap.spec_paths(relative)}
