"""Fixtures of the worker tests: a runtime on SQLite or PostgreSQL with the test functions installed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.runtime import Runtime, build_runtime
from orchestrator.store import EventStore

from . import plugin


@pytest.fixture
def runtime(database_url: str) -> Iterator[Runtime]:
    """A runtime (no integrations) on a fresh database, with the test functions as executors."""
    store = EventStore.from_url(database_url, auto_upgrade=True)
    runtime = build_runtime(store, integrations=False)
    plugin.install(runtime)
    yield runtime
    store.close()


@pytest.fixture
def runs_log(tmp_path: Path) -> Path:
    """Where the test functions log their runs."""
    return tmp_path / "runs.log"
