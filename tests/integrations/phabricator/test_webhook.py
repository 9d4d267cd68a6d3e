"""Herald webhook signatures and bodies, checked against the exact bytes a real Phorge sent."""

from __future__ import annotations

import pytest
from fakes.phorge import CAPTURED, CAPTURED_KEY, captured_deliveries, header

from orchestrator.integrations.phabricator import webhook

SIGNED = [d for d in captured_deliveries() if header(d, webhook.SIGNATURE_HEADER)]


def test_the_captures_hold_the_signed_deliveries_we_test_with() -> None:
    assert len(SIGNED) == 5
    assert sum(1 for d in SIGNED if '"test": true' in d["body"]) == 1


@pytest.mark.parametrize("delivery", SIGNED, ids=lambda d: f"n{d['n']}-{d['received_at']}")
def test_every_captured_delivery_verifies_with_the_recorded_key(delivery: dict) -> None:
    body = delivery["body"].encode()
    webhook.verify(CAPTURED_KEY, body, header(delivery, webhook.SIGNATURE_HEADER))


@pytest.mark.parametrize("delivery", SIGNED, ids=lambda d: f"n{d['n']}-{d['received_at']}")
@pytest.mark.parametrize("key", ["", "h7japczie7m42whc4lfxhc7ctyvrliyZ", "another-key", CAPTURED_KEY + " "])
def test_every_captured_delivery_fails_with_any_other_key(delivery: dict, key: str) -> None:
    with pytest.raises(webhook.BadSignature, match="does not match"):
        webhook.verify(key, delivery["body"].encode(), header(delivery, webhook.SIGNATURE_HEADER))


def test_the_raw_captured_body_verifies_and_one_changed_byte_does_not() -> None:
    raw = (CAPTURED / "webhook-accept-run1.body.raw").read_bytes()
    signature = "78135fb172aaa1fee3499efb55be8fff4240ddd202f0df27136557be5a3c4013"
    webhook.verify(CAPTURED_KEY, raw, signature)
    webhook.verify(CAPTURED_KEY, raw, signature.upper())  # hex case does not matter
    with pytest.raises(webhook.BadSignature):
        webhook.verify(CAPTURED_KEY, raw.replace(b"false", b"true ", 1), signature)
    with pytest.raises(webhook.BadSignature):  # re-serialised JSON is other bytes: never verify that
        webhook.verify(CAPTURED_KEY, raw.replace(b"\n", b""), signature)
    with pytest.raises(webhook.BadSignature, match="missing"):
        webhook.verify(CAPTURED_KEY, raw, None)


def test_a_captured_body_parses_into_its_pointers() -> None:
    raw = (CAPTURED / "webhook-accept-run1.body.raw").read_bytes()
    delivery = webhook.parse(raw)
    assert delivery.object_type == "DREV"
    assert delivery.object_phid == "PHID-DREV-2a7so4m5xzu55pjtjdk7"
    assert delivery.transactions == (
        "PHID-XACT-DREV-c5wrxxp2uz3radr",
        "PHID-XACT-DREV-fuiuhclf7uivljo",
        "PHID-XACT-DREV-zcob5ryfmtzxkom",
    )
    assert delivery.triggers == ("PHID-HRUL-eec3dnmaiwmv25jfnhhi",)
    assert (delivery.test, delivery.epoch) == (False, 1795226004)
    assert webhook.Delivery.from_json(delivery.to_json()) == delivery


def test_the_key_of_a_delivery_is_its_transactions_whatever_the_order_or_epoch() -> None:
    first, retried = (d for d in SIGNED if "553zsobuhyorazwwd7mf" in d["body"])
    a, b = webhook.parse(first["body"].encode()), webhook.parse(retried["body"].encode())
    assert a.key == b.key
    reordered = webhook.Delivery(a.object_type, a.object_phid, tuple(reversed(a.transactions)), (), False, 1)
    assert reordered.key == a.key
    test_call = next(webhook.parse(d["body"].encode()) for d in SIGNED if '"test": true' in d["body"])
    assert test_call.test and test_call.key.startswith("test-")


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (b"not json", "not JSON"),
        (b"[]", "JSON object"),
        (b'{"action": {"test": false, "epoch": 1}}', "/object"),
        (b'{"object": {"type": "DREV", "phid": "nope"}, "action": {"epoch": 1}}', "/object/phid"),
        (b'{"object": {"type": "DREV", "phid": "PHID-DREV-abc"}}', "/action"),
        (b'{"object": {"type": "DREV", "phid": "PHID-DREV-abc"}, "action": {"epoch": "x"}}', "/action/epoch"),
        (
            b'{"object": {"type": "DREV", "phid": "PHID-DREV-abc"}, "action": {"epoch": 1},'
            b' "transactions": [1]}',
            "/transactions/0",
        ),
        (
            b'{"object": {"type": "DREV", "phid": "PHID-DREV-abc"}, "action": {"epoch": 1},'
            b' "transactions": [{"phid": "x"}]}',
            "/transactions/0/phid",
        ),
    ],
)
def test_a_malformed_body_is_refused_saying_where(body: bytes, where: str) -> None:
    with pytest.raises(webhook.MalformedDelivery, match=where):
        webhook.parse(body)
