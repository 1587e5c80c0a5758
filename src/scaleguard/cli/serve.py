"""``scaleguard serve``: run the HTTP API and dashboard; ``scaleguard token``: make a token."""

from __future__ import annotations

from pathlib import Path

import typer

from scaleguard.cli._app import app
from scaleguard.cli._options import console, err_console
from scaleguard.cli._store_option import STORE_OPTION, chosen_store
from scaleguard.errors import InputError
from scaleguard.units import parse_quantity


@app.command("serve")
def serve_command(
    store: str | None = STORE_OPTION,
    db: str | None = typer.Option(None, "--db", hidden=True,
                                  help="Deprecated name of --store."),
    host: str = typer.Option("127.0.0.1", "--host",
                             help="Address to listen on; loopback by default."),
    port: int = typer.Option(8321, "--port", help="Port to listen on."),
    token_file: Path | None = typer.Option(
        None, "--token-file",
        help="Tokens allowed to write, one a line (sha256:HEX or plain). "
             "Without it, a token is made for this process and printed once."),
    open_reads: bool = typer.Option(False, "--open-reads",
                                    help="Let anyone who can reach the port read (writes "
                                         "still need a token)."),
    max_body: str = typer.Option("4MiB", "--max-body", help="Largest request body accepted."),
    client_clock: bool = typer.Option(
        False, "--client-clock",
        help="Trust a rollout request's 'now' ahead of this clock (replays, demos)."),
    prometheus: str | None = typer.Option(
        None, "--prometheus", metavar="URL",
        help="Prometheus HTTP API that 'source: prometheus' plan metrics are read from."),
    webhook: list[str] = typer.Option(
        [], "--webhook", metavar="URL",
        help="Post every decision here (repeatable); a slack+https:// URL gets Slack text."),
    webhook_format: str = typer.Option("json", "--webhook-format",
                                       help="Format of --webhook URLs without a prefix: "
                                            "json (the decision record) or slack."),
    scheduler: bool = typer.Option(True, "--scheduler/--no-scheduler",
                                   help="Decide running rollouts at their plan's "
                                        "look_interval, not only when observations arrive."),
) -> None:
    """Run the HTTP API (/api/v1) and the live dashboard over a monitor store.

    Several replicas may serve one postgresql:// store (behind a load balancer).
    """
    try:
        import uvicorn

        from scaleguard.service import ServiceSettings, create_app, new_token
        from scaleguard.service._auth import TokenFile, hash_token, read_token_file
    except ImportError as exc:
        raise InputError(f"serve: the service needs the 'serve' extra ({exc.name} is missing); "
                         "pip install 'scaleguard[serve]'") from None
    limit = parse_quantity(max_body, "bytes", name="--max-body")
    if limit < 1 or limit != int(limit):
        raise InputError(f"--max-body: expected a positive whole number of bytes, got {max_body!r}")
    made_token = None
    if token_file is not None:
        tokens = read_token_file(token_file)
    else:
        made_token = new_token()
        tokens = TokenFile((bytes.fromhex(hash_token(made_token).removeprefix("sha256:")),))
    where = chosen_store(store, old_flag="--db", old_value=db)
    if db is not None:
        err_console.print("[yellow]warning:[/] --db is deprecated; use --store")
    settings = ServiceSettings(store=where, host=host, port=port, token_file=token_file,
                               token_hashes=tokens.digests, token_names=tokens.names,
                               open_reads=open_reads, max_body_bytes=int(limit),
                               client_clock=client_clock, scheduler=scheduler,
                               prometheus_url=prometheus, webhooks=tuple(webhook),
                               webhook_format=webhook_format)
    if not settings.is_loopback:
        err_console.print(f"[yellow]warning:[/] listening on {host}, reachable from other "
                          "machines; put TLS in front of it (a reverse proxy) before sending "
                          "tokens")
    web_app = create_app(settings)
    console.print(f"scaleguard service on http://{host}:{port}/  (API docs: /api/v1/docs; "
                  f"store: {_shown(where)})")
    if made_token is not None:
        console.print("write token for this process (not stored anywhere):")
        typer.echo(made_token)  # plain, on its own line: safe to copy or to parse
    uvicorn.run(web_app, host=host, port=port, log_level="info")


@app.command("token")
def token_command(
    file: Path = typer.Argument(..., help="Token file to add the new token's hash to."),
    name: str | None = typer.Option(None, "--name", help="Who holds the token: the audit log "
                                                         "names them as a stage's approver."),
) -> None:
    """Make a new bearer token, append its SHA-256 hash to FILE, and print the token once."""
    from scaleguard.service._auth import hash_token, new_token, token_line

    token = new_token()
    line = token_line(hash_token(token), name)
    try:
        with file.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")
    except OSError as exc:
        raise InputError(f"{file}: cannot write the token file ({exc.strerror})") from None
    file.chmod(0o600)
    console.print(f"added a token hash to {file}; the token (shown only now):")
    typer.echo(token)


def _shown(store: str) -> str:
    """The store as printed: a PostgreSQL URL without its password."""
    from scaleguard.monitor._postgres import redacted

    return redacted(store)
