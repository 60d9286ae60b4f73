"""``actanywhere serve``: the worker (loopback by default; other machines with --listen), its
certificate (--make-cert) and its users' tokens (``serve tokens add|revoke|list``)."""

from __future__ import annotations

from typing import Annotated

import typer


def serve(
    action: Annotated[list[str] | None, typer.Argument(help="tokens add NAME [--admin] | tokens revoke NAME | tokens list: manage the --file tokens file, nothing served", show_default=False)] = None,
    host: Annotated[list[str] | None, typer.Option(help="Address to listen on (default 127.0.0.1; loopback only unless --allow-remote); with --make-cert: a name the certificate holds (repeat it)", show_default=False)] = None,
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: a free one)")] = 0,
    state_dir: Annotated[str | None, typer.Option(help="Folder for the connection file and job database")] = None,
    idle_timeout: Annotated[float, typer.Option(help="Exit after this many seconds without jobs or requests")] = 1800.0,
    model_budget_gb: Annotated[float, typer.Option(help="Memory for warm models before the least recently used is dropped")] = 16.0,
    allow_remote: Annotated[bool, typer.Option("--allow-remote", help="Allow a non-loopback --host as plain HTTP (as --listen with --insecure)")] = False,
    hard_kill_after: Annotated[float, typer.Option(help="Seconds a cancelled job may take to stop before the worker exits to end it")] = 30.0,
    detach: Annotated[bool, typer.Option("--detach", help="Start the worker in the background (if none runs in --state-dir) and return once it answers: a farm session's onEnter")] = False,
    stop: Annotated[bool, typer.Option("--stop", help="Stop the worker of --state-dir (nothing to do if none runs): a farm session's onExit")] = False,
    listen: Annotated[str | None, typer.Option(help="Serve other machines on HOST:PORT (e.g. 0.0.0.0:8765): needs --tls-cert/--tls-key, or --insecure")] = None,
    tls_cert: Annotated[str | None, typer.Option(help="TLS certificate (PEM) for --listen")] = None,
    tls_key: Annotated[str | None, typer.Option(help="Its private key (PEM, mode 0600)")] = None,
    insecure: Annotated[bool, typer.Option("--insecure", help="--listen as plain HTTP: tokens and shots cross the network unencrypted")] = False,
    tokens: Annotated[str | None, typer.Option("--tokens", "--file", help="Tokens file (mode 0600): one token per user, re-read when it changes; `serve tokens add` makes it")] = None,
    admin: Annotated[bool, typer.Option("--admin", help="tokens add: the token sees and stops every user's jobs")] = False,
    make_cert: Annotated[str | None, typer.Option(help="Write a self-signed worker.crt and worker.key (0600) into this folder for --host names, then exit")] = None,
    max_queued_per_user: Annotated[int, typer.Option(min=1, help="Jobs a user of the tokens file may have queued (more: 429)")] = 8,
    max_auth_failures: Annotated[int, typer.Option(min=1, help="Failed token attempts per client address within 60 s before it is refused (429) for the rest of the minute (with --listen or --tokens)")] = 10,
    upload_keep: Annotated[float, typer.Option(min=0.0, help="Hours an upload (files sent by a client without the worker's disks, and the takes made from them) is kept after its last use")] = 24.0,
    upload_limit: Annotated[float, typer.Option(min=0.0, help="GB all uploads together may take on the worker (an upload past it: 413)")] = 100.0,
) -> None:
    """Run the worker: keeps models warm, queues jobs, streams progress; serves other machines with --listen (docs/worker.md)."""
    from ..errors import SpecError

    if action:
        _tokens(action, tokens, admin)
        return
    if make_cert is not None:
        from ..worker.tls import make_cert as write_pair

        cert, key, names = write_pair(make_cert, host or [])
        typer.echo(f"wrote {cert} (clients' `ca`) and {key} (0600) for {', '.join(names)}; "
                   f"serve with --tls-cert {cert} --tls-key {key}", err=True)
        return
    if host is not None and len(host) > 1:
        raise SpecError(f"--host given {len(host)} times; the worker listens on one address "
                        "(several names are for --make-cert)")
    if (tls_cert is None) != (tls_key is None):
        raise SpecError("--tls-cert and --tls-key go together: give both")
    from ..worker.server import serve as run_server

    if detach or stop:
        if listen or tls_cert or tokens or insecure:
            raise SpecError("--detach/--stop handle this machine's own loopback worker; run "
                            "`serve --listen ...` under a service manager to serve others")
        _detach_or_stop(stop, state_dir, idle_timeout)
        return
    run_server(state_dir, host[0] if host else "127.0.0.1", port, idle_timeout, allow_remote,
               model_budget_gb, hard_kill_after, announce=lambda line: typer.echo(line, err=True),
               listen=listen, tls_files=(tls_cert, tls_key) if tls_cert and tls_key else None,
               insecure=insecure, tokens=tokens, max_queued_per_user=max_queued_per_user,
               max_auth_failures=max_auth_failures, upload_keep_h=upload_keep,
               upload_limit_gb=upload_limit)


def _detach_or_stop(stop: bool, state_dir: str | None, idle_timeout: float) -> None:
    """This machine's worker (of ``state_dir``: never a remote one the environment names)
    started in the background, or stopped."""
    from ..api.client import Client, WorkerError
    from ..api.connection import state_dir as folder_of
    from ..errors import InputError

    state_dir = folder_of(state_dir)
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


def _tokens(action: list[str], path: str | None, admin: bool) -> None:
    """``tokens add NAME`` (the token on stdout, once), ``tokens revoke NAME``, ``tokens
    list``, on the tokens file ``path``."""
    from ..errors import SpecError
    from ..worker import tokens

    usage = "use `serve tokens add NAME [--admin] --file FILE`, `tokens revoke NAME` or `tokens list`"
    if action[0] != "tokens" or len(action) < 2:
        raise SpecError(f"serve {' '.join(action)}: unknown; {usage}")
    verb, names = action[1], action[2:]
    if path is None:
        raise SpecError(f"serve tokens {verb}: name the tokens file with --file FILE")
    if verb == "list" and not names:
        for entry in tokens.read(path):
            role = "admin" if entry.admin else "user"
            typer.echo(f"{entry.name}\t{role}\t{entry.created}")
        return
    if verb not in ("add", "revoke") or len(names) != 1:
        raise SpecError(f"serve tokens {' '.join(action[1:])}: {usage}")
    if verb == "add":
        token = tokens.add(path, names[0], admin=admin)
        typer.echo(f"added {names[0]}{' (admin)' if admin else ''} to {path}; give them this "
                   "token, which is not stored and cannot be shown again:", err=True)
        typer.echo(token)
        return
    tokens.revoke(path, names[0])
    typer.echo(f"revoked {names[0]} in {path}; a worker using the file refuses it from its "
               "next request", err=True)
