"""API tokens: created once, stored hashed, listed without secrets, revoked for good; and their CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient

from orchestrator.api.app import create_app
from orchestrator.api.tokens import STREAM, Tokens
from orchestrator.errors import UsageError
from orchestrator.store import EventStore

from .helpers import make_runtime

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
        assert token not in stored and token.split("_")[2] not in stored

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
