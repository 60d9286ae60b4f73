"""Every job and take the worker sees, in one SQLite database (WAL mode).

A job is one submitted ShotSpec; its status moves queued -> running -> done | failed |
cancelled, or to interrupted when the worker died while it ran (found at the next start).
Each job has an ``owner`` (the name of the token that submitted it; ``local`` for the
worker's own token and for jobs stored before owners existed). The runner takes queued jobs
round-robin across owners: the next job is the oldest queued one of the owner whose last job
was taken longest ago (one never served first; ``turn`` numbers the jobs in the order they
were taken), so one owner's fifty jobs do not hold back another's one; a single owner's jobs
run in the order they came.
Progress events are appended to ``events`` with a per-job sequence number, so a client that
long-polls with ``after=N`` gets exactly the events it has not seen; a job's ``end`` event (its
exit code) is written in the same transaction as its final status, so whoever sees the one
finds the other. Each connection is used by one thread; writes are short transactions, so the
runner and the HTTP threads never wait long on each other.

The file and its -wal/-shm are 0600. A damaged database (bad header, truncated, a page of junk:
``PRAGMA quick_check``) is moved aside as ``jobs.sqlite.corrupt-<time>``, never deleted, and a
new one started (``notes`` says so). A row whose JSON cannot be read is skipped by listings
with a warning naming the job (once), and named in a ``DamagedRecord`` when asked for alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from .. import catalog
from ..api.status import ACTIVE, END, FINAL, WORK_STAGES
from ..errors import JobCancelled, OutputError, SpecError
from . import paths

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    status TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    seed INTEGER,
    engine TEXT,
    model TEXT,
    model_hash TEXT,
    done INTEGER NOT NULL DEFAULT 0,
    total INTEGER NOT NULL DEFAULT 0,
    stage TEXT,
    error TEXT,
    outputs TEXT,
    timings TEXT,
    client TEXT,
    owner TEXT NOT NULL DEFAULT 'local',
    turn INTEGER
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status, created);
CREATE TABLE IF NOT EXISTS events (
    job TEXT NOT NULL,
    seq INTEGER NOT NULL,
    time REAL NOT NULL,
    event TEXT NOT NULL,
    PRIMARY KEY (job, seq)
);
"""
#: columns added after the first release: an older database gets them at open (its jobs
#: are local's, and none has had a turn)
_ADDED = {"owner": "ALTER TABLE jobs ADD COLUMN owner TEXT NOT NULL DEFAULT 'local';",
          "turn": "ALTER TABLE jobs ADD COLUMN turn INTEGER;"}
_OWNER_INDEX = "CREATE INDEX IF NOT EXISTS jobs_owner ON jobs(owner, turn);"
#: the next job: the oldest queued one of the owner whose last turn is the oldest
_NEXT = """
SELECT j.* FROM jobs j WHERE j.status='queued'
ORDER BY COALESCE((SELECT MAX(s.turn) FROM jobs s WHERE s.owner=j.owner), 0), j.created, j.rowid
LIMIT 1
"""
_SIDE_FILES = ("-wal", "-shm", "-journal")
_DAMAGED = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


class DamagedRecord(ValueError):
    """A job whose stored record cannot be read; the message names the job and the file."""

    def __init__(self, job: str, what: str, path: str) -> None:
        super().__init__(f"job {job}: its record in {path} is damaged ({what}); it cannot be "
                         "shown or run: submit the shot again")
        self.job = job


def _stderr(line: str) -> None:
    print(f"warning: {line}", file=sys.stderr, flush=True)


class StateFull(OutputError):
    """The job store cannot be written: its disk is full."""


class QueueFull(OutputError):
    """The owner has as many jobs queued as one user may."""


