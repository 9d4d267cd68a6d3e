"""Webhook received -> next state scheduled: the latency of an approval, p50/p99 on loopback.

For each of N revisions: alice's revision is accepted by bob in the fake Phorge (tests/fakes), the
delivery starts a release run whose approval gate opens; then carol accepts and the timed part begins
just before her signed delivery is POSTed to the real app (uvicorn, loopback) and ends at the commit of
the ``TaskScheduled`` event of the state after the gate (the event's recorded time, so polling adds
nothing). In between: signature check, the inbox append, a worker claiming the delivery, Conduit
(revision, transactions, users), the facts, the gate's decision, ``ApprovalGranted`` and
``TaskSucceeded`` with the next state's scheduling. Conduit's own time (the fake's request handling,
measured server-side) is reported apart and subtracted. Target (issue 6): p99 < 50 ms without Conduit.

The worker here is a loop in a thread that wakes on new events (``wait_for_events``) and claims the
runtime's queues, like the worker daemon.

Run by hand: ``.venv/bin/python bench/phabricator.py [--runs 100] [--postgres]`` (default: a fresh
SQLite file; ``--postgres``: a fresh database on the server at 127.0.0.1:5432, dropped afterwards).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
import structlog

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fakes.phorge import CAPTURED_KEY, FakePhorge, WebhookSender
from integrations.phabricator.harness import RELEASE, Server

from orchestrator.config import Config
from orchestrator.registry.service import Registry
from orchestrator.runtime import build_runtime
from orchestrator.store import EventStore

ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def worker(runtime: Any, stop: threading.Event) -> None:
    position = runtime.store.last_position()
    while not stop.is_set():
        claimed = runtime.store.claim("bench-worker", runtime.queues, 10, 60.0)
        for work in claimed:
            runtime.handle(work, "bench-worker")
        if not claimed:
            runtime.store.wait_for_events(position, 0.005)
            position = runtime.store.last_position()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--postgres", action="store_true", help="a fresh PostgreSQL database")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    with tempfile.TemporaryDirectory() as tmp, FakePhorge() as phorge:
        phorge.add_user("carol")
        phorge.add_user("dave")
        url = fresh_postgres() if args.postgres else f"sqlite:///{Path(tmp) / 'bench.db'}"
        os.environ.update(
            ORCHESTRATOR_PHABRICATOR_URL=phorge.url,
            ORCHESTRATOR_PHABRICATOR_TOKEN=phorge.token,
            ORCHESTRATOR_PHABRICATOR_HMAC_KEY=CAPTURED_KEY,
        )
        config = Config({"phabricator": {"triggers": [{"start": "release:prod"}], "reconcile_seconds": 3600}})
        store = EventStore.from_url(url, auto_upgrade=True)
        runtime = build_runtime(store, config)
        Registry(store).publish("release", RELEASE)
        runtime.registry.set_alias("release", "prod", [(1, None)])
        runtime.executors["reflow"] = lambda context: {"identity": context.identity}
        server = Server(runtime)
        sender = WebhookSender(f"{server.url}/hooks/phabricator", CAPTURED_KEY)
        stop = threading.Event()
        thread = threading.Thread(target=worker, args=(runtime, stop), daemon=True)
        thread.start()
        totals, conduit = [], []
        try:
            for _ in range(args.runs):
                revision = phorge.create_revision("alice", "bench", ["bob", "carol"])
                sender.send(phorge.webhook_body(revision.id, phorge.accept(revision.id, "bob")))
                execution = f"release:D{revision.id}-{revision.diff.removeprefix('PHID-DIFF-')}"
                wait_for(lambda e=execution: gate_open(runtime, e))
                body = phorge.webhook_body(revision.id, phorge.accept(revision.id, "carol"))
                started = time.time()
                assert sender.send(body).status_code == 200
                scheduled = wait_for(lambda e=execution: deploy_scheduled(runtime, e))
                totals.append((scheduled - started) * 1000)
                with phorge._lock:
                    spans = [(a, b) for a, b in phorge.timings if a >= started and b <= scheduled]
                conduit.append(sum(b - a for a, b in spans) * 1000)
        finally:
            stop.set()
            thread.join()
            sender.close()
            server.close()
            store.close()
            if args.postgres:
                drop_postgres(url)
    without = [t - c for t, c in zip(totals, conduit, strict=True)]
    print(f"{args.runs} approvals on {url.split(':')[0]}:")
    for label, values in (("total", totals), ("Conduit", conduit), ("without Conduit", without)):
        print(
            f"  {label:16s} p50 {percentile(values, 0.5):7.1f} ms   p99 {percentile(values, 0.99):7.1f} ms"
            f"   mean {statistics.mean(values):7.1f} ms"
        )
    print(f"  target: p99 without Conduit < 50 ms: {'met' if percentile(without, 0.99) < 50 else 'NOT met'}")


def fresh_postgres() -> str:
    name = f"orch_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def drop_postgres(url: str) -> None:
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def gate_open(runtime: Any, execution: str) -> bool:
    try:
        return any(e.type == "ApprovalRequested" for e in runtime.executions.history(execution))
    except Exception:
        return False


def deploy_scheduled(runtime: Any, execution: str) -> float | None:
    for record in runtime.store.read_stream(f"execution:{execution}"):
        if record.type == "TaskScheduled" and "reflow" in str(record.data):
            return float(record.recorded_at.timestamp())
    return None


def wait_for(probe: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.002)
    raise TimeoutError("the run did not get there")


if __name__ == "__main__":
    main()
