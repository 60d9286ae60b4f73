"""The worker's tokens file: one token per user (or host), each with a name and an admin flag,
stored as its sha256 only (a token is 256 random bits, so a fast hash suffices: nothing to
guess from it; the token itself is printed once, when added).

    {"version": 1, "tokens": [{"name": "alice", "admin": false, "sha256": "...",
                               "created": "2026-05-01T10:00:00Z"}]}

The file must be readable by its owner only (0600 on POSIX); anything else is refused in one
line naming the file and the fix. ``TokenFile`` re-reads it when it changes (mtime, size or
inode), so a revocation takes effect at the next request without restarting the worker; a
file that turns unreadable or loose meanwhile refuses every token in it until it is fixed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from ..api import atomic
from ..errors import SpecError

VERSION = 1
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
#: the name of the token the worker writes to its own connection file (an admin)
LOCAL = "local"
PREFIX = "aa_"


class TokensError(SpecError):
    """A tokens file that cannot be used; one line naming it and the fix."""


@dataclass(frozen=True)
class Entry:
    name: str
    admin: bool
    sha256: str
    created: str = ""


def digest(token: str | bytes) -> str:
    raw = token.encode("utf-8", "surrogateescape") if isinstance(token, str) else token
    return hashlib.sha256(raw).hexdigest()


def check_mode(path: str, what: str = "the tokens") -> None:
    """TokensError when ``path`` (holding ``what``) may be read or written by other users
    (POSIX)."""
    mode = atomic.loose_mode(path)
    if mode is not None:
        raise TokensError(f"{path}: mode {mode:04o} lets other users read {what}; "
                          f"chmod 600 {path}")


def read(path: str) -> list[Entry]:
    """The entries of the tokens file at ``path``; TokensError (one line) when it is missing,
    loose, or not a tokens file."""
    try:
        check_mode(path)
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise TokensError(f"{path}: no such tokens file; make one with `actanywhere serve "
                          f"tokens add NAME --file {path}`") from None
    except OSError as exc:
        raise TokensError(f"{path}: cannot read the tokens file ({exc.strerror or exc})"
                          ) from None
    except ValueError as exc:
        raise TokensError(f"{path}: not a tokens file (JSON: {exc}); fix it or make a new one "
                          "with `actanywhere serve tokens add`") from None
    rows = data.get("tokens") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise TokensError(f"{path}: not a tokens file (no \"tokens\" list); make one with "
                          "`actanywhere serve tokens add`")
    out, seen = [], set()
    for i, row in enumerate(rows):
        ok = isinstance(row, dict) and isinstance(row.get("name"), str) and \
            NAME.match(row["name"]) and isinstance(row.get("sha256"), str) and \
            re.fullmatch(r"[0-9a-f]{64}", row["sha256"]) and \
            isinstance(row.get("admin", False), bool)
        if not ok:
            raise TokensError(f"{path}: tokens entry {i} needs a name, a sha256 (64 hex "
                              "digits) and admin true/false; revoke it and add it again")
        if row["name"] in seen or row["name"] == LOCAL:
            raise TokensError(f"{path}: the name {row['name']!r} is "
                              f"{'reserved' if row['name'] == LOCAL else 'given twice'}; "
                              "each token needs a name of its own")
        seen.add(row["name"])
        out.append(Entry(row["name"], row.get("admin", False), row["sha256"],
                         str(row.get("created", ""))))
    return out


def _write(path: str, entries: list[Entry]) -> None:
    data = {"version": VERSION, "tokens": [
        {"name": e.name, "admin": e.admin, "sha256": e.sha256, "created": e.created}
        for e in entries]}
    try:
        atomic.write_json(path, data, mode=0o600)
    except OSError as exc:
        raise TokensError(f"{path}: cannot write the tokens file ({exc.strerror or exc})"
                          ) from None


def add(path: str, name: str, *, admin: bool = False) -> str:
    """Add a token for ``name`` to the file at ``path`` (made 0600 if new); the token, which
    is not stored and cannot be shown again."""
    if not NAME.match(name) or name == LOCAL:
        raise TokensError(f"{name!r}: a token's name is 1-64 letters, digits, '.', '_', '@' "
                          f"or '-', and not {LOCAL!r}")
    entries = read(path) if os.path.exists(path) else []
    if any(e.name == name for e in entries):
        raise TokensError(f"{path}: {name} has a token already; revoke it first "
                          f"(`actanywhere serve tokens revoke {name} --file {path}`)")
    token = PREFIX + secrets.token_urlsafe(32)
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    _write(path, [*entries, Entry(name, admin, digest(token), created)])
    return token


def revoke(path: str, name: str) -> None:
    entries = read(path)
    if not any(e.name == name for e in entries):
        raise TokensError(f"{path}: no token named {name!r} (`actanywhere serve tokens list "
                          f"--file {path}` lists them)")
    _write(path, [e for e in entries if e.name != name])


class TokenFile:
    """The tokens file as the worker reads it: looked up by token, re-read when it changes.
    ``error``: why the file cannot be used now (then no token of it is accepted)."""

    def __init__(self, path: str, warn: Any = None) -> None:
        self.path = os.path.abspath(path)
        self._warn = warn or (lambda line: print(f"warning: {line}", file=sys.stderr,
                                                 flush=True))
        self._lock = threading.Lock()
        self._seen: tuple[int, int, int] | None = None
        self.entries: list[Entry] = read(self.path)  # at start: a bad file stops the worker
        self.error: str | None = None
        self._seen = self._stamp()

    def _stamp(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def refresh(self) -> None:
        """Re-read the file if it changed since it was last read."""
        stamp = self._stamp()
        with self._lock:
            if stamp == self._seen and stamp is not None:
                return
            self._seen = stamp
            try:
                self.entries, self.error = read(self.path), None
            except TokensError as exc:
                self.entries, self.error = [], str(exc)
                self._warn(f"{exc}; refusing its tokens until it is fixed")

    def find(self, token: bytes) -> Entry | None:
        """The entry whose token is ``token`` (every entry compared, in constant time)."""
        self.refresh()
        want = digest(token)
        found = None
        for entry in self.entries:
            if hmac.compare_digest(entry.sha256, want):
                found = entry
        return found
