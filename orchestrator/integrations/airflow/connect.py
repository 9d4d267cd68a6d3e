"""From a configured connection to a ready :class:`~.api.AirflowApi`: credentials, API version, transport.

Credentials are read when a task runs, never at install: from the environment variables the
connection names, or from an AWS Secrets Manager secret (a JSON object with ``username`` and
``password``, or ``token``) read under the task's role session. They live in memory only and are never
logged. The API version is asked once per connection and process (``GET /api/v2/version``, then
``/api/v1/version``; on MWAA the environment's ``AirflowVersion``) unless the connection pins it.
The connector also remembers, per connection and process, an Airflow whose wait stream answered 404
(older than 3.1): its runs are polled from then on.

An MWAA connection gets a transport that calls ``invoke_rest_api`` and, for a path over its
64-character limit, a web session opened from a web login token (:class:`~.transport.MwaaWebSession`),
both under the task's role.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass

import httpx
import structlog
from botocore.exceptions import ClientError

from orchestrator.config import Config
from orchestrator.integrations.airflow.api import AirflowApi, Version
from orchestrator.integrations.airflow.settings import Connection
from orchestrator.integrations.airflow.transport import (
    BearerAuth,
    HttpTransport,
    MwaaRefused,
    MwaaTransport,
    MwaaWebSession,
    jwt_exchange,
)
from orchestrator.integrations.aws import clients

log = structlog.get_logger(__name__)


class ConnectionProblem(Exception):
    """A connection cannot be used: missing credentials, unknown version, unreachable Airflow."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """What authenticates us to a self-hosted Airflow (in memory only; repr hides the secrets)."""

    username: str | None = None
    password: str | None = None
    token: str | None = None

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password=***, token=***)"


def credentials(
    connection: Connection,
    config: Config,
    role_environment: Mapping[str, str] | None,
    environ: Mapping[str, str] | None = None,
) -> Credentials:
    """The connection's credentials, from the environment or from Secrets Manager."""
    env = os.environ if environ is None else environ
    where = f"Airflow connection {connection.name!r}"
    if connection.token_env is not None:
        token = env.get(connection.token_env)
        if not token:
            raise ConnectionProblem(f"{where}: environment variable {connection.token_env} is not set")
        return Credentials(token=token)
    if connection.username_env is not None and connection.password_env is not None:
        missing = [name for name in (connection.username_env, connection.password_env) if not env.get(name)]
        if missing:
            raise ConnectionProblem(f"{where}: environment variable {', '.join(missing)} is not set")
        return Credentials(username=env[connection.username_env], password=env[connection.password_env])
    if connection.secret_id is not None:
        return _from_secret(connection, config, role_environment)
    return Credentials()


def _from_secret(
    connection: Connection, config: Config, role_environment: Mapping[str, str] | None
) -> Credentials:
    where = f"Airflow connection {connection.name!r}: secret {connection.secret_id!r}"
    client = clients.client("secretsmanager", config, role_environment)
    try:
        value = client.get_secret_value(SecretId=connection.secret_id)
    except client.exceptions.ResourceNotFoundException:
        raise ConnectionProblem(f"{where} does not exist") from None
    except Exception as exc:  # botocore ClientError: AccessDenied and friends
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
        raise ConnectionProblem(f"{where} cannot be read: {code}") from None
    try:
        data = json.loads(value.get("SecretString") or "")
    except ValueError:
        data = None
    if isinstance(data, Mapping):
        if isinstance(data.get("token"), str):
            return Credentials(token=data["token"])
        if isinstance(data.get("username"), str) and isinstance(data.get("password"), str):
            return Credentials(username=data["username"], password=data["password"])
    raise ConnectionProblem(f"{where} must be a JSON object with username and password, or token")


