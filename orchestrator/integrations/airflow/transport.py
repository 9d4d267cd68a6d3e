"""How one REST call reaches an Airflow: over HTTP (httpx) or through Amazon MWAA's ``invoke_rest_api``.

Both take a path relative to the API root (``/dags/etl/dagRuns``) and answer an :class:`ApiResponse`,
so the REST logic in :mod:`.api` does not care which one carries it.

* :class:`HttpTransport` talks to ``<base_url>/api/v1|v2`` with a typed httpx client, per-request
  timeouts, and retries with exponential back-off on connection errors and 5xx answers. The retry loop
  is hand-written (a dozen lines) because it must also stop when the task is cancelled and must not
  retry a ``POST`` whose first try may have reached Airflow: a trigger is retried safely only because
  its run id is deterministic (a retry that lands after a lost answer gets 409, which the caller reads
  as "already triggered"). Auth: HTTP Basic or a bearer token; on Airflow 3 a username and password
  are exchanged for a JWT at ``POST /auth/token``, renewed once on 401.
* :class:`MwaaTransport` calls ``invoke_rest_api`` with a boto3 ``mwaa`` client built under the task's
  role. MWAA limits ``Path`` to 64 characters and does not check it client-side, so it is enforced here
  with a clear error; MWAA's 4xx/5xx exceptions are turned back into status codes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import structlog
from botocore.exceptions import ClientError

log = structlog.get_logger(__name__)

MWAA_MAX_PATH = 64
RETRIES = 4


class AirflowUnreachable(Exception):
    """Airflow could not be reached (connection errors or 5xx) after the retries."""


class PathTooLong(Exception):
    """An MWAA path over 64 characters: ``invoke_rest_api`` would refuse it."""


@dataclass(frozen=True, slots=True)
class ApiResponse:
    """An answer of the Airflow REST API: status code and decoded JSON body (text when not JSON)."""

    status: int
    body: Any

    @property
    def ok(self) -> bool:
        """2xx."""
        return 200 <= self.status < 300

    def detail(self) -> str:
        """Airflow's error message (``detail`` in v1 and v2), else the body."""
        if isinstance(self.body, Mapping) and "detail" in self.body:
            return str(self.body["detail"])
        return str(self.body)[:500]


class Transport(Protocol):
    """Carries one REST call to an Airflow."""

    max_path: int | None
    """The longest path this transport can carry (64 on MWAA), None for no limit."""

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
    ) -> ApiResponse:
        """Send ``method path`` (relative to the API root) and return the answer."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def _decode(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


@dataclass
class HttpTransport:
    """REST over HTTP to ``<base_url><prefix>`` (prefix ``/api/v2`` or ``/api/v1``)."""

    base_url: str
    prefix: str
    auth: httpx.Auth | None = None
    timeout: float = 30.0
    cancelled: threading.Event = field(default_factory=threading.Event)
    client: httpx.Client | None = None
    max_path: int | None = None
    backoff: float = 0.5
    http: httpx.BaseTransport | None = None

    def __post_init__(self) -> None:
        if self.client is None:
            self.client = httpx.Client(
                base_url=self.base_url,
                transport=self.http,
                timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0)),
                auth=self.auth,
                headers={"Accept": "application/json"},
            )

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
    ) -> ApiResponse:
        """Send the call, retrying connection errors and 5xx with back-off."""
        assert self.client is not None
        url = f"{self.prefix}{path}"
        last = ""
        for attempt in range(RETRIES + 1):
            try:
                response = self.client.request(
                    method,
                    url,
                    params=dict(params) if params else None,
                    json=body if body is not None else None,
                )
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code < 500:
                    return ApiResponse(response.status_code, _decode(response))
                last = f"HTTP {response.status_code}: {response.text[:300]}"
            if attempt < RETRIES:
                pause = self.backoff * 2**attempt
                log.warning(
                    "airflow.request_retry", method=method, path=path, attempt=attempt + 1, error=last
                )
                if self.cancelled.wait(pause):
                    break
        raise AirflowUnreachable(f"{method} {self.base_url}{url}: {last}")

    def close(self) -> None:
        """Close the HTTP client."""
        if self.client is not None:
            self.client.close()


class BearerAuth(httpx.Auth):
    """``Authorization: Bearer <token>``; with ``renew`` a 401 fetches a new token and retries once."""

    def __init__(self, token: str | None, renew: Any = None) -> None:
        self._token = token
        self._renew = renew
        self._lock = threading.Lock()

    def auth_flow(self, request: httpx.Request) -> Any:
        """httpx's auth hook (a generator: may resend the request once)."""
        with self._lock:
            if self._token is None and self._renew is not None:
                self._token = self._renew()
            token = self._token
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401 and self._renew is not None:
            with self._lock:
                self._token = self._renew()
                token = self._token
            request.headers["Authorization"] = f"Bearer {token}"
            yield request


