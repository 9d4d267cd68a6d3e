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
  :meth:`HttpTransport.stream` reads a newline-delimited JSON answer line by line with a read
  timeout (the v2 ``wait`` endpoint), so the caller can heartbeat and watch for cancellation between
  lines and is never stuck on a silent connection.
* :class:`MwaaTransport` calls ``invoke_rest_api`` with a boto3 ``mwaa`` client built under the task's
  role; MWAA's 4xx/5xx exceptions are turned back into status codes. ``invoke_rest_api`` refuses a
  ``Path`` over 64 characters (a task log or a v1 XCom path is longer), so such a call goes through
  :class:`MwaaWebSession` instead: the route AWS documents for the REST API without that limit
  ("Create an Apache Airflow web server access token"): ``create_web_login_token(Name)`` gives a
  60-second ``WebToken`` and the ``WebServerHostname``; the token is posted as the form field ``token``
  to the web server's login (``/aws_mwaa/login`` on Airflow 2, ``/pluginsv2/aws_mwaa/login`` on
  Airflow 3), which answers with a session: the ``session`` cookie (Airflow 2) or the ``_token`` JWT
  cookie (Airflow 3, then sent as a bearer token). The session is opened on the first long path,
  kept for the task, and opened again once when the web server answers 401. Token and session never
  leave memory (never logged).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Generator, Mapping
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


MWAA_LOGIN = {"v1": ("/aws_mwaa/login", "session"), "v2": ("/pluginsv2/aws_mwaa/login", "_token")}
"""Per REST API version: the MWAA web server's login path and the cookie its session comes in."""


