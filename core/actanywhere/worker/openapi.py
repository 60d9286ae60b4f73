"""The worker's API as an OpenAPI 3.1 description (served at /openapi.json, in docs/worker.md)."""

from __future__ import annotations

from typing import Any

from ..api.status import STAGES, STATUSES
from ..spec import ShotSpec

_JOB_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
_ERROR = {"description": "error", "content": {"application/json": {"schema": {
    "$ref": "#/components/schemas/Error"}}}}


def _ok(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    body = {"description": description}
    if schema:
        body["content"] = {"application/json": {"schema": schema}}
    return body


OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "ActAnywhere worker", "version": "1",
             "description": "Local job service. Loopback only; every request carries "
             "`Authorization: Bearer <token>` from the connection file. A connection that "
             "has not sent an authorised request head within a few seconds is closed; "
             "methods a path does not take get 405 with an `Allow` header."},
    "components": {
        "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {"type": "object", "required": ["error", "status"], "properties": {
                "error": {"type": "string"}, "status": {"type": "integer"},
                "field": {"type": "string", "description": "the ShotSpec field at fault"},
                "exit_code": {"type": "integer", "description": "the CLI exit code of the "
                              "same error in a local run (2 spec, 3 input, 4 output, 5 model)"}}},
            "Job": {"type": "object", "properties": {
                "id": {"type": "string"}, "spec": {"type": "object"},
                "status": {"enum": list(STATUSES)},
                "created": {"type": "number"}, "started": {"type": ["number", "null"]},
                "finished": {"type": ["number", "null"]}, "attempts": {"type": "integer"},
                "seed": {"type": ["integer", "null"]}, "engine": {"type": "string"},
                "model": {"type": ["string", "null"]},
                "model_hash": {"type": ["string", "null"]},
                "done": {"type": "integer"}, "total": {"type": "integer"},
                "stage": {"type": ["string", "null"]}, "error": {"type": ["string", "null"]},
                "outputs": {"type": "array", "items": {"type": "string"}},
                "timings": {"type": "object"}}},
            "Event": {"type": "object", "properties": {
                "seq": {"type": "integer"}, "time": {"type": "number"},
                "stage": {"type": "string", "enum": list(STAGES)},
                "done": {"type": "integer"},
                "total": {"type": "integer"}, "frame": {"type": "integer"},
                "eta_s": {"type": "number"}, "message": {"type": "string"}}},
        },
    },
    "security": [{"token": []}],
    "paths": {
        "/v1/health": {"get": {"summary": "Liveness, versions, queue, warm models",
                               "responses": {"200": _ok("worker state"), "401": _ERROR}}},
        "/v1/jobs": {
            "post": {"summary": "Submit a job (checked before it is queued)",
                     "requestBody": {"required": True, "content": {"application/json": {
                         "schema": {"type": "object", "required": ["spec"], "properties": {
                             "spec": {"$ref": "#/components/schemas/ShotSpec"},
                             "client": {"type": "string"}}}}}},
                     "responses": {"202": _ok("queued", {"type": "object", "properties": {
                         "id": {"type": "string"}, "status": {"const": "queued"}}}),
                         "400": _ERROR, "401": _ERROR, "409": _ERROR, "413": _ERROR,
                         "422": _ERROR, "507": _ERROR}},
            "get": {"summary": "List jobs, newest first",
                    "parameters": [{"name": "status", "in": "query",
                                    "schema": {"enum": list(STATUSES)}},
                                   {"name": "limit", "in": "query", "schema": {
                                       "type": "integer", "minimum": 1, "maximum": 10000}}],
                    "responses": {"200": _ok("jobs", {"type": "object", "properties": {
                        "jobs": {"type": "array", "items": {"$ref": "#/components/schemas/Job"}}}}),
                        "400": _ERROR, "401": _ERROR}},
        },
        "/v1/jobs/{id}": {"get": {"summary": "One job (500 naming it if its stored record "
                                  "is damaged)", "parameters": [_JOB_ID], "responses": {
            "200": _ok("job", {"$ref": "#/components/schemas/Job"}), "404": _ERROR,
            "500": _ERROR}}},
        "/v1/jobs/{id}/events": {"get": {
            "summary": "Progress events after `after`, waiting up to `wait` s (long poll, <= 30)",
            "parameters": [_JOB_ID,
                           {"name": "after", "in": "query", "schema": {
                               "type": "integer", "minimum": 0}},
                           {"name": "wait", "in": "query", "schema": {"type": "number"}}],
            "responses": {"200": _ok("events", {"type": "object", "properties": {
                "status": {"type": "string"}, "done": {"type": "integer"},
                "total": {"type": "integer"}, "error": {"type": ["string", "null"]},
                "last": {"type": "integer"},
                "events": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}}}}),
                "400": _ERROR, "404": _ERROR, "500": _ERROR}}},
        "/v1/jobs/{id}/cancel": {"post": {
            "summary": "Cancel: a queued job at once, a running one between steps/frames",
            "parameters": [_JOB_ID], "responses": {"202": _ok("cancel requested"),
                                                   "404": _ERROR, "409": _ERROR,
                                                   "500": _ERROR}}},
        "/v1/jobs/{id}/resume": {"post": {
            "summary": "Queue an interrupted/failed/cancelled job again; written frames are kept",
            "parameters": [_JOB_ID], "responses": {"202": _ok("queued"), "404": _ERROR,
                                                   "409": _ERROR, "500": _ERROR}}},
        "/v1/takes": {"get": {"summary": "Finished takes: output, seed, model hash, frames, "
                                         "record (take.json), proxies, contact sheet, star",
                              "parameters": [{"name": "limit", "in": "query", "schema": {
                                  "type": "integer", "minimum": 1, "maximum": 10000}}],
                              "responses": {"200": _ok("takes"), "400": _ERROR}}},
        "/v1/shutdown": {"post": {"summary": "Stop the worker (a running job is interrupted)",
                                  "responses": {"202": _ok("stopping")}}},
        "/openapi.json": {"get": {"summary": "This description", "responses": {
            "200": _ok("OpenAPI 3.1")}}},
    },
}


def _complete(doc: dict[str, Any]) -> dict[str, Any]:
    """The ShotSpec's own JSON schema (pydantic's, so ``{}`` is not a valid spec) and a 401
    answer on every endpoint (every one needs the token)."""
    schema = ShotSpec.model_json_schema(ref_template="#/components/schemas/{model}")
    doc["components"]["schemas"].update(schema.pop("$defs", {}))
    doc["components"]["schemas"]["ShotSpec"] = schema
    for ops in doc["paths"].values():
        for op in ops.values():
            op["responses"].setdefault("401", _ERROR)
    return doc


OPENAPI = _complete(OPENAPI)