class Connector:
    """Opens :class:`AirflowApi` sessions for connections; remembers each connection's API version."""

    def __init__(
        self, config: Config, http: httpx.BaseTransport | None = None, mwaa_web_scheme: str = "https"
    ) -> None:
        """``http``: the httpx transport under every HTTP call (default: the network; tests may
        replay recorded answers with ``httpx.MockTransport``). ``mwaa_web_scheme``: how MWAA web
        servers are reached (``https`` on AWS; a test bridge on loopback speaks ``http``)."""
        self.config = config
        self.http = http
        self.mwaa_web_scheme = mwaa_web_scheme
        self._versions: dict[str, Version] = {}
        self._environments: dict[str, tuple[Version, str]] = {}  # MWAA: API version, UI base URL
        self._no_stream: set[str] = set()
        self._lock = threading.Lock()

    def streams(self, name: str) -> bool:
        """Whether the wait stream is worth trying on connection ``name``."""
        with self._lock:
            return name not in self._no_stream

    def no_stream(self, name: str) -> None:
        """Connection ``name`` has no wait stream (Airflow < 3.1): poll its runs from now on."""
        with self._lock:
            self._no_stream.add(name)

    def open(
        self,
        connection: Connection,
        role_environment: Mapping[str, str] | None,
        cancelled: threading.Event | None = None,
    ) -> tuple[AirflowApi, str]:
        """An API session for ``connection`` and the base URL of its UI."""
        if connection.mwaa_environment is not None:
            return self._mwaa(connection, role_environment, cancelled or threading.Event())
        assert connection.base_url is not None
        version = self._version_of(connection)
        creds = credentials(connection, self.config, role_environment)
        auth: httpx.Auth | None = None
        if creds.token is not None:
            auth = BearerAuth(creds.token)
        elif creds.username is not None and creds.password is not None:
            if version == "v2":
                exchange = jwt_exchange(
                    connection.base_url,
                    creds.username,
                    creds.password,
                    connection.request_timeout_seconds,
                    self.http,
                )
                auth = BearerAuth(None, renew=exchange)
            else:
                auth = httpx.BasicAuth(creds.username, creds.password)
        transport = HttpTransport(
            connection.base_url,
            f"/api/{version}",
            auth=auth,
            timeout=connection.request_timeout_seconds,
            cancelled=cancelled or threading.Event(),
            http=self.http,
        )
        return AirflowApi(transport, version), connection.base_url

    def _version_of(self, connection: Connection) -> Version:
        if connection.api_version != "auto":
            return connection.api_version
        with self._lock:
            known = self._versions.get(connection.name)
        if known is not None:
            return known
        assert connection.base_url is not None
        version: Version | None = None
        problems: list[str] = []
        with httpx.Client(
            base_url=connection.base_url, timeout=connection.request_timeout_seconds, transport=self.http
        ) as http:
            for candidate in ("v2", "v1"):
                try:
                    response = http.get(f"/api/{candidate}/version")
                except httpx.HTTPError as exc:
                    raise ConnectionProblem(
                        f"Airflow connection {connection.name!r}: {connection.base_url} is unreachable: {exc}"
                    ) from None
                if response.status_code in (200, 401, 403):  # the API exists (v1 may want auth)
                    version = "v2" if candidate == "v2" else "v1"
                    break
                problems.append(f"/api/{candidate}/version answered {response.status_code}")
        if version is None:
            raise ConnectionProblem(
                f"Airflow connection {connection.name!r}: no Airflow REST API at {connection.base_url} "
                f"({'; '.join(problems)}); set api_version to skip detection"
            )
        log.info("airflow.version_detected", connection=connection.name, api_version=version)
        with self._lock:
            self._versions[connection.name] = version
        return version

    def _mwaa(
        self,
        connection: Connection,
        role_environment: Mapping[str, str] | None,
        cancelled: threading.Event,
    ) -> tuple[AirflowApi, str]:
        assert connection.mwaa_environment is not None
        client = clients.client("mwaa", self.config, role_environment)
        with self._lock:
            known = self._environments.get(connection.name)
        if known is None:
            try:
                environment = client.get_environment(Name=connection.mwaa_environment)["Environment"]
            except client.exceptions.ResourceNotFoundException:
                where = f"Airflow connection {connection.name!r}"
                raise ConnectionProblem(
                    f"{where}: no MWAA environment {connection.mwaa_environment!r}"
                ) from None
            except ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code", "ClientError"))
                raise MwaaRefused(
                    code, f"MWAA GetEnvironment {connection.mwaa_environment}: {code}: {exc}"
                ) from None
            major = str(environment.get("AirflowVersion", "")).split(".")[0]
            detected: Version = "v2" if major.isdigit() and int(major) >= 3 else "v1"
            known = (detected, f"https://{environment.get('WebserverUrl', '')}".rstrip("/"))
            with self._lock:
                self._environments[connection.name] = known
        version = known[0] if connection.api_version == "auto" else connection.api_version
        web = MwaaWebSession(
            client,
            connection.mwaa_environment,
            version,
            timeout=connection.request_timeout_seconds,
            scheme=self.mwaa_web_scheme,
            http=self.http,
            cancelled=cancelled,
        )
        transport = MwaaTransport(client, connection.mwaa_environment, web=web, cancelled=cancelled)
        return AirflowApi(transport, version), known[1]