class JobStore:
    """Thread-safe access to the job database at ``path``. ``warn``: where warnings about
    damaged rows go (each said once); ``notes``: what opening the store did that its user
    should hear of (a damaged file kept aside)."""

    def __init__(self, path: str, *, warn: Callable[[str], None] = _stderr) -> None:
        self.path = os.path.abspath(path)
        self.notes: list[str] = []
        self._warn = warn
        self._warned: set[str] = set()
        self._warned_lock = threading.Lock()
        self._local = threading.local()
        self._write = threading.Lock()
        paths.private_folder(os.path.dirname(self.path))
        self._create()
        problem = self._check()
        if problem is not None:
            self._keep_aside(problem)
            self._create()
        with self._write:
            db = self._db()
            db.executescript(SCHEMA)  # executescript manages its own transaction
            have = {r["name"] for r in db.execute("PRAGMA table_info(jobs)")}
            for column, add in _ADDED.items():
                if column not in have:
                    db.executescript(add)
            db.executescript(_OWNER_INDEX)

    def _create(self) -> None:
        """Create the file 0600 before SQLite does (it would follow the umask; its -wal and
        -shm then take the file's mode), and make what an earlier run left private."""
        try:
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
            for suffix in ("", *_SIDE_FILES):
                paths.private_file(self.path + suffix)
        except OSError as exc:
            raise self._unusable(exc.strerror or str(exc)) from None

    def _unusable(self, why: str) -> OutputError:
        return OutputError(f"{self.path}: cannot open the job database ({why}); check the "
                           "state folder's permissions and free space, or pass another "
                           "--state-dir")

    def _check(self) -> str | None:
        """What is wrong with the database file, or None when SQLite finds it sound."""
        try:
            db = sqlite3.connect(self.path, timeout=30)
            try:
                rows = db.execute("PRAGMA quick_check").fetchall()
            finally:
                db.close()
        except sqlite3.DatabaseError as exc:
            if (getattr(exc, "sqlite_errorcode", 0) & 0xFF) not in _DAMAGED:
                raise self._unusable(str(exc)) from None
            return str(exc)
        if rows == [("ok",)]:
            return None
        return "; ".join(" ".join(str(r[0]).split()) for r in rows[:2])[:200]

    def _keep_aside(self, problem: str) -> None:
        """Move the damaged file (and its -wal/-shm) aside, never deleting it."""
        kept = f"{self.path}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}"
        n = 1
        while os.path.exists(kept):
            kept, n = f"{self.path}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}-{n}", n + 1
        try:
            os.replace(self.path, kept)
            for suffix in _SIDE_FILES:
                if os.path.exists(self.path + suffix):
                    os.replace(self.path + suffix, kept + suffix)
        except OSError as exc:
            raise self._unusable(f"damaged ({problem}), and it cannot be moved aside: "
                                 f"{exc.strerror or exc}") from None
        self.notes.append(f"{self.path} was damaged ({problem}); kept it as {kept} and started "
                          "an empty job database (the jobs it listed are in the kept file)")

    def warn(self, line: str) -> None:
        """Say ``line`` once (a damaged row is met on every listing)."""
        with self._warned_lock:
            if line in self._warned:
                return
            self._warned.add(line)
        self._warn(line)

    def close(self) -> None:
        """Close this thread's connection (others close with their threads)."""
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; a full disk is a ``StateFull`` line, not SQLite's error."""
        db = self._db()
        with self._write:
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                if "full" not in str(exc):
                    raise
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                raise StateFull(f"{self.path}: the disk holding the worker's job store is "
                                "full; free space there (or start the worker with another "
                                "--state-dir)") from None

    # ------------------------------------------------------------------------------ writes
    def submit(self, spec: dict[str, Any], client: str = "", *, owner: str = "local",
               max_queued: int | None = None) -> str:
        """Queue ``spec`` for ``owner``; ``QueueFull`` when ``owner`` has ``max_queued`` jobs
        queued already (counted in the same transaction)."""
        job = uuid.uuid4().hex[:12]
        engine = spec.get("engine") or {}
        with self._tx() as db:
            _room(db, owner, max_queued)
            db.execute("INSERT INTO jobs (id, spec, status, created, seed, engine, model, client,"
                       " owner) VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?)",
                       (job, json.dumps(spec), time.time(), catalog.seed_of(spec),
                        engine.get("name", "composite"), engine.get("model"), client, owner))
        return job

    def claim_next(self) -> dict[str, Any] | None:
        """The next queued job (round-robin across owners, see the module), now marked
        running (one runner calls this). A queued job whose record cannot be read is failed
        (with a warning) and the next one taken."""
        while True:
            damaged = None
            with self._tx() as db:
                row = db.execute(_NEXT).fetchone()
                if row is None:
                    return None
                try:
                    _row(row, self.path)
                except DamagedRecord as exc:
                    damaged = exc
                    db.execute("UPDATE jobs SET status='failed', finished=?, error=? WHERE id=?",
                               (time.time(), str(exc), row["id"]))
                    _append(db, row["id"], {"stage": END, "message": "failed",
                                            "exit_code": SpecError.exit_code})
                else:
                    db.execute("UPDATE jobs SET status='running', started=?, "
                               "attempts=attempts+1, error=NULL, turn=(SELECT COALESCE("
                               "MAX(turn), 0) + 1 FROM jobs) WHERE id=?",
                               (time.time(), row["id"]))
            if damaged is None:
                return self.get(row["id"])
            self.warn(str(damaged))

    def event(self, job: str, event: dict[str, Any]) -> int:
        """Append a progress event; updates the job's stage/done/total. Returns its seq."""
        with self._tx() as db:
            return _append(db, job, event)

    def set_model_hash(self, job: str, model_hash: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE jobs SET model_hash=? WHERE id=?", (model_hash, job))

    def finish(self, job: str, status: str, *, exit_code: int, error: str | None = None,
               outputs: list[str] | None = None, timings: dict[str, float] | None = None) -> None:
        """Record the job's end: its final ``status`` and its ``end`` event (``exit_code``, the
        CLI's) in one transaction, so a reader that sees the status finds the event."""
        if status not in FINAL:
            raise ValueError(status)
        with self._tx() as db:
            db.execute("UPDATE jobs SET status=?, finished=?, error=?, outputs=?, timings=? "
                       "WHERE id=?", (status, time.time(), error,
                                      json.dumps(outputs or []), json.dumps(timings or {}), job))
            _append(db, job, {"stage": END, "message": status, "exit_code": exit_code})

    def request_cancel(self, job: str) -> str | None:
        """Cancel a queued job at once; a running one is cancelled by the runner. Returns the
        status before the request, or None for an unknown job."""
        with self._tx() as db:
            row = db.execute("SELECT status FROM jobs WHERE id=?", (job,)).fetchone()
            if row is None:
                return None
            if row["status"] == "queued":
                db.execute("UPDATE jobs SET status='cancelled', finished=?, "
                           "error='cancelled before it started' WHERE id=?", (time.time(), job))
                _append(db, job, {"stage": END, "message": "cancelled",
                                  "exit_code": JobCancelled.exit_code})
            return str(row["status"])

    def resume(self, job: str, *, max_queued: int | None = None) -> bool:
        """Queue an interrupted, failed or cancelled job again (its frames on disk are kept and
        skipped). False when the job is unknown or still active; ``QueueFull`` when its
        owner has ``max_queued`` jobs queued."""
        with self._tx() as db:
            row = db.execute("SELECT status, spec, owner FROM jobs WHERE id=?",
                             (job,)).fetchone()
            if row is None or row["status"] in ACTIVE or row["status"] == "done":
                return False
            _room(db, row["owner"], max_queued)
            spec = _spec(job, row["spec"], self.path)
            if not isinstance(spec.get("output"), dict):
                spec["output"] = {}
            spec["output"]["existing"] = "skip"
            db.execute("UPDATE jobs SET status='queued', spec=?, finished=NULL, error=NULL "
                       "WHERE id=?", (json.dumps(spec), job))
        return True

    def mark_interrupted(self) -> list[str]:
        """At start-up: jobs left running by a worker that died are interrupted."""
        with self._tx() as db:
            rows = db.execute("SELECT id FROM jobs WHERE status='running'").fetchall()
            db.execute("UPDATE jobs SET status='interrupted', finished=?, error='the worker "
                       "stopped while this job ran; resume it to finish the missing frames' "
                       "WHERE status='running'", (time.time(),))
            for r in rows:
                _append(db, r["id"], {"stage": END, "message": "interrupted",
                                      "exit_code": JobCancelled.exit_code})
        return [r["id"] for r in rows]

    # ------------------------------------------------------------------------------- reads
    def get(self, job: str) -> dict[str, Any] | None:
        """One job; None when unknown, DamagedRecord when its record cannot be read."""
        row = self._db().execute("SELECT * FROM jobs WHERE id=?", (job,)).fetchone()
        return _row(row, self.path) if row else None

    def list(self, status: str | None = None, limit: int = 200, *, owner: str | None = None
             ) -> list[dict[str, Any]]:
        """Jobs (``owner``'s only, when given), newest first; a damaged one is left out with a
        warning naming it."""
        where = " AND ".join(w for w, v in (("status=?", status), ("owner=?", owner)) if v)
        args = [v for v in (status, owner) if v]
        rows = self._db().execute(f"SELECT * FROM jobs {'WHERE ' + where if where else ''} "
                                  "ORDER BY created DESC LIMIT ?", (*args, limit)).fetchall()
        out = []
        for r in rows:
            try:
                out.append(_row(r, self.path))
            except DamagedRecord as exc:
                self.warn(f"{exc} (left out of the job list)")
        return out

    def events(self, job: str, after: int = 0) -> list[dict[str, Any]]:
        """The job's events after seq ``after``; a damaged one is skipped with a warning."""
        rows = self._db().execute("SELECT seq, time, event FROM events WHERE job=? AND seq>? "
                                  "ORDER BY seq", (job, after)).fetchall()
        out = []
        for r in rows:
            try:
                event = json.loads(r["event"])
                if not isinstance(event, dict):
                    raise ValueError("not an object")
            except (TypeError, ValueError) as exc:
                self.warn(f"job {job}: event {r['seq']} in {self.path} is damaged ({exc}); "
                          "skipped")
                continue
            out.append({"seq": r["seq"], "time": r["time"], **event})
        return out

    def queued(self, owner: str | None = None) -> int:
        """Queued jobs (``owner``'s only, when given)."""
        if owner is None:
            return int(self._db().execute("SELECT COUNT(*) FROM jobs WHERE status='queued'")
                       .fetchone()[0])
        return _queued(self._db(), owner)


def _queued(db: sqlite3.Connection, owner: str) -> int:
    return int(db.execute("SELECT COUNT(*) FROM jobs WHERE status='queued' AND owner=?",
                          (owner,)).fetchone()[0])


def _room(db: sqlite3.Connection, owner: str, max_queued: int | None) -> None:
    if max_queued is not None and _queued(db, owner) >= max_queued:
        raise QueueFull(f"{owner} has {max_queued} jobs queued already, the most one user may "
                        "(--max-queued-per-user); wait for one to start, or cancel one")


def _append(db: sqlite3.Connection, job: str, event: dict[str, Any]) -> int:
    """Append ``event`` within the caller's transaction; its seq."""
    seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE job=?",
                     (job,)).fetchone()[0]
    db.execute("INSERT INTO events (job, seq, time, event) VALUES (?, ?, ?, ?)",
               (job, seq, time.time(), json.dumps(event)))
    if event.get("stage") in WORK_STAGES:
        db.execute("UPDATE jobs SET stage=?, done=?, total=? WHERE id=?",
                   (event["stage"], event.get("done", 0), event.get("total", 0), job))
    return seq


def _json(job: str, field: str, text: Any, kind: type, path: str) -> Any:
    try:
        value = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise DamagedRecord(job, f"{field} is not JSON: {exc}", path) from None
    if not isinstance(value, kind):
        raise DamagedRecord(job, f"{field} is not a JSON {kind.__name__}", path)
    return value


def _spec(job: str, text: Any, path: str) -> dict[str, Any]:
    return _json(job, "spec", text, dict, path)


def _row(row: sqlite3.Row, path: str) -> dict[str, Any]:
    """A job row as the API gives it; DamagedRecord when its JSON cannot be read."""
    d = dict(row)
    d["spec"] = _spec(d["id"], d["spec"], path)
    d["outputs"] = _json(d["id"], "outputs", d["outputs"], list, path) if d["outputs"] else []
    d["timings"] = _json(d["id"], "timings", d["timings"], dict, path) if d["timings"] else {}
    return d
