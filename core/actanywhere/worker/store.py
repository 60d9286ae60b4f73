"""Every job and take the worker sees, in one SQLite database (WAL mode).

A job is one submitted ShotSpec; its status moves queued -> running -> done | failed |
cancelled, or to interrupted when the worker died while it ran (found at the next start).
Progress events are appended to ``events`` with a per-job sequence number, so a client that
long-polls with ``after=N`` gets exactly the events it has not seen. Each connection is used
by one thread; writes are short transactions, so the runner and the HTTP threads never wait
long on each other.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..api.status import ACTIVE, FINAL, WORK_STAGES

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
    client TEXT
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



class JobStore:
    """Thread-safe access to the job database at ``path``."""

    def __init__(self, path: str) -> None:
        self.path = path
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._local = threading.local()
        self._write = threading.Lock()
        with self._write:
            self._db().executescript(SCHEMA)  # executescript manages its own transaction

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
        db = self._db()
        with self._write:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    # ------------------------------------------------------------------------------ writes
    def submit(self, spec: dict[str, Any], client: str = "") -> str:
        job = uuid.uuid4().hex[:12]
        diff = spec.get("diffusion") or {}
        engine = spec.get("engine") or {}
        with self._tx() as db:
            db.execute("INSERT INTO jobs (id, spec, status, created, seed, engine, model, client)"
                       " VALUES (?, ?, 'queued', ?, ?, ?, ?, ?)",
                       (job, json.dumps(spec), time.time(), diff.get("seed", 0),
                        engine.get("name", "composite"), engine.get("model"), client))
        return job

    def claim_next(self) -> dict[str, Any] | None:
        """The oldest queued job, now marked running (one runner calls this)."""
        with self._tx() as db:
            row = db.execute("SELECT id FROM jobs WHERE status='queued' ORDER BY created, rowid "
                             "LIMIT 1").fetchone()
            if row is None:
                return None
            db.execute("UPDATE jobs SET status='running', started=?, attempts=attempts+1, "
                       "error=NULL WHERE id=?", (time.time(), row["id"]))
        return self.get(row["id"])

    def event(self, job: str, event: dict[str, Any]) -> int:
        """Append a progress event; updates the job's stage/done/total. Returns its seq."""
        with self._tx() as db:
            seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE job=?",
                             (job,)).fetchone()[0]
            db.execute("INSERT INTO events (job, seq, time, event) VALUES (?, ?, ?, ?)",
                       (job, seq, time.time(), json.dumps(event)))
            if event.get("stage") in WORK_STAGES:
                db.execute("UPDATE jobs SET stage=?, done=?, total=? WHERE id=?",
                           (event["stage"], event.get("done", 0), event.get("total", 0), job))
        return seq

    def set_model_hash(self, job: str, model_hash: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE jobs SET model_hash=? WHERE id=?", (model_hash, job))

    def finish(self, job: str, status: str, *, error: str | None = None,
               outputs: list[str] | None = None, timings: dict[str, float] | None = None) -> None:
        if status not in FINAL:
            raise ValueError(status)
        with self._tx() as db:
            db.execute("UPDATE jobs SET status=?, finished=?, error=?, outputs=?, timings=? "
                       "WHERE id=?", (status, time.time(), error,
                                      json.dumps(outputs or []), json.dumps(timings or {}), job))

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
            return str(row["status"])

    def resume(self, job: str) -> bool:
        """Queue an interrupted, failed or cancelled job again (its frames on disk are kept and
        skipped). False when the job is unknown or still active."""
        with self._tx() as db:
            row = db.execute("SELECT status, spec FROM jobs WHERE id=?", (job,)).fetchone()
            if row is None or row["status"] in ACTIVE or row["status"] == "done":
                return False
            spec = json.loads(row["spec"])
            spec.setdefault("output", {})["existing"] = "skip"
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
        return [r["id"] for r in rows]

    # ------------------------------------------------------------------------------- reads
    def get(self, job: str) -> dict[str, Any] | None:
        row = self._db().execute("SELECT * FROM jobs WHERE id=?", (job,)).fetchone()
        return _row(row) if row else None

    def list(self, status: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        if status:
            rows = self._db().execute("SELECT * FROM jobs WHERE status=? ORDER BY created DESC "
                                      "LIMIT ?", (status, limit)).fetchall()
        else:
            rows = self._db().execute("SELECT * FROM jobs ORDER BY created DESC LIMIT ?",
                                      (limit,)).fetchall()
        return [_row(r) for r in rows]

    def events(self, job: str, after: int = 0) -> list[dict[str, Any]]:
        rows = self._db().execute("SELECT seq, time, event FROM events WHERE job=? AND seq>? "
                                  "ORDER BY seq", (job, after)).fetchall()
        return [{"seq": r["seq"], "time": r["time"], **json.loads(r["event"])} for r in rows]

    def queued(self) -> int:
        return int(self._db().execute("SELECT COUNT(*) FROM jobs WHERE status='queued'")
                   .fetchone()[0])


def _row(row: sqlite3.Row) -> dict[str, Any]:
    d = dict(row)
    d["spec"] = json.loads(d["spec"])
    for key in ("outputs", "timings"):
        d[key] = json.loads(d[key]) if d[key] else ([] if key == "outputs" else {})
    return d
