"""Durable state transitions per second: 100 executions of a 10-state Pass chain, started and run to the
end through the event store (each start replays nothing and commits its whole run in one transaction).

Run by hand: ``.venv/bin/python bench/durable.py`` (PostgreSQL at 127.0.0.1:5432 and a SQLite file).
Target (issue "event store"): at least 5,000 durable state transitions per second on PostgreSQL.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from orchestrator.executions.service import Executions
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


def measure(url: str, executions: int = 100) -> float:
    """Transitions per second for ``executions`` runs of the chain on the store at ``url``."""
    store = EventStore.from_url(url, auto_upgrade=True)
    try:
        registry = Registry(store)
        service = Executions(store, registry)
        registry.publish("chain", CHAIN)
        started = time.perf_counter()
        for i in range(executions):
            loaded, _ = service.start("chain", {"i": i}, name=f"e{i}")
            assert loaded.status == "SUCCEEDED", loaded.status
        return 10 * executions / (time.perf_counter() - started)
    finally:
        store.close()


def main() -> None:
    name = f"orch_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        upgrade(url)
        pg = measure(url)
        verdict = "PASS" if pg >= 5000 else "MISS"
        print(f"postgresql  {pg:9,.0f} durable transitions/s   target >= 5,000  {verdict}")
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    with tempfile.TemporaryDirectory() as tmp:
        lite = measure(f"sqlite:///{Path(tmp) / 'bench.db'}")
        print(f"sqlite      {lite:9,.0f} durable transitions/s")


if __name__ == "__main__":
    main()
