"""The worker's HTTP API as one FastAPI app: each route with what it takes and answers
(``models.py``), so request checks and ``/openapi.json`` come from one declaration.

Before any route runs, ``Gate`` finds who sends the request from its token (``auth.py``: the
worker's own, or one of the tokens file; a missing or wrong one gets 401, an address with too
many failed attempts 429, each with its body drained unread and the connection closed) and
checks the body's size (413 past ``MAX_BODY``); a body is JSON whatever its Content-Type
says. A user sees, follows, cancels and resumes only their own jobs and takes; an admin (the
worker's own token included) all of them, and only an admin stops the worker. Every error
is a JSON ``Error``: a request field at fault is named from the validation error's location,
a 405 carries the methods its path takes in ``Allow``, and anything the routes did not
foresee is a 500 with the server still up. The routes are plain functions: FastAPI runs
them on worker threads, so a long poll never holds up the event loop (``transport.py`` sizes
the thread pool).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, Protocol

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..api.status import FINAL
from . import models
from .auth import Auth, Refusal, User
from .models import HttpError
from .store import DamagedRecord, JobStore, QueueFull
from .transport import AUTHORISED
from .uploads import UploadStore

if TYPE_CHECKING:
    from ..spec import ShotSpec

MAX_BODY = 1 << 20  # a ShotSpec is a few KB
MAX_CHUNK = 32 << 20  # one chunk of an uploaded file (clients send 8 MiB)
MAX_OPEN = 32 << 20  # an upload's list of files (up to 100000 of them)
DRAIN_LIMIT = 64 << 20  # bodies up to this are read and dropped before an error answer


class Worker(Protocol):
    """What the routes ask of the worker (``server.Worker``)."""

    auth: Auth
    store: JobStore
    uploads: UploadStore
    max_queued: int  # queued jobs a user of the tokens file may have

    def health(self) -> dict[str, Any]: ...
    def submit(self, shot: ShotSpec, client: str, user: User) -> dict[str, Any]: ...
    def wait_events(self, job_id: str, after: int, wait: float) -> dict[str, Any]: ...
    def cancel(self, job_id: str) -> str | None: ...
    def takes(self, limit: int, owner: str | None) -> list[dict]: ...
    def notify(self) -> None: ...
    def touch(self) -> None: ...
    def shutdown(self) -> None: ...


# ------------------------------------------------------------------------------- routes
async def _worker(request: Request) -> Worker:
    return request.app.state.worker


async def _user(request: Request) -> User:
    return request.state.user  # set by Gate


Served = Annotated[Worker, Depends(_worker)]
Caller = Annotated[User, Depends(_user)]
JobId = Annotated[str, Path(alias="id")]
Limit = Annotated[int, Query(ge=1, le=10000, description="at most this many, newest first")]
router = APIRouter(responses={
    401: {"model": models.Error, "description": "missing, wrong or revoked token"},
    429: {"model": models.Error, "description": "too many failed token attempts from this "
          "address (Retry-After says when to try again), or, submitting, too many jobs "
          "queued by this user"},
    503: {"model": models.Error, "description": "the worker cannot read its tokens file"}})


def _route(method: str, path: str, model: Any, *errors: int, status: int = 200,
           summary: str) -> Callable:
    """``router``'s decorator for one operation: its answer's model (the fields the worker
    set, nothing added) and the error statuses it can answer besides 401."""
    return router.api_route(path, methods=[method], response_model=model, status_code=status,
                            response_model_exclude_unset=True, summary=summary,
                            responses={code: {"model": models.Error} for code in errors})


def _owner(user: User) -> str | None:
    """Whose jobs ``user`` sees: their own, or (an admin) everyone's."""
    return None if user.admin else user.name


def _job(worker: Worker, job_id: str, user: User) -> dict[str, Any]:
    """The job, if ``user`` may see it: another user's job is as unknown as a missing one."""
    job = worker.store.get(job_id)
    if job is None or not user.admin and job.get("owner") != user.name:
        raise HttpError(404, f"no job {job_id}")
    return job


def _queue_full(exc: QueueFull) -> HttpError:
    return HttpError(429, str(exc), exit_code=exc.exit_code)


@_route("GET", "/openapi.json", dict[str, Any], summary="This description (OpenAPI 3.1)")
async def openapi(request: Request) -> dict[str, Any]:
    return request.app.openapi()


@_route("GET", "/v1/health", models.Health, summary="Liveness, versions, queue, warm models")
def health(worker: Served, user: Caller) -> dict[str, Any]:
    return {**worker.health(), "user": user.name, "admin": user.admin}


@_route("GET", "/v1/jobs", models.Jobs, 400, summary="List jobs, newest first (the caller's; "
        "an admin's: everyone's)")
