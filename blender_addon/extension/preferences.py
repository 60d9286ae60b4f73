"""The add-on's preferences: the worker's Python (the venv ``install.py`` made), a shared
worker's connection (a connection file, or its URL, token, CA and path maps: docs/worker.md)
and the folder Send to farm writes its job bundles into."""

from __future__ import annotations

import json
import os

import bpy

from .vendor.actanywhere.api import pathmap, remote
from .vendor.actanywhere.errors import InputError

#: written into the extension by ``python3 install.py blender``: the venv it made
DEFAULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "defaults.json")


def _default_python() -> str:
    try:
        with open(DEFAULTS, encoding="utf-8") as fh:
            return str(json.load(fh).get("python", ""))
    except (OSError, ValueError):
        return os.environ.get("ACTANYWHERE_PYTHON", "")


class ActAnywherePreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    worker_python: bpy.props.StringProperty(
        name="Worker Python", subtype="FILE_PATH", default=_default_python(),
        description="The Python of the ActAnywhere venv (install.py makes .venv/bin/python); "
        "Generate starts the worker with it when none is running")

    worker_connection: bpy.props.StringProperty(
        name="Worker Connection", subtype="FILE_PATH",
        description="A shared worker's connection file from its admin (URL, your token, its "
        "CA, path maps; docs/worker.md): takes run there. Empty: the URL below, else "
        "$ACTANYWHERE_CONNECTION, else a worker on this machine")
    worker_url: bpy.props.StringProperty(
        name="Worker URL", description="A shared worker's https://HOST:PORT (instead of a "
        "connection file, or over its url)")
    worker_token: bpy.props.StringProperty(
        name="Token", subtype="PASSWORD", description="Your token for the shared worker "
        "(from its admin); a connection file keeps it out of Blender's preferences")
    worker_ca: bpy.props.StringProperty(
        name="CA File", subtype="FILE_PATH", description="The worker's certificate or your "
        "studio's CA (PEM); empty: the connection file's, else the system's CAs")
    path_maps: bpy.props.StringProperty(
        name="Path Maps", description="This machine's mounts and the worker's, "
        "CLIENT=WORKER;CLIENT=WORKER (e.g. /Volumes/show=/mnt/show); empty: the connection "
        "file's")
    farm_folder: bpy.props.StringProperty(
        name="Farm Folder", subtype="DIR_PATH", description="Where Send to Farm writes its "
        "job bundles (a folder per send, on a disk the farm reads); empty: "
        "$ACTANYWHERE_FARM_FOLDER, else actanywhere/farm beside the .blend")

    def draw(self, context) -> None:
        self.layout.prop(self, "worker_python")
        if not self.worker_python:
            self.layout.label(text="Run python3 install.py blender, or pick the venv's python",
                              icon="INFO")
        box = self.layout.box()
        box.label(text="Shared Worker (optional)")
        box.prop(self, "worker_connection")
        col = box.column()
        col.prop(self, "worker_url")
        col.prop(self, "worker_token")
        col.prop(self, "worker_ca")
        col.prop(self, "path_maps")
        self.layout.prop(self, "farm_folder")


def get(context=None) -> ActAnywherePreferences:
    return (context or bpy.context).preferences.addons[__package__].preferences


def worker_python(context=None) -> str:
    path = get(context).worker_python.strip()
    return bpy.path.abspath(path) if path else ""


def remote_settings(context=None):
    """The shared worker the preferences name (``remote.Remote``), or None for a worker on
    this machine (``$ACTANYWHERE_CONNECTION`` still applies then); InputError (one line
    naming the preference) when they cannot be used. Read on the main thread."""
    prefs = get(context)
    env: dict[str, str] = {}
    file = prefs.worker_connection.strip()
    if file:
        env[remote.ENV_CONNECTION] = bpy.path.abspath(file)
    for key, value in ((remote.ENV_WORKER, prefs.worker_url), (remote.ENV_TOKEN,
                       prefs.worker_token), (remote.ENV_CA, prefs.worker_ca),
                       (remote.ENV_PATH_MAPS, prefs.path_maps)):
        if value.strip():
            env[key] = bpy.path.abspath(value.strip()) if key == remote.ENV_CA else \
                value.strip()
    if not env:
        return None
    if remote.ENV_CONNECTION not in env and remote.ENV_WORKER not in env:
        raise InputError("the add-on's preferences set a token, CA or path maps but no worker: "
                         "set the Worker Connection file or the Worker URL")
    try:
        return remote.from_env(env)
    except (remote.RemoteError, pathmap.PathMapError) as exc:
        raise InputError(f"shared worker preferences: {exc}") from None


def farm_folder(context=None) -> str:
    """Where Send to Farm writes bundles (absolute), or "" for beside the .blend."""
    path = get(context).farm_folder.strip() or os.environ.get("ACTANYWHERE_FARM_FOLDER", "")
    return os.path.abspath(bpy.path.abspath(path.strip())) if path.strip() else ""
