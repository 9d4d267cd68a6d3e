"""The role map of the ``[aws]`` table: which IAM role a Task state runs under, and which roles a state
machine may use at all.

A Task state names its role with the ASL ``Credentials`` field (``{"RoleArn": "arn:aws:iam::...:role/x"}``);
otherwise the first ``[[aws.roles]]`` entry that matches it decides. An entry matches by any of
``state_machine``, ``state`` (the state's name) and ``resource``, each a shell-style glob
(:func:`fnmatch.fnmatchcase`: ``*``, ``?``, ``[...]``); an entry without any of them matches every Task
state, which makes a default role when it comes last::

    [[aws.roles]]
    state_machine = "release"
    resource = "airflow:*"
    role_arn = "arn:aws:iam::123456789012:role/release-deployer"
    require_approval_from = "#release-managers"   # optional: who must approve runs under this role
    duration_seconds = 1800                       # optional: this role's session length

    [[aws.allow]]                                 # the roles a state machine may use at all
    state_machine = "release"                     # a glob; the first matching entry decides
    roles = ["arn:aws:iam::123456789012:role/release-*"]

    [[aws.allow]]
    state_machine = "*"                           # a last catch-all entry with no roles: every
    roles = []                                    # other state machine may use no role at all

A state machine that no ``[[aws.allow]]`` entry matches may use any role. ``require_approval_from`` is
a property of the role: it applies to every state that runs under that role, whether the role came from
the entry or from the state's ``Credentials`` (the Phabricator approval gate reads it through
:func:`role_rule_for`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from orchestrator.config import Config

ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
"""An IAM role ARN, as STS's AssumeRole accepts it."""

MIN_DURATION, MAX_DURATION = 900, 43200
"""STS's bounds for ``DurationSeconds``."""

_RULE_KEYS = frozenset(
    {"role_arn", "state_machine", "state", "resource", "require_approval_from", "duration_seconds"}
)
_ALLOW_KEYS = frozenset({"state_machine", "roles"})


@dataclass(frozen=True, slots=True)
class RoleRule:
    """The role a Task state runs under, and where that came from."""

    role_arn: str
    origin: str
    """``Credentials`` (the state's own field) or the entry of the role map, e.g. ``aws.roles[1]``."""
    require_approval_from: str | None = None
    """A Phabricator project (``#release-managers``) whose members must approve runs under this role."""
    duration_seconds: int | None = None
    state_machine: str | None = None
    state: str | None = None
    resource: str | None = None

    def matches(self, state_machine: str, state_name: str, resource: str) -> bool:
        """Whether this entry of the role map applies to the Task state."""
        return all(
            pattern is None or fnmatchcase(value, pattern)
            for pattern, value in (
                (self.state_machine, state_machine),
                (self.state, state_name),
                (self.resource, resource),
            )
        )


@dataclass(frozen=True, slots=True)
class Allowance:
    """An ``[[aws.allow]]`` entry: the role globs the matching state machines may use."""

    state_machine: str
    roles: tuple[str, ...]
    origin: str

    def permits(self, role_arn: str) -> bool:
        """Whether ``role_arn`` is one of the allowed roles."""
        return any(fnmatchcase(role_arn, pattern) for pattern in self.roles)


@dataclass(frozen=True, slots=True)
class RoleMap:
    """The parsed ``[[aws.roles]]`` and ``[[aws.allow]]`` entries, in file order."""

    rules: tuple[RoleRule, ...] = ()
    allowances: tuple[Allowance, ...] = ()

    def mapped(self, state_machine: str, state_name: str, resource: str) -> RoleRule | None:
        """The first entry of the role map that applies to the Task state."""
        for rule in self.rules:
            if rule.matches(state_machine, state_name, resource):
                return rule
        return None

    def resolve(
        self, state_machine: str, state_name: str, resource: str, credentials: Any
    ) -> RoleRule | None:
        """The role of a Task state: its ``Credentials.RoleArn`` (evaluated), else the role map's."""
        role_arn = credentials.get("RoleArn") if isinstance(credentials, Mapping) else None
        if not isinstance(role_arn, str):
            return self.mapped(state_machine, state_name, resource)
        mapped = self.mapped(state_machine, state_name, resource)
        same_role = [rule for rule in self.rules if rule.role_arn == role_arn]
        if mapped is not None and mapped.role_arn == role_arn:
            same_role.insert(0, mapped)
        approval = next((r.require_approval_from for r in same_role if r.require_approval_from), None)
        duration = next((r.duration_seconds for r in same_role if r.duration_seconds), None)
        return RoleRule(role_arn, "Credentials", require_approval_from=approval, duration_seconds=duration)

    def allowance(self, state_machine: str) -> Allowance | None:
        """The ``[[aws.allow]]`` entry that decides for ``state_machine`` (None: any role)."""
        for allowance in self.allowances:
            if fnmatchcase(state_machine, allowance.state_machine):
                return allowance
        return None

    def refusal(self, state_machine: str, role_arn: str) -> str | None:
        """Why ``state_machine`` may not use ``role_arn``, or None when it may."""
        allowance = self.allowance(state_machine)
        if allowance is None or allowance.permits(role_arn):
            return None
        allowed = ", ".join(allowance.roles) or "none"
        return (
            f"role {role_arn} is not allowed for state machine '{state_machine}' "
            f"({allowance.origin} allows: {allowed})"
        )


