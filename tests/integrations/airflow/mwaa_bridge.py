"""A stand-in for Amazon MWAA that forwards to a real Airflow: its control plane and its web server.

moto has no MWAA backend, so this bridge runs two small HTTP servers in front of the test's real
Airflow 3 and holds that Airflow's credentials (it fetches its own JWTs from ``/auth/token``):

The control plane speaks botocore's ``rest-json`` wire protocol (``mwaa`` 2020-07-01 model):

* ``POST /restapi/{Name}`` (InvokeRestApi): ``{"Path", "Method", "QueryParameters", "Body"}`` ->
  ``{"RestApiStatusCode", "RestApiResponse"}``; an Airflow 4xx becomes ``RestApiClientException`` and a
  5xx ``RestApiServerException`` (both HTTP 400 with those fields, as the model says); a ``Path`` over
  64 characters is a ``ValidationException``, as MWAA answers. The wait endpoint's NDJSON is answered
  with its last line (what MWAA does with streamed answers is not documented).
* ``POST /webtoken/{Name}`` (CreateWebLoginToken): a single-use ``WebToken`` valid for 60 seconds and
  the ``WebServerHostname`` (here ``127.0.0.1:<port>`` of the web server below).
* ``GET /environments/{Name}`` (GetEnvironment): the environment's ``AirflowVersion`` and
  ``WebserverUrl``.

Requests must carry a SigV4 ``Authorization`` header; the access key ids seen are kept in
``access_keys`` (to prove which credentials a client used); the key id ``DENIED`` is refused every
operation with ``AccessDeniedException``, and ``NOWEB`` only CreateWebLoginToken.

The web server does what AWS documents for the REST API without the path limit: a login that takes
the web token as the form field ``token`` and answers ``302`` with the session cookie, then the REST
API behind that session:

* Airflow 3 environments: ``POST /pluginsv2/aws_mwaa/login`` sets ``_token``, a real Airflow JWT;
  ``/api/v2/...`` is forwarded with the caller's own ``Authorization`` and cookies, so the real
  Airflow checks them (a JWT this bridge revoked with :meth:`MwaaBridge.expire_sessions` is answered
  401 first).
* Airflow 2 environments (``airflow_version="2.x"``): ``POST /aws_mwaa/login`` sets an opaque
  ``session`` cookie; ``/api/v1/...`` calls with a live session are translated to the real Airflow's
  v2 and back, keeping v1's rules (no ``logical_date`` in the trigger body, no ``update_mask`` on the
  run's PATCH, XCom values stringified unless ``stringify=false``, task logs as text). The same
  translation serves ``invoke_rest_api`` on such an environment.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

MAX_PATH = 64
WEB_TOKEN_SECONDS = 60
_V1_TRIGGER_KEYS = {"conf", "dag_run_id", "note", "logical_date", "execution_date"}


def _v1_error(status: int, title: str, detail: str) -> dict[str, Any]:
    return {"detail": detail, "status": status, "title": title, "type": "about:blank"}


def _text_log(content: Any) -> str:
    """A v2 structured task log as the text an Airflow 2 log reads like."""
    if not isinstance(content, list):
        return str(content)
    lines = []
    for entry in content:
        if not isinstance(entry, Mapping):
            continue
        level = str(entry.get("level", "info")).upper()
        where = f"[{entry.get('timestamp', '')}] {{{entry.get('logger', 'task')}}}"
        lines.append(f"{where} {level} - {entry.get('event', '')}")
        for detail in entry.get("error_detail") or []:
            lines.append("Traceback (most recent call last):")
            lines.append(f"{detail.get('exc_type')}: {detail.get('exc_value', '')}")
    return "\n".join(lines)


class MwaaBridge:
    """The bridge for the MWAA environment ``name``, forwarding to ``airflow_url`` (see the module doc)."""

    def __init__(
        self,
        airflow_url: str,
        username: str,
        password: str,
        name: str = "test-env",
        airflow_version: str | None = None,
    ) -> None:
        self.airflow_url = airflow_url
        self.username, self.password = username, password
        self.name = name
        self.version = (
            airflow_version or httpx.get(f"{airflow_url}/api/v2/version", timeout=30).json()["version"]
        )
        self.api = "v2" if int(self.version.split(".")[0]) >= 3 else "v1"
        self.token = self._airflow_token()  # the bridge's own, for invoke_rest_api and v1 sessions
        self.paths: list[str] = []  # invoke_rest_api paths
        self.web_paths: list[str] = []  # REST paths called on the web server
        self.logins = 0
        self.access_keys: set[str] = set()
        self._web_tokens: dict[str, float] = {}  # unused web token -> when it was issued
        self._sessions: set[str] = set()  # live session cookies (opaque ids or JWTs)
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._control_handler())
        self.web = ThreadingHTTPServer(("127.0.0.1", 0), self._web_handler())
        self.threads = [
            threading.Thread(target=server.serve_forever, daemon=True) for server in (self.server, self.web)
        ]

    @property
    def url(self) -> str:
        """The control plane's endpoint (``[aws] endpoint_url``)."""
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def web_host(self) -> str:
        """The web server's ``WebServerHostname``."""
        return f"127.0.0.1:{self.web.server_address[1]}"

    def start(self) -> MwaaBridge:
        for thread in self.threads:
            thread.start()
        return self

    def stop(self) -> None:
        for server in (self.server, self.web):
            server.shutdown()
            server.server_close()
        for thread in self.threads:
            thread.join(10)

    def reset(self) -> None:
        """Forget what was recorded (paths, logins, access keys)."""
        self.paths.clear()
        self.web_paths.clear()
        self.access_keys.clear()
        self.logins = 0

    def expire_sessions(self) -> None:
        """Every web session ends (the next call on one is answered 401)."""
        with self._lock:
            self._sessions.clear()

    def _airflow_token(self) -> str:
        response = httpx.post(
            f"{self.airflow_url}/auth/token",
            json={"username": self.username, "password": self.password},
            timeout=30,
        )
        response.raise_for_status()
        return str(response.json()["access_token"])

    # ------------------------------------------------------------------ forwarding
    def forward(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        body: Any,
        headers: Mapping[str, str] | None = None,
        stream_last_line: bool = True,
    ) -> tuple[int, Any]:
        """One REST call of this environment's API version to the real Airflow: ``(status, body)``."""
        query: dict[str, Any] = dict(params or {})
        if self.api == "v1":
            refused = self._v1_request(method, path, query, body)
            if refused is not None:
                return refused
            if method == "POST" and re.fullmatch(r"/dags/[^/]+/dagRuns", path):
                body = {"logical_date": None, **body}
            if "/xcomEntries/" in path:
                query["stringify"] = "false" if str(query.get("stringify", "")).lower() == "false" else "true"
        sent = {"Authorization": f"Bearer {self.token}"} if headers is None else dict(headers)
        sent["Accept"] = "application/json"
        response = httpx.request(
            method,
            f"{self.airflow_url}/api/v2{path}",
            params=query or None,
            json=body,
            headers=sent,
            timeout=10,  # AWS times invoke_rest_api out after 10 s
        )
        try:
            answer = response.json()
        except ValueError:
            lines = [line for line in response.text.splitlines() if line.strip()]
            answer = json.loads(lines[-1]) if lines and stream_last_line else response.text
        if self.api == "v1":
            answer = self._v1_answer(path, response.status_code, answer)
        return response.status_code, answer

    def _v1_request(self, method: str, path: str, query: dict[str, Any], body: Any) -> tuple[int, Any] | None:
        """v1's own refusals, where Airflow 3 would accept the call."""
        if method == "POST" and re.fullmatch(r"/dags/[^/]+/dagRuns", path):
            unknown = sorted(set(body or {}) - _V1_TRIGGER_KEYS)
            if unknown or (body or {}).get("logical_date", "") is None:
                what = unknown or ["logical_date"]
                return 400, _v1_error(400, "Bad Request", f"{{{what[0]!r}: ['Not a valid value.']}}")
        if method == "PATCH" and "/dagRuns/" in path and "update_mask" in query:
            return 400, _v1_error(400, "Bad Request", "Unknown field(s): update_mask")
        return None

    def _v1_answer(self, path: str, status: int, answer: Any) -> Any:
        if status >= 400 and isinstance(answer, Mapping):
            return _v1_error(status, "Error", str(answer.get("detail")))
        if re.search(r"/logs/\d+$", path) and isinstance(answer, Mapping):
            return {"content": _text_log(answer.get("content")), "continuation_token": None}
        return answer

    # ------------------------------------------------------------------ web login
    def _issue_web_token(self) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._web_tokens[token] = time.monotonic()
        return token

    def _redeem(self, token: str) -> bool:
        with self._lock:
            issued = self._web_tokens.pop(token, None)  # single use
        return issued is not None and time.monotonic() - issued <= WEB_TOKEN_SECONDS

    def _open_session(self) -> tuple[str, str]:
        """A new session: its cookie name and value."""
        value = self._airflow_token() if self.api == "v2" else secrets.token_urlsafe(24)
        with self._lock:
            self._sessions.add(value)
            self.logins += 1
        return ("_token" if self.api == "v2" else "session"), value

    def _live(self, value: str | None) -> bool:
        with self._lock:
            return value is not None and value in self._sessions

    # ------------------------------------------------------------------ servers
    def _control_handler(self) -> type[BaseHTTPRequestHandler]:
        bridge = self

        class Handler(_Replies):
            def _signed(self, operation: str) -> bool:
                match = re.match(
                    r"AWS4-HMAC-SHA256 Credential=([^/]+)/", self.headers.get("Authorization", "")
                )
                if match is None:
                    self._reply(403, {"message": "Missing Authentication Token"}, "AccessDeniedException")
                    return False
                key = match.group(1)
                bridge.access_keys.add(key)
                if key == "DENIED" or (key == "NOWEB" and operation == "CreateWebLoginToken"):
                    self._reply(
                        403,
                        {"message": f"User is not authorized to perform: airflow:{operation}"},
                        "AccessDeniedException",
                    )
                    return False
                return True

            def _environment(self, name: str) -> bool:
                if name != bridge.name:
                    self._reply(
                        404, {"message": f"Environment {name} not found"}, "ResourceNotFoundException"
                    )
                    return False
                return True

            def do_GET(self) -> None:
                match = re.fullmatch(r"/environments/([^/?]+)", self.path)
                if match is None:
                    self._reply(404, {"message": "unknown operation"}, "ResourceNotFoundException")
                    return
                if not self._signed("GetEnvironment") or not self._environment(match.group(1)):
                    return
                port = bridge.airflow_url.rsplit(":", 1)[1]
                self._reply(
                    200,
                    {
                        "Environment": {
                            "Name": bridge.name,
                            "Status": "AVAILABLE",
                            "AirflowVersion": bridge.version,
                            "WebserverUrl": f"127.0.0.1:{port}",
                            "Arn": f"arn:aws:airflow:us-east-1:123456789012:environment/{bridge.name}",
                        }
                    },
                )

            def do_POST(self) -> None:
                request = self._json_body()
                token_match = re.fullmatch(r"/webtoken/([^/?]+)", self.path)
                if token_match is not None:
                    if self._signed("CreateWebLoginToken") and self._environment(token_match.group(1)):
                        self._reply(
                            200,
                            {
                                "WebToken": bridge._issue_web_token(),
                                "WebServerHostname": bridge.web_host,
                                "IamIdentity": "assumed-role/test/session",
                                "AirflowIdentity": "assumed-role/test/session",
                            },
                        )
                    return
                match = re.fullmatch(r"/restapi/([^/?]+)", self.path)
                if match is None:
                    self._reply(404, {"message": "unknown operation"}, "ResourceNotFoundException")
                    return
                if not self._signed("InvokeRestApi") or not self._environment(match.group(1)):
                    return
                path = str(request.get("Path", ""))
                bridge.paths.append(path)
                if len(path) > MAX_PATH:
                    self._reply(
                        400,
                        {
                            "message": "1 validation error detected: Value at 'path' failed to satisfy "
                            f"constraint: Member must have length less than or equal to {MAX_PATH}"
                        },
                        "ValidationException",
                    )
                    return
                status, body = bridge.forward(
                    request["Method"], path, request.get("QueryParameters"), request.get("Body")
                )
                answer = {"RestApiStatusCode": status, "RestApiResponse": body}
                if status >= 500:
                    self._reply(400, answer, "RestApiServerException")
                elif status >= 400:
                    self._reply(400, answer, "RestApiClientException")
                else:
                    self._reply(200, answer)

        return Handler

    def _web_handler(self) -> type[BaseHTTPRequestHandler]:
        bridge = self
        login_path = "/pluginsv2/aws_mwaa/login" if self.api == "v2" else "/aws_mwaa/login"

        class Handler(_Replies):
            def _cookies(self) -> dict[str, str]:
                pairs = [part.strip().split("=", 1) for part in self.headers.get("Cookie", "").split(";")]
                return {pair[0]: pair[1] for pair in pairs if len(pair) == 2}

            def do_POST(self) -> None:
                if self.path == login_path:
                    length = int(self.headers.get("Content-Length", "0"))
                    form = parse_qs(self.rfile.read(length).decode())
                    if not bridge._redeem((form.get("token") or [""])[0]):
                        self._reply(403, {"message": "Invalid or expired web login token"})
                        return
                    cookie, value = bridge._open_session()
                    self.send_response(302)
                    self.send_header("Location", "/")
                    self.send_header("Set-Cookie", f"{cookie}={value}; Path=/; HttpOnly; SameSite=Lax")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self._api("POST")

            def do_GET(self) -> None:
                if self.path == "/":  # where the login redirects: the UI's home page
                    page = b"<html><body>Airflow</body></html>"
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Content-Length", str(len(page)))
                    self.end_headers()
                    self.wfile.write(page)
                    return
                self._api("GET")

            def do_PATCH(self) -> None:
                self._api("PATCH")

            def _api(self, method: str) -> None:
                url = urlsplit(self.path)
                prefix = f"/api/{bridge.api}"
                if not url.path.startswith(f"{prefix}/"):
                    self._reply(404, {"detail": "Not Found"})
                    return
                path = url.path.removeprefix(prefix)
                params = {
                    key: values if len(values) > 1 else values[0]
                    for key, values in parse_qs(url.query).items()
                }
                body = self._json_body() if method != "GET" else None
                bridge.web_paths.append(path)
                if bridge.api == "v1":
                    if not bridge._live(self._cookies().get("session")):
                        self._reply(401, _v1_error(401, "Unauthorized", "No session"))
                        return
                    status, answer = bridge.forward(method, path, params, body)
                else:
                    authorization = self.headers.get("Authorization", "")
                    presented = authorization.removeprefix("Bearer ") or self._cookies().get("_token")
                    if not bridge._live(presented):
                        self._reply(401, {"detail": "Invalid JWT token"})
                        return
                    headers = {"Authorization": authorization} if authorization else {}
                    if self.headers.get("Cookie"):
                        headers["Cookie"] = str(self.headers["Cookie"])
                    status, answer = bridge.forward(
                        method, path, params, body, headers, stream_last_line=False
                    )
                self._reply(status, answer)

        return Handler


class _Replies(BaseHTTPRequestHandler):
    """JSON replies and request bodies, quietly."""

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        del format, args

    def _json_body(self) -> Any:
        length = int(self.headers.get("Content-Length", "0"))
        return json.loads(self.rfile.read(length) or b"{}")

    def _reply(self, status: int, body: Any, error: str | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if error is not None:
            self.send_header("x-amzn-ErrorType", error)
        self.end_headers()
        self.wfile.write(data)
