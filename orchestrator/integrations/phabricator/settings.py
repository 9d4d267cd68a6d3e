"""The ``[phabricator]`` table of the configuration, and the secrets from the environment.

```toml
[phabricator]
url = "https://phorge.example.com"        # or ORCHESTRATOR_PHABRICATOR_URL
token_env = "ORCHESTRATOR_PHABRICATOR_TOKEN"        # the NAME of the variable holding the Conduit token
hmac_key_env = "ORCHESTRATOR_PHABRICATOR_HMAC_KEY"  # the NAME of the variable holding the webhook key
public_url = "https://orchestrator.example.com"      # links in comments posted back
publish_policy = "require_approved_revision"          # or "none" (default)
reset_on_new_diff = true                # approvals of an older diff do not release a gate, and a new
                                        # diff after the release revokes the approval (see gates)
abort_on_new_diff = false               # ...and then stops the execution (Phabricator.DiffChanged)
max_body_bytes = 1048576                # larger webhook bodies are answered 413
reconcile_seconds = 60                  # how often open gates are polled through Conduit
report_poll_seconds = 5                 # how often an execution started by a revision is checked
retry_seconds = 5                       # first back-off when Conduit fails (doubles, jittered, <= 5 min)

[[phabricator.triggers]]
repository = "PHID-REPO-..."            # optional: any repository when absent
project = "PHID-PROJ-..."               # optional: the revision must be tagged with it
paths = ["deploy/**", "*.tf"]           # optional: the accepted diff must touch one of these
start = "release:prod"                  # NAME[:ALIAS|:VERSION] started when a revision is accepted

[phabricator.harbormaster]
start = "ci:prod"                       # started by a Harbormaster "Make HTTP Request" build step
token_env = "MY_HARBORMASTER_TOKEN"     # the NAME of the variable holding the build step's shared token
```

``paths`` are ``.gitignore``-style patterns (the syntax of CODEOWNERS; matched with the ``pathspec``
library's :class:`~pathspec.GitIgnoreSpec`, not hand-written): ``deploy/**`` is everything under the
top-level ``deploy``, ``*.tf`` any ``.tf`` file at any depth, ``!deploy/README.md`` takes one back. They
are matched against the repository-relative paths of the files the accepted diff touches (both sides
of a move), read through Conduit (:meth:`.Conduit.changed_paths`).

Secrets never live in the file: a ``token`` or ``hmac_key`` key there is refused, with a message
naming ``token_env`` / ``hmac_key_env``. The environment variables ``ORCHESTRATOR_PHABRICATOR_URL``,
``_TOKEN`` and ``_HMAC_KEY`` are read when the file names no other variable.

The Harbormaster endpoint's shared token is optional: it is required when
``ORCHESTRATOR_PHABRICATOR_HARBORMASTER_TOKEN`` (or the variable ``[phabricator.harbormaster]
token_env`` names) is set, and a ``token_env`` naming an unset variable fails closed (the endpoint
answers 503), so a typo never silently opens it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import pathspec

from orchestrator.config import Config

URL_ENV = "ORCHESTRATOR_PHABRICATOR_URL"
TOKEN_ENV = "ORCHESTRATOR_PHABRICATOR_TOKEN"  # noqa: S105 - the name of the variable, not a secret
HMAC_KEY_ENV = "ORCHESTRATOR_PHABRICATOR_HMAC_KEY"
HARBORMASTER_TOKEN_ENV = "ORCHESTRATOR_PHABRICATOR_HARBORMASTER_TOKEN"  # noqa: S105 - a variable's name
SECTION = "phabricator"
POLICIES = ("none", "require_approved_revision")
_KNOWN = {
    "url",
    "token_env",
    "hmac_key_env",
    "public_url",
    "publish_policy",
    "reset_on_new_diff",
    "abort_on_new_diff",
    "max_body_bytes",
    "reconcile_seconds",
    "report_poll_seconds",
    "retry_seconds",
    "timeout_seconds",
    "triggers",
    "harbormaster",
}


@dataclass(frozen=True)
class TriggerRule:
    """When a revision matching ``repository``/``project`` whose diff touches ``paths`` is accepted,
    start ``start``."""

    start: str
    repository: str | None = None
    project: str | None = None
    paths: tuple[str, ...] = ()
    """``.gitignore``-style patterns; empty: any diff."""

    def matches(self, repository: str | None, projects: list[str]) -> bool:
        """Whether a revision in ``repository`` tagged with ``projects`` is one of this rule's
        (``paths`` aside: see :meth:`touched`)."""
        if self.repository is not None and self.repository != repository:
            return False
        return self.project is None or self.project in projects

    def touched(self, changed: Iterable[str]) -> list[str]:
        """The ``changed`` paths this rule's ``paths`` select (all of them when it has none)."""
        wanted = list(changed)
        if not self.paths:
            return wanted
        spec = path_spec(self.paths)
        return [path for path in wanted if spec.match_file(path.strip("/"))]