def jobs(worker: Served, user: Caller, status: models.Status | None = None,
         limit: Limit = 200) -> dict:
    return {"jobs": worker.store.list(status, limit, owner=_owner(user))}


@_route("POST", "/v1/jobs", models.Queued, 400, 409, 413, 422, 507, status=202,
        summary="Submit a job (checked as a local run checks it before it is queued; 429 "
        "when the caller has as many jobs queued as a user may)")
def submit(body: models.Submit, worker: Served, user: Caller) -> dict[str, Any]:
    return worker.submit(body.spec, body.client, user)


@_route("GET", "/v1/jobs/{id}", models.Job, 404, 500,
        summary="One job (500 naming it if its stored record is damaged)")
def job(job_id: JobId, worker: Served, user: Caller) -> dict[str, Any]:
    return _job(worker, job_id, user)


@_route("GET", "/v1/jobs/{id}/events", models.Events, 400, 404, 500,
        summary="Progress events after `after`, waiting up to `wait` s (long poll, <= 30)")
def events(job_id: JobId, worker: Served, user: Caller,
           after: Annotated[int, Query(ge=0, lt=2**62, description="the last seq seen")] = 0,
           wait: Annotated[float, Query(allow_inf_nan=False, description="seconds")] = 0.0
           ) -> dict[str, Any]:
    _job(worker, job_id, user)
    return worker.wait_events(job_id, after, wait)


@_route("POST", "/v1/jobs/{id}/cancel", models.Cancelled, 404, 409, 500, status=202,
        summary="Cancel: a queued job at once, a running one between steps/frames")
def cancel(job_id: JobId, worker: Served, user: Caller) -> dict[str, Any]:
    status = _job(worker, job_id, user)["status"]
    if status in FINAL:
        raise HttpError(409, f"job {job_id} is {status}; nothing to cancel")
    return {"id": job_id, "was": worker.cancel(job_id)}


@_route("POST", "/v1/jobs/{id}/resume", models.Queued, 404, 409, 500, status=202,
        summary="Queue an interrupted/failed/cancelled job again; written frames are kept")
def resume(job_id: JobId, worker: Served, user: Caller) -> dict[str, Any]:
    _job(worker, job_id, user)
    try:
        resumed = worker.store.resume(job_id, max_queued=None if user.local else
                                      worker.max_queued)
    except QueueFull as exc:
        raise _queue_full(exc) from None
    if not resumed:
        raise HttpError(409, f"job {job_id} is active or done; nothing to resume")
    worker.notify()
    return {"id": job_id, "status": "queued"}


@_route("GET", "/v1/takes", models.Takes, 400, summary="Finished takes: output, seed, model "
        "hash, frames, record (take.json), proxies, contact sheet, star")
def takes(worker: Served, user: Caller, limit: Limit = 200) -> dict[str, Any]:
    return {"takes": worker.takes(limit, _owner(user))}


# ------------------------------------------------------------------------------ uploads
UploadId = Annotated[str, Path(alias="id", pattern="^[0-9a-f]{16}$")]
TakeName = Annotated[str, Path(alias="take", pattern="^[A-Za-z0-9_-]{1,64}$")]


@_route("POST", "/v1/uploads", models.Upload, 400, 413, 422, 507, status=201,
        summary="Open an upload (or the one opened before with the same key and files, to go "
        "on with it): what the worker holds of each file")
def open_upload(body: models.UploadOpen, worker: Served, user: Caller) -> dict[str, Any]:
    return worker.uploads.open(user, body.key, [f.model_dump() for f in body.files])


@_route("GET", "/v1/uploads/{id}", models.Upload, 400, 404,
        summary="What the worker holds of each file of an upload (the caller's)")
def upload_status(upload_id: UploadId, worker: Served, user: Caller) -> dict[str, Any]:
    return worker.uploads.status(upload_id, user)


@_route("DELETE", "/v1/uploads/{id}", models.Stopping, 400, 404,
        summary="Remove an upload and the takes made from it (the worker does so itself "
        "after --upload-keep hours unused)")
def remove_upload(upload_id: UploadId, worker: Served, user: Caller) -> dict[str, Any]:
    worker.uploads.remove(upload_id, user)
    return {"ok": True}


FileName = Annotated[str, Query(min_length=1, max_length=1024,
                               description="the file's name inside the upload, e.g. "
                               "plate/plate.1001.exr")]


@_route("PUT", "/v1/uploads/{id}/files", models.Chunk, 400, 404, 409, 413, 422, 507,
        summary="A chunk of file `name` (the raw bytes) at `offset`, which must be what the "
        "worker holds; the last one is checked against the file's sha256")
async def put_chunk(upload_id: UploadId, name: FileName, request: Request, worker: Served,
                    user: Caller,
                    offset: Annotated[int, Query(ge=0, lt=2**50)] = 0) -> dict[str, Any]:
    data = await request.body()
    return await run_in_threadpool(worker.uploads.put, upload_id, user, name, offset, data)


