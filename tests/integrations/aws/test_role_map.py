"""The role map, STS naming and the publish-time role check, without any AWS endpoint."""

from __future__ import annotations

import re
from typing import Any

import pytest

from orchestrator.config import Config, ConfigError
from orchestrator.integrations.aws import RoleRule, role_rule_for
from orchestrator.integrations.aws.checks import role_problems
from orchestrator.integrations.aws.naming import (
    TAG_EXECUTION,
    TAG_REVISION,
    TAG_STATE_MACHINE,
    TAG_VERSION,
    revision_of,
    session_name,
    session_tags,
    source_identity,
)
from orchestrator.integrations.aws.roles import refresh_margin, role_map, session_duration

ACCOUNT = "123456789012"
DEPLOYER = f"arn:aws:iam::{ACCOUNT}:role/release-deployer"
READER = f"arn:aws:iam::{ACCOUNT}:role/reader"
DEFAULT = f"arn:aws:iam::{ACCOUNT}:role/default"
STS_NAME = re.compile(r"^[\w+=,.@-]{2,64}$", re.ASCII)


def config(aws: dict[str, Any]) -> Config:
    return Config({"aws": aws})


ROLES = config(
    {
        "roles": [
            {
                "state_machine": "release",
                "resource": "airflow:*",
                "role_arn": DEPLOYER,
                "require_approval_from": "#release-managers",
                "duration_seconds": 1800,
            },
            {"state": "Read*", "role_arn": READER},
            {"role_arn": DEFAULT},
        ]
    }
)


def test_first_matching_entry_wins_by_state_machine_state_and_resource() -> None:
    deploy = role_rule_for(ROLES, "release", "Deploy", "airflow:deploy_dag")
    assert deploy == RoleRule(
        DEPLOYER,
        "aws.roles[0]",
        require_approval_from="#release-managers",
        duration_seconds=1800,
        state_machine="release",
        resource="airflow:*",
    )
    # same resource, another state machine: the deployer entry does not apply
    read = role_rule_for(ROLES, "nightly", "ReadInventory", "airflow:deploy_dag")
    assert read is not None and read.role_arn == READER and read.origin == "aws.roles[1]"
    # an entry without matchers is the default role
    other = role_rule_for(ROLES, "nightly", "Build", "reflow:build")
    assert other is not None and other.role_arn == DEFAULT and other.require_approval_from is None
    assert role_rule_for(Config(), "release", "Deploy", "airflow:deploy_dag") is None


def test_credentials_field_wins_and_keeps_the_roles_approval_requirement() -> None:
    # the state names the deployer role itself, in a state the role map gives another role:
    # the approval the role requires still applies (it belongs to the role, not to the entry)
    rule = role_rule_for(ROLES, "nightly", "ReadInventory", "reflow:x", {"RoleArn": DEPLOYER})
    assert rule is not None
    assert (rule.role_arn, rule.origin, rule.require_approval_from, rule.duration_seconds) == (
        DEPLOYER,
        "Credentials",
        "#release-managers",
        1800,
    )
    plain = role_rule_for(ROLES, "release", "Deploy", "airflow:x", {"RoleArn": READER})
    assert plain is not None and plain.role_arn == READER and plain.require_approval_from is None


def test_allow_list_first_matching_state_machine_decides() -> None:
    roles = role_map(
        config(
            {
                "allow": [
                    {"state_machine": "release", "roles": [f"arn:aws:iam::{ACCOUNT}:role/release-*"]},
                    {"state_machine": "sandbox-*", "roles": [READER, DEFAULT]},
                    {"state_machine": "*", "roles": []},
                ]
            }
        )
    )
    assert roles.refusal("release", DEPLOYER) is None
    refused = roles.refusal("release", READER)
    assert refused == (
        f"role {READER} is not allowed for state machine 'release' "
        f"(aws.allow[0] allows: arn:aws:iam::{ACCOUNT}:role/release-*)"
    )
    assert roles.refusal("sandbox-1", DEFAULT) is None
    assert roles.refusal("other", READER) == (
        f"role {READER} is not allowed for state machine 'other' (aws.allow[2] allows: none)"
    )
    # without any [[aws.allow]] entry every role is allowed
    assert role_map(Config()).refusal("release", READER) is None


@pytest.mark.parametrize(
    ("aws", "message"),
    [
        ({"roles": {"role_arn": DEPLOYER}}, "aws.roles: must be an array of tables ([[aws.roles]])"),
        ({"roles": [{"state": "Deploy"}]}, "aws.roles[0].role_arn: is required"),
        ({"roles": [{"role_arn": "deployer"}]}, "aws.roles[0].role_arn: must be an IAM role ARN"),
        (
            {"roles": [{"role_arn": f"arn:aws:iam::{ACCOUNT}:user/bob"}]},
            "aws.roles[0].role_arn: must be an IAM role ARN",
        ),
        ({"roles": [{"role_arn": DEPLOYER, "stat": "Deploy"}]}, "aws.roles[0].stat: unknown key"),
        ({"roles": [{"role_arn": DEPLOYER, "state": 3}]}, "aws.roles[0].state: must be a non-empty string"),
        (
            {"roles": [{"role_arn": DEPLOYER, "duration_seconds": 60}]},
            "aws.roles[0].duration_seconds: must be whole seconds from 900 to 43200",
        ),
        ({"allow": [{"roles": [DEPLOYER]}]}, "aws.allow[0].state_machine: is required"),
        ({"allow": [{"state_machine": "x", "roles": DEPLOYER}]}, "aws.allow[0].roles: is required"),
        ({"session_duration": 100000}, "aws.session_duration: must be whole seconds from 900 to 43200"),
        ({"refresh_margin": -1}, "aws.refresh_margin: must be whole seconds from 0 to 899"),
    ],
)
def test_a_bad_role_map_names_the_key(aws: dict[str, Any], message: str) -> None:
    bad = config(aws)
    with pytest.raises(ConfigError) as caught:
        role_map(bad)
        session_duration(bad)
        refresh_margin(bad)
    assert f"configuration: {message}" in str(caught.value)


