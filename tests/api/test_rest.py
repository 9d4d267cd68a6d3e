"""The JSON API end to end over a real runtime: state machines, versions, aliases, executions, actions."""

from __future__ import annotations

import pytest

from orchestrator.executions import codec

from .helpers import RELEASE, SLOW, UNCAUGHT, Api, publish, start


def test_publish_versions_aliases_diff(api_on: Api) -> None:
    api = api_on
    first = publish(api, "release", RELEASE, revision="D12", approvedBy="bob", description="first")
    assert first["created"] is True and first["version"] == 1
    assert (
        first["publishedBy"] == "admin-owner" and first["revision"] == "D12" and first["approvedBy"] == "bob"
    )
    again = api.post("/api/state-machines/release/versions", role="admin", json={"definition": RELEASE})
    assert again.status_code == 200 and again.json()["created"] is False and again.json()["version"] == 1
    changed = {**RELEASE, "Comment": "second"}
    second = publish(api, "release", changed, alias="prod")
    assert second["version"] == 2 and second["alias"]["routing"] == [{"version": 2, "weight": 100}]

    listed = api.get("/api/state-machines").json()["stateMachines"]
    assert [(m["name"], m["versions"], m["latest"]["version"]) for m in listed] == [("release", 2, 2)]
    versions = api.get("/api/state-machines/release/versions").json()["versions"]
    assert [(v["version"], v["publishedBy"], v["revision"]) for v in versions] == [
        (1, "admin-owner", "D12"),
        (2, "admin-owner", None),
    ]
    one = api.get("/api/state-machines/release/versions/1").json()
    assert one["definition"] == RELEASE and one["approvedBy"] == "bob"
    changes = api.get("/api/state-machines/release/diff", params={"from": 1, "to": 2}).json()["changes"]
    assert changes == [{"op": "replace", "path": "/Comment", "old": RELEASE["Comment"], "new": "second"}]

    weighted = api.put(
        "/api/state-machines/release/aliases/prod",
        json={"routing": [{"version": 1, "weight": 90}, {"version": 2, "weight": 10}]},
    )
    assert weighted.status_code == 200, weighted.text
    assert weighted.json()["routing"] == [{"version": 1, "weight": 90}, {"version": 2, "weight": 10}]
    rolled = api.post("/api/state-machines/release/aliases/prod/rollback", role="admin")
    assert rolled.status_code == 200 and rolled.json()["routing"] == [{"version": 2, "weight": 100}]
    aliases = api.get("/api/state-machines/release/aliases").json()["aliases"]
    assert aliases[0]["alias"] == "prod"
    assert [(c["type"], c["by"]) for c in aliases[0]["history"]] == [
        ("AliasUpdated", "admin-owner"),
        ("AliasUpdated", "admin-owner"),
        ("AliasRolledBack", "admin-owner"),
    ]
    described = api.get("/api/state-machines/release").json()
    assert described["name"] == "release" and len(described["versions"]) == 2


def test_registry_refusals_say_why(api: Api) -> None:
    publish(api, "release", RELEASE)
    broken = {"StartAt": "Nowhere", "States": {"A": {"Type": "Pass", "End": True}}}
    refused = api.post("/api/state-machines/broken/versions", role="admin", json={"definition": broken})
    assert refused.status_code == 400 and "nothing was published" in refused.json()["detail"]
    assert api.get("/api/state-machines/broken").status_code == 404
    for missing_version in (
        api.get("/api/state-machines/release/versions/9"),
        api.get("/api/state-machines/release/diff", params={"from": 1, "to": 9}),
    ):
        assert missing_version.status_code == 404
        assert missing_version.json()["detail"] == "release has no version 9 (versions: 1..1)"
    bad_weights = api.put(
        "/api/state-machines/release/aliases/prod",
        json={"routing": [{"version": 1, "weight": 50}, {"version": 1, "weight": 50}]},
    )
    assert bad_weights.status_code == 400 and "must differ" in bad_weights.json()["detail"]
    missing = api.put("/api/state-machines/release/aliases/prod", json={"routing": [{"version": 7}]})
    assert missing.status_code == 400 and "no version 7" in missing.json()["detail"]
    no_history = api.post("/api/state-machines/release/aliases/prod/rollback", role="admin")
    assert no_history.status_code == 400 and "no alias" in no_history.json()["detail"]
    extra = api.post(
        "/api/state-machines/release/versions", role="admin", json={"definition": RELEASE, "surprise": 1}
    )
    assert extra.status_code == 422