@_route("GET", "/v1/uploads/{id}/takes/{take}", models.OutputFiles, 400, 404,
        summary="The files a take made from the upload wrote: name, size, sha256")
def take_files(upload_id: UploadId, take: TakeName, worker: Served, user: Caller
               ) -> dict[str, Any]:
    return {"files": worker.uploads.outputs(upload_id, user, take)}


@_route("GET", "/v1/uploads/{id}/takes/{take}/file", None, 400, 404,
        summary="One file of a take made from the upload (its bytes)")
def take_file(upload_id: UploadId, take: TakeName, name: FileName, worker: Served,
              user: Caller) -> FileResponse:
    return FileResponse(worker.uploads.output_file(upload_id, user, take, name),
                        media_type="application/octet-stream")


@_route("POST", "/v1/shutdown", models.Stopping, 403, status=202,
        summary="Stop the worker (a running job is interrupted); an admin's token only")
def shutdown(worker: Served, user: Caller) -> dict[str, Any]:
    if not user.admin:
        raise HttpError(403, f"{user.name} may not stop the worker; only an admin's token may")
    worker.shutdown()
    return {"ok": True}


# ------------------------------------------------------------------------------- errors
def answer(err: HttpError, close: bool = False, retry_after: int | None = None
           ) -> JSONResponse:
    headers = {"Cache-Control": "no-store"}
    if err.allow:
        headers["Allow"] = ", ".join(err.allow)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    if close:
        headers["Connection"] = "close"
    return JSONResponse(err.body(), err.status, headers)


async def _http_error(request: Request, exc: HttpError) -> JSONResponse:
    return answer(exc)


async def _damaged(request: Request, exc: DamagedRecord) -> JSONResponse:
    return answer(HttpError(500, str(exc)))  # that job's record; the others are served


async def _starlette(request: Request, exc: HTTPException) -> JSONResponse:
    """No route (404), or a method the path does not take (405, with every method that
    its routes take in ``Allow``)."""
    target = request.url.path
    if exc.status_code == 405:
        allow = _methods(request.scope)
        return answer(HttpError(405, f"{request.method} {target}: use {' or '.join(allow)}",
                                allow=allow))
    if exc.status_code == 404:
        return answer(HttpError(404, f"no endpoint {request.method} {target}"))
    return answer(HttpError(exc.status_code, str(exc.detail)))


def _methods(scope: Scope) -> tuple[str, ...]:
    """The methods the routes at ``scope``'s path take, in the order they are declared."""
    found: list[str] = []
    for route in router.routes:
        if route.matches(scope)[0] is not Match.NONE:
            found += [m for m in getattr(route, "methods", ()) if m not in found]
    return tuple(found)


async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    """A request that does not fit its route's declaration: 400 for a query parameter or a
    body that is not a JSON object, 422 for a ShotSpec that is not valid (its field and the
    exit code a local run gives), each naming the field from the error's location."""
    err = exc.errors()[0]
    where, ctx = tuple(err["loc"]), err.get("ctx") or {}
    if "field" in ctx:  # the ShotSpec's own check (models.Submit)
        return answer(HttpError(422, ctx["message"], ctx["field"], ctx["exit_code"]))
    if where[:2] == ("body", "spec") or err["type"] == "missing" and where == ("body",):
        return answer(HttpError(422, "the body needs a 'spec' object (a ShotSpec)", "spec"))
    if err["type"] == "json_invalid":
        return answer(HttpError(400, f"body is not valid JSON ({ctx.get('error', '')})"))
    if where == ("body",):
        return answer(HttpError(400, "body must be a JSON object"))
    field = ".".join(map(str, where[1:]))
    given = f" {err['input']!r}" if "input" in err else ""
    return answer(HttpError(400, f"{field}{given}: {err['msg']}", field))


