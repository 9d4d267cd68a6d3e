"""The web UI in a real browser: Playwright drives Debian's Chromium headless against ``orchestrator serve``.

The database is prepared through the services (publish, run executions to their end, reset one), then
a real ``orchestrator serve`` process serves it. Screenshots go to ``test-artifacts/browser/``. Without
``/usr/bin/chromium`` the tests skip locally and fail in CI (``CI=true``): install it with
``.ci/install.d/20-chromium.sh``.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from api.helpers import RELEASE, SLOW, UNCAUGHT, make_runtime

from orchestrator.api.tokens import Tokens
from orchestrator.executions import codec
from orchestrator.registry.model import stream_id
from orchestrator.store import EventStore

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
EXE = str(Path(sys.executable).with_name("orchestrator"))


def _chromium_or_skip() -> None:
    if CHROMIUM.exists():
        return
    message = f"the browser tests need Chromium and {CHROMIUM} is missing: run .ci/install.d/20-chromium.sh"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@dataclass
class Site:
    base: str
    url: str
    viewer: str
    operator: str
    admin: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    _chromium_or_skip()
    url = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'orchestrator.db'}"
    runtime = make_runtime(url)
    try:
        registry, executions = runtime.registry, runtime.executions
        registry.publish("release", RELEASE, published_by="alice", revision="D42", approved_by="bob")
        registry.set_alias("release", "prod", [(1, None)], by="alice")
        registry.publish("uncaught", UNCAUGHT, published_by="alice", revision="D43", approved_by="carol")
        registry.publish("slow", SLOW, published_by="alice")
        for name, reference, value in (
            ("caught-1", "release:prod", {"fail": True}),
            ("ok-1", "release:prod", {}),
            ("broken-1", "uncaught", {}),
        ):
            loaded, _ = executions.start(reference, value, name=name, started_by="dave")
            executions.run_until_settled(loaded.id, timeout=60)
        executions.reset("uncaught:broken-1", 2, name="broken-1-retry", by="erin")
        registry.publish("release", {**RELEASE, "Comment": "v2"}, published_by="alice", revision="D44")
        registry.set_alias("release", "prod", [(2, None)], by="alice")
        tokens = Tokens(runtime.store)
        viewer, _ = tokens.create("viewer", "vic")
        operator, _ = tokens.create("operator", "olga")
        admin, _ = tokens.create("admin", "ada")
    finally:
        runtime.store.close()
    port = _free_port()
    env = dict(os.environ, ORCHESTRATOR_DATABASE_URL=url)
    server = subprocess.Popen([EXE, "serve", "--port", str(port)], env=env, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stderr.read() if server.stderr else "serve exited"
            try:
                if httpx.get(f"{base}/healthz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "orchestrator serve did not come up"
            time.sleep(0.2)
        yield Site(base, url, viewer, operator, admin)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="module")
def browser(site: Site) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


@contextmanager
def logged_in(browser: object, site: Site, token: str) -> Iterator[object]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{site.base}/executions")
    page.fill("#token", token)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(re.compile(r".*/executions$"))
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def page(browser: object, site: Site) -> Iterator[object]:
    with logged_in(browser, site, site.viewer) as page:
        yield page


def test_list_to_execution_to_failed_state_error(page: object, site: Site) -> None:
    p = page
    p.screenshot(path=str(ARTIFACTS / "executions-list.png"), full_page=True)  # type: ignore[attr-defined]
    # the row of broken-1 itself (its reset copy broken-1-retry, newer, is listed above it)
    link = p.get_by_role("link", name="broken-1", exact=True)  # type: ignore[attr-defined]
    row = p.locator("table.executions tr").filter(has=link)  # type: ignore[attr-defined]
    assert "FAILED" in row.inner_text() and "dave" in row.inner_text() and "carol" in row.inner_text()
    row.get_by_role("link", name="broken-1", exact=True).click()
    p.wait_for_url(re.compile(r".*/executions/uncaught(:|%3A)broken-1$"))  # type: ignore[attr-defined]
    assert p.locator("#actions").count() == 0 and p.locator(".reset-here").count() == 0  # type: ignore[attr-defined]
    failed = p.locator('g.state.s-failed[data-key="Deploy"]')  # type: ignore[attr-defined]
    failed.click()
    error = p.locator("#d-error")  # type: ignore[attr-defined]
    error.wait_for()
    assert error.inner_text() == "Deploy.Failed"
    assert p.locator("#d-cause").inner_text() == "boom: the disk is full"  # type: ignore[attr-defined]
    assert "failed" in p.locator("#d-status").inner_text()  # type: ignore[attr-defined]
    p.screenshot(path=str(ARTIFACTS / "execution-failed-state.png"), full_page=True)  # type: ignore[attr-defined]


def test_graph_colors_match_the_history(page: object, site: Site) -> None:
    p = page
    for execution in ("release:caught-1", "release:ok-1", "uncaught:broken-1"):
        p.goto(f"{site.base}/executions/{execution}")  # type: ignore[attr-defined]
        api = httpx.get(
            f"{site.base}/api/executions/{execution}/states",
            headers={"Authorization": f"Bearer {site.viewer}"},
            timeout=30,
        ).json()
        expected = {s["key"]: s["status"] for s in api["states"]}
        shown = p.eval_on_selector_all(  # type: ignore[attr-defined]
            "svg#graph g.state",
            "gs => gs.map(g => [g.dataset.key, [...g.classList].find(c => c.startsWith('s-')).slice(2),"
            " getComputedStyle(g.querySelector('rect')).fill])",
        )
        assert {key: status for key, status, _ in shown} == expected, execution
        fills: dict[str, set[str]] = {}
        for _, status, fill in shown:
            fills.setdefault(status, set()).add(fill)
        assert all(len(f) == 1 for f in fills.values()), fills  # one color per outcome
        assert len({next(iter(f)) for f in fills.values()}) == len(fills)  # and different outcomes differ
    caught = {key: status for key, status, _ in shown}
    assert caught["Deploy"] == "failed" and caught["Build"] == "succeeded" and caught["Done"] == "not-reached"
    p.goto(f"{site.base}/executions/release:caught-1")  # type: ignore[attr-defined]
    assert p.locator('g.state[data-key="Deploy"]').get_attribute("class").split()[-1] == "s-caught"  # type: ignore[attr-defined]
    p.screenshot(path=str(ARTIFACTS / "execution-caught.png"), full_page=True)  # type: ignore[attr-defined]


def test_lineage_links_resolve(page: object, site: Site) -> None:
    p = page
    p.goto(f"{site.base}/executions/uncaught:broken-1-retry")  # type: ignore[attr-defined]
    links = p.eval_on_selector_all(".lineage a", "as => as.map(a => a.getAttribute('href'))")  # type: ignore[attr-defined]
    assert any(h.startswith("/executions/uncaught") for h in links), links
    assert any(h.startswith("/state-machines/uncaught#v1") for h in links), links
    for href in links:
        if href.startswith("#"):
            assert p.locator(href).count() == 1, href  # type: ignore[attr-defined]
        else:
            response = p.request.get(f"{site.base}{href}")  # type: ignore[attr-defined]
            assert response.status == 200, href
    p.get_by_role("link", name="uncaught:broken-1", exact=True).click()  # type: ignore[attr-defined]
    p.wait_for_url(re.compile(r".*/executions/uncaught(:|%3A)broken-1$"))  # type: ignore[attr-defined]
    assert "uncaught:broken-1-retry" in p.locator(".lineage").inner_text()  # type: ignore[attr-defined]
    p.get_by_role("link", name="uncaught v1").click()  # type: ignore[attr-defined]
    p.wait_for_url(re.compile(r".*/state-machines/uncaught#v1$"))  # type: ignore[attr-defined]
    assert "D43" in p.locator("#v1").inner_text() and "carol" in p.locator("#v1").inner_text()  # type: ignore[attr-defined]
    p.screenshot(path=str(ARTIFACTS / "state-machine.png"), full_page=True)  # type: ignore[attr-defined]


def test_keyboard_and_live_updates(page: object, site: Site) -> None:
    p = page
    auth = {"Authorization": f"Bearer {site.operator}"}
    started = httpx.post(
        f"{site.base}/api/executions",
        json={"stateMachine": "slow", "name": "live-1"},
        headers=auth,
        timeout=30,
    )
    assert started.status_code == 201, started.text
    p.goto(f"{site.base}/executions/slow:live-1")  # type: ignore[attr-defined]
    assert p.locator("#exec-status").inner_text() == "RUNNING"  # type: ignore[attr-defined]
    p.locator('g.state[data-key="First"]').focus()  # type: ignore[attr-defined]
    p.keyboard.press("Enter")  # type: ignore[attr-defined]
    assert p.locator("#d-name").inner_text() == "First"  # type: ignore[attr-defined]
    stopped = httpx.post(
        f"{site.base}/api/executions/slow:live-1/stop",
        json={"cause": "from the test"},
        headers=auth,
        timeout=30,
    )
    assert stopped.status_code == 200, stopped.text
    p.locator("#exec-status", has_text="ABORTED").wait_for(timeout=30_000)  # type: ignore[attr-defined]
    p.locator("#history-body tr", has_text="ExecutionAborted").wait_for(timeout=30_000)  # type: ignore[attr-defined]
    assert "s-failed" in p.locator('g.state[data-key="Pause"]').get_attribute("class")  # type: ignore[attr-defined]
    p.screenshot(path=str(ARTIFACTS / "execution-live-aborted.png"), full_page=True)  # type: ignore[attr-defined]


def test_narrow_dark_screen(browser: object, site: Site) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, color_scheme="dark")  # type: ignore[attr-defined]
    try:
        p = context.new_page()
        p.goto(f"{site.base}/login?next=/executions/release:caught-1")
        p.fill("#token", site.admin)  # an admin sees every action form: they must fit too
        p.keyboard.press("Enter")
        p.wait_for_url(f"{site.base}/executions/release:caught-1")
        overflow = p.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, "the page scrolls sideways on a narrow screen"
        background = p.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background != "rgb(247, 248, 250)"  # the dark palette, not the light one
        p.screenshot(path=str(ARTIFACTS / "execution-narrow-dark.png"), full_page=True)
        assert p.locator("#redrive-button").count() == 1
        p.goto(f"{site.base}/executions")
        assert p.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 1
        p.screenshot(path=str(ARTIFACTS / "executions-narrow-dark.png"), full_page=True)
        p.goto(f"{site.base}/state-machines/release")
        assert p.locator(".alias-actions").count() >= 1
        assert p.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 1
        p.screenshot(path=str(ARTIFACTS / "state-machine-narrow-dark.png"), full_page=True)
    finally:
        context.close()


def _recorded(site: Site, stream: str) -> list[tuple[str, object]]:
    store = EventStore.from_url(site.url)
    try:
        return [(r.type, r.metadata.get("by") or r.data.get("by")) for r in store.read_stream(stream)]
    finally:
        store.close()


def test_operator_stops_and_redrives_with_confirmation(browser: object, site: Site) -> None:
    started = httpx.post(
        f"{site.base}/api/executions",
        json={"stateMachine": "slow", "name": "act-1"},
        headers={"Authorization": f"Bearer {site.operator}"},
        timeout=30,
    )
    assert started.status_code == 201, started.text
    with logged_in(browser, site, site.operator) as p:
        p.goto(f"{site.base}/executions/slow:act-1")  # type: ignore[attr-defined]
        assert p.locator("#exec-status").inner_text() == "RUNNING"  # type: ignore[attr-defined]
        p.fill("#stop-form input[name=error]", "Ops.Maintenance")  # type: ignore[attr-defined]
        p.fill("#stop-form input[name=cause]", "disk swap")  # type: ignore[attr-defined]
        p.click("#stop-button")  # type: ignore[attr-defined]
        p.locator("#confirm-title", has_text="Stop slow:act-1?").wait_for()  # type: ignore[attr-defined]
        assert "Ops.Maintenance" in p.locator(".confirm").inner_text()  # type: ignore[attr-defined]
        assert "olga" in p.locator(".confirm").inner_text()  # type: ignore[attr-defined]
        p.screenshot(path=str(ARTIFACTS / "confirm-stop.png"), full_page=True)  # type: ignore[attr-defined]
        assert ("ExecutionAborted", "olga") not in _recorded(site, codec.stream_of("slow:act-1"))
        p.click("#confirm-button")  # type: ignore[attr-defined]
        p.wait_for_url(re.compile(r".*/executions/slow(:|%3A)act-1\?notice=stopped$"))  # type: ignore[attr-defined]
        assert p.locator("#exec-status").inner_text() == "ABORTED"  # type: ignore[attr-defined]
        assert "Ops.Maintenance" in p.locator("#exec-error").inner_text()  # type: ignore[attr-defined]
        assert p.locator("#notice").inner_text() == "Execution stopped."  # type: ignore[attr-defined]
        assert p.locator("#stop-form").count() == 0  # type: ignore[attr-defined]

        p.click("#redrive-button")  # type: ignore[attr-defined]
        p.locator("#confirm-title", has_text="Redrive slow:act-1?").wait_for()  # type: ignore[attr-defined]
        p.click("#confirm-button")  # type: ignore[attr-defined]
        p.wait_for_url(re.compile(r".*\?notice=redriven$"))  # type: ignore[attr-defined]
        assert p.locator("#exec-status").inner_text() == "RUNNING"  # type: ignore[attr-defined]
        p.locator("#history-body tr", has_text="ExecutionRedriven").wait_for()  # type: ignore[attr-defined]
        p.screenshot(path=str(ARTIFACTS / "execution-redriven.png"), full_page=True)  # type: ignore[attr-defined]
    recorded = _recorded(site, codec.stream_of("slow:act-1"))
    assert ("ExecutionAborted", "olga") in recorded and ("ExecutionRedriven", "olga") in recorded


def test_admin_rolls_an_alias_back(browser: object, site: Site) -> None:
    with logged_in(browser, site, site.admin) as p:
        p.goto(f"{site.base}/state-machines/release")  # type: ignore[attr-defined]
        assert "prod → v2" in p.locator("#alias-prod").inner_text()  # type: ignore[attr-defined]
        p.locator('.alias-actions[data-alias="prod"] .rollback-alias').click()  # type: ignore[attr-defined]
        p.locator("#confirm-title", has_text="Roll back alias prod of release?").wait_for()  # type: ignore[attr-defined]
        facts = p.locator(".confirm .kv").inner_text()  # type: ignore[attr-defined]
        assert re.search(r"Now\s+v2", facts) and re.search(r"After\s+v1", facts), facts
        p.screenshot(path=str(ARTIFACTS / "confirm-rollback.png"), full_page=True)  # type: ignore[attr-defined]
        p.click("#confirm-button")  # type: ignore[attr-defined]
        p.wait_for_url(re.compile(r".*/state-machines/release\?notice=alias-rolled-back#alias-prod$"))  # type: ignore[attr-defined]
        assert "prod → v1" in p.locator("#alias-prod").inner_text()  # type: ignore[attr-defined]
        newest = p.locator(".alias-history tbody tr").first.inner_text()  # type: ignore[attr-defined]
        assert "rolled back" in newest and "ada" in newest
    assert _recorded(site, stream_id("release"))[-1] == ("AliasRolledBack", "ada")
    with logged_in(browser, site, site.operator) as p:
        p.goto(f"{site.base}/state-machines/release")  # type: ignore[attr-defined]
        assert p.locator(".alias-actions").count() == 0  # operators do not move aliases  # type: ignore[attr-defined]


def test_history_filter_by_type_and_text(page: object, site: Site) -> None:
    p = page
    p.goto(f"{site.base}/executions/release:caught-1")  # type: ignore[attr-defined]
    everything = p.locator("#history-body tr").count()  # type: ignore[attr-defined]
    p.select_option("#history-type", "TaskFailed")  # type: ignore[attr-defined]
    p.click("#history-filter button[type=submit]")  # type: ignore[attr-defined]
    p.wait_for_url(re.compile(r".*type=TaskFailed.*"))  # type: ignore[attr-defined]
    types = p.eval_on_selector_all("#history-body tr", "rs => rs.map(r => r.cells[1].textContent)")  # type: ignore[attr-defined]
    assert types == ["TaskFailed"], types
    assert "1 of" in p.locator("#history-count").inner_text()  # type: ignore[attr-defined]
    p.select_option("#history-type", "")  # type: ignore[attr-defined]
    p.fill("#history-q", "DISK IS FULL")  # type: ignore[attr-defined]
    p.press("#history-q", "Enter")  # type: ignore[attr-defined]
    p.wait_for_url(re.compile(r".*q=DISK.*"))  # type: ignore[attr-defined]
    shown = p.eval_on_selector_all("#history-body tr", "rs => rs.map(r => Number(r.cells[0].textContent))")  # type: ignore[attr-defined]
    history = httpx.get(
        f"{site.base}/api/executions/release:caught-1/history",
        headers={"Authorization": f"Bearer {site.viewer}"},
        timeout=30,
    ).json()["events"]
    expected = [e["id"] for e in history if "disk is full" in json.dumps(e).lower()]
    assert shown == expected and 0 < len(shown) < everything, (shown, expected)
    p.screenshot(path=str(ARTIFACTS / "history-filtered.png"), full_page=True)  # type: ignore[attr-defined]
    p.click("#history-clear")  # type: ignore[attr-defined]
    p.wait_for_url(re.compile(r".*/executions/release(:|%3A)caught-1#history-title$"))  # type: ignore[attr-defined]
    assert p.locator("#history-body tr").count() == everything  # type: ignore[attr-defined]
