"""API tokens: created once, stored hashed, listed without secrets, revoked for good, expiring when asked;
their CLI and their HTTP API (admins only)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from orchestrator.api.app import create_app
from orchestrator.api.tokens import STREAM, Tokens, parse_duration
from orchestrator.errors import UsageError
from orchestrator.store import EventStore

from .helpers import Api, make_runtime

EXE = str(Path(sys.executable).with_name("orchestrator"))


def test_tokens_are_stored_hashed_and_revocable(database_url: str) -> None:
    store = EventStore.from_url(database_url, auto_upgrade=True)
    try:
        tokens = Tokens(store)
        token, info = tokens.create("operator", "Ada Lovelace", by="root")
        assert token.startswith(f"orch_{info.id}_") and len(token) > 40
        assert (info.role, info.owner, info.created_by, info.revoked_at) == (
            "operator",
            "Ada Lovelace",
            "root",
            None,
        )
        principal = tokens.authenticate(token)
        assert principal is not None and (principal.owner, principal.role) == ("Ada Lovelace", "operator")
        assert principal.may("viewer") and principal.may("operator") and not principal.may("admin")
        stored = json.dumps([(r.data, r.metadata) for r in store.read_stream(STREAM)])
        assert token not in stored and token.split("_", 2)[2] not in stored  # the secret may hold "_"

        # another process (a fresh Tokens over the same store) sees the same tokens
        assert Tokens(store).authenticate(token) == principal
        assert tokens.authenticate(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
        assert tokens.authenticate("orch_" + info.id) is None
        assert tokens.authenticate("") is None

        revoked = tokens.revoke(info.id, by="root")
        assert revoked.revoked_by == "root" and revoked.revoked_at is not None
        assert tokens.authenticate(token) is None and Tokens(store).authenticate(token) is None
        assert [i.id for i in tokens.list()] == [info.id]
    finally:
        store.close()


def test_bad_token_requests_are_refused(sqlite_url: str) -> None:
    store = EventStore.from_url(sqlite_url)
    try:
        tokens = Tokens(store)
        for role, owner in (("root", "x"), ("viewer", ""), ("viewer", "a\nb")):
            try:
                tokens.create(role, owner)
            except UsageError as exc:
                assert "invalid" in str(exc)
            else:
                raise AssertionError(f"{role!r}/{owner!r} was accepted")
        try:
            tokens.revoke("000000000000")
        except UsageError as exc:
            assert "unknown token id" in str(exc)
        else:
            raise AssertionError("revoking an unknown token succeeded")
        assert tokens.list() == []
    finally:
        store.close()


def run(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ORCHESTRATOR_DATABASE_URL=url, ORCHESTRATOR_ACTOR="ops-lead")
    return subprocess.run([EXE, *args], capture_output=True, text=True, env=env, timeout=120, check=False)


def test_tokens_cli_create_list_revoke_and_use(sqlite_url: str) -> None:
    created = run(sqlite_url, "tokens", "create", "--role", "admin", "--owner", "grace")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("orch_") and "shown only now" in created.stderr

    listed = run(sqlite_url, "tokens", "list", "--json")
    rows = json.loads(listed.stdout)
    assert [(r["owner"], r["role"], r["createdBy"], r["revokedAt"]) for r in rows] == [
        ("grace", "admin", "ops-lead", None)
    ]
    assert token not in listed.stdout and token not in run(sqlite_url, "tokens", "list").stdout

    runtime = make_runtime(sqlite_url)
    try:
        with TestClient(create_app(runtime)) as client:
            auth = {"Authorization": f"Bearer {token}"}
            assert client.get("/api/state-machines", headers=auth).status_code == 200
            revoked = run(sqlite_url, "tokens", "revoke", rows[0]["id"])
            assert revoked.returncode == 0 and json.loads(revoked.stdout)["revokedBy"] == "ops-lead"
            assert client.get("/api/state-machines", headers=auth).status_code == 401
    finally:
        runtime.store.close()

    bad_role = run(sqlite_url, "tokens", "create", "--role", "root", "--owner", "x")
    assert bad_role.returncode == 2 and "root" in bad_role.stderr
    unknown = run(sqlite_url, "tokens", "revoke", "nope")
    assert (
        unknown.returncode == 2 and "unknown token id" in unknown.stderr and "Traceback" not in unknown.stderr
    )


def test_tokens_expire(sqlite_url: str) -> None:
    store = EventStore.from_url(sqlite_url, auto_upgrade=True)
    now = [datetime(2030, 1, 1, tzinfo=UTC)]
    try:
        tokens = Tokens(store, clock=lambda: now[0])
        token, info = tokens.create("viewer", "temp", by="root", expires_in=parse_duration("2h"))
        assert info.expires_at == "2030-01-01T02:00:00Z"
        lasting, _ = tokens.create("viewer", "lasting")
        now[0] += timedelta(hours=1, minutes=59)
        assert tokens.authenticate(token) is not None
        now[0] += timedelta(minutes=1)
        assert tokens.authenticate(token) is None and tokens.authenticate(lasting) is not None
        assert Tokens(store).list()[0].expires_at == "2030-01-01T02:00:00Z"  # another process sees it
        assert [parse_duration(t).total_seconds() for t in ("90s", "30m", "1d", "2w")] == [
            90,
            1800,
            86400,
            1209600,
        ]
        for bad in ("", "10", "5y", "-1h", "0s", "3651d", "1.5h"):
            with pytest.raises(UsageError, match="invalid --expires-in"):
                parse_duration(bad)
    finally:
        store.close()


def test_tokens_http_api_for_admins(api_on: Api) -> None:
    api = api_on
    assert api.get("/api/tokens", role="operator").status_code == 403
    assert api.post("/api/tokens", role="operator", json={"role": "viewer", "owner": "x"}).status_code == 403
    listed = api.get("/api/tokens", role="admin").json()["tokens"]
    assert sorted(t["owner"] for t in listed) == ["admin-owner", "operator-owner", "viewer-owner"]
    assert all("token" not in t and "sha256" not in t for t in listed)

    created = api.post(
        "/api/tokens", role="admin", json={"role": "operator", "owner": "Grace", "expiresIn": "30d"}
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["role"], body["owner"], body["createdBy"]) == ("operator", "Grace", "admin-owner")
    assert body["token"].startswith(f"orch_{body['id']}_") and body["expiresAt"] is not None
    grace = {"Authorization": f"Bearer {body['token']}"}
    assert api.client.get("/api/executions", headers=grace).status_code == 200
    assert body["token"] not in api.get("/api/tokens", role="admin").text

    revoked = api.client.delete(f"/api/tokens/{body['id']}", headers=api.headers("admin"))
    assert revoked.status_code == 200 and revoked.json()["revokedBy"] == "admin-owner"
    assert api.client.get("/api/executions", headers=grace).status_code == 401
    assert api.client.delete(f"/api/tokens/{body['id']}", headers=api.headers("operator")).status_code == 403
    assert api.client.delete("/api/tokens/0123456789ab", headers=api.headers("admin")).status_code == 404
    assert api.client.delete("/api/tokens/nope", headers=api.headers("admin")).status_code == 422

    bad_expiry = api.post(
        "/api/tokens", role="admin", json={"role": "viewer", "owner": "x", "expiresIn": "soon"}
    )
    assert bad_expiry.status_code == 400 and "expiresIn" in bad_expiry.json()["detail"]
    assert api.post("/api/tokens", role="admin", json={"role": "root", "owner": "x"}).status_code == 422
    assert api.post("/api/tokens", role="admin", json={"role": "viewer", "owner": "a\nb"}).status_code == 400

    short = api.post(
        "/api/tokens", role="admin", json={"role": "viewer", "owner": "brief", "expiresIn": "1s"}
    )
    brief = {"Authorization": f"Bearer {short.json()['token']}"}
    deadline = time.monotonic() + 60
    while api.client.get("/api/executions", headers=brief).status_code == 200:
        assert time.monotonic() < deadline, "a token that expires in 1 s still worked after a minute"
        time.sleep(0.2)
    assert api.client.get("/api/executions", headers=brief).status_code == 401


def test_tokens_cli_expires_in(sqlite_url: str) -> None:
    created = run(
        sqlite_url, "tokens", "create", "--role", "viewer", "--owner", "temp", "--expires-in", "12h", "--json"
    )
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["expiresAt"] is not None
    listed = run(sqlite_url, "tokens", "list")
    assert "expires 20" in listed.stdout
    bad = run(sqlite_url, "tokens", "create", "--role", "viewer", "--owner", "x", "--expires-in", "forever")
    assert bad.returncode == 2 and "invalid --expires-in" in bad.stderr and "Traceback" not in bad.stderr
    assert json.loads(run(sqlite_url, "tokens", "list", "--json").stdout)[0]["owner"] == "temp"