# --------------------------------------------------------------------------------- gate
class Gate:
    """What happens before any route: who asks (their token), the body's size, the JSON
    body; and a JSON 500 for any error the routes did not answer (the server stays up)."""

    def __init__(self, app: ASGIApp, auth: Auth | None, on_request: Callable[[], None]) -> None:
        self.app, self.auth, self.on_request = app, auth, on_request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        length = _length(headers)
        address = (scope.get("client") or ("",))[0]
        who = self.auth.identify(headers.get(b"authorization", b""), address) if self.auth \
            else Refusal(401, "this app serves no worker")
        if isinstance(who, Refusal):
            await _drain(receive, length)  # unread into anything; nothing runs
            await answer(HttpError(who.status, who.message), close=True,
                         retry_after=who.retry_after)(scope, receive, send)
            return
        scope["state"] = {**scope.get("state", {}), "user": who}
        scope.get("extensions", {}).get(AUTHORISED, _nothing)()  # long polls wait now
        self.on_request()
        chunk = scope["method"] == "PUT" and scope["path"].startswith("/v1/uploads/")
        limit = MAX_CHUNK if chunk else MAX_OPEN if scope["path"] == "/v1/uploads" \
            else MAX_BODY
        body = await _read(receive, length, limit)
        if body is None:
            size = f"of {length} bytes " if length is not None else ""
            what = "an upload's chunk: send smaller chunks" if chunk else "the limit"
            await answer(HttpError(413, f"body {size}exceeds {limit} bytes ({what})"),
                         close=True)(scope, receive, send)
            return
        await self._serve(scope if chunk else _as_json(scope, body), _replay(body, receive),
                          send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def sent(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start" and not started:
                started = True
                if all(k != b"cache-control" for k, _ in message.get("headers", ())):
                    message = {**message, "headers": [*message.get("headers", ()),
                                                      (b"cache-control", b"no-store")]}
            await send(message)

        try:
            await self.app(scope, receive, sent)
        except Exception as exc:
            if started:
                raise
            await answer(HttpError(500, f"internal error: {type(exc).__name__}: {exc}")
                         )(scope, receive, send)


def _nothing() -> None:
    return None


def _length(headers: dict[bytes, bytes]) -> int | None:
    """The body's Content-Length (the server checked its form); None when chunked."""
    raw = headers.get(b"content-length")
    return int(raw) if raw is not None and raw.isdigit() else None


async def _read(receive: Receive, length: int | None, limit: int = MAX_BODY
                ) -> bytes | None:
    """The whole body; None when it exceeds ``limit`` (then drained)."""
    if length is not None and length > limit:
        await _drain(receive, length)
        return None
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > limit:
            await _drain(receive, None, size)
            return None
        if not message.get("more_body"):
            break
    return b"".join(chunks)


async def _drain(receive: Receive, length: int | None, seen: int = 0) -> None:
    """Read and drop a body that will not be used, so the client is not cut off while still
    sending (it would see a broken pipe instead of the answer); one over ``DRAIN_LIMIT`` is
    left, and the connection closed after the answer."""
    if length is not None and length > DRAIN_LIMIT:
        return
    while seen <= DRAIN_LIMIT:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body"):
            return
        seen += len(message.get("body", b""))


def _as_json(scope: Scope, body: bytes) -> Scope:
    """A body is JSON whatever its Content-Type says (a form-encoded default included)."""
    if not body:
        return scope
    headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
    return {**scope, "headers": [*headers, (b"content-type", b"application/json")]}


def _replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` with the body, already read, handed over first."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay


# ---------------------------------------------------------------------------------- app
def build(worker: Worker | None = None) -> FastAPI:
    """The app serving ``worker`` (only its description when None)."""
    app = FastAPI(title="ActAnywhere worker", version="1", openapi_url=None, docs_url=None,
                  redoc_url=None, redirect_slashes=False, description=(
                      "Job service: loopback by default, other machines over TLS with "
                      "`serve --listen`. Every request carries `Authorization: Bearer <token>`"
                      ": the worker's own (its connection file; an admin) or a user's from its "
                      "tokens file; users see only their own jobs. A connection that has not "
                      "sent an authorised request head within a few seconds is closed; methods "
                      "a path does not take get 405 with an `Allow` header."))
    app.state.worker = worker
    app.include_router(router)
    app.add_exception_handler(HttpError, _http_error)
    app.add_exception_handler(DamagedRecord, _damaged)
    app.add_exception_handler(HTTPException, _starlette)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_middleware(Gate, auth=worker.auth if worker else None,
                       on_request=worker.touch if worker else _nothing)
    app.openapi = lambda: _describe(app)
    return app


def _describe(app: FastAPI) -> dict[str, Any]:
    """FastAPI's description of the routes, with the token as the security scheme of every
    operation, each request body's schema in place, and no 422 for routes whose parameters
    answer 400 (``_invalid``)."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    doc = FastAPI.openapi(app)
    schemas = doc["components"]["schemas"]
    doc["components"]["securitySchemes"] = {"token": {"type": "http", "scheme": "bearer"}}
    doc["security"] = [{"token": []}]
    for op in (op for ops in doc["paths"].values() for op in ops.values()):
        if "HTTPValidationError" in json.dumps(op["responses"].get("422", {})):
            del op["responses"]["422"]
        content = op.get("requestBody", {}).get("content", {}).get("application/json")
        if content and "$ref" in content["schema"]:
            content["schema"] = schemas.pop(content["schema"]["$ref"].rsplit("/", 1)[1])
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return doc


def describe() -> dict[str, Any]:
    """The API's OpenAPI 3.1 description, as ``GET /openapi.json`` serves it."""
    return build().openapi()
