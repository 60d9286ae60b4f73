"""How a client reaches a worker on another machine: its URL, the user's token, the CA file
its certificate is checked against and the path maps, from a connection file the TD hands
out or from the environment. Standard library only (Python 3.10+).

    {"url": "https://gpu01:8765", "token": "aa_...", "ca": "ca.crt",
     "path_maps": {"S:\\\\show": "/mnt/show", "/Volumes/show": "/mnt/show"}}

``ACTANYWHERE_CONNECTION=FILE`` names such a file (readable by its owner only: it holds the
token; ``ca`` relative to its folder). ``ACTANYWHERE_WORKER``, ``ACTANYWHERE_TOKEN``,
``ACTANYWHERE_CA``, ``ACTANYWHERE_PATH_MAPS`` (``CLIENT=WORKER;CLIENT=WORKER``) and
``ACTANYWHERE_TRANSFER`` set the same without a file, or override the file's. Without a CA
the system's CAs are used.

``transfer``: ``shared`` (the default: the worker reads the client's files through its own
mounts), ``upload`` (the client sends the inputs and fetches the take, ``upload.py``) or
``auto`` (upload when the worker's access check refuses the inputs).

Several workers: ``"workers": [{"url", "token", "ca", "path_maps", "transfer"}, ...]`` in the
file (each entry's missing keys taken from the file's top level), or comma-separated URLs in
``ACTANYWHERE_WORKER`` (sharing the token, CA and maps); ``workers_from_env`` lists them and
``workers.py`` picks one per take.
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from . import atomic, pathmap

ENV_CONNECTION = "ACTANYWHERE_CONNECTION"
ENV_WORKER = "ACTANYWHERE_WORKER"
ENV_TOKEN = "ACTANYWHERE_TOKEN"
ENV_CA = "ACTANYWHERE_CA"
ENV_PATH_MAPS = "ACTANYWHERE_PATH_MAPS"
ENV_TRANSFER = "ACTANYWHERE_TRANSFER"
TRANSFERS = ("shared", "upload", "auto")


class RemoteError(ValueError):
    """Settings that cannot be used; one line naming the setting and the fix."""


@dataclass(frozen=True)
class Remote:
    """A remote worker's settings, and where each came from (for messages)."""

    url: str
    token: str
    ca: str | None = None
    path_maps: tuple[pathmap.Rule, ...] = ()
    token_setting: str = ENV_TOKEN
    ca_setting: str = ENV_CA
    maps_setting: str = ENV_PATH_MAPS
    transfer: str = "shared"


def _private(path: str) -> None:
    mode = atomic.loose_mode(path)
    if mode is not None:
        raise RemoteError(f"{path}: mode {mode:04o} lets other users read your token; "
                          f"chmod 600 {path}")


def _read_file(path: str) -> dict:
    try:
        _private(path)  # RemoteError when others may read it
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except RemoteError:
        raise
    except FileNotFoundError:
        raise RemoteError(f"{ENV_CONNECTION}={path}: no such connection file; ask the worker's "
                          "admin for yours") from None
    except OSError as exc:
        raise RemoteError(f"{path}: cannot read the connection file ({exc.strerror or exc})"
                          ) from None
    except ValueError as exc:
        raise RemoteError(f"{path}: not a connection file (JSON: {exc}); ask the worker's "
                          "admin for a new one") from None
    if not isinstance(data, dict):
        raise RemoteError(f"{path}: not a connection file (a JSON object with url and token)")
    return data


