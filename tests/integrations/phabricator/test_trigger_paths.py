"""Trigger rules with ``paths``: a revision starts a run only when its accepted diff touches a file the
rule's ``.gitignore``-style patterns select, the diff's files read through Conduit's
``differential.changeset.search``. Settings and the client against the fake Phorge over HTTP; the
end-to-end tests through the real webhook endpoint on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes.phorge import FakePhorge

from orchestrator.config import Config, ConfigError
from orchestrator.integrations.phabricator import inbox, webhook
from orchestrator.integrations.phabricator.conduit import Conduit
from orchestrator.integrations.phabricator.settings import Settings, TriggerRule

from .harness import Stack, close_stack, make_config, open_stack
from .test_flow import gate_open, run_of, status_of


def load(tmp_path: Path, text: str) -> Settings:
    file = tmp_path / "orchestrator.toml"
    file.write_text(text)
    return Settings.from_config(Config.load(file, environ={}), {})


def test_paths_are_read_from_the_trigger_table(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        '[[phabricator.triggers]]\nstart = "release:prod"\n'
        'paths = ["deploy/**", "*.tf", "!deploy/README.md"]\n',
    )
    assert settings.triggers == (
        TriggerRule("release:prod", paths=("deploy/**", "*.tf", "!deploy/README.md")),
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('"deploy/**"', "phabricator.triggers[0].paths: must be a non-empty array of patterns"),
        ("[]", "phabricator.triggers[0].paths: must be a non-empty array of patterns"),
        ('["deploy/**", ""]', "phabricator.triggers[0].paths[1]: must be a non-empty string"),
        ("[3]", "phabricator.triggers[0].paths[0]: must be a non-empty string"),
        ('["!"]', "phabricator.triggers[0].paths[0]: not a valid path pattern"),
    ],
)
def test_bad_paths_are_named_by_key(tmp_path: Path, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load(tmp_path, f'[[phabricator.triggers]]\nstart = "release:prod"\npaths = {value}\n')


def test_a_rule_selects_the_paths_its_patterns_match_like_gitignore() -> None:
    rule = TriggerRule("release:prod", paths=("deploy/**", "*.tf", "!deploy/README.md"))
    changed = ["deploy/app.yaml", "deploy/README.md", "infra/net/main.tf", "src/deploy/x.py", "docs/a.md"]
    assert rule.touched(changed) == ["deploy/app.yaml", "infra/net/main.tf"]
    assert rule.touched(["docs/a.md"]) == []
    assert TriggerRule("release:prod").touched(["docs/a.md"]) == ["docs/a.md"]  # no paths: anything


def test_changed_paths_come_from_changeset_search_in_phorge_s_shape_across_pages(phorge: FakePhorge) -> None:
    paths = [f"deploy/service-{n:03}/config.yaml" for n in range(150)] + ["docs/", "README.md"]
    revision = phorge.create_revision("alice", "Many files", ["bob"], paths=paths)
    other = phorge.create_revision("alice", "Another", ["bob"], paths=["elsewhere.txt"])
    client = Conduit(phorge.url, phorge.token, backoff=0.01)
    try:
        assert client.changed_paths(revision.diff) == sorted([*paths[:150], "docs", "README.md"])
        assert client.changed_paths(other.diff) == ["elsewhere.txt"]
        raw = client.call("differential.changeset.search", {"constraints": {"diffPHIDs": [other.diff]}})
    finally:
        client.close()
    calls = phorge.called("differential.changeset.search")
    assert calls[0]["constraints"] == {"diffPHIDs": [revision.diff]}
    assert len(calls) == 3 + 1  # two pages of at most 100 for the first diff, one for the other, raw
    (item,) = raw["data"]
    assert item["type"] == "DCNG" and item["phid"].startswith("PHID-DCNG-")
    assert item["fields"]["diffPHID"] == other.diff
    assert item["fields"]["path"]["displayPath"] == "elsewhere.txt"
    assert base64.b64decode(item["fields"]["path"]["absolutePath.base64"]) == b"/elsewhere.txt"
    assert set(raw) == {"data", "maps", "query", "cursor"}


@pytest.fixture
def paths_stack(database_url: str, env: FakePhorge) -> Iterator[Stack]:
    config = make_config(triggers=[{"start": "release:prod", "paths": ["deploy/**", "*.tf"]}])
    stack = open_stack(database_url, env, config)
    try:
        yield stack
    finally:
        close_stack(stack)


def processed(stack: Stack, body: bytes) -> dict[str, object] | None:
    records = stack.runtime.store.read_stream(inbox.inbox_stream(webhook.parse(body).key))
    return next((dict(r.data) for r in records if r.type == "DeliveryProcessed"), None)


def test_an_accepted_diff_touching_the_paths_starts_a_run_and_one_that_does_not_starts_nothing(
    paths_stack: Stack,
) -> None:
    phorge = paths_stack.phorge
    docs = phorge.create_revision("alice", "Docs only", ["bob"], paths=["docs/guide.md", "src/deploy/x.py"])
    body = phorge.webhook_body(docs.id, phorge.accept(docs.id, "bob"))
    assert paths_stack.post(body).status_code == 200
    paths_stack.drain(lambda: processed(paths_stack, body) is not None)
    assert processed(paths_stack, body) == {
        "outcome": "processed",
        "revision": f"D{docs.id}",
        "status": "accepted",
        "facts": ["RevisionAccepted", "RevisionStatusChanged"],
        "started": [],
    }
    assert paths_stack.runtime.executions.list() == []

    infra = phorge.create_revision(
        "alice", "Infra", ["bob"], paths=["docs/a.md", "infra/main.tf", "deploy/app.yaml"]
    )
    paths_stack.post(phorge.webhook_body(infra.id, phorge.accept(infra.id, "bob")))
    execution = run_of(infra)
    paths_stack.drain(lambda: gate_open(paths_stack, execution))
    trigger = paths_stack.runtime.executions.lineage(execution)["trigger"]
    assert trigger["paths"] == ["deploy/app.yaml", "infra/main.tf"]
    assert trigger["approver"] == "bob"
    asked = [c["constraints"]["diffPHIDs"] for c in phorge.called("differential.changeset.search")]
    assert asked == [[docs.diff], [infra.diff]]


def test_paths_are_those_of_the_accepted_diff_not_of_an_earlier_one(paths_stack: Stack) -> None:
    phorge = paths_stack.phorge
    revision = phorge.create_revision("alice", "Moves on", ["bob"], paths=["deploy/app.yaml"])
    phorge.update_diff(revision.id, paths=["docs/only.md"])
    body = phorge.webhook_body(revision.id, phorge.accept(revision.id, "bob"))
    paths_stack.post(body)
    paths_stack.drain(lambda: processed(paths_stack, body) is not None)
    assert paths_stack.runtime.executions.list() == []


def test_conduit_failing_on_the_paths_retries_the_delivery_before_anything_starts(paths_stack: Stack) -> None:
    phorge = paths_stack.phorge
    revision = phorge.create_revision("alice", "Deploy", ["bob"], paths=["deploy/app.yaml"])
    body = phorge.webhook_body(revision.id, phorge.accept(revision.id, "bob"))
    phorge.fail_method("differential.changeset.search", 3)  # every attempt of the client's first call
    paths_stack.post(body)
    execution = run_of(revision)
    paths_stack.drain(lambda: processed(paths_stack, body) is not None)
    types = [
        r.type for r in paths_stack.runtime.store.read_stream(inbox.inbox_stream(webhook.parse(body).key))
    ]
    assert types == ["WebhookReceived", "DeliveryRetryScheduled", "DeliveryProcessed"]
    assert processed(paths_stack, body)["started"] == [execution]  # type: ignore[index]
    assert status_of(paths_stack, execution) == "RUNNING"
    assert len(paths_stack.runtime.executions.list()) == 1
