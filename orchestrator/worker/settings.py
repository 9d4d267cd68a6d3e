"""How a worker runs: the ``[worker]`` table of the configuration file, overridden by the command line.

```toml
[worker]
concurrency = 8                     # items run at once (threads)
prefetch = 8                        # items claimed ahead of the threads (0: none; default: concurrency)
queues = ["tasks", "timers"]        # default: every queue the runtime knows (integrations add theirs)
lease_seconds = 30                  # a claim's lease, renewed by the heartbeat while the item runs
grace_seconds = 20                  # on SIGTERM, how long running items may take to finish
poll_seconds = 5                    # longest sleep without a notification (SQLite polls anyway)
registry_seconds = 5                # how often the worker reports itself in the workers registry
metrics_port = 9464                 # Prometheus text format on http://metrics_host:port/metrics
metrics_host = "0.0.0.0"
plugins = ["mypackage.tasks:install"]  # callables given the runtime before the worker starts
```
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.config import Config

ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - a metrics endpoint is scraped from other machines


@dataclass(frozen=True)
class WorkerSettings:
    """A worker's settings; see the module docstring for each field's meaning."""

    concurrency: int = 4
    prefetch: int = -1
    """Items claimed ahead, waiting for a thread (claims come in batches); -1: as many as
    ``concurrency``. They are released at once when the worker stops."""
    queues: tuple[str, ...] = ()
    lease_seconds: float = 30.0
    grace_seconds: float = 20.0
    poll_seconds: float = 5.0
    registry_seconds: float = 5.0
    heartbeat_seconds: float | None = None
    """How often leases are renewed and tasks checked; default a third of ``lease_seconds``."""
    until_idle: bool = False
    """Stop once nothing is running and the queues hold no uncompleted item (timers included: a
    pending Wait state keeps the worker up until it fires)."""
    metrics_port: int | None = None
    metrics_host: str = ALL_INTERFACES
    plugins: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name, problem in _problems(self):
            raise ValueError(f"{name}: {problem}")

    @property
    def claim_ahead(self) -> int:
        """How many items to claim ahead of the threads (``prefetch``, resolved)."""
        return self.concurrency if self.prefetch == -1 else self.prefetch

    @property
    def renew_every(self) -> float:
        """Seconds between two lease renewals."""
        return self.heartbeat_seconds if self.heartbeat_seconds is not None else self.lease_seconds / 3

    @classmethod
    def from_config(cls, config: Config) -> WorkerSettings:
        """The settings of the ``[worker]`` table; a bad value is a :class:`ConfigError` naming it."""
        table = config.section("worker")
        config.refuse_unknown("worker", table, _FIELDS, what="setting")
        values = {key: _coerce(config, key, value) for key, value in table.items()}
        try:
            return cls(**values)
        except ValueError as exc:
            name, _, message = str(exc).partition(": ")
            raise config.problem(f"worker.{name}", message) from None

    def override(self, **changes: Any) -> WorkerSettings:
        """A copy with the ``changes`` that are not None (command-line options left out are None)."""
        given = {key: value for key, value in changes.items() if value is not None}
        return dataclasses.replace(self, **given)


_FIELDS = frozenset(
    f.name
    for f in dataclasses.fields(WorkerSettings)
    if f.name != "until_idle"  # a run mode, not a setting
)


def _coerce(config: Config, key: str, value: Any) -> Any:
    """Check the TOML type of ``value`` for ``key``; lists become tuples."""
    if key in ("queues", "plugins"):
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise config.problem(f"worker.{key}", "must be a list of non-empty strings")
        return tuple(value)
    if key == "metrics_host":
        if not isinstance(value, str) or not value:
            raise config.problem(f"worker.{key}", "must be a host name or address")
        return value
    if key in ("concurrency", "prefetch", "metrics_port"):
        if not isinstance(value, int) or isinstance(value, bool):
            raise config.problem(f"worker.{key}", "must be an integer")
        return value
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise config.problem(f"worker.{key}", "must be a number of seconds")
    return float(value)


def _problems(settings: WorkerSettings) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    if settings.concurrency < 1:
        problems.append(("concurrency", "must be at least 1"))
    if settings.prefetch < -1:
        problems.append(("prefetch", "must be 0 or more"))
    for name in ("lease_seconds", "poll_seconds", "registry_seconds"):
        if not getattr(settings, name) > 0:
            problems.append((name, "must be more than 0 seconds"))
    if settings.grace_seconds < 0:
        problems.append(("grace_seconds", "must be 0 seconds or more"))
    if settings.heartbeat_seconds is not None and not 0 < settings.heartbeat_seconds < settings.lease_seconds:
        problems.append(("heartbeat_seconds", "must be more than 0 and less than lease_seconds"))
    if settings.metrics_port is not None and not 0 <= settings.metrics_port <= 65535:
        problems.append(("metrics_port", "must be a TCP port (0-65535)"))
    if any(not queue for queue in settings.queues):
        problems.append(("queues", "queue names must not be empty"))
    return problems


def describe(settings: WorkerSettings) -> Mapping[str, Any]:
    """The settings as JSON-ready values (for the start-up log line)."""
    return {
        **dataclasses.asdict(settings),
        "queues": list(settings.queues),
        "plugins": list(settings.plugins),
    }
