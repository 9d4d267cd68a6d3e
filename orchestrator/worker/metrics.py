"""The worker's Prometheus metrics, served in the text format on ``--metrics-port``.

Each :class:`WorkerMetrics` has a registry of its own (not the process-wide default), so several
workers in one process, as in the tests, never collide. Counters count work items by queue and kind:

- ``orchestrator_worker_claimed_total``: items claimed;
- ``orchestrator_worker_succeeded_total``: items done and completed (the task's own outcome, success
  or failure, is in the execution's history);
- ``orchestrator_worker_failed_total``: items whose processing raised (the database went away, a
  bug); they are claimed again when their lease expires;
- ``orchestrator_worker_retried_total``: items claimed again after an earlier claim did not complete
  them (a worker died, a lease expired, a release at shutdown);
- ``orchestrator_worker_lease_expirations_total``: leases this worker lost before completing;
- ``orchestrator_worker_dispatch_latency_seconds``: from when an item was due (enqueued, or its
  timer's time) to its first claim;
- ``orchestrator_queue_depth``: uncompleted items per queue and state (ready, scheduled, leased),
  sampled every few seconds; ``orchestrator_worker_in_flight``: items running now.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from orchestrator.store import QueueDepth

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class WorkerMetrics:
    """The metrics of one worker."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()

        def per_item(name: str, documentation: str) -> Counter:
            return Counter(name, documentation, ["queue", "kind"], registry=self.registry)

        self.claimed = per_item("orchestrator_worker_claimed", "Work items claimed.")
        self.succeeded = per_item("orchestrator_worker_succeeded", "Work items done and completed.")
        self.failed = per_item(
            "orchestrator_worker_failed",
            "Work items whose processing raised; claimed again after their lease expires.",
        )
        self.retried = per_item(
            "orchestrator_worker_retried",
            "Work items claimed again after an earlier claim did not complete them.",
        )
        self.lease_expirations = per_item(
            "orchestrator_worker_lease_expirations", "Leases lost before the item was completed."
        )
        self.dispatch_latency = Histogram(
            "orchestrator_worker_dispatch_latency_seconds",
            "From when a work item was due to its first claim.",
            ["queue"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "orchestrator_queue_depth",
            "Uncompleted work items by queue and state (ready, scheduled, leased).",
            ["queue", "state"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "orchestrator_worker_in_flight", "Work items running in this worker.", registry=self.registry
        )

    def record_depths(self, depths: dict[str, QueueDepth]) -> None:
        """Set the queue depth gauges from a :meth:`EventStore.queue_depths` sample."""
        for queue, depth in depths.items():
            self.queue_depth.labels(queue, "ready").set(depth.ready)
            self.queue_depth.labels(queue, "scheduled").set(depth.scheduled)
            self.queue_depth.labels(queue, "leased").set(depth.leased)

    def serve(self, port: int, host: str) -> MetricsServer:
        """Serve these metrics over HTTP on ``host:port`` (port 0: any free port) in a daemon thread."""
        server, thread = start_http_server(port, host, registry=self.registry)
        return MetricsServer(server, thread)


@dataclass(frozen=True)
class MetricsServer:
    """A running metrics endpoint; :meth:`close` stops it."""

    server: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        """The TCP port it listens on."""
        return int(self.server.server_port)

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
