"""Fixtures of the API tests: the app over a real runtime, on SQLite (``api``) or on both (``api_on``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from orchestrator.api.app import create_app
from orchestrator.api.tokens import ROLES, Tokens

from .helpers import Api, make_runtime


@pytest.fixture
def api_on(database_url: str) -> Iterator[Api]:
    """The API on SQLite and on PostgreSQL."""
    yield from _api(database_url)


@pytest.fixture
def api(sqlite_url: str) -> Iterator[Api]:
    """The API on SQLite (for what does not depend on the backend)."""
    yield from _api(sqlite_url)


def _api(url: str) -> Iterator[Api]:
    runtime = make_runtime(url)
    tokens = Tokens(runtime.store)
    issued = {role: tokens.create(role, f"{role}-owner", by="test")[0] for role in ROLES}
    try:
        with TestClient(create_app(runtime)) as client:
            yield Api(runtime, client, issued)
    finally:
        runtime.store.close()
