"""``[[aws.allow]]`` at publish and ``validate``: a definition asking for a role its state machine may not
use is refused with the pointer of the role, and nothing is published."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestrator.config import Config
from orchestrator.errors import UsageError
from orchestrator.registry.service import UnknownStateMachine
from orchestrator.runtime import build_runtime
from orchestrator.store import EventStore

EXE = str(Path(sys.executable).with_name("orchestrator"))
ACCOUNT = "123456789012"
DEPLOYER = f"arn:aws:iam::{ACCOUNT}:role/deployer"
READER = f"arn:aws:iam::{ACCOUNT}:role/reader"
LAMBDA = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:deploy"
POLICY = f"""
[[aws.roles]]
state = "Audit"
role_arn = "{READER}"

[[aws.allow]]
state_machine = "release"
roles = ["{DEPLOYER}"]
"""


def release(role: str, *, audit: bool = False) -> dict[str, Any]:
    states: dict[str, Any] = {
        "Deploy": {"Type": "Task", "Resource": LAMBDA, "Credentials": {"RoleArn": role}, "End": True}
    }
    if audit:
        states["Deploy"] = {
            "Type": "Task",
            "Resource": LAMBDA,
            "Credentials": {"RoleArn": role},
            "Next": "Audit",
        }
        states["Audit"] = {"Type": "Task", "Resource": LAMBDA, "End": True}
    return {"StartAt": "Deploy", "States": states}


REFUSED = (
    f"/States/Deploy/Credentials/RoleArn: role {READER} is not allowed for state machine 'release' "
    f"(aws.allow[0] allows: {DEPLOYER})"
)


def write_config(tmp_path: Path, text: str = POLICY) -> Path:
    path = tmp_path / "orchestrator.toml"
    path.write_text(f'[aws]\nregion = "us-east-1"\n{text}', encoding="utf-8")
    return path


def test_registry_refuses_a_disallowed_role_and_publishes_nothing(database_url: str, tmp_path: Path) -> None:
    store = EventStore.from_url(database_url, auto_upgrade=True)
    try:
        runtime = build_runtime(store, Config.load(write_config(tmp_path)))
        with pytest.raises(UsageError) as refused:
            runtime.registry.publish("release", release(READER))
        assert str(refused.value) == f"the definition is refused, nothing was published:\n  {REFUSED}"
        with pytest.raises(UsageError) as mapped:
            runtime.registry.publish("release", release(DEPLOYER, audit=True))
        assert "/States/Audit: the role map (aws.roles[0]) gives this state a role" in str(mapped.value)
        with pytest.raises(UnknownStateMachine):
            runtime.registry.get("release")
        version, created = runtime.registry.publish("release", release(DEPLOYER))
        assert created and version.version == 1
        # another state machine is not restricted by the release entry
        assert runtime.registry.publish("sandbox", release(READER))[1]
    finally:
        store.close()


def run(*args: str, cwd: Path, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "ORCHESTRATOR_CONFIG"}
    env.update(ORCHESTRATOR_DATABASE_URL=database_url, ORCHESTRATOR_ACTOR="tester")
    proc = subprocess.run(
        [EXE, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120, check=False
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def test_cli_validate_and_publish_refuse_a_disallowed_role(sqlite_url: str, tmp_path: Path) -> None:
    config = write_config(tmp_path)
    bad = tmp_path / "release.json"
    bad.write_text(json.dumps(release(READER), indent=2))

    validated = run("--config", str(config), "validate", str(bad), cwd=tmp_path, database_url=sqlite_url)
    assert validated.returncode == 1
    assert validated.stdout.splitlines() == [f"{bad}:{REFUSED}"]
    # without the configuration (none in the working directory either) nothing restricts the role
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    plain = run("validate", str(bad), cwd=elsewhere, database_url=sqlite_url)
    assert plain.returncode == 0 and plain.stdout.startswith("valid:")

    published = run("--config", str(config), "publish", str(bad), cwd=tmp_path, database_url=sqlite_url)
    assert published.returncode == 2
    assert "the definition is refused, nothing was published" in published.stderr
    assert REFUSED in published.stderr
    versions = run("--config", str(config), "versions", "release", cwd=tmp_path, database_url=sqlite_url)
    assert versions.returncode == 2 and "unknown state machine 'release'" in versions.stderr

    bad.write_text(json.dumps(release(DEPLOYER)))
    ok = run("--config", str(config), "publish", str(bad), cwd=tmp_path, database_url=sqlite_url)
    assert ok.returncode == 0 and json.loads(ok.stdout)["version"] == 1


def test_cli_reports_a_bad_role_map_with_its_key(sqlite_url: str, tmp_path: Path) -> None:
    config = write_config(tmp_path, '\n[[aws.roles]]\nstate = "Deploy"\nrole_arn = "deployer"\n')
    definition = tmp_path / "release.json"
    definition.write_text(json.dumps(release(DEPLOYER)))
    for args in (("validate", str(definition)), ("publish", str(definition))):
        proc = run("--config", str(config), *args, cwd=tmp_path, database_url=sqlite_url)
        assert proc.returncode == 2, proc
        assert f"{config.resolve()}: aws.roles[0].role_arn: must be an IAM role ARN" in proc.stderr
