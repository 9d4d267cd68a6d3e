"""The web UI through real HTTP: login, the pages' content, escaping, and the live event stream."""

from __future__ import annotations

import json
import re
import threading
import time
from typing import Any

import httpx
import uvicorn

from .helpers import RELEASE, SLOW, Api, publish, serving, start


def login(api: Api, role: str = "viewer") -> None:
    response = api.client.post(
        "/login",
        content=f"token={api.tokens[role]}&next=/state-machines".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == "/state-machines"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie


def test_pages_need_a_login_and_the_form_refuses_bad_tokens(api: Api) -> None:
    anonymous = api.client.get("/executions?status=FAILED", follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/login?next=%2Fexecutions%3Fstatus%3DFAILED"
    form = api.client.get("/login?next=/executions")
    assert form.status_code == 200 and 'name="token"' in form.text
    assert "default-src 'self'" in form.headers["content-security-policy"]
    bad = api.client.post(
        "/login",
        content=b"token=orch_nope&next=/",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert bad.status_code == 401 and "not valid" in bad.text
    sneaky = api.client.post(
        "/login",
        content=f"token={api.tokens['viewer']}&next=//evil.example/x".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )
    assert sneaky.headers["location"] == "/executions"
    login(api)
    assert api.client.get("/executions").status_code == 200
    out = api.client.post("/logout", follow_redirects=False)
    assert out.status_code == 303
    api.client.cookies.clear()
    assert api.client.get("/executions", follow_redirects=False).status_code == 303
    # a bearer token works for pages too (scripts, curl)
    assert api.get("/executions", role="viewer").status_code == 200


def test_executions_list_shows_who_and_filters(api: Api) -> None:
    publish(api, "release", RELEASE, revision="D7", approvedBy="bob")
    failed = start(api, "release", {"fail": True}, name="bad-one")
    api.run(failed)
    start(api, "release", {}, name="good-one")
    api.run("release:good-one")
    login(api)
    page = api.client.get("/executions").text
    assert "bad-one" in page and "good-one" in page
    assert "operator-owner" in page and "bob" in page and "FAILED" in page and "SUCCEEDED" in page
    only_failed = api.client.get("/executions?status=FAILED").text
    assert "bad-one" in only_failed and "good-one" not in only_failed
    fragment = api.client.get("/executions?status=FAILED&fragment=1").text
    assert "<html" not in fragment and "bad-one" in fragment
    assert "No executions" in api.client.get("/executions?stateMachine=other").text


def states_of(page: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="states-data">(.*?)</script>', page, re.S)
    assert match is not None
    states: dict[str, Any] = json.loads(match.group(1))
    return states


def graph_classes(page: str) -> dict[str, str]:
    pattern = r'<g class="state[^"]*? s-([a-z-]+)[^"]*" data-key="([^"]+)"'
    return {key: status for status, key in re.findall(pattern, page)}


def test_execution_page_graph_lineage_history(api: Api) -> None:
    publish(api, "release", RELEASE, revision="D7", approvedBy="bob")
    execution = start(api, "release", {"fail": True}, name="r1")
    api.run(execution)
    login(api)
    page = api.client.get(f"/executions/{execution}").text
    assert graph_classes(page) == {
        "Build": "succeeded",
        "Deploy": "caught",
        "Rollback": "succeeded",
        "ReleaseFailed": "failed",
        "Released": "not-reached",
    }
    states = states_of(page)
    assert states["Deploy"]["error"] == "Deploy.Failed"
    assert "D7" in page and "bob" in page and 'href="/state-machines/release#v1"' in page
    assert page.count('<tr id="event-') == api.runtime.executions.describe(execution)["events"]
    assert api.client.get("/executions/release:missing").status_code == 404


def test_untrusted_text_is_escaped(api: Api) -> None:
    hostile = "<script>alert(1)</script>"
    definition = {
        "StartAt": "Evil",
        "States": {"Evil": {"Type": "Fail", "Error": hostile, "Cause": hostile}},
    }
    publish(api, "evil", definition, revision=hostile, description=hostile)
    execution = start(api, "evil", {"x": hostile}, name="e1")
    api.run(execution)
    login(api)
    for path in (f"/executions/{execution}", "/executions", "/state-machines/evil", "/state-machines"):
        page = api.client.get(path).text
        assert hostile not in page, path


def test_state_machine_page_versions_aliases_diff(api: Api) -> None:
    publish(api, "release", RELEASE, revision="D7", approvedBy="bob", alias="prod")
    publish(api, "release", {**RELEASE, "Comment": "two"}, revision="D8")
    api.put("/api/state-machines/release/aliases/prod", json={"routing": [{"version": 2}]})
    api.post("/api/state-machines/release/aliases/prod/rollback", role="admin")
    login(api)
    page = api.client.get("/state-machines/release?from=1&to=2").text
    assert 'id="v1"' in page and 'id="v2"' in page and "D8" in page and "admin-owner" in page
    assert "rolled back" in page and "/Comment" in page and "1 change" in page
    listing = api.client.get("/state-machines").text
    assert 'href="/state-machines/release"' in listing and "prod" in listing


def test_live_updates_stream_until_the_execution_ends(api_on: Api) -> None:
    """On PostgreSQL the stream waits with LISTEN/NOTIFY, on SQLite it is woken by this process's append."""
    api = api_on
    publish(api, "slow", SLOW)
    execution = start(api, "slow", name="live")
    api.runtime.executions.run_until_settled(execution, timeout=0.5)
    seen = len(api.runtime.executions.history(execution))
    received: list[tuple[str, Any]] = []
    with serving(api.client.app) as base:
        unauthorized = httpx.get(f"{base}/executions/{execution}/events", timeout=30)
        assert unauthorized.status_code == 401
        headers = api.headers("viewer")
        url = f"{base}/executions/{execution}/events?after={seen}"
        with httpx.stream("GET", url, headers=headers, timeout=60) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            stopper = threading.Timer(1.0, lambda: api.runtime.executions.stop(execution, "Ops.Stop", "test"))
            stopper.start()
            event = None
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: ") and event:
                    received.append((event, json.loads(line.removeprefix("data: "))))
                    if event == "end":
                        break
            stopper.join()
    kinds = [kind for kind, _ in received]
    assert kinds[-1] == "end" and "update" in kinds
    update = next(data for kind, data in received if kind == "update")
    assert update["status"] == "ABORTED"
    assert [e["type"] for e in update["newEvents"]][-1] == "ExecutionAborted"
    assert all(e["id"] > seen for e in update["newEvents"])
    assert update["states"]["Pause"]["status"] == "failed"


def test_a_live_stream_does_not_hold_up_a_shutdown(api: Api) -> None:
    publish(api, "slow", SLOW)
    execution = start(api, "slow", name="forever")
    config = uvicorn.Config(
        api.client.app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    lines: list[str] = []
    opened = threading.Event()

    def listen() -> None:
        url = f"http://127.0.0.1:{port}/executions/{execution}/events"
        try:
            with httpx.stream("GET", url, headers=api.headers("viewer"), timeout=120) as stream:
                for line in stream.iter_lines():
                    lines.append(line)
                    opened.set()
        except httpx.HTTPError:
            pass  # the server went away: that is the point
        finally:
            opened.set()

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert opened.wait(60) and lines and lines[0] == "retry: 2000"
    server.should_exit = True
    thread.join(timeout=90)
    listener.join(timeout=90)
    assert not thread.is_alive(), "the server did not shut down while a stream was open"
    assert not listener.is_alive()
    assert "event: end" not in lines  # the execution is still running: the stream was cut, not finished


def test_an_unknown_execution_page_is_an_html_404_and_the_api_stays_json(api: Api) -> None:
    login(api)
    page = api.client.get("/executions/release:nope", headers={"Accept": "text/html"})
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "Not found" in page.text and "release:nope" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    data = api.get("/api/executions/release:nope", role="viewer")
    assert data.status_code == 404 and "release:nope" in data.json()["detail"]
