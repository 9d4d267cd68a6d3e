"""The UI's actions over real HTTP: who may take them, the confirmation step, the per-form token, and
that each is recorded with the token's owner. (The browser test clicks through the same forms.)"""

from __future__ import annotations

import html
import re
from typing import Any

import pytest

from orchestrator.api.auth import form_token
from orchestrator.executions import codec
from orchestrator.registry.model import stream_id

from .helpers import SLOW, UNCAUGHT, Api, publish, start

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def login(api: Api, role: str) -> None:
    api.client.cookies.clear()
    response = api.client.post(
        "/login", content=f"token={api.tokens[role]}&next=/".encode(), headers=FORM, follow_redirects=False
    )
    assert response.status_code == 303


def post_form(api: Api, path: str, fields: dict[str, str], headers: dict[str, str] | None = None) -> Any:
    body = "&".join(f"{k}={v}" for k, v in fields.items())
    return api.client.post(
        path, content=body.encode(), headers={**FORM, **(headers or {})}, follow_redirects=False
    )


def csrf_of(page: str, form_id: str) -> str:
    match = re.search(rf'<form[^>]*id="{form_id}".*?name="csrf" value="([0-9a-f]+)"', page, re.S)
    assert match is not None, form_id
    return match.group(1)


def events_of(api: Api, execution: str, kind: str) -> list[Any]:
    return [r for r in api.runtime.store.read_stream(codec.stream_of(execution)) if r.type == kind]


@pytest.fixture
def running(api: Api) -> str:
    publish(api, "slow", SLOW)
    execution = start(api, "slow", name="s1")
    api.runtime.executions.run_until_settled(execution, timeout=0.5)
    return execution


def test_stop_then_redrive_asks_first_and_records_the_owner(api_on: Api) -> None:
    api = api_on
    publish(api, "slow", SLOW)
    execution = start(api, "slow", name="s1")
    api.runtime.executions.run_until_settled(execution, timeout=0.5)
    login(api, "operator")
    page = api.client.get(f"/executions/{execution}").text
    assert 'id="stop-form"' in page and 'id="redrive-form"' not in page
    token = csrf_of(page, "stop-form")

    fields = {"csrf": token, "error": "Ops.Stop", "cause": "maintenance"}
    asked = post_form(api, f"/executions/{execution}/stop", fields)
    assert asked.status_code == 200 and f"Stop {execution}?" in html.unescape(asked.text)
    assert "operator-owner" in asked.text and "maintenance" in asked.text
    assert events_of(api, execution, "ExecutionAborted") == []  # asking changes nothing

    done = post_form(api, f"/executions/{execution}/stop", {**fields, "confirmed": "yes"})
    assert done.status_code == 303 and done.headers["location"].endswith("?notice=stopped")
    aborted = events_of(api, execution, "ExecutionAborted")
    assert [r.metadata.get("by") for r in aborted] == ["operator-owner"]
    assert api.runtime.executions.describe(execution)["error"] == "Ops.Stop"
    after = api.client.get(done.headers["location"]).text
    assert "Execution stopped." in after and 'id="redrive-form"' in after and 'id="stop-form"' not in after

    again = post_form(api, f"/executions/{execution}/stop", {**fields, "confirmed": "yes"})
    assert again.status_code == 409 and "only RUNNING" in again.text

    redrive_token = csrf_of(after, "redrive-form")
    asked = post_form(api, f"/executions/{execution}/redrive", {"csrf": redrive_token})
    assert asked.status_code == 200 and "Redrive execution" in asked.text
    assert events_of(api, execution, "ExecutionRedriven") == []
    done = post_form(api, f"/executions/{execution}/redrive", {"csrf": redrive_token, "confirmed": "yes"})
    assert done.status_code == 303
    redriven = events_of(api, execution, "ExecutionRedriven")
    assert [r.metadata.get("by") for r in redriven] == ["operator-owner"]
    assert api.runtime.executions.describe(execution)["status"] == "RUNNING"


def test_reset_from_a_history_row(api: Api) -> None:
    publish(api, "uncaught", UNCAUGHT)
    failed = start(api, "uncaught", name="u1")
    api.run(failed)
    login(api, "operator")
    page = api.client.get(f"/executions/{failed}").text
    assert page.count('class="link reset-here"') == api.runtime.executions.describe(failed)["events"]
    token = csrf_of(page, "reset-form")
    asked = post_form(api, f"/executions/{failed}/reset", {"csrf": token, "toEvent": "2"})
    assert asked.status_code == 200 and 'placeholder="u1-reset-2"' in asked.text
    assert api.get("/api/executions", params={"stateMachine": "uncaught"}).json()["total"] == 1
    done = post_form(
        api,
        f"/executions/{failed}/reset",
        {"csrf": token, "toEvent": "2", "name": "u1-b", "confirmed": "yes"},
    )
    assert done.status_code == 303 and done.headers["location"] == "/executions/uncaught%3Au1-b?notice=reset"
    lineage = api.get("/api/executions/uncaught:u1-b/lineage").json()
    assert lineage["resetFrom"] == {"execution": failed, "event": 2}
    assert lineage["trigger"]["startedBy"] == "operator-owner"
    bad = post_form(api, f"/executions/{failed}/reset", {"csrf": token, "toEvent": "999", "confirmed": "yes"})
    assert bad.status_code == 400 and "between 1 and" in bad.text
    taken = post_form(
        api,
        f"/executions/{failed}/reset",
        {"csrf": token, "toEvent": "2", "name": "u1-b", "confirmed": "yes"},
    )
    assert taken.status_code == 409 and "already exists" in taken.text


