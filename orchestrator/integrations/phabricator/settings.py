"""The ``[phabricator]`` table of the configuration, and the secrets from the environment.

```toml
[phabricator]
url = "https://phorge.example.com"        # or ORCHESTRATOR_PHABRICATOR_URL
token_env = "ORCHESTRATOR_PHABRICATOR_TOKEN"        # the NAME of the variable holding the Conduit token
hmac_key_env = "ORCHESTRATOR_PHABRICATOR_HMAC_KEY"  # the NAME of the variable holding the webhook key
public_url = "https://orchestrator.example.com"      # links in comments posted back
publish_policy = "require_approved_revision"          # or "none" (default)
reset_on_new_diff = true                # approvals of an older diff do not release a gate
max_body_bytes = 1048576                # larger webhook bodies are answered 413
reconcile_seconds = 60                  # how often open gates are polled through Conduit
report_poll_seconds = 5                 # how often an execution started by a revision is checked
retry_seconds = 5                       # first back-off when Conduit fails (doubles, up to 5 minutes)

[[phabricator.triggers]]
repository = "PHID-REPO-..."            # optional: any repository when absent
project = "PHID-PROJ-..."               # optional: the revision must be tagged with it
start = "release:prod"                  # NAME[:ALIAS|:VERSION] started when a revision is accepted

[phabricator.harbormaster]
start = "ci:prod"                       # started by a Harbormaster "Make HTTP Request" build step
```

Secrets never live in the file: a ``token`` or ``hmac_key`` key there is refused, with a message
naming ``token_env`` / ``hmac_key_env``. The environment variables ``ORCHESTRATOR_PHABRICATOR_URL``,
``_TOKEN`` and ``_HMAC_KEY`` are read when the file names no other variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.config import Config

URL_ENV = "ORCHESTRATOR_PHABRICATOR_URL"
TOKEN_ENV = "ORCHESTRATOR_PHABRICATOR_TOKEN"  # noqa: S105 - the name of the variable, not a secret
HMAC_KEY_ENV = "ORCHESTRATOR_PHABRICATOR_HMAC_KEY"
SECTION = "phabricator"
POLICIES = ("none", "require_approved_revision")
_KNOWN = {
    "url",
    "token_env",
    "hmac_key_env",
    "public_url",
    "publish_policy",
    "reset_on_new_diff",
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
    """When a revision matching ``repository``/``project`` is accepted, start ``start``."""

    start: str
    repository: str | None = None
    project: str | None = None

    def matches(self, repository: str | None, projects: list[str]) -> bool:
        """Whether a revision in ``repository`` tagged with ``projects`` is one of this rule's."""
        if self.repository is not None and self.repository != repository:
            return False
        return self.project is None or self.project in projects


@dataclass(frozen=True)
class Settings:
    """Everything the integration needs, resolved once (secrets included: never log this object)."""

    url: str | None = None
    token: str | None = field(default=None, repr=False)
    hmac_key: str | None = field(default=None, repr=False)
    public_url: str = "http://127.0.0.1:8000"
    publish_policy: str = "none"
    reset_on_new_diff: bool = True
    max_body_bytes: int = 1024 * 1024
    reconcile_seconds: float = 60.0
    report_poll_seconds: float = 5.0
    retry_seconds: float = 5.0
    """First delay before a failed handler runs again; doubles per attempt up to 5 minutes."""
    timeout_seconds: float = 15.0
    triggers: tuple[TriggerRule, ...] = ()
    harbormaster_start: str | None = None

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
            if key not in _KNOWN:
                raise config.problem(f"{SECTION}.{key}", f"unknown key (known: {', '.join(sorted(_KNOWN))})")
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
        harbormaster = table.get("harbormaster", {})
        if not isinstance(harbormaster, Mapping) or set(harbormaster) - {"start"}:
            raise config.problem(f"{SECTION}.harbormaster", "must be a table with only the key 'start'")
        return cls(
            url=url.rstrip("/") if url else None,
            token=env.get(token_var) or None,
            hmac_key=env.get(key_var) or None,
            public_url=(_string(config, table, "public_url") or cls.public_url).rstrip("/"),
            publish_policy=policy,
            reset_on_new_diff=reset,
            max_body_bytes=int(_number(config, table, "max_body_bytes", cls.max_body_bytes)),
            reconcile_seconds=_number(config, table, "reconcile_seconds", cls.reconcile_seconds),
            report_poll_seconds=_number(config, table, "report_poll_seconds", cls.report_poll_seconds),
            retry_seconds=_number(config, table, "retry_seconds", cls.retry_seconds),
            timeout_seconds=_number(config, table, "timeout_seconds", cls.timeout_seconds),
            triggers=_triggers(config, table.get("triggers", [])),
            harbormaster_start=_reference(config, f"{SECTION}.harbormaster.start", harbormaster.get("start")),
        )


def _string(config: Config, table: Mapping[str, Any], key: str) -> str | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise config.problem(f"{SECTION}.{key}", "must be a non-empty string")
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
        unknown = set(item) - {"start", "repository", "project"}
        if unknown:
            raise config.problem(
                f"{where}.{sorted(unknown)[0]}", "unknown key (known: start, repository, project)"
            )
        start = _reference(config, f"{where}.start", item.get("start"))
        if start is None:
            raise config.problem(f"{where}.start", "is required: the state machine to start (NAME:ALIAS)")
        for key in ("repository", "project"):
            if key in item and (not isinstance(item[key], str) or not item[key]):
                raise config.problem(f"{where}.{key}", "must be a non-empty string (a PHID)")
        rules.append(TriggerRule(start, item.get("repository"), item.get("project")))
    return tuple(rules)