def _text(data: Mapping, key: str, where: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise RemoteError(f"{where}: {key} must be a non-empty text")
    return value.strip()


def check_url(url: str, setting: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RemoteError(f"{setting}: {url!r} is not a worker URL; give "
                          "https://HOST:PORT (http:// for a worker started with --insecure)")
    try:
        parts.port  # noqa: B018 - raises for a port that is not a number
    except ValueError:
        raise RemoteError(f"{setting}: {url!r} has a port that is not a number") from None
    return url.rstrip("/")


def from_env(environ: Mapping[str, str] | None = None) -> Remote | None:
    """The remote worker the environment names (``ACTANYWHERE_CONNECTION`` or
    ``ACTANYWHERE_WORKER``; the first, when it names several), or None when it names none;
    RemoteError when it cannot be used."""
    found = workers_from_env(environ)
    return found[0] if found else None


def workers_from_env(environ: Mapping[str, str] | None = None) -> tuple[Remote, ...]:
    """Every remote worker the environment names (a connection file's ``workers`` list, or
    comma-separated URLs in ``ACTANYWHERE_WORKER``), in the order given; () when it names
    none; RemoteError when one cannot be used."""
    env = os.environ if environ is None else environ
    file = env.get(ENV_CONNECTION, "").strip()
    data: dict = {}
    where = ENV_CONNECTION
    if file:
        file = os.path.abspath(os.path.expanduser(file))
        data, where = _read_file(file), f"the connection file {file}"
    elif not env.get(ENV_WORKER, "").strip():
        return ()
    urls = [u.strip() for u in env.get(ENV_WORKER, "").split(",") if u.strip()]
    entries = data.get("workers")
    if urls or entries is None:
        entries = [{}] * max(len(urls), 1)
    elif not isinstance(entries, list) or not entries or \
            not all(isinstance(e, dict) for e in entries):
        raise RemoteError(f"{where}: workers must be a list of objects with url and token "
                          "(and ca, path_maps, transfer)")
    out = []
    for i, entry in enumerate(entries):
        inner = f"{where} (workers[{i}])" if "workers" in data and not urls else where
        merged = {**{k: v for k, v in data.items() if k != "workers"}, **entry}
        out.append(_remote(env, merged, inner, file, urls[i] if urls else None))
    return tuple(out)


def _remote(env: Mapping[str, str], data: Mapping, where: str, file: str,
            env_url: str | None) -> Remote:
    """One worker's settings from the file's ``data`` and the environment's overrides."""
    url = env_url or _text(data, "url", where)
    token = env.get(ENV_TOKEN, "").strip() or _text(data, "token", where)
    url_setting = ENV_WORKER if env_url else f"url in {where}"
    token_setting = ENV_TOKEN if env.get(ENV_TOKEN, "").strip() else f"token in {where}"
    if not url:
        raise RemoteError(f"{where}: no url; give the worker's https://HOST:PORT")
    if not token:
        raise RemoteError(f"{url_setting} names a worker but no token is set; set {ENV_TOKEN} "
                          "(or token in the connection file) to the token the worker's admin "
                          "gave you")
    ca, ca_setting = env.get(ENV_CA, "").strip() or None, ENV_CA
    if ca is None and _text(data, "ca", where):
        ca, ca_setting = _text(data, "ca", where), f"ca in {where}"
        ca = os.path.join(os.path.dirname(file), os.path.expanduser(ca))  # type: ignore[arg-type]
    maps_text = env.get(ENV_PATH_MAPS, "").strip()
    maps_setting = ENV_PATH_MAPS if maps_text else f"path_maps in {where}"
    maps = pathmap.parse(maps_text or data.get("path_maps"), maps_setting)
    transfer = env.get(ENV_TRANSFER, "").strip() or _text(data, "transfer", where) or "shared"
    if transfer not in TRANSFERS:
        setting = ENV_TRANSFER if env.get(ENV_TRANSFER, "").strip() else f"transfer in {where}"
        raise RemoteError(f"{setting}: {transfer!r} is not a transfer; give shared (the worker "
                          "mounts your files), upload (send them) or auto (send them when the "
                          "worker cannot read them)")
    return Remote(check_url(url, url_setting), token, ca, maps, token_setting, ca_setting,
                  maps_setting, transfer)


def tls_context(ca: str | None, ca_setting: str, *, pin: bool = False) -> ssl.SSLContext:
    """A client TLS context trusting ``ca`` (a PEM file: the worker's certificate or the
    studio CA; None: the system's CAs). The same strict X.509 checks on every Python (3.13
    makes them by default). ``pin``: ``ca`` is the worker's own certificate (its local
    connection file), trusted as it is, whatever host name it holds."""
    try:
        ctx = ssl.create_default_context(cafile=ca)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or exc
        raise RemoteError(f"{ca_setting}: cannot use {ca} as the CA file ({reason}); give "
                          "the worker's certificate or your studio CA (PEM)") from None
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT | getattr(ssl, "VERIFY_X509_PARTIAL_CHAIN", 0)
    if pin:
        ctx.check_hostname = False
    return ctx
