"""A stand-in for Amazon MWAA's control plane that forwards ``invoke_rest_api`` to a real Airflow.

moto has no MWAA backend, so this small HTTP server speaks the two MWAA operations the executor uses,
in botocore's ``rest-json`` wire protocol (``mwaa`` 2020-07-01 model), and forwards REST calls to the
test's real Airflow 3 under its own JWT:

* ``POST /restapi/{Name}`` (InvokeRestApi): ``{"Path", "Method", "QueryParameters", "Body"}`` ->
  ``{"RestApiStatusCode", "RestApiResponse"}``; an Airflow 4xx becomes ``RestApiClientException`` and a
  5xx ``RestApiServerException`` (both HTTP 400 with those fields, as the model says); a ``Path`` over
  64 characters is a ``ValidationException``, as MWAA answers.
* ``GET /environments/{Name}`` (GetEnvironment): the environment's ``AirflowVersion`` and
  ``WebserverUrl``.

Requests must carry a SigV4 ``Authorization`` header; the access key ids seen are kept in
``access_keys`` (to prove which credentials a client used), and the key id ``DENIED`` is refused
with ``AccessDeniedException``. The wait endpoint's NDJSON is answered with its last line (what MWAA
does with streamed answers is not documented).
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

MAX_PATH = 64


class MwaaBridge:
    """The bridge server for the MWAA environment ``name``, forwarding to ``airflow_url``."""

    def __init__(self, airflow_url: str, token: str, name: str = "test-env") -> None:
        self.airflow_url = airflow_url
        self.token = token
        self.name = name
        self.paths: list[str] = []
        self.access_keys: set[str] = set()
        self.version = httpx.get(f"{airflow_url}/api/v2/version", timeout=30).json()["version"]
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> MwaaBridge:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        bridge = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet
                del format, args

            def _reply(self, status: int, body: Any, error: str | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if error is not None:
                    self.send_header("x-amzn-ErrorType", error)
                self.end_headers()
                self.wfile.write(data)

            def _signed(self) -> bool:
                match = re.match(
                    r"AWS4-HMAC-SHA256 Credential=([^/]+)/", self.headers.get("Authorization", "")
                )
                if match is None:
                    self._reply(403, {"message": "Missing Authentication Token"}, "AccessDeniedException")
                    return False
                bridge.access_keys.add(match.group(1))
                if match.group(1) == "DENIED":
                    self._reply(
                        403,
                        {"message": "User is not authorized to perform: airflow:InvokeRestApi"},
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
                if match is None or not self._signed() or not self._environment(match.group(1)):
                    if match is None:
                        self._reply(404, {"message": "unknown operation"}, "ResourceNotFoundException")
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
                match = re.fullmatch(r"/restapi/([^/?]+)", self.path)
                length = int(self.headers.get("Content-Length", "0"))
                request = json.loads(self.rfile.read(length) or b"{}")
                if match is None:
                    self._reply(404, {"message": "unknown operation"}, "ResourceNotFoundException")
                    return
                if not self._signed() or not self._environment(match.group(1)):
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
                response = httpx.request(
                    request["Method"],
                    f"{bridge.airflow_url}/api/v2{path}",
                    params=request.get("QueryParameters"),
                    json=request.get("Body"),
                    headers={"Authorization": f"Bearer {bridge.token}", "Accept": "application/json"},
                    timeout=10,  # AWS times invoke_rest_api out after 10 s
                )
                try:
                    body = response.json()
                except ValueError:
                    lines = [line for line in response.text.splitlines() if line.strip()]
                    body = json.loads(lines[-1]) if lines else None
                answer = {"RestApiStatusCode": response.status_code, "RestApiResponse": body}
                if response.status_code >= 500:
                    self._reply(400, answer, "RestApiServerException")
                elif response.status_code >= 400:
                    self._reply(400, answer, "RestApiClientException")
                else:
                    self._reply(200, answer)

        return Handler