def role_map(config: Config) -> RoleMap:
    """Parse and check the role map of ``config``; a bad entry is a ``ConfigError`` naming its key."""
    section = config.section("aws")
    rules = tuple(
        _rule(config, f"aws.roles[{i}]", entry) for i, entry in enumerate(_tables(config, section, "roles"))
    )
    allowances = tuple(
        _allowance(config, f"aws.allow[{i}]", entry)
        for i, entry in enumerate(_tables(config, section, "allow"))
    )
    return RoleMap(rules, allowances)


def role_rule_for(
    config: Config, state_machine: str, state_name: str, resource: str, credentials: Any = None
) -> RoleRule | None:
    """The role a Task state runs under (None: the worker's own credentials), with the approval its
    role requires (``require_approval_from``). ``credentials`` is the state's evaluated ``Credentials``
    field (:attr:`TaskRequest.credentials`)."""
    return role_map(config).resolve(state_machine, state_name, resource, credentials)


def session_duration(config: Config) -> int:
    """``aws.session_duration``: the default ``DurationSeconds`` of role sessions (3600)."""
    return _duration(config, "aws.session_duration", config.section("aws").get("session_duration", 3600))


def refresh_margin(config: Config) -> int:
    """``aws.refresh_margin``: a cached session is renewed this many seconds before it expires (300)."""
    value = config.section("aws").get("refresh_margin", 300)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < MIN_DURATION:
        raise config.problem("aws.refresh_margin", f"must be whole seconds from 0 to {MIN_DURATION - 1}")
    return value


def _tables(config: Config, section: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = section.get(key, [])
    if not isinstance(value, list) or not all(isinstance(entry, Mapping) for entry in value):
        raise config.problem(f"aws.{key}", f"must be an array of tables ([[aws.{key}]])")
    return value


def _rule(config: Config, where: str, entry: Mapping[str, Any]) -> RoleRule:
    config.refuse_unknown(where, entry, _RULE_KEYS)
    role_arn = entry.get("role_arn")
    if role_arn is None:
        raise config.problem(f"{where}.role_arn", "is required")
    _check_role_arn(config, f"{where}.role_arn", role_arn)
    patterns = {key: _optional_string(config, f"{where}.{key}", entry.get(key)) for key in _MATCHERS}
    approval = _optional_string(config, f"{where}.require_approval_from", entry.get("require_approval_from"))
    duration = entry.get("duration_seconds")
    return RoleRule(
        role_arn,
        where,
        require_approval_from=approval,
        duration_seconds=None
        if duration is None
        else _duration(config, f"{where}.duration_seconds", duration),
        **patterns,
    )


_MATCHERS = ("state_machine", "state", "resource")


def _allowance(config: Config, where: str, entry: Mapping[str, Any]) -> Allowance:
    config.refuse_unknown(where, entry, _ALLOW_KEYS)
    state_machine = _optional_string(config, f"{where}.state_machine", entry.get("state_machine"))
    if state_machine is None:
        raise config.problem(f"{where}.state_machine", "is required (a name or a glob such as '*')")
    roles = entry.get("roles")
    if not isinstance(roles, list) or not all(isinstance(role, str) and role for role in roles):
        raise config.problem(f"{where}.roles", "is required: an array of role ARNs or ARN globs")
    return Allowance(state_machine, tuple(roles), where)


def _optional_string(config: Config, key: str, value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or not value):
        raise config.problem(key, "must be a non-empty string")
    return value


def _check_role_arn(config: Config, key: str, value: Any) -> None:
    if not isinstance(value, str) or not ROLE_ARN.match(value):
        raise config.problem(key, f"must be an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME), got {value!r}")


def _duration(config: Config, key: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not MIN_DURATION <= value <= MAX_DURATION:
        raise config.problem(
            key, f"must be whole seconds from {MIN_DURATION} to {MAX_DURATION} (STS's bounds)"
        )
    return value