def test_start_describe_history_states_lineage(api_on: Api) -> None:
    api = api_on
    publish(api, "release", RELEASE, revision="D12", approvedBy="bob", alias="prod")
    execution = start(api, "release:prod", {"fail": True}, name="r1")
    assert execution == "release:r1"
    assert api.run(execution)["status"] == "FAILED"

    described = api.get(f"/api/executions/{execution}").json()
    assert described["status"] == "FAILED" and described["error"] == "Release.Failed"
    assert described["startedBy"] == "operator-owner" and described["alias"] == "prod"

    states = {s["key"]: s for s in api.get(f"/api/executions/{execution}/states").json()["states"]}
    assert {k: s["status"] for k, s in states.items()} == {
        "Build": "succeeded",
        "Deploy": "caught",
        "Rollback": "succeeded",
        "ReleaseFailed": "failed",
        "Released": "not-reached",
    }
    assert states["Deploy"]["error"] == "Deploy.Failed" and "disk is full" in states["Deploy"]["cause"]
    assert [a["outcome"] for a in states["Deploy"]["attempts"]] == ["failed"]
    assert states["ReleaseFailed"]["error"] == "Release.Failed"

    full = api.get(f"/api/executions/{execution}/history", params={"limit": 1000}).json()
    total = full["total"]
    assert total == len(full["events"]) and full["nextOffset"] is None
    assert full["events"][0]["type"] == "ExecutionStarted" and full["events"][-1]["type"] == "ExecutionFailed"
    pages = []
    offset: int | None = 0
    while offset is not None:
        page = api.get(f"/api/executions/{execution}/history", params={"offset": offset, "limit": 7}).json()
        pages += page["events"]
        offset = page["nextOffset"]
    assert pages == full["events"]
    newest = api.get(f"/api/executions/{execution}/history", params={"limit": 1, "reverse": True}).json()
    assert newest["events"][0]["id"] == total

    lineage = api.get(f"/api/executions/{execution}/lineage").json()
    assert lineage["version"]["revision"] == "D12" and lineage["version"]["approvedBy"] == "bob"
    assert lineage["version"]["publishedBy"] == "admin-owner"
    assert lineage["trigger"]["startedBy"] == "operator-owner" and lineage["alias"] == "prod"
    assert lineage["externalRuns"] == [] and lineage["roleSessions"] == []

    same = api.post(
        "/api/executions", json={"stateMachine": "release", "input": {"fail": True}, "name": "r1"}
    )
    assert same.status_code == 200 and same.json()["created"] is False
    other = api.post("/api/executions", json={"stateMachine": "release", "input": {}, "name": "r1"})
    assert other.status_code == 409 and "different input" in other.json()["detail"]


def test_stop_redrive_reset_record_the_owner(api_on: Api) -> None:
    api = api_on
    publish(api, "slow", SLOW)
    execution = start(api, "slow", name="s1")
    api.runtime.executions.run_until_settled(execution, timeout=0.5)
    assert api.get(f"/api/executions/{execution}").json()["status"] == "RUNNING"

    stopped = api.post(
        f"/api/executions/{execution}/stop", json={"error": "Ops.Stop", "cause": "maintenance"}
    )
    assert stopped.status_code == 200 and stopped.json()["status"] == "ABORTED"
    assert stopped.json()["error"] == "Ops.Stop"
    again = api.post(f"/api/executions/{execution}/stop")
    assert again.status_code == 409 and "ABORTED" in again.json()["detail"]
    records = api.runtime.store.read_stream(codec.stream_of(execution))
    aborted = [r for r in records if r.type == "ExecutionAborted"]
    assert [r.metadata.get("by") for r in aborted] == ["operator-owner"]

    redriven = api.post(f"/api/executions/{execution}/redrive")
    assert redriven.status_code == 200 and redriven.json()["status"] == "RUNNING"
    records = api.runtime.store.read_stream(codec.stream_of(execution))
    assert [r.metadata.get("by") for r in records if r.type == "ExecutionRedriven"] == ["operator-owner"]
    assert api.post(f"/api/executions/{execution}/redrive").status_code == 409

    publish(api, "uncaught", UNCAUGHT)
    failed = start(api, "uncaught", name="u1")
    assert api.run(failed)["status"] == "FAILED"
    reset = api.post(f"/api/executions/{failed}/reset", json={"toEvent": 2, "name": "u1-again"})
    assert reset.status_code == 201, reset.text
    assert reset.json()["execution"] == "uncaught:u1-again"
    assert reset.json()["resetFrom"] == {"execution": failed, "event": 2}
    assert reset.json()["startedBy"] == "operator-owner"
    lineage = api.get(f"/api/executions/{failed}/lineage").json()
    assert lineage["resetTo"] == [{"execution": "uncaught:u1-again", "event": 2, "by": "operator-owner"}]
    taken = api.post(f"/api/executions/{failed}/reset", json={"toEvent": 2, "name": "u1-again"})
    assert taken.status_code == 409
    out_of_range = api.post(f"/api/executions/{failed}/reset", json={"toEvent": 999})
    assert out_of_range.status_code == 400 and "between 1 and" in out_of_range.json()["detail"]