class StreamRefused(Exception):
    """A streamed call was answered with an error status instead of a stream; ``status`` says which."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status


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
    """The longest path carried the plain way, None for any: a longer one costs more on MWAA (a web
    session, and the ``airflow:CreateWebLoginToken`` permission besides ``airflow:InvokeRestApi``)."""

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
    backoff: float = 0.5
    http: httpx.BaseTransport | None = None
    cookies: dict[str, str] | None = None
    max_path: int | None = None

    def __post_init__(self) -> None:
        if self.client is None:
            self.client = httpx.Client(
                base_url=self.base_url,
                transport=self.http,
                timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0)),
                auth=self.auth,
                headers={"Accept": "application/json"},
                cookies=self.cookies,
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

    def stream(
        self, path: str, *, params: Mapping[str, Any] | None = None, read_timeout: float
    ) -> Generator[Any, None, None]:
        """``GET path`` answered as newline-delimited JSON: each line, decoded, as it arrives.

        No retries: a connection error or a line that does not come within ``read_timeout`` raises
        :class:`AirflowUnreachable`, an error status :class:`StreamRefused`; the caller decides. Close
        the iterator (``contextlib.closing``) to drop the connection early.
        """
        assert self.client is not None
        url = f"{self.prefix}{path}"
        timeout = httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0), read=read_timeout)
        try:
            with self.client.stream(
                "GET",
                url,
                params=dict(params) if params else None,
                timeout=timeout,
                headers={"Accept": "application/x-ndjson"},
            ) as response:
                if response.status_code != 200:
                    response.read()
                    raise StreamRefused(response.status_code, ApiResponse(0, _decode(response)).detail())
                for line in response.iter_lines():
                    if line.strip():
                        yield json.loads(line)
        except httpx.TransportError as exc:  # read timeouts included
            raise AirflowUnreachable(
                f"GET {self.base_url}{url} (stream): {type(exc).__name__}: {exc}"
            ) from None
        except ValueError as exc:
            raise AirflowUnreachable(
                f"GET {self.base_url}{url} (stream): a line is not JSON: {exc}"
            ) from None

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


def _refused(exc: ClientError, environment: str, operation: str) -> MwaaRefused:
    code = str(exc.response.get("Error", {}).get("Code", "ClientError"))
    return MwaaRefused(code, f"MWAA {environment} {operation}: {code}: {exc}")


@dataclass
class MwaaWebSession:
    """REST through the MWAA web server, after exchanging a web login token for a session.

    See the module docstring; used by :class:`MwaaTransport` for the paths ``invoke_rest_api`` refuses.
    ``scheme`` is ``https`` on AWS (tests put a plain-HTTP bridge on loopback).
    """

    client: Any
    environment: str
    version: str
    timeout: float = 30.0
    scheme: str = "https"
    http: httpx.BaseTransport | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    _transport: HttpTransport | None = None

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
    ) -> ApiResponse:
        """Send the call over the session (opened on first use, opened again once on a 401)."""
        fresh = self._transport is None
        response = self._open().request(method, path, params=params, body=body)
        if response.status == 401 and not fresh:
            log.info("airflow.mwaa_web_session_expired", environment=self.environment)
            self.close()
            response = self._open().request(method, path, params=params, body=body)
        return response

    def _open(self) -> HttpTransport:
        if self._transport is not None:
            return self._transport
        try:
            answer = self.client.create_web_login_token(Name=self.environment)
        except ClientError as exc:
            raise _refused(exc, self.environment, "CreateWebLoginToken") from None
        host, token = answer.get("WebServerHostname"), answer.get("WebToken")
        if not isinstance(host, str) or not host or not isinstance(token, str) or not token:
            raise AirflowAuthFailed(f"MWAA {self.environment}: CreateWebLoginToken gave no token or hostname")
        base = f"{self.scheme}://{host}"
        login_path, cookie = MWAA_LOGIN["v2" if self.version == "v2" else "v1"]
        try:  # the login may answer at once or redirect to the UI: the cookie is set on the way
            with httpx.Client(timeout=self.timeout, transport=self.http, follow_redirects=True) as http:
                login = http.post(f"{base}{login_path}", data={"token": token})
                session = http.cookies.get(cookie)
        except httpx.HTTPError as exc:
            raise AirflowUnreachable(f"MWAA {self.environment}: POST {base}{login_path}: {exc}") from None
        if not session:
            status = (login.history[0] if login.history else login).status_code
            raise AirflowAuthFailed(
                f"MWAA {self.environment}: the web server's login (POST {base}{login_path}) answered "
                f"{status} without a {cookie!r} session cookie"
            )
        log.info("airflow.mwaa_web_session_opened", environment=self.environment, web_server=host)
        if self.version == "v2":  # Airflow 3: the session is a JWT, sent as a bearer token
            self._transport = HttpTransport(
                base,
                "/api/v2",
                auth=BearerAuth(session),
                timeout=self.timeout,
                http=self.http,
                cancelled=self.cancelled,
            )
        else:
            self._transport = HttpTransport(
                base,
                "/api/v1",
                cookies={cookie: session},
                timeout=self.timeout,
                http=self.http,
                cancelled=self.cancelled,
            )
        return self._transport

    def close(self) -> None:
        """Drop the session."""
        if self._transport is not None:
            self._transport.close()
            self._transport = None


@dataclass
class MwaaTransport:
    """REST through ``invoke_rest_api`` of the MWAA environment ``environment``; the paths it refuses
    (over 64 characters) through ``web`` (an :class:`MwaaWebSession`)."""

    client: Any
    environment: str
    web: MwaaWebSession | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    max_path: int | None = MWAA_MAX_PATH

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
    ) -> ApiResponse:
        """Call ``invoke_rest_api`` (or the web session for a long path); MWAA's 4xx/5xx exceptions
        become statuses again."""
        if len(path) > MWAA_MAX_PATH:
            if self.web is None:
                raise MwaaRefused(
                    "ValidationException",
                    f"MWAA {self.environment}: invoke_rest_api limits the path to {MWAA_MAX_PATH} characters "
                    f"and {path!r} has {len(path)}",
                )
            return self.web.request(method, path, params=params, body=body)
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
                raise _refused(exc, self.environment, f"{method} {path}") from None
            else:
                return ApiResponse(int(answer["RestApiStatusCode"]), answer.get("RestApiResponse"))
            if attempt < RETRIES:
                log.warning("airflow.mwaa_retry", path=path, attempt=attempt + 1, error=last)
                if self.cancelled.wait(0.5 * 2**attempt):
                    break
        raise AirflowUnreachable(f"MWAA {self.environment} {method} {path}: {last}")

    def close(self) -> None:
        """Drop the web session, if one was opened (boto3 pools its own connections)."""
        if self.web is not None:
            self.web.close()