@lru_cache(maxsize=256)
def path_spec(patterns: tuple[str, ...]) -> pathspec.GitIgnoreSpec:
    """The compiled ``.gitignore``-style ``patterns`` (:class:`ValueError` for a malformed one)."""
    return pathspec.GitIgnoreSpec.from_lines(patterns)  # its GitIgnorePatternError is a ValueError


@dataclass(frozen=True)
class Settings:
    """Everything the integration needs, resolved once (secrets included: never log this object)."""

    url: str | None = None
    token: str | None = field(default=None, repr=False)
    hmac_key: str | None = field(default=None, repr=False)
    public_url: str = "http://127.0.0.1:8000"
    publish_policy: str = "none"
    reset_on_new_diff: bool = True
    abort_on_new_diff: bool = False
    max_body_bytes: int = 1024 * 1024
    reconcile_seconds: float = 60.0
    report_poll_seconds: float = 5.0
    retry_seconds: float = 5.0
    """First delay before a failed handler runs again; doubles per attempt up to 5 minutes, each
    drawn from its upper half (jitter)."""
    timeout_seconds: float = 15.0
    triggers: tuple[TriggerRule, ...] = ()
    harbormaster_start: str | None = None
    harbormaster_token: str | None = field(default=None, repr=False)
    harbormaster_token_env: str | None = None
    """The variable the token must come from when the file names one (unset there: fail closed)."""

    @property
    def conduit_ready(self) -> bool:
        """Whether Conduit can be called (URL and token known)."""
        return bool(self.url and self.token)

    @classmethod
    def from_config(cls, config: Config, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and check ``[phabricator]`` of ``config``; secrets from ``environ`` (default: os.environ)."""
        env = os.environ if environ is None else environ
        table = config.section(SECTION)
        for key in table:
            if key in ("token", "hmac_key", "api_token"):
                raise config.problem(
                    f"{SECTION}.{key}",
                    f"secrets never live in the configuration file; name the environment variable "
                    f"holding it with {key.removeprefix('api_')}_env",
                )
        config.refuse_unknown(SECTION, table, _KNOWN)
        url = _string(config, table, "url") or env.get(URL_ENV) or None
        if url is not None and not url.startswith(("http://", "https://")):
            raise config.problem(f"{SECTION}.url", f"must be an http(s) URL, got {url!r}")
        token_var = _string(config, table, "token_env") or TOKEN_ENV
        key_var = _string(config, table, "hmac_key_env") or HMAC_KEY_ENV
        policy = _string(config, table, "publish_policy") or "none"
        if policy not in POLICIES:
            raise config.problem(f"{SECTION}.publish_policy", f"must be one of {', '.join(POLICIES)}")
        reset = table.get("reset_on_new_diff", True)
        if not isinstance(reset, bool):
            raise config.problem(f"{SECTION}.reset_on_new_diff", "must be true or false")
        abort = table.get("abort_on_new_diff", False)
        if not isinstance(abort, bool):
            raise config.problem(f"{SECTION}.abort_on_new_diff", "must be true or false")
        if abort and not reset:
            raise config.problem(f"{SECTION}.abort_on_new_diff", "needs reset_on_new_diff = true")
        harbormaster = table.get("harbormaster", {})
        if isinstance(harbormaster, Mapping) and "token" in harbormaster:
            raise config.problem(
                f"{SECTION}.harbormaster.token",
                "secrets never live in the configuration file; name the environment variable holding "
                "it with token_env",
            )
        if not isinstance(harbormaster, Mapping) or set(harbormaster) - {"start", "token_env"}:
            raise config.problem(
                f"{SECTION}.harbormaster", "must be a table with only the keys 'start' and 'token_env'"
            )
        named = _string(config, harbormaster, "token_env", f"{SECTION}.harbormaster")
        return cls(
            url=url.rstrip("/") if url else None,
            token=env.get(token_var) or None,
            hmac_key=env.get(key_var) or None,
            public_url=(_string(config, table, "public_url") or cls.public_url).rstrip("/"),
            publish_policy=policy,
            reset_on_new_diff=reset,
            abort_on_new_diff=abort,
            max_body_bytes=int(_number(config, table, "max_body_bytes", cls.max_body_bytes)),
            reconcile_seconds=_number(config, table, "reconcile_seconds", cls.reconcile_seconds),
            report_poll_seconds=_number(config, table, "report_poll_seconds", cls.report_poll_seconds),
            retry_seconds=_number(config, table, "retry_seconds", cls.retry_seconds),
            timeout_seconds=_number(config, table, "timeout_seconds", cls.timeout_seconds),
            triggers=_triggers(config, table.get("triggers", [])),
            harbormaster_start=_reference(config, f"{SECTION}.harbormaster.start", harbormaster.get("start")),
            harbormaster_token=env.get(named or HARBORMASTER_TOKEN_ENV) or None,
            harbormaster_token_env=named,
        )


def _string(config: Config, table: Mapping[str, Any], key: str, where: str = SECTION) -> str | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise config.problem(f"{where}.{key}", "must be a non-empty string")
    return value


def _number(config: Config, table: Mapping[str, Any], key: str, default: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise config.problem(f"{SECTION}.{key}", "must be a positive number")
    return float(value)


def _reference(config: Config, key: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or value.count(":") > 1:
        raise config.problem(key, "must be NAME, NAME:ALIAS or NAME:VERSION")
    return value


def _triggers(config: Config, value: Any) -> tuple[TriggerRule, ...]:
    if not isinstance(value, list):
        raise config.problem(f"{SECTION}.triggers", "must be an array of tables ([[phabricator.triggers]])")
    rules = []
    for index, item in enumerate(value):
        where = f"{SECTION}.triggers[{index}]"
        if not isinstance(item, Mapping):
            raise config.problem(where, "must be a table")
        config.refuse_unknown(where, item, {"start", "repository", "project", "paths"})
        start = _reference(config, f"{where}.start", item.get("start"))
        if start is None:
            raise config.problem(f"{where}.start", "is required: the state machine to start (NAME:ALIAS)")
        for key in ("repository", "project"):
            if key in item and (not isinstance(item[key], str) or not item[key]):
                raise config.problem(f"{where}.{key}", "must be a non-empty string (a PHID)")
        rules.append(
            TriggerRule(start, item.get("repository"), item.get("project"), _paths(config, where, item))
        )
    return tuple(rules)


def _paths(config: Config, where: str, item: Mapping[str, Any]) -> tuple[str, ...]:
    if "paths" not in item:
        return ()
    value = item["paths"]
    if not isinstance(value, list) or not value:
        raise config.problem(f"{where}.paths", 'must be a non-empty array of patterns, e.g. ["deploy/**"]')
    for index, pattern in enumerate(value):
        if not isinstance(pattern, str) or not pattern.strip():
            raise config.problem(f"{where}.paths[{index}]", "must be a non-empty string (a path pattern)")
        try:
            path_spec((pattern,))
        except ValueError as exc:
            raise config.problem(f"{where}.paths[{index}]", f"not a valid path pattern: {exc}") from None
    return tuple(value)