def test_execution_actions_need_an_operator_and_the_form_token(api: Api, running: str) -> None:
    path = f"/executions/{running}/stop"
    confirmed = {"confirmed": "yes"}
    anonymous = post_form(api, path, confirmed)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login?next=")

    login(api, "viewer")
    page = api.client.get(f"/executions/{running}").text
    assert 'id="actions"' not in page and "reset-here" not in page and 'id="reset-form"' not in page
    viewer_token = form_token(api.tokens["viewer"], path)
    refused = post_form(api, path, {**confirmed, "csrf": viewer_token})
    assert refused.status_code == 403 and "operator role" in refused.text

    login(api, "operator")
    missing = post_form(api, path, confirmed)
    assert missing.status_code == 403 and "did not come from this site" in missing.text
    wrong_form = post_form(api, path, {**confirmed, "csrf": form_token(api.tokens["operator"], path + "x")})
    assert wrong_form.status_code == 403
    someone_elses = post_form(api, path, {**confirmed, "csrf": form_token(api.tokens["admin"], path)})
    assert someone_elses.status_code == 403
    assert events_of(api, running, "ExecutionAborted") == []

    # the Bearer header is not sent by browsers on their own: it needs no form token
    api.client.cookies.clear()
    bearer = post_form(api, path, confirmed, headers=api.headers("operator"))
    assert bearer.status_code == 303
    assert [r.metadata.get("by") for r in events_of(api, running, "ExecutionAborted")] == ["operator-owner"]
    assert (
        post_form(api, "/executions/slow:nope/stop", confirmed, headers=api.headers("operator")).status_code
        == 404
    )


def test_the_api_refuses_changes_with_the_session_cookie(api: Api, running: str) -> None:
    login(api, "admin")
    assert api.client.get(f"/api/executions/{running}").status_code == 200  # reading is fine
    stop = api.client.post(f"/api/executions/{running}/stop", json={})
    assert stop.status_code == 403 and "Bearer" in stop.json()["detail"]
    alias = api.client.put("/api/state-machines/slow/aliases/prod", json={"routing": [{"version": 1}]})
    assert alias.status_code == 403
    assert events_of(api, running, "ExecutionAborted") == []


def test_alias_move_and_rollback_need_an_admin(api_on: Api) -> None:
    api = api_on
    publish(api, "uncaught", UNCAUGHT, alias="prod")
    publish(api, "uncaught", {**UNCAUGHT, "Comment": "v2"})
    login(api, "operator")
    page = api.client.get("/state-machines/uncaught").text
    assert "move-alias" not in page and "new-alias-form" not in page
    move = "/state-machines/uncaught/aliases"
    refused = post_form(
        api,
        move,
        {
            "csrf": form_token(api.tokens["operator"], move),
            "alias": "prod",
            "version": "2",
            "confirmed": "yes",
        },
    )
    assert refused.status_code == 403 and "admin role" in refused.text

    login(api, "admin")
    page = api.client.get("/state-machines/uncaught").text
    assert "move-alias" in page and "rollback-alias" not in page  # one routing so far: nothing to roll back
    token = csrf_of(page, "new-alias-form")
    asked = post_form(api, move, {"csrf": token, "alias": "prod", "version": "2"})
    assert asked.status_code == 200 and "Move alias prod of uncaught to v2?" in asked.text
    assert api.runtime.registry.get("uncaught").aliases["prod"].routing[0].version == 1
    done = post_form(api, move, {"csrf": token, "alias": "prod", "version": "2", "confirmed": "yes"})
    assert done.status_code == 303 and "notice=alias-moved" in done.headers["location"]
    assert api.runtime.registry.get("uncaught").aliases["prod"].routing[0].version == 2
    bad = post_form(api, move, {"csrf": token, "alias": "prod", "version": "9", "confirmed": "yes"})
    assert bad.status_code == 400 and "between 1 and 2" in bad.text

    page = api.client.get("/state-machines/uncaught").text
    assert "Roll back to v1…" in page
    rollback = "/state-machines/uncaught/aliases/prod/rollback"
    token = form_token(api.tokens["admin"], rollback)
    asked = post_form(api, rollback, {"csrf": token})
    assert asked.status_code == 200 and "v2" in asked.text and "v1" in asked.text
    done = post_form(api, rollback, {"csrf": token, "confirmed": "yes"})
    assert done.status_code == 303
    assert api.runtime.registry.get("uncaught").aliases["prod"].routing[0].version == 1
    changes = [r for r in api.runtime.store.read_stream(stream_id("uncaught")) if r.type.startswith("Alias")]
    assert [(r.type, r.data["by"]) for r in changes] == [
        ("AliasUpdated", "admin-owner"),
        ("AliasUpdated", "admin-owner"),
        ("AliasRolledBack", "admin-owner"),
    ]
    nothing_left = post_form(api, rollback, {"csrf": token, "confirmed": "yes"})
    assert nothing_left.status_code == 409 and "no earlier routing" in nothing_left.text
