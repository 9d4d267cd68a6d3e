"""Schemathesis against the OpenAPI document: generated requests to every operation never get a 5xx, and
every answer conforms to the response schema the document declares.

Requests carry an admin token (so they reach the handlers, not only the auth check) and go to a
runtime that holds a state machine, a failed execution and a running one, so that generated ids
sometimes hit real things. Examples are few per operation to keep the suite fast.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from .helpers import SLOW, UNCAUGHT, Api, publish, start


def test_no_server_errors(api: Api) -> None:
    """Each operation of the document, with generated parameters and bodies (schemathesis' pytest
    plugin is not used: it does not support pytest 9; its strategies are driven with hypothesis)."""
    publish(api, "uncaught", UNCAUGHT, alias="prod")
    api.run(start(api, "uncaught", name="u1"))
    publish(api, "slow", SLOW)
    start(api, "slow", name="s1")
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", api.client.app)
    # /hooks/* belong to the webhook receiver, which answers 503 on purpose while unconfigured
    operations = [op for op in (r.ok() for r in schema.get_all_operations()) if op.path.startswith("/api/")]
    assert len(operations) >= 15
    seen: dict[str, set[int]] = {}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: Any) -> None:
            response = case.call(headers=api.headers("admin"))
            case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
            assert response.status_code < 500, (case.method, case.formatted_path, response.text)
            seen.setdefault(operation.label, set()).add(response.status_code)  # noqa: B023 - called below

        check()
    assert len(seen) == len(operations)


def test_openapi_document_lists_the_api(api: Api) -> None:
    document = api.client.get("/api/openapi.json").json()
    paths = document["paths"]
    for path in (
        "/api/executions",
        "/api/executions/{execution}/history",
        "/api/executions/{execution}/lineage",
        "/api/executions/{execution}/stop",
        "/api/state-machines/{name}/aliases/{alias}/rollback",
        "/api/state-machines/{name}/versions",
    ):
        assert path in paths, path
    assert "HTTPBearer" in document["components"]["securitySchemes"]
    assert not any(p.startswith(("/executions", "/login")) for p in paths)


def test_openapi_document_describes_the_answers(api: Api) -> None:
    document = api.client.get("/api/openapi.json").json()
    schemas = document["components"]["schemas"]

    def answer(path: str, method: str = "get", status: str = "200") -> dict[str, Any]:
        schema: dict[str, Any] = document["paths"][path][method]["responses"][status]["content"][
            "application/json"
        ]["schema"]
        return schemas[schema["$ref"].rsplit("/", 1)[1]]

    page = answer("/api/executions")
    assert {"executions", "total", "offset", "limit", "nextOffset"} <= set(page["properties"])
    item = schemas["ExecutionItem"]["properties"]
    assert {
        "execution",
        "status",
        "stateMachine",
        "version",
        "startedBy",
        "approvedBy",
        "durationSeconds",
    } <= set(item)
    assert {"status", "startDate", "stopDate", "input", "output", "error", "events"} <= set(
        answer("/api/executions/{execution}")["properties"]
    )
    history = answer("/api/executions/{execution}/history")
    assert history["properties"]["events"]["items"]["$ref"].endswith("/HistoryEventModel")
    assert {"id", "type", "timestamp", "previousEventId"} <= set(schemas["HistoryEventModel"]["properties"])
    lineage = answer("/api/executions/{execution}/lineage")["properties"]
    assert {"version", "trigger", "resetFrom", "resetTo", "redrives", "roleSessions", "externalRuns"} <= set(
        lineage
    )
    versions = answer("/api/state-machines/{name}/versions")["properties"]["versions"]["items"]["$ref"]
    assert {"publishedBy", "revision", "approvedBy", "sha256"} <= set(
        schemas[versions.rsplit("/", 1)[1]]["properties"]
    )
    aliases = answer("/api/state-machines/{name}/aliases")["properties"]["aliases"]["items"]["$ref"]
    assert {"alias", "routing", "history"} <= set(schemas[aliases.rsplit("/", 1)[1]]["properties"])
    assert "token" in answer("/api/tokens", "post", "201")["properties"]
    assert "token" not in schemas["TokenModel"]["properties"]
