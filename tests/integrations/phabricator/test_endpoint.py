"""``POST /hooks/phabricator`` and ``POST /hooks/harbormaster`` on the real app under uvicorn:
401/400/413/503 and what each answer leaves in the store (nothing, or exactly one inbox stream with its
work item). Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fakes.phorge import CAPTURED, CAPTURED_KEY, FakePhorge, captured_deliveries, header, sign

from orchestrator.integrations.phabricator import inbox, webhook
from orchestrator.integrations.phabricator.webhook import SIGNATURE_HEADER

from .harness import Stack, close_stack, make_config, open_stack

RAW = (CAPTURED / "webhook-accept-run1.body.raw").read_bytes()
RAW_SIGNATURE = "78135fb172aaa1fee3499efb55be8fff4240ddd202f0df27136557be5a3c4013"


def inbox_streams(stack: Stack) -> dict[str, list[str]]:
    streams: dict[str, list[str]] = {}
    for record in stack.runtime.store.read_all(0, 10_000):
        if record.stream_id.startswith(inbox.INBOX_PREFIX):
            streams.setdefault(record.stream_id, []).append(record.type)
    return streams


def queued(stack: Stack) -> list[str]:
    claimed = stack.runtime.store.claim("peek", [inbox.QUEUE], 100, 1.0)
    stack.runtime.store.release("peek", [w.id for w in claimed])
    return sorted(w.kind for w in claimed)


def test_the_exact_captured_bytes_and_signature_are_accepted_and_stored_with_their_work(stack: Stack) -> None:
    response = stack.post(RAW, RAW_SIGNATURE)
    assert response.status_code == 200, response.text
    key = webhook.parse(RAW).key
    assert response.json() == {"status": "accepted", "delivery": key}
    assert inbox_streams(stack) == {inbox.inbox_stream(key): ["WebhookReceived"]}
    assert queued(stack) == [inbox.DELIVERY]
    stored = stack.runtime.store.read_stream(inbox.inbox_stream(key))[0]
    assert stored.data["transactions"][0] == "PHID-XACT-DREV-c5wrxxp2uz3radr"


def test_every_captured_delivery_is_accepted_with_its_recorded_headers(stack: Stack) -> None:
    outcomes = []
    for delivery in captured_deliveries():
        signature = header(delivery, SIGNATURE_HEADER)
        if signature is None:
            continue
        response = stack.post(delivery["body"].encode(), signature)
        assert response.status_code == 200, response.text
        outcomes.append(response.json()["status"])
    # the 500-then-retried delivery arrives twice with the same body: stored once
    assert outcomes == ["accepted", "accepted", "test", "duplicate", "accepted"]
    assert len(inbox_streams(stack)) == 4
    assert queued(stack) == [inbox.DELIVERY] * 3  # the test call is recorded, nothing else


@pytest.mark.parametrize(
    "signature",
    [None, "", "0" * 64, sign("another-key", RAW), RAW_SIGNATURE[:-1], RAW_SIGNATURE + "00"],
)
def test_a_missing_or_wrong_signature_is_401_and_leaves_nothing(stack: Stack, signature: str | None) -> None:
    response = stack.sender.send_unsigned(RAW) if signature is None else stack.post(RAW, signature)
    assert response.status_code == 401
    assert "X-Phabricator-Webhook-Signature" in response.json()["error"]
    assert inbox_streams(stack) == {}
    assert queued(stack) == []


def test_a_signed_body_that_is_not_a_herald_delivery_is_400_saying_where(stack: Stack) -> None:
    body = b'{"object": {"type": "DREV", "phid": "PHID-DREV-x"}, "action": {"test": "yes", "epoch": 1}}\n'
    response = stack.post(body, sign(CAPTURED_KEY, body))
    assert response.status_code == 400
    assert "/action/test" in response.json()["error"]
    response = stack.post(b"{", sign(CAPTURED_KEY, b"{"))
    assert response.status_code == 400
    assert inbox_streams(stack) == {}


def test_an_oversized_body_is_413_whether_declared_or_streamed(database_url: str, env: FakePhorge) -> None:
    stack = open_stack(database_url, env, make_config(max_body_bytes=1000))
    try:
        big = RAW + b" " * 1000
        response = stack.post(big, sign(CAPTURED_KEY, big))
        assert response.status_code == 413
        assert "1000 bytes" in response.json()["error"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer encoding
            for _ in range(20):
                yield b" " * 100

        chunked = httpx.post(
            f"{stack.server.url}/hooks/phabricator",
            content=chunks(),
            headers={SIGNATURE_HEADER: "0" * 64, "Content-Type": "application/json"},
        )
        assert chunked.status_code == 413
        assert stack.post(RAW, RAW_SIGNATURE).status_code == 200  # 475 bytes fit
        assert len(inbox_streams(stack)) == 1
    finally:
        close_stack(stack)


def test_without_a_configured_key_deliveries_are_503_so_phorge_keeps_them(
    database_url: str, phorge: FakePhorge, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ORCHESTRATOR_PHABRICATOR_HMAC_KEY", raising=False)
    stack = open_stack(database_url, phorge, make_config())
    try:
        response = stack.post(RAW, RAW_SIGNATURE)
        assert response.status_code == 503
        assert "HMAC key" in response.json()["error"]
        assert inbox_streams(stack) == {}
    finally:
        close_stack(stack)


def test_a_harbormaster_call_is_stored_once_and_bad_parameters_are_400(stack: Stack) -> None:
    url = f"{stack.server.url}/hooks/harbormaster"
    params = {"target": "PHID-HMBT-cu7kldwfxudfsnajkbwz", "revision": "3", "diff": "4", "build": "1"}
    first = httpx.post(url, params=params, headers={"Content-Type": "application/x-www-form-urlencoded"})
    again = httpx.post(url, params=params)
    assert (first.status_code, first.json()["status"]) == (200, "accepted")
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    for bad, where in [
        ({"target": "PHID-USER-x"}, "target"),
        ({**params, "revision": "three"}, "revision"),
        ({"revision": "3"}, "target"),
    ]:
        response = httpx.post(url, params=bad)
        assert response.status_code == 400
        assert where in response.json()["error"]
    assert list(inbox_streams(stack).values()) == [["HarbormasterRequested"]]
    assert queued(stack) == [inbox.HARBORMASTER]