def test_session_settings_defaults() -> None:
    assert session_duration(Config()) == 3600
    assert refresh_margin(Config()) == 300
    assert session_duration(config({"session_duration": 900})) == 900


# ---------------------------------------------------------------------------------------------- naming
def test_session_name_is_derived_from_execution_state_and_attempt() -> None:
    name = session_name("release:run-7", "Deploy", 2, "#Deploy#5#2")
    assert name.startswith("run-7.Deploy.2.") and STS_NAME.match(name)
    assert name == session_name("release:run-7", "Deploy", 2, "#Deploy#5#2")  # deterministic
    # another attempt, or the same state in another Map iteration, is another session name
    assert session_name("release:run-7", "Deploy", 3, "#Deploy#5#3") != name
    assert session_name("release:run-7", "Deploy", 2, "/0#Deploy#5#2") != name


def test_long_or_exotic_names_stay_within_sts_limits_and_stay_distinct() -> None:
    execution = "release:" + "e" * 80
    state = "Déployer la production / étape " + "x" * 60
    names = {session_name(execution, state + str(i), 0, f"#{state}{i}#3#0") for i in range(20)}
    assert len(names) == 20
    for name in names:
        assert STS_NAME.match(name), name
        assert len(name) == 64
    short = session_name("m:a", "S", 0, "t")
    assert STS_NAME.match(short) and short.startswith("a.S.0.")


def test_source_identity_is_the_person_in_sts_alphabet() -> None:
    assert source_identity("alice@example.com") == "alice@example.com"
    assert source_identity("Zoë Smith") == "Zo--Smith"
    assert source_identity("x") == "x_"
    assert source_identity("") is None
    long = source_identity("a" * 100)
    assert long is not None and len(long) == 64 and STS_NAME.match(long)
    assert source_identity("a" * 100) != source_identity("a" * 99)


def test_session_tags_carry_execution_state_machine_version_and_revision() -> None:
    tags = session_tags("release:run 7", "release", 3, {"revision": "D42", "approver": "alice"})
    assert tags == {
        TAG_EXECUTION: "release:run 7",
        TAG_STATE_MACHINE: "release",
        TAG_VERSION: "3",
        TAG_REVISION: "D42",
    }
    assert TAG_REVISION not in session_tags("m:e", "m", 1, {})
    assert session_tags("m:e<>", "m", 1, None)[TAG_EXECUTION] == "m:e__"
    assert revision_of({"revision": {"id": 42, "phid": "PHID-DREV-x"}}) == "D42"
    assert revision_of({"revision": 17}) == "17"
    assert revision_of({"revision": True}) is None


# ---------------------------------------------------------------------------------------------- checks
def task(**fields: Any) -> dict[str, Any]:
    return {"Type": "Task", "Resource": "reflow:x", "End": True, **fields}


RESTRICTED = role_map(
    config(
        {
            "roles": [{"state": "Mapped", "role_arn": READER}],
            "allow": [{"state_machine": "release", "roles": [DEPLOYER]}],
        }
    )
)


def test_literal_roles_are_checked_everywhere_in_the_definition() -> None:
    definition = {
        "StartAt": "Par",
        "States": {
            "Par": {
                "Type": "Parallel",
                "Branches": [
                    {"StartAt": "Ok", "States": {"Ok": task(Credentials={"RoleArn": DEPLOYER})}},
                    {"StartAt": "a/b", "States": {"a/b": task(Credentials={"RoleArn": READER})}},
                ],
                "Next": "Each",
            },
            "Each": {
                "Type": "Map",
                "ItemProcessor": {"StartAt": "Mapped", "States": {"Mapped": task()}},
                "Next": "Dynamic",
            },
            "Dynamic": task(Credentials={"RoleArn.$": "$.role"}, End=False, Next="Bad"),
            "Bad": task(Credentials={"RoleArn": "deployer"}),
        },
    }
    assert role_problems(RESTRICTED, "release", definition) == [
        f"/States/Par/Branches/1/States/a~1b/Credentials/RoleArn: role {READER} is not allowed for "
        f"state machine 'release' (aws.allow[0] allows: {DEPLOYER})",
        f"/States/Each/ItemProcessor/States/Mapped: the role map (aws.roles[0]) gives this state a role, "
        f"but role {READER} is not allowed for state machine 'release' (aws.allow[0] allows: {DEPLOYER})",
        "/States/Bad/Credentials/RoleArn: 'deployer' is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)",
    ]
    # a state machine no [[aws.allow]] entry names may use any role (only the ARN shape is checked)
    assert role_problems(RESTRICTED, "sandbox", definition) == [
        "/States/Bad/Credentials/RoleArn: 'deployer' is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)"
    ]


def test_jsonata_expressions_are_left_to_run_time() -> None:
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "T",
        "States": {"T": task(Credentials={"RoleArn": "{% $states.input.role %}"})},
    }
    assert role_problems(RESTRICTED, "release", definition) == []
    literal = {**definition, "States": {"T": task(Credentials={"RoleArn": READER})}}
    assert len(role_problems(RESTRICTED, "release", literal)) == 1
