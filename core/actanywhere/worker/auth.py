"""Who sends a request: the worker's own token (its connection file; the ``local`` admin) or
a token of the tokens file (``tokens.py``), each compared in constant time. In remote mode
(a tokens file, or ``--listen``) failed attempts are counted per client address: after
``max_failures`` within ``window_s`` that address is refused (429, Retry-After) until the
oldest of them is older than the window, its token not even looked at."""

from __future__ import annotations

import hmac
import math
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass

from .tokens import LOCAL, TokenFile

AUTH_WINDOW_S = 60.0
MAX_FAILURES = 10
_ADDRESSES = 4096  # failure records kept; the least recently failing address goes first


@dataclass(frozen=True)
class User:
    """The token's owner: its name owns the jobs it submits; an admin sees and stops all."""

    name: str
    admin: bool
    local: bool = False  # the worker's own token: no queue limit


@dataclass(frozen=True)
class Refusal:
    status: int
    message: str
    retry_after: int | None = None


class Failures:
    """Failed attempts per client address within a sliding window."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit, self.window_s = limit, window_s
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, address: str, now: float) -> deque[float]:
        times = self._seen.get(address, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times

    def locked(self, address: str) -> int | None:
        """Seconds until ``address`` may try again, or None when it may now."""
        now = time.monotonic()
        with self._lock:
            times = self._recent(address, now)
            if len(times) < self.limit:
                return None
            return max(1, math.ceil(times[-self.limit] + self.window_s - now))

    def failed(self, address: str) -> None:
        now = time.monotonic()
        with self._lock:
            times = self._recent(address, now)
            times.append(now)
            self._seen[address] = times
            self._seen.move_to_end(address)
            while len(self._seen) > _ADDRESSES:
                self._seen.popitem(last=False)


class Auth:
    """The worker's tokens: ``identify`` a request's Authorization header."""

    def __init__(self, local_token: str, *, tokens: TokenFile | None = None,
                 failures: Failures | None = None) -> None:
        self.local = f"Bearer {local_token}".encode()
        self.tokens, self.failures = tokens, failures

    def identify(self, header: bytes, address: str) -> User | Refusal:
        if self.failures is not None:
            wait = self.failures.locked(address)
            if wait is not None:
                return Refusal(429, f"too many failed token attempts from {address}; try "
                               f"again in {wait} s with a valid token", wait)
        if hmac.compare_digest(header, self.local):
            return User(LOCAL, admin=True, local=True)
        if self.tokens is not None and header.startswith(b"Bearer "):
            entry = self.tokens.find(header[len(b"Bearer "):].strip())
            if entry is not None:
                return User(entry.name, entry.admin)
            if self.tokens.error is not None:
                if self.failures is not None:
                    self.failures.failed(address)
                return Refusal(503, "the worker cannot read its tokens file, so it accepts "
                               "none of its tokens; tell the worker's admin (its log says why)")
        if self.failures is not None:
            self.failures.failed(address)
        what = "missing" if not header else "wrong or revoked"
        fix = ("ask the worker's admin for a token (ACTANYWHERE_TOKEN or the connection file)"
               if self.tokens is not None else "read it from the worker's connection file")
        return Refusal(401, f"{what} token; {fix}")
