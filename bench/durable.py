"""Durable executions on PostgreSQL and SQLite: state transitions per second, and loading a long one.

1. Durable state transitions per second: 100 executions of a 10-state Pass chain, started and run to
   the end through the event store (each start replays nothing and commits its whole run in one
   transaction, durable when it returns), one after the other, after 20 unmeasured ones (the first
   statements on a connection are planned and prepared); then the same with the 100 starts coming
   from 4 client threads at once (as requests to the API server do), where appends share their WAL
   flushes. Target (issue "event store"): at least 5,000 per second on PostgreSQL. The best of
   ``ROUNDS`` rounds counts (a shared machine is noisy).
2. Loading a 25,000-event execution (a Map over 6,200 items, then a Task waiting for its answer) in a
   fresh service, from its latest snapshot versus replaying its whole stream (``snapshot_every=0``).
   Reported as times and their ratio.

Run by hand: ``.venv/bin/python bench/durable.py`` (PostgreSQL at 127.0.0.1:5432 and a SQLite file).
"""

from __future__ import annotations

import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg

from orchestrator.executions.service import Executions
from orchestrator.logs import configure_logging
from orchestrator.registry.service import Registry
from orchestrator.store import EventStore, upgrade

ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
CHAIN = {
    "StartAt": "S0",
    "States": {
        f"S{i}": ({"Type": "Pass", "Next": f"S{i + 1}"} if i < 9 else {"Type": "Pass", "End": True})
        for i in range(10)
    },
}


ROUNDS = 3
WARM_UP = 20


def measure(url: str, executions: int = 100, clients: int = 1) -> float:
    """Transitions per second for ``executions`` runs of the chain on the store at ``url``, started by
    ``clients`` threads sharing one service (best round)."""
    store = EventStore.from_url(url, auto_upgrade=True)
    try:
        registry = Registry(store)
        service = Executions(store, registry)
        registry.publish("chain", CHAIN)
        for i in range(WARM_UP):
            service.start("chain", {"i": i}, name=f"warm-up-{i}")

        def run(name: str) -> None:
            loaded, _ = service.start("chain", {"name": name}, name=name)
            assert loaded.status == "SUCCEEDED", loaded.status

        best = 0.0
        with ThreadPoolExecutor(clients) as pool:
            for round_ in range(ROUNDS):
                names = [f"c{clients}-r{round_}-e{i}" for i in range(executions)]
                started = time.perf_counter()
                list(pool.map(run, names))
                best = max(best, 10 * executions / (time.perf_counter() - started))
        return best
    finally:
        store.close()


LONG = {
    "StartAt": "Each",
    "States": {
        "Each": {
            "Type": "Map",
            "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
            "Next": "Wait",
        },
        "Wait": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken", "End": True},
    },
}


def measure_load(url: str, rounds: int = 5) -> tuple[int, float, float]:
    """(events, best load time from the snapshot, best load time replaying everything) on ``url``."""
    store = EventStore.from_url(url, auto_upgrade=True)
    try:
        registry = Registry(store)
        registry.publish("long", LONG)
        loaded, _ = Executions(store, registry).start("long", list(range(6_200)), name="long")
        assert loaded.status == "RUNNING" and store.load_snapshot("execution:long:long") is not None
        times: dict[int, float] = {}
        for every in (1000, 0):
            best = float("inf")
            for _ in range(rounds):
                started = time.perf_counter()
                fresh = Executions(store, registry, snapshot_every=every).load(loaded.id)
                best = min(best, time.perf_counter() - started)
                assert fresh.event_count == loaded.event_count and fresh.machine.pending_tasks()
            times[every] = best
        return loaded.event_count, times[1000], times[0]
    finally:
        store.close()


def report_load(backend: str, events: int, snapshot: float, replay: float) -> None:
    print(
        f"{backend:11s} load of a {events:,}-event execution: {snapshot * 1000:7.1f} ms from its snapshot, "
        f"{replay * 1000:7.1f} ms replaying it all ({replay / snapshot:5.1f}x)"
    )


def main() -> None:
    configure_logging()  # as the CLI and the worker log: one line per start, to stderr
    name = f"orch_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        upgrade(url)
        for clients in (1, 4):
            pg = measure(url, clients=clients)
            verdict = "PASS" if pg >= 5000 else "MISS"
            print(
                f"postgresql  {pg:9,.0f} durable transitions/s, {clients} client(s)"
                f"   target >= 5,000  {verdict}"
            )
        report_load("postgresql", *measure_load(url))
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    with tempfile.TemporaryDirectory() as tmp:
        lite = measure(f"sqlite:///{Path(tmp) / 'bench.db'}")
        print(f"sqlite      {lite:9,.0f} durable transitions/s")
        report_load("sqlite", *measure_load(f"sqlite:///{Path(tmp) / 'long.db'}"))


if __name__ == "__main__":
    main()
