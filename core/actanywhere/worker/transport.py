"""The worker's HTTP server: uvicorn (its h11 protocol, asyncio) on a socket bound at start,
with what a service on a shared machine needs and uvicorn does not give by itself:

- A header timeout. A connection must send a whole authorised request head within
  ``HEADER_TIMEOUT_S`` (idle keep-alive included; unauthorised, its body too) or it is
  closed: a timer armed when it opens and after each answer, stopped when the app says the
  request's token is right (the ``AUTHORISED`` scope extension). A byte now and then does
  not reset it, so half-open and byte-at-a-time connections cannot pile up.
- A bound on open connections (``connection_limit()``). When all are taken, the one that has
  waited longest unauthorised is closed to make room; a new one is refused only while every
  connection holds an authorised request, so authorised long polls wait their full time.
- Protocol errors (a malformed request line, a bad Content-Length, headers over 64 KiB: 431)
  answered with a JSON ``Error`` like the API's own (a request line that is not HTTP/1.x gets
  the body alone, as HTTP/0.9 would), the rest of what the client sends read and dropped so
  it sees the answer, not a reset.
- Enough threads for a long poll on every connection (the routes run on a thread pool).
- TLS when given a server context (``tls.py``): a TLS handshake gets ``HEADER_TIMEOUT_S`` too
  (asyncio's default is 60 s), after which the deadline above applies as for plain HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import http
import json
import re
import socket
import ssl as ssl_mod
import sys
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from .. import __version__
from .models import HttpError

HEADER_TIMEOUT_S = 5.0  # to send a request line and headers (and, unauthorised, any body)
MAX_CONNECTIONS = 64
MAX_HEAD = 64 << 10  # a request's line and headers
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_SHUTDOWN_S = 5.0  # a stopping server waits this long for answers under way
#: the scope extension (a function) through which the app says a request's token is right
AUTHORISED = "actanywhere.authorised"


def connection_limit() -> int:
    """Connections served at once: ``MAX_CONNECTIONS``, fewer when the process may open few
    files (each connection's thread opens the job database too)."""
    try:
        import resource
    except ImportError:  # Windows
        return MAX_CONNECTIONS
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return max(4, min(MAX_CONNECTIONS, (soft - 32) // 4))


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on ``host``:``port`` (0: a free port); OSError when it cannot. Its
    protocol is named (TCP), so asyncio sets TCP_NODELAY on each connection it accepts: an
    answer's head and body, written apart, are not held back by Nagle's algorithm waiting
    for the client's delayed ACK (40 ms a request on a kept-alive or TLS connection)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                         socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.bind((host, port))
        sock.listen(connection_limit())
    except OSError:
        sock.close()
        raise
    return sock


class Guard:
    """The open connections, and the time by which each unauthorised one must be."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.live: set[Connection] = set()
        self.deadlines: dict[Connection, float] = {}  # not yet authorised

    def admit(self, conn: Connection) -> bool:
        if len(self.live) >= self.limit:
            if not self.deadlines:  # every slot is an authorised request: refuse this one
                return False
            min(self.deadlines, key=self.deadlines.__getitem__).hang_up()  # make room
        self.live.add(conn)
        return True

    def leave(self, conn: Connection) -> None:
        self.live.discard(conn)
        self.deadlines.pop(conn, None)


class Connection(H11Protocol):
    """uvicorn's h11 connection, with a deadline until each request is authorised, a place
    in the ``Guard``'s bound, and JSON answers to protocol errors."""

    guard: Guard  # set on the class ``server`` makes

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._timer: asyncio.TimerHandle | None = None
        self._head = b""  # the start of the request being read: its request line
        self._lingering = False  # answered a protocol error; what comes is dropped
        app = self.app

        async def hooked(scope: Any, receive: Any, send: Any) -> None:
            scope["extensions"] = {**scope.get("extensions", {}), AUTHORISED: self.authorised}
            await app(scope, receive, send)

        self.app = hooked

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if self.guard.admit(self):
            self._arm()
        else:
            transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self.guard.leave(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return
        if self.conn.their_state is h11.IDLE:  # a request head is coming
            self._head += data
            end = _HEAD_END.search(self._head)
            if (end.start() if end else len(self._head)) > MAX_HEAD:
                self._refuse(431, f"the request line and headers exceed {MAX_HEAD} bytes")
                return
        super().data_received(data)

    def on_response_complete(self) -> None:
        self._head = b""
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request has its time to arrive

    def shutdown(self) -> None:
        if self._lingering:
            self.transport.close()
        else:
            super().shutdown()

    # ------------------------------------------------------------------------- deadline
    def _arm(self) -> None:
        self._disarm()
        self._timer = self.loop.call_later(HEADER_TIMEOUT_S, self.hang_up)
        self.guard.deadlines[self] = self.loop.time() + HEADER_TIMEOUT_S

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.guard.deadlines.pop(self, None)

    def authorised(self) -> None:
        """The request's token is right: no deadline until its answer is sent."""
        self._disarm()

    def hang_up(self) -> None:
        self._disarm()
        self.guard.leave(self)
        self.transport.abort()

    # ------------------------------------------------------------------ protocol errors
    def send_400_response(self, msg: str) -> None:
        """h11 could not read the request (uvicorn calls this while handling its error)."""
        exc = sys.exc_info()[1]
        self._refuse(getattr(exc, "error_status_hint", 400), str(exc or msg))

    def _refuse(self, status: int, why: str) -> None:
        """Answer a request that cannot be read, then read and drop what the client still
        sends until it hangs up or the deadline comes."""
        if self.cycle is not None and not self.cycle.response_complete:
            self.hang_up()  # mid-answer: nothing can be said in order
            return
        phrase = http.HTTPStatus(status).phrase
        body = json.dumps(HttpError(status, f"{phrase}: {why}").body()).encode()
        line = self._head.split(b"\n", 1)[0].split()
        if len(line) == 3 and line[2].startswith(b"HTTP/1."):
            body = (f"HTTP/1.1 {status} {phrase}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body
        self.transport.write(body)
        self._lingering = True
        if self.transport.can_write_eof():  # the client reads the answer, then hangs up
            self.transport.write_eof()
        else:
            self.transport.close()
        if self._timer is None:
            self._arm()  # or the deadline ends it


class Server(uvicorn.Server):
    """uvicorn's server, leaving the signals as they are: Ctrl-C is a KeyboardInterrupt (the
    worker stops as any command does) and SIGTERM ends the process, as before uvicorn."""

    @contextlib.contextmanager
    def capture_signals(self) -> Any:
        yield


def server(app: Any, ssl: ssl_mod.SSLContext | None = None) -> Server:
    """A uvicorn server for ``app`` (over TLS with ``ssl``); quiet (the job database is the
    worker's log)."""
    limit = connection_limit()
    protocol = type("Connection", (Connection,), {"guard": Guard(limit)})
    config = uvicorn.Config(
        app, http=protocol, loop="asyncio", ws="none", lifespan="off", log_config=None,
        log_level="error", access_log=False, proxy_headers=False, server_header=False,
        headers=[("Server", f"ActAnywhere/{__version__}")], backlog=limit,
        timeout_keep_alive=int(HEADER_TIMEOUT_S) + 1, h11_max_incomplete_event_size=MAX_HEAD,
        timeout_graceful_shutdown=int(_SHUTDOWN_S),
        ssl_context_factory=(lambda _config, _default: ssl) if ssl is not None else None)
    return Server(config)


def run(srv: Server, sock: socket.socket) -> None:
    """Serve on ``sock`` until ``srv.should_exit`` is set (Ctrl-C: KeyboardInterrupt)."""

    async def main() -> None:
        import anyio.to_thread

        loop = asyncio.get_running_loop()
        loop.set_exception_handler(_quiet_when_out_of_files)
        if srv.config.is_ssl:
            # uvicorn opens the server without a handshake timeout: a half-open TLS
            # connection would hold its socket for asyncio's default 60 s
            loop.create_server = functools.partial(  # type: ignore[method-assign]
                loop.create_server, ssl_handshake_timeout=HEADER_TIMEOUT_S)
        # a thread for each connection's route at once: a long poll on every one
        threads = anyio.to_thread.current_default_thread_limiter()
        threads.total_tokens = max(threads.total_tokens, connection_limit() + 8)
        await srv.serve(sockets=[sock])

    asyncio.run(main())


def _quiet_when_out_of_files(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    """asyncio says so when accept() finds no file descriptor left (it tries again a moment
    later, by when the guard has closed connections): not an error worth a traceback."""
    exc = context.get("exception")
    if isinstance(exc, OSError) and exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS,
                                                  errno.ENOMEM):
        return
    loop.default_exception_handler(context)
