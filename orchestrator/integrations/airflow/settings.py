"""The ``[airflow]`` table of the configuration: named connections to Airflow deployments.

```toml
[airflow]
default_connection = "main"          # for "airflow:<dag_id>" resources

[airflow.connections.main]           # a self-hosted Airflow, REST API v2 (Airflow 3) or v1 (Airflow 2)
base_url = "https://airflow.example.com"
api_version = "auto"                 # "auto" (ask /api/v2/version, then /api/v1/version) | "v1" | "v2"
username_env = "AIRFLOW_USER"        # credentials come from environment variables named here...
password_env = "AIRFLOW_PASSWORD"
# token_env = "AIRFLOW_TOKEN"        # ...or a bearer token...
# secret_id = "prod/airflow"         # ...or an AWS Secrets Manager secret (JSON: username/password or
                                     # token), read under the task's role

[airflow.connections.mwaa]           # Amazon MWAA: boto3 invoke_rest_api under the task's role
mwaa_environment = "prod-airflow"
```

Optional per connection: ``request_timeout_seconds`` (one HTTP request, default 30),
``poll_max_seconds`` (the longest pause between two polls of a running DAG run, default 5).
Secrets never appear here: only the names of the variables or secrets that hold them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from orchestrator.config import Config

ApiVersion = Literal["auto", "v1", "v2"]
NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_SECRET_KEYS = ("password", "token", "secret")
_KEYS = {
    "base_url",
    "api_version",
    "username_env",
    "password_env",
    "token_env",
    "secret_id",
    "mwaa_environment",
    "request_timeout_seconds",
    "poll_max_seconds",
}


@dataclass(frozen=True, slots=True)
class Connection:
    """One configured Airflow: either ``base_url`` (self-hosted) or ``mwaa_environment``."""

    name: str
    base_url: str | None = None
    mwaa_environment: str | None = None
    api_version: ApiVersion = "auto"
    username_env: str | None = None
    password_env: str | None = None
    token_env: str | None = None
    secret_id: str | None = None
    request_timeout_seconds: float = 30.0
    poll_max_seconds: float = 5.0


@dataclass(frozen=True, slots=True)
class AirflowSettings:
    """The parsed ``[airflow]`` table."""

    connections: Mapping[str, Connection]
    default_connection: str | None = None

    def names(self) -> list[str]:
        """The configured connection names, sorted."""
        return sorted(self.connections)


def load(config: Config) -> AirflowSettings:
    """Parse and validate ``[airflow]``; a bad value raises ``ConfigError`` naming the key."""
    table = config.section("airflow")
    config.refuse_unknown("airflow", table, {"connections", "default_connection"})
    raw = table.get("connections", {})
    if not isinstance(raw, Mapping):
        raise config.problem("airflow.connections", "must be a table of named connections")
    connections = {name: _connection(config, name, value) for name, value in raw.items()}
    default = table.get("default_connection")
    if default is not None:
        if not isinstance(default, str) or default not in connections:
            raise config.problem(
                "airflow.default_connection",
                f"names no configured connection (configured: {', '.join(sorted(connections)) or 'none'})",
            )
    elif len(connections) == 1:
        default = next(iter(connections))
    return AirflowSettings(connections, default)


def _connection(config: Config, name: str, value: Any) -> Connection:
    key = f"airflow.connections.{name}"
    if not NAME.match(name):
        raise config.problem(key, "a connection name is 1-64 letters, digits, '_', '.' or '-'")
    if not isinstance(value, Mapping):
        raise config.problem(key, "must be a table")
    for field_name in value:
        if field_name not in _KEYS and any(word in field_name for word in _SECRET_KEYS):
            raise config.problem(
                f"{key}.{field_name}",
                "unknown key (secrets never go in the configuration: name an environment variable with "
                "username_env/password_env/token_env, or an AWS secret with secret_id)",
            )
    config.refuse_unknown(key, value, _KEYS)
    strings: dict[str, str] = {}
    for field_name in sorted(_KEYS - {"request_timeout_seconds", "poll_max_seconds"}):
        if field_name in value:
            item = value[field_name]
            if not isinstance(item, str) or not item:
                raise config.problem(f"{key}.{field_name}", "must be a non-empty string")
            strings[field_name] = item
    numbers: dict[str, float] = {}
    for field_name in ("request_timeout_seconds", "poll_max_seconds"):
        if field_name in value:
            item = value[field_name]
            if isinstance(item, bool) or not isinstance(item, int | float) or item <= 0:
                raise config.problem(f"{key}.{field_name}", "must be a positive number of seconds")
            numbers[field_name] = float(item)
    base_url, mwaa = strings.get("base_url"), strings.get("mwaa_environment")
    if (base_url is None) == (mwaa is None):
        raise config.problem(key, "needs exactly one of base_url (self-hosted Airflow) or mwaa_environment")
    if base_url is not None and not re.match(r"^https?://[^/\s]+", base_url):
        raise config.problem(f"{key}.base_url", f"must be an http(s) URL, got {base_url!r}")
    version = strings.get("api_version", "auto")
    if version not in ("auto", "v1", "v2"):
        raise config.problem(f"{key}.api_version", f'must be "auto", "v1" or "v2", got {version!r}')
    sources = [
        label
        for label, present in (
            ("username_env/password_env", "username_env" in strings or "password_env" in strings),
            ("token_env", "token_env" in strings),
            ("secret_id", "secret_id" in strings),
        )
        if present
    ]
    if len(sources) > 1:
        raise config.problem(key, f"give one source of credentials, not {' and '.join(sources)}")
    if ("username_env" in strings) != ("password_env" in strings):
        raise config.problem(key, "username_env and password_env go together")
    if mwaa is not None and sources:
        raise config.problem(
            key, "an MWAA connection authenticates with the task's AWS role, not with " + sources[0]
        )
    return Connection(
        name=name,
        base_url=base_url.rstrip("/") if base_url else None,
        mwaa_environment=mwaa,
        api_version=version,  # type: ignore[arg-type]  # checked just above
        username_env=strings.get("username_env"),
        password_env=strings.get("password_env"),
        token_env=strings.get("token_env"),
        secret_id=strings.get("secret_id"),
        **numbers,
    )