def test_list_filters_and_pages(api: Api) -> None:
    publish(api, "uncaught", UNCAUGHT)
    publish(api, "slow", SLOW)
    failed = [start(api, "uncaught", name=f"u{i}") for i in range(3)]
    for execution in failed:
        api.run(execution)
    running = [start(api, "slow", name=f"s{i}") for i in range(2)]

    everything = api.get("/api/executions").json()
    assert everything["total"] == 5 and everything["nextOffset"] is None
    assert {e["execution"] for e in everything["executions"]} == set(failed + running)
    row = next(e for e in everything["executions"] if e["execution"] == failed[0])
    assert row["status"] == "FAILED" and row["startedBy"] == "operator-owner" and row["durationSeconds"] >= 0
    assert {
        e["execution"] for e in api.get("/api/executions", params={"status": "RUNNING"}).json()["executions"]
    } == set(running)
    by_machine = api.get("/api/executions", params={"stateMachine": "uncaught", "status": "FAILED"}).json()
    assert by_machine["total"] == 3
    seen = []
    offset: int | None = 0
    while offset is not None:
        page = api.get("/api/executions", params={"limit": 2, "offset": offset}).json()
        assert len(page["executions"]) <= 2
        seen += [e["execution"] for e in page["executions"]]
        offset = page["nextOffset"]
    assert seen == [e["execution"] for e in everything["executions"]]
    assert api.get("/api/executions", params={"status": "DONE"}).status_code == 422
    assert api.get("/api/executions", params={"limit": 0}).status_code == 422


def test_bad_requests_are_clear(api: Api) -> None:
    publish(api, "uncaught", UNCAUGHT)
    assert api.get("/api/executions/uncaught:nope").status_code == 404
    assert "unknown execution" in api.get("/api/executions/uncaught:nope").json()["detail"]
    assert api.get("/api/executions/not-an-id").status_code == 422
    assert api.post("/api/executions", json={"stateMachine": "ghost"}).status_code == 404
    bad_name = api.post("/api/executions", json={"stateMachine": "uncaught", "name": "no spaces"})
    assert bad_name.status_code == 400 and "invalid execution name" in bad_name.json()["detail"]
    not_json = api.client.post(
        "/api/executions",
        content=b"{nope",
        headers={**api.headers("operator"), "Content-Type": "application/json"},
    )
    assert not_json.status_code == 422
    assert api.post("/api/executions/uncaught:nope/stop").status_code == 404


ENDPOINTS = [
    ("get", "/api/state-machines", None, "viewer"),
    ("get", "/api/state-machines/uncaught", None, "viewer"),
    ("get", "/api/state-machines/uncaught/versions", None, "viewer"),
    ("get", "/api/state-machines/uncaught/versions/1", None, "viewer"),
    ("get", "/api/state-machines/uncaught/diff?from=1&to=1", None, "viewer"),
    ("get", "/api/state-machines/uncaught/aliases", None, "viewer"),
    ("get", "/api/executions", None, "viewer"),
    ("get", "/api/executions/uncaught:u1", None, "viewer"),
    ("get", "/api/executions/uncaught:u1/history", None, "viewer"),
    ("get", "/api/executions/uncaught:u1/states", None, "viewer"),
    ("get", "/api/executions/uncaught:u1/lineage", None, "viewer"),
    ("post", "/api/executions", {"stateMachine": "uncaught", "name": "fresh"}, "operator"),
    ("post", "/api/executions/slow:s1/stop", {}, "operator"),
    ("post", "/api/executions/uncaught:u1/redrive", None, "operator"),
    ("post", "/api/executions/uncaught:u1/reset", {"toEvent": 2, "name": "again"}, "operator"),
    ("post", "/api/state-machines/uncaught/versions", {"definition": UNCAUGHT}, "admin"),
    ("put", "/api/state-machines/uncaught/aliases/prod", {"routing": [{"version": 1}]}, "admin"),
    ("post", "/api/state-machines/uncaught/aliases/prod/rollback", None, "admin"),
    ("get", "/api/tokens", None, "admin"),
    ("post", "/api/tokens", {"role": "viewer", "owner": "someone"}, "admin"),
]
ROLES = ["viewer", "operator", "admin"]


@pytest.fixture
def seeded(api: Api) -> Api:
    publish(api, "uncaught", UNCAUGHT, alias="prod")
    publish(api, "uncaught", {**UNCAUGHT, "Comment": "v2"}, alias="prod")
    api.run(start(api, "uncaught", name="u1"))
    publish(api, "slow", SLOW)
    start(api, "slow", name="s1")
    return api


@pytest.mark.parametrize(
    ("method", "path", "body", "needed"), ENDPOINTS, ids=[f"{m} {p}" for m, p, _, _ in ENDPOINTS]
)
def test_every_endpoint_needs_a_token_and_its_role(
    seeded: Api, method: str, path: str, body: object, needed: str
) -> None:
    client = seeded.client
    send = getattr(client, method)
    kwargs = {"json": body} if body is not None else {}
    anonymous = send(path, **kwargs)
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
    forged = send(path, headers={"Authorization": "Bearer orch_000000000000_" + "x" * 43}, **kwargs)
    assert forged.status_code == 401
    garbage = send(path, headers={"Authorization": "Bearer not-a-token"}, **kwargs)
    assert garbage.status_code == 401
    for role in ROLES[: ROLES.index(needed)]:
        refused = send(path, headers=seeded.headers(role), **kwargs)
        assert refused.status_code == 403, (role, refused.text)
        assert needed in refused.json()["detail"]
    allowed = send(path, headers=seeded.headers(needed), **kwargs)
    assert allowed.status_code in (200, 201), allowed.text
