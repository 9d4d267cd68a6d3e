"""Fixtures of the phabricator tests (see :mod:`.harness`): the fake Phorge, the environment that
points the integration at it, and a stack (runtime, app under uvicorn, worker loop) per backend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fakes.phorge import CAPTURED_KEY, FakePhorge

from .harness import Stack, close_stack, make_config, open_stack


@pytest.fixture
def phorge() -> Iterator[FakePhorge]:
    with FakePhorge() as fake:
        fake.add_user("carol", "Carol Releaser")
        fake.add_user("dave", "Dave Outsider")
        yield fake


@pytest.fixture
def env(phorge: FakePhorge, monkeypatch: pytest.MonkeyPatch) -> FakePhorge:
    monkeypatch.setenv("ORCHESTRATOR_PHABRICATOR_URL", phorge.url)
    monkeypatch.setenv("ORCHESTRATOR_PHABRICATOR_TOKEN", phorge.token)
    monkeypatch.setenv("ORCHESTRATOR_PHABRICATOR_HMAC_KEY", CAPTURED_KEY)
    return phorge


@pytest.fixture
def stack(database_url: str, env: FakePhorge) -> Iterator[Stack]:
    built = open_stack(database_url, env, make_config())
    try:
        yield built
    finally:
        close_stack(built)
