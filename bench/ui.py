"""Server-side render times of the web UI: a page of 100 executions, and an execution of 10,000 events.

Run by hand (``.venv/bin/python bench/ui.py``), never as a timed test. It builds a fresh SQLite store
(or uses ``--database-url``), publishes two state machines, runs 150 short executions and one Map over
2,500 items (10,000+ events), then times the pages through the real app in process (FastAPI's
TestClient: routing, auth, services, templates; no network). ``cold`` is the first request (the
execution is replayed from the store); ``warm`` the median of the next ones (the replay is cached).
The pages are an operator's, with the action forms (a "Reset here" button on each history row); the
history filters (event type, text search) are timed on the long execution too.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient

from orchestrator.api.app import create_app
from orchestrator.api.tokens import Tokens
from orchestrator.runtime import build_runtime
from orchestrator.store import EventStore

SHORT = {"StartAt": "Hello", "States": {"Hello": {"Type": "Pass", "Result": "hi", "End": True}}}
LONG = {
    "StartAt": "Each",
    "States": {
        "Each": {
            "Type": "Map",
            "ItemsPath": "$.items",
            "ItemProcessor": {"StartAt": "Step", "States": {"Step": {"Type": "Pass", "End": True}}},
            "ResultPath": None,
            "End": True,
        }
    },
}


def timed(client: TestClient, path: str, headers: dict[str, str], repeat: int) -> tuple[float, float, int]:
    began = time.perf_counter()
    response = client.get(path, headers=headers)
    cold = time.perf_counter() - began
    assert response.status_code == 200, response.text[:500]
    warm = []
    for _ in range(repeat):
        began = time.perf_counter()
        client.get(path, headers=headers)
        warm.append(time.perf_counter() - began)
    return cold, statistics.median(warm), len(response.content)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", help="An empty store to fill (default: a temporary SQLite file).")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="bench-ui-")
    url = args.database_url or f"sqlite:///{Path(folder) / 'bench.db'}"
    store = EventStore.from_url(url, auto_upgrade=True)
    runtime = build_runtime(store, integrations=False)
    runtime.registry.publish("short", SHORT, published_by="bench", approved_by="bench")
    runtime.registry.publish("long", LONG, published_by="bench")
    began = time.perf_counter()
    for i in range(150):
        loaded, _ = runtime.executions.start("short", {"i": i}, name=f"s{i}", started_by="bench")
        runtime.executions.run_until_settled(loaded.id)
    loaded, _ = runtime.executions.start("long", {"items": list(range(2500))}, name="big", started_by="bench")
    done = runtime.executions.run_until_settled(loaded.id)
    print(
        f"setup: 151 executions, the long one {len(done.history)} events, {time.perf_counter() - began:.1f}s"
    )
    token, _ = Tokens(store).create("operator", "bench")  # an operator's pages carry the action forms
    headers = {"Authorization": f"Bearer {token}"}
    runtime.executions._cache.clear()  # the first request must replay from the store
    with TestClient(create_app(runtime)) as client:
        print(f"{'page':48s} {'cold':>8s} {'warm':>8s} {'bytes':>9s}  vs 1 s budget")
        for label, path in (
            ("executions list, 100 rows (HTML)", "/executions"),
            ("executions list, 100 rows (JSON API)", "/api/executions?limit=100"),
            ("execution of 10,000+ events (HTML)", "/executions/long:big"),
            ("same, history searched for text (HTML)", "/executions/long:big?q=2499"),
            ("same, history of one event type (HTML)", "/executions/long:big?type=MapIterationSucceeded"),
            ("execution of 10,000+ events, states (JSON API)", "/api/executions/long:big/states"),
            ("execution history, 1,000 events (JSON API)", "/api/executions/long:big/history?limit=1000"),
        ):
            cold, warm, size = timed(client, path, headers, args.repeat)
            print(f"{label:48s} {cold * 1000:7.0f}ms {warm * 1000:7.0f}ms {size:9d}  {max(cold, warm):.2f}x")
    store.close()


if __name__ == "__main__":
    main()
