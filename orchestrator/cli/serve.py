"""``orchestrator serve``: the HTTP app (webhooks, JSON API, web UI) under uvicorn."""

from __future__ import annotations

import click
import uvicorn

from orchestrator.cli.durable import database_option, services


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="TCP port.")
@database_option
def serve_command(host: str, port: int, database_url: str) -> None:
    """Serve the webhook endpoints, the JSON API and the web UI until interrupted.

    Every request needs an API token (`orchestrator tokens create`); the UI at / asks for it once.
    """
    from orchestrator.api.app import create_app  # noqa: PLC0415 - FastAPI loads only for serve

    with services(database_url) as runtime:
        uvicorn.run(
            create_app(runtime),
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=5,  # open live-update streams must not hold a shutdown up
        )
