"""The optional shared token of ``POST /hooks/harbormaster``: with one configured, a build step must
present it (HTTP Basic password, as Harbormaster's "Credentials" field sends it, or ``?token=``); a
missing or wrong one is 401 and stores nothing; a configured variable that is unset fails closed with
503. The Conduit check that the build target exists still applies. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fakes.phorge import FakePhorge

from orchestrator.config import Config, ConfigError
from orchestrator.integrations.phabricator import inbox
from orchestrator.integrations.phabricator.settings import Settings

from .harness import Stack, close_stack, make_config, open_stack

TOKEN = "hm-7d1c0f0e9b2a4c55"


def stored(stack: Stack) -> list[str]:
    return sorted(
        {
            r.stream_id
            for r in stack.runtime.store.read_all(0, 10_000)
            if r.stream_id.startswith(inbox.INBOX_PREFIX)
        }
    )


def call(stack: Stack, target: str, **kwargs: object) -> httpx.Response:
    params = {"target": target, "revision": "1", "diff": "4", "build": "1"}
    params.update(kwargs.pop("params", {}))  # type: ignore[arg-type]
    return httpx.post(f"{stack.server.url}/hooks/harbormaster", params=params, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def guarded(database_url: str, env: FakePhorge, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    monkeypatch.setenv("HM_TOKEN", TOKEN)
    stack = open_stack(
        database_url, env, make_config(harbormaster={"start": "release:prod", "token_env": "HM_TOKEN"})
    )
    try:
        yield stack
    finally:
        close_stack(stack)


def test_a_call_without_or_with_a_wrong_token_is_refused_and_stores_nothing(guarded: Stack) -> None:
    target = guarded.phorge.add_build_target()
    missing = call(guarded, target)
    assert missing.status_code == 401, missing.text
    assert "Harbormaster token" in missing.json()["error"]
    assert missing.headers["WWW-Authenticate"].startswith("Basic")
    assert call(guarded, target, auth=("harbormaster", "wrong")).status_code == 401
    assert call(guarded, target, params={"token": TOKEN[:-1]}).status_code == 401
    assert call(guarded, target, headers={"Authorization": "Basic !!notbase64"}).status_code == 401
    assert stored(guarded) == []


def test_the_token_as_basic_password_or_query_parameter_is_accepted_and_conduit_still_checks_the_target(
    guarded: Stack,
) -> None:
    target = guarded.phorge.add_build_target()
    by_credential = call(guarded, target, auth=("any-user", TOKEN))
    assert by_credential.status_code == 200, by_credential.text
    assert by_credential.json()["status"] == "accepted"
    unknown = "PHID-HMBT-doesnotexist00000000"
    assert call(guarded, unknown, params={"token": TOKEN}).json()["status"] == "accepted"
    guarded.drain(
        lambda: bool(guarded.phorge.called("harbormaster.target.search")) and len(stored(guarded)) == 2
    )
    guarded.settle()
    outcomes = {
        r.stream_id: r.data["outcome"]
        for r in guarded.runtime.store.read_all(0, 10_000)
        if r.type == "DeliveryProcessed"
    }
    assert outcomes == {
        inbox.inbox_stream(f"hmbt-{target}"): "processed",
        inbox.inbox_stream(f"hmbt-{unknown}"): "unknown-target",
    }
    assert all(TOKEN not in str(r.data) for r in guarded.runtime.store.read_all(0, 10_000))


def test_a_named_token_variable_that_is_unset_fails_closed(database_url: str, env: FakePhorge) -> None:
    stack = open_stack(
        database_url, env, make_config(harbormaster={"start": "release:prod", "token_env": "HM_UNSET"})
    )
    try:
        response = call(stack, stack.phorge.add_build_target(), params={"token": "anything"})
        assert response.status_code == 503
        assert "HM_UNSET" in response.json()["error"]
        assert stored(stack) == []
    finally:
        close_stack(stack)


def test_without_a_token_the_endpoint_stays_open_as_before(stack: Stack) -> None:
    assert call(stack, stack.phorge.add_build_target()).json()["status"] == "accepted"


def test_the_token_itself_never_lives_in_the_file(tmp_path: Path) -> None:
    file = tmp_path / "orchestrator.toml"
    file.write_text('[phabricator.harbormaster]\nstart = "ci"\ntoken = "hm-secret"\n')
    with pytest.raises(ConfigError, match=re.escape("phabricator.harbormaster.token: secrets never live")):
        Settings.from_config(Config.load(file, environ={}), {})
    file.write_text('[phabricator.harbormaster]\nstart = "ci"\ntoken_env = ""\n')
    with pytest.raises(
        ConfigError, match=re.escape("phabricator.harbormaster.token_env: must be a non-empty")
    ):
        Settings.from_config(Config.load(file, environ={}), {})
    settings = Settings.from_config(Config(), {"ORCHESTRATOR_PHABRICATOR_HARBORMASTER_TOKEN": "hm-x"})
    assert settings.harbormaster_token == "hm-x" and "hm-x" not in repr(settings)
