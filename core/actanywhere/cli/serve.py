"""``actanywhere serve``: the local worker."""

from __future__ import annotations

from typing import Annotated

import typer


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (loopback only unless --allow-remote)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: a free one)")] = 0,
    state_dir: Annotated[str | None, typer.Option(help="Folder for the connection file and job database")] = None,
    idle_timeout: Annotated[float, typer.Option(help="Exit after this many seconds without jobs or requests")] = 1800.0,
    model_budget_gb: Annotated[float, typer.Option(help="Memory for warm models before the least recently used is dropped")] = 16.0,
    allow_remote: Annotated[bool, typer.Option("--allow-remote", help="Allow a non-loopback --host (anyone with the token can run jobs)")] = False,
    hard_kill_after: Annotated[float, typer.Option(help="Seconds a cancelled job may take to stop before the worker exits to end it")] = 30.0,
    detach: Annotated[bool, typer.Option("--detach", help="Start the worker in the background (if none runs in --state-dir) and return once it answers: a farm session's onEnter")] = False,
    stop: Annotated[bool, typer.Option("--stop", help="Stop the worker of --state-dir (nothing to do if none runs): a farm session's onExit")] = False,
) -> None:
    """Run the local worker: keeps models warm, queues jobs, streams progress (docs/worker.md)."""
    from ..worker.server import serve as run_server

    if detach or stop:
        from ..api.client import Client, WorkerError
        from ..errors import InputError

        if stop:
            try:
                client = Client.from_state(state_dir)
            except WorkerError:
                typer.echo("no worker running", err=True)
                return
            models = client.health().get("models") or {}
            client.shutdown()
            typer.echo(f"stopped the worker {client.url} (models: {models.get('loads', 0)} "
                       f"load(s), {models.get('hits', 0)} warm hit(s))", err=True)
            return
        try:
            client = Client.connect(state_dir, start=True, idle_s=idle_timeout)
        except WorkerError as exc:
            raise InputError(str(exc)) from None
        if client.notice:
            typer.echo(f"warning: {client.notice}", err=True)
        typer.echo(f"worker {client.url} (pid {client.pid})", err=True)
        return

    run_server(state_dir, host, port, idle_timeout, allow_remote, model_budget_gb,
               hard_kill_after, announce=lambda line: typer.echo(line, err=True))