def jwt_exchange(
    base_url: str, username: str, password: str, timeout: float, http: httpx.BaseTransport | None = None
) -> Any:
    """A function that fetches an Airflow 3 JWT (``POST /auth/token``) for ``username``."""

    def fetch() -> str:
        with httpx.Client(timeout=timeout, transport=http) as client:
            response = client.post(
                f"{base_url}/auth/token", json={"username": username, "password": password}
            )
        if response.status_code not in (200, 201):
            raise AirflowAuthFailed(
                f"POST {base_url}/auth/token answered {response.status_code} for user {username!r}"
            )
        token = response.json().get("access_token")
        if not isinstance(token, str):
            raise AirflowAuthFailed(f"POST {base_url}/auth/token gave no access_token")
        return token

    return fetch


class AirflowAuthFailed(Exception):
    """The credentials were refused."""


class MwaaRefused(Exception):
    """MWAA itself refused the call (``AccessDeniedException``...); ``code`` is AWS's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class MwaaTransport:
    """REST through ``invoke_rest_api`` of the MWAA environment ``environment``."""

    client: Any
    environment: str
    max_path: int | None = MWAA_MAX_PATH

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
    ) -> ApiResponse:
        """Call ``invoke_rest_api``; MWAA's 4xx/5xx exceptions become statuses again."""
        if len(path) > MWAA_MAX_PATH:
            raise PathTooLong(
                f"MWAA limits the REST path to {MWAA_MAX_PATH} characters and {path!r} has {len(path)}: "
                "use shorter DAG and task ids"
            )
        kwargs: dict[str, Any] = {"Name": self.environment, "Path": path, "Method": method}
        if params:
            kwargs["QueryParameters"] = dict(params)
        if body is not None:
            kwargs["Body"] = body
        last = ""
        for attempt in range(RETRIES + 1):
            try:
                answer = self.client.invoke_rest_api(**kwargs)
            except self.client.exceptions.RestApiClientException as exc:
                return ApiResponse(
                    int(exc.response.get("RestApiStatusCode", 400)), exc.response.get("RestApiResponse")
                )
            except self.client.exceptions.RestApiServerException as exc:
                last = f"HTTP {exc.response.get('RestApiStatusCode')}: {exc.response.get('RestApiResponse')}"
            except self.client.exceptions.InternalServerException as exc:
                last = str(exc)
            except ClientError as exc:  # AccessDenied, ResourceNotFound, Validation: not worth a retry
                code = str(exc.response.get("Error", {}).get("Code", "ClientError"))
                raise MwaaRefused(code, f"MWAA {self.environment} {method} {path}: {code}: {exc}") from None
            else:
                return ApiResponse(int(answer["RestApiStatusCode"]), answer.get("RestApiResponse"))
            if attempt < RETRIES:
                log.warning("airflow.mwaa_retry", path=path, attempt=attempt + 1, error=last)
                time.sleep(0.5 * 2**attempt)
        raise AirflowUnreachable(f"MWAA {self.environment} {method} {path}: {last}")

    def close(self) -> None:
        """Nothing to release (boto3 pools its own connections)."""
