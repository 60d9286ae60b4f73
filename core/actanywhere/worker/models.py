"""What the worker's requests carry and its answers hold, as pydantic models: FastAPI checks
requests with them and writes ``/openapi.json`` from them (``app.py``), so the API is declared
once. Answers keep the fields the worker's store gives (``extra="allow"``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from ..api.status import STAGES, STATUSES
from ..errors import SpecError
from ..spec import ShotSpec, from_dict

Status = Literal[STATUSES]
#: the longest ``client`` name kept (a host's name: nuke, blender, cli)
CLIENT_CHARS = 64


def spec_field(exc: BaseException) -> str | None:
    """The field a SpecError is about, from the pydantic error it was raised from (the first
    one's location); None when it came from elsewhere."""
    cause = exc.__cause__
    if isinstance(cause, ValidationError) and cause.errors():
        return ".".join(map(str, cause.errors()[0]["loc"])) or None
    return None


class Error(BaseModel):
    """Every error answer: the message, its HTTP status, and where they are known the field
    at fault and the CLI's exit code for the same error in a local run."""

    error: str
    status: int
    field: str | None = Field(None, description="the request field at fault (a ShotSpec "
                              "field as ``plate.path``, or a query parameter)")
    exit_code: int | None = Field(None, description="the CLI exit code of the same error in a "
                                  "local run (2 spec, 3 input, 4 output, 5 model)")


class HttpError(Exception):
    """An ``Error`` answer, raised: the status, the message and what it is about as data."""

    def __init__(self, status: int, message: str, field: str | None = None,
                 exit_code: int | None = None, allow: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field
        self.exit_code = exit_code  # the CLI's exit code for the same error in a local run
        self.allow = allow  # a 405's methods the resource takes (its Allow header)

    def body(self) -> dict[str, Any]:
        return Error(error=self.message, status=self.status, field=self.field,
                     exit_code=self.exit_code).model_dump(exclude_none=True)


class Submit(BaseModel):
    """``POST /v1/jobs``: a ShotSpec (of any version this build reads) and who sends it."""

    spec: ShotSpec
    client: str = ""

    @field_validator("spec", mode="before")
    @classmethod
    def _shot(cls, value: Any) -> ShotSpec:
        """The spec as a local run reads it (``spec.from_dict``: size limits, older versions
        upgraded), its message kept whole and its first field given as data."""
        if not isinstance(value, dict):
            raise PydanticCustomError("spec_type", "the body needs a 'spec' object (a ShotSpec)")
        try:
            return from_dict(value)
        except SpecError as exc:
            raise PydanticCustomError("shot_spec", "{message}", {
                "message": str(exc), "field": spec_field(exc) or "spec",
                "exit_code": exc.exit_code}) from None

    @field_validator("client", mode="before")
    @classmethod
    def _client(cls, value: Any) -> str:
        return str(value)[:CLIENT_CHARS]


class Queued(BaseModel):
    id: str
    status: Literal["queued"] = "queued"


class Cancelled(BaseModel):
    id: str
    was: Status | None = Field(None, description="the job's status when the cancel came")


class Stopping(BaseModel):
    ok: bool = True


class _Open(BaseModel):
    """An answer that may carry more fields than it names."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())


class Job(_Open):
    id: str
    spec: dict[str, Any] = {}
    status: Status
    created: float | None = None
    started: float | None = None
    finished: float | None = None
    attempts: int = 0
    seed: int | None = None
    engine: str | None = None
    model: str | None = None
    model_hash: str | None = None
    done: int = 0
    total: int = 0
    stage: str | None = None
    error: str | None = None
    outputs: list[str] = []
    timings: dict[str, Any] = {}
    owner: str = Field("local", description="the name of the token that submitted it")


class Jobs(BaseModel):
    jobs: list[Job]


class Event(_Open):
    seq: int
    time: float
    stage: Literal[STAGES]
    done: int = 0
    total: int = 0
    frame: int | None = None
    eta_s: float | None = None
    message: str = ""


class Events(BaseModel):
    id: str
    status: Status
    done: int = 0
    total: int = 0
    error: str | None = None
    events: list[Event]
    last: int = Field(description="the last event's seq: the next poll's ``after``")


class Take(_Open):
    id: str
    output: str
    seed: int | None = None
    engine: str | None = None
    model_hash: str | None = None
    frames: int = 0
    finished: float | None = None
    record: str | None = Field(None, description="its take.json, when it wrote one")
    proxy: str | None = None
    plate_proxy: str | None = None
    contact_sheet: str | None = None
    proxies: int = 0
    starred: bool = False


class Takes(BaseModel):
    takes: list[Take]


class Health(_Open):
    ok: bool
    pid: int
    versions: dict[str, str]
    running: str | None = Field(None, description="the running job's id")
    queued: int = 0
    uptime_s: float = 0.0
    state: str = Field("", description="the worker's state folder")
    models: dict[str, Any] | None = Field(None, description="warm models, hits and loads")
    warm: list[dict[str, Any]] = Field([], description="engine and model of the jobs this "
                                       "worker ran whose code and model are still loaded: a "
                                       "client with several workers sends a take where its "
                                       "engine and model are warm")
    user: str = Field("", description="the name of the token that asked")
    admin: bool = Field(False, description="whether that token sees and stops every job")


class UploadFile(BaseModel):
    """One file an upload will send: its name inside the upload, its size and its sha256."""

    name: str = Field(max_length=1024)
    size: int = Field(ge=0)
    sha256: str = Field(pattern="^[0-9a-fA-F]{64}$")


class UploadOpen(BaseModel):
    """``POST /v1/uploads``: the files to send, and the client's key for them (the same key
    and files again: the same upload, which goes on from what the worker holds)."""

    key: str = Field(min_length=1, max_length=128)
    files: list[UploadFile] = Field(max_length=100_000)


class Upload(_Open):
    id: str
    root: str = Field(description="the upload's folder on the worker")
    inputs: str = Field(description="where its files are, as the worker sees them")
    outputs: str = Field(description="where takes made from it go")
    owner: str
    files: dict[str, dict[str, Any]] = Field(description="per file: size, have (bytes the "
                                             "worker holds), complete (checked whole)")


class Chunk(BaseModel):
    name: str
    have: int
    complete: bool


class OutputFile(BaseModel):
    name: str
    size: int
    sha256: str


class OutputFiles(BaseModel):
    files: list[OutputFile]
