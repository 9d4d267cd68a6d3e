"""The Conduit client against the fake Phorge over HTTP: the form encoding, the error envelope,
pagination, retries with back-off, and the captured answer shapes read into a revision view."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest
from fakes.phorge import ALICE, BOB, CAPTURED, FakePhorge

from orchestrator.integrations.phabricator import reviews
from orchestrator.integrations.phabricator.conduit import Conduit, ConduitError, ConduitUnavailable


@pytest.fixture
def conduit(phorge: FakePhorge) -> Iterator[Conduit]:
    client = Conduit(phorge.url, phorge.token, backoff=0.01)
    yield client
    client.close()


def test_the_fake_answers_revision_search_exactly_as_the_captured_phorge(
    phorge: FakePhorge, conduit: Conduit
) -> None:
    captured = json.loads((CAPTURED / "flow-run1.json").read_text())
    expected = captured["differential.revision.search (after accept)"]
    result = conduit.call(
        "differential.revision.search",
        {"constraints": {"phids": ["PHID-DREV-2a7so4m5xzu55pjtjdk7"]}, "attachments": {"reviewers": True}},
    )
    expected_item, item = expected["data"][0], result["data"][0]
    assert item["fields"].pop("uri").endswith("/D1")
    expected_item["fields"].pop("uri")
    assert item == expected_item
    assert set(result) == set(expected)
    transactions = conduit.call("transaction.search", {"objectIdentifier": "PHID-DREV-2a7so4m5xzu55pjtjdk7"})
    assert transactions == captured["transaction.search"]


def test_a_revision_view_reads_who_did_what(conduit: Conduit) -> None:
    view = reviews.fetch(conduit, phid="PHID-DREV-2a7so4m5xzu55pjtjdk7")
    assert (view.monogram, view.status, view.author, view.diff) == (
        "D1",
        "accepted",
        "alice",
        "PHID-DIFF-veejjvawacq27so6duqq",
    )
    assert [(r.username, r.status) for r in view.reviewers] == [("bob", "accepted")]
    accept = view.latest("accept")
    assert accept is not None and (accept.author, accept.at) == ("bob", 1795226003)
    facts = reviews.facts(view, ("PHID-XACT-DREV-c5wrxxp2uz3radr", "PHID-XACT-DREV-zcob5ryfmtzxkom"))
    assert [(f.type, f.data["actor"]) for f in facts] == [
        ("RevisionAccepted", "bob"),
        ("RevisionStatusChanged", "bob"),
    ]
    assert facts[1].data["new"] == "accepted"


def test_search_follows_the_cursor_across_pages(phorge: FakePhorge, conduit: Conduit) -> None:
    for name in ("erin", "frank", "grace"):
        phorge.add_user(name)
    users = conduit.search("user.search", {}, page_size=2)
    assert len(users) == len(phorge.users) == 8  # alice, bob, orchbot, carol, dave and these three
    assert len({u["phid"] for u in users}) == 8
    assert [c.get("after") for c in phorge.called("user.search")] == [None, "7", "5", "3"]
    assert conduit.usernames([ALICE, BOB, "PHID-USER-unknown"]) == {ALICE: "alice", BOB: "bob"}


def test_the_error_envelope_becomes_conduit_error_with_its_code(phorge: FakePhorge) -> None:
    wrong = Conduit(phorge.url, "api-wrong")
    with pytest.raises(ConduitError) as caught:
        wrong.whoami()
    assert caught.value.code == "ERR-INVALID-AUTH"
    assert "api-wrong" not in str(caught.value)
    wrong.close()
    right = Conduit(phorge.url, phorge.token)
    with pytest.raises(ConduitError, match="ERR-INVALID-CONSTRAINT"):
        right.call("differential.revision.search", {"constraints": {"colour": ["red"]}})
    with pytest.raises(ConduitError, match="ERR-CONDUIT-CORE"):
        right.call("no.such.method")
    assert right.whoami()["userName"] == "orchbot"
    right.close()


def test_5xx_is_retried_with_back_off_then_given_up(phorge: FakePhorge, conduit: Conduit) -> None:
    phorge.fail_next(2)
    assert conduit.whoami()["userName"] == "orchbot"  # third attempt
    phorge.fail_next(3)
    with pytest.raises(ConduitUnavailable, match="HTTP 500 \\(after 3 attempts\\)"):
        conduit.whoami()


def test_an_unreachable_install_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = Conduit(f"http://127.0.0.1:{port}", "api-x", attempts=2, backoff=0.01)
    with pytest.raises(ConduitUnavailable, match="ConnectError"):
        client.whoami()
    client.close()


def test_comments_and_build_messages_reach_phorge(phorge: FakePhorge, conduit: Conduit) -> None:
    conduit.comment("D1", "hello")
    assert phorge.comments == [("D1", "hello")]
    target = phorge.add_build_target()
    conduit.send_harbormaster(target, "pass", [{"name": "x", "result": "pass"}])
    assert phorge.messages == [
        {"receiver": target, "type": "pass", "unit": [{"name": "x", "result": "pass"}]}
    ]
    assert conduit.project_members("#nobody") == set()
