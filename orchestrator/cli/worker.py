"""``orchestrator worker`` runs the worker daemon; ``orchestrator workers`` lists the live ones."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import click
import structlog

from orchestrator.asl.timestamps import format_seconds
from orchestrator.backoff import Backoff
from orchestrator.cli.durable import database_option, load_config
from orchestrator.cli.tables import table
from orchestrator.errors import UsageError
from orchestrator.runtime import build_runtime
from orchestrator.store import EventStore, StoreBusy, StoreError, StoreUnavailable, WorkerRecord, urls
from orchestrator.worker import Worker, WorkerSettings, plugins
from orchestrator.worker.signals import graceful_signals

log = structlog.get_logger(__name__)


def _queues(values: Sequence[str]) -> tuple[str, ...] | None:
    """``--queues a,b --queues c`` -> ("a", "b", "c"); None when not given."""
    names = tuple(name.strip() for value in values for name in value.split(","))
    if not values:
        return None
    if any(not name for name in names):
        raise UsageError(f"--queues: empty queue name in {','.join(values)!r}")
    return names


@click.command("worker")
@click.option("--concurrency", type=click.IntRange(min=1), help="Items run at once [config; default 4].")
@click.option(
    "--prefetch",
    type=click.IntRange(min=0),
    help="Items claimed ahead of the threads, so claims come in batches [default: --concurrency].",
)
@click.option(
    "--queues",
    "queue_values",
    multiple=True,
    metavar="Q[,Q...]",
    help="Queues to serve (repeatable or comma-separated) [default: every queue the runtime knows].",
)
@click.option(
    "--until-idle", is_flag=True, help="Exit once nothing is running and nothing is queued (timers included)."
)
@click.option("--metrics-port", type=click.IntRange(0, 65535), help="Serve Prometheus metrics on this port.")
@click.option("--metrics-host", help="Address of the metrics endpoint [default 0.0.0.0].")
@click.option(
    "--lease-seconds", type=click.FloatRange(min=0, min_open=True), help="Lease of a claim [default 30]."
)
@click.option(
    "--grace-seconds",
    type=click.FloatRange(min=0),
    help="On SIGTERM, how long running items may take to finish [default 20].",
)
@click.option(
    "--poll-seconds",
    type=click.FloatRange(min=0, min_open=True),
    help="Longest idle sleep without a notification [default 5].",
)
@click.option(
    "--plugin",
    "plugin_specs",
    multiple=True,
    metavar="MODULE:FUNCTION",
    help="Call FUNCTION(runtime) before starting, e.g. to register executors (repeatable).",
)
@click.option("--worker-id", help="This worker's id [default HOST-PID-RANDOM].")
@database_option
def worker_command(
    concurrency: int | None,
    prefetch: int | None,
    queue_values: tuple[str, ...],
    until_idle: bool,
    metrics_port: int | None,
    metrics_host: str | None,
    lease_seconds: float | None,
    grace_seconds: float | None,
    poll_seconds: float | None,
    plugin_specs: tuple[str, ...],
    worker_id: str | None,
    database_url: str,
) -> None:
    """Claim ready work and run it until SIGTERM/SIGINT (a second signal exits at once).

    Settings come from the [worker] table of the configuration file, overridden by these options.
    """
    config = load_config()
    base = WorkerSettings.from_config(config)
    try:
        settings = base.override(
            concurrency=concurrency,
            prefetch=prefetch,
            queues=_queues(queue_values),
            until_idle=until_idle or None,
            metrics_port=metrics_port,
            metrics_host=metrics_host,
            lease_seconds=lease_seconds,
            grace_seconds=grace_seconds,
            poll_seconds=poll_seconds,
            plugins=(*base.plugins, *plugin_specs) if plugin_specs else None,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    for spec in settings.plugins:
        plugins.load(spec)  # a typo fails before connecting
    stop = threading.Event()
    with graceful_signals(stop.set), _open_store(database_url, stop) as store:
        if store is None:
            return  # stopped while waiting for the database
        runtime = build_runtime(store, config)
        plugins.install(settings.plugins, runtime)
        worker = Worker(runtime, settings, worker_id=worker_id)
        unknown = [queue for queue in worker.queues if queue not in runtime.queues]
        if unknown:
            log.warning("worker.unknown_queues", queues=unknown, known=runtime.queues)
        server = None
        if settings.metrics_port is not None:
            try:
                server = worker.metrics.serve(settings.metrics_port, settings.metrics_host)
            except OSError as exc:
                raise UsageError(
                    f"--metrics-port {settings.metrics_port}: cannot listen on "
                    f"{settings.metrics_host}:{settings.metrics_port}: {exc.strerror or exc}"
                ) from None
            log.info("worker.metrics", host=settings.metrics_host, port=server.port)

        def stop_on_signal() -> None:
            stop.wait()
            worker.stop()

        threading.Thread(target=stop_on_signal, name="signals", daemon=True).start()
        try:
            worker.run()
        finally:
            stop.set()
            if server is not None:
                server.close()


@contextmanager
def _open_store(url: str, stop: threading.Event) -> Iterator[EventStore | None]:
    """Open the store, waiting out an unreachable database (with back-off) rather than exiting:
    a worker started before its database, or during an outage, must not crash-loop. A bad URL or an
    out-of-date schema is a usage error (exit 2): waiting would not fix it. None: stopped first."""
    try:
        urls.parse(url)
    except StoreUnavailable as exc:
        raise UsageError(str(exc)) from None
    backoff = Backoff(base=0.5, cap=30.0)
    store: EventStore | None = None
    while store is None and not stop.is_set():
        try:
            store = EventStore.from_url(url)
        except (StoreUnavailable, StoreBusy) as exc:
            delay = backoff.next()
            log.warning("worker.database_unavailable", error=str(exc), retry_in=round(delay, 2))
            stop.wait(delay)
        except StoreError as exc:
            raise UsageError(str(exc)) from None
    try:
        yield store
    finally:
        if store is not None:
            store.close()


@click.command("workers")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
@click.option(
    "--stale-after",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="Workers silent for longer are not listed (killed, or lost with their machine).",
)
@click.option("--all", "show_all", is_flag=True, help="List silent workers too.")
@database_option
def workers_command(as_json: bool, stale_after: float, show_all: bool, database_url: str) -> None:
    """List the live workers: heartbeat age, queues and the items they are running."""
    try:
        with EventStore.from_url(database_url) as store:
            records = store.workers()
            now = store.now()
    except StoreError as exc:
        raise UsageError(str(exc)) from None
    rows = [_worker_json(record, now) for record in records]
    if not show_all:
        rows = [row for row in rows if row["heartbeatAgeSeconds"] <= stale_after]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    table(
        ["WORKER", "HOST", "PID", "QUEUES", "RUNNING", "HEARTBEAT", "CURRENT"],
        [
            [
                row["id"],
                row["host"],
                str(row["pid"]),
                ",".join(row["queues"]),
                f"{len(row['current'])}/{row['concurrency']}",
                f"{row['heartbeatAgeSeconds']:.1f}s ago",
                ", ".join(_current(item) for item in row["current"]) or "-",
            ]
            for row in rows
        ],
    )


def _worker_json(record: WorkerRecord, now: datetime) -> dict[str, Any]:
    return {
        "id": record.id,
        "host": record.host,
        "pid": record.pid,
        "queues": list(record.queues),
        "concurrency": record.concurrency,
        "started": format_seconds(record.started_at),
        "heartbeat": format_seconds(record.heartbeat_at),
        "heartbeatAgeSeconds": round(max(0.0, (now - record.heartbeat_at).total_seconds()), 3),
        "current": list(record.current),
    }


def _current(item: dict[str, Any]) -> str:
    where = item.get("execution") or item.get("work") or "?"
    state = item.get("state")
    return f"{where} {state}" if state else str(where)


COMMANDS = [worker_command, workers_command]
