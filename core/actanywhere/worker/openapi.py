"""The worker's API as an OpenAPI 3.1 description: what FastAPI makes of the routes and models
in ``app.py`` and ``models.py`` (served at /openapi.json, in docs/worker.md)."""

from __future__ import annotations

from .app import describe

OPENAPI = describe()
