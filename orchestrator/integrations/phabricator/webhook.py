"""What a Herald webhook delivery is, and how to tell a real one from a forgery.

Phorge signs each delivery with ``X-Phabricator-Webhook-Signature: hex(HMAC-SHA256(key, raw body))``
(lowercase hex). We verify over the raw bytes, before parsing and never after re-serialising, with a
constant-time comparison. The body carries pointers only::

    {"object": {"type": "DREV", "phid": "PHID-DREV-..."}, "triggers": [{"phid": "PHID-HRUL-..."}],
     "action": {"test": false, "silent": false, "secure": false, "epoch": 1795226004},
     "transactions": [{"phid": "PHID-XACT-DREV-..."}, ...]}

A failed delivery is re-sent with the same body every 5 minutes, and deliveries can arrive out of
order: :attr:`Delivery.key` (a hash of the sorted transaction PHIDs) names a delivery so a repeat is
recognised whatever its arrival time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Any

SIGNATURE_HEADER = "X-Phabricator-Webhook-Signature"
_PHID = re.compile(r"^PHID-[A-Z]{4}-[A-Za-z0-9-]{1,64}$")


class BadSignature(Exception):
    """The signature is missing or does not match the body under our key."""


class MalformedDelivery(Exception):
    """The body is not a Herald webhook body; the message says where."""


def sign(key: str, body: bytes) -> str:
    """The signature Phorge sends for ``body`` under ``key``."""
    return hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def verify(key: str, body: bytes, signature: str | None) -> None:
    """Raise :class:`BadSignature` unless ``signature`` is ``body``'s under ``key`` (constant-time)."""
    if not signature:
        raise BadSignature(f"missing {SIGNATURE_HEADER} header")
    if not hmac.compare_digest(sign(key, body), signature.strip().lower()):
        raise BadSignature(f"{SIGNATURE_HEADER} does not match the body")


@dataclass(frozen=True)
class Delivery:
    """One verified Herald delivery."""

    object_type: str
    object_phid: str
    transactions: tuple[str, ...]
    triggers: tuple[str, ...]
    test: bool
    epoch: int

    @property
    def key(self) -> str:
        """Names the delivery whatever its arrival: a hash of its sorted transaction PHIDs (and of the
        object for a delivery without transactions)."""
        text = "\n".join(sorted(self.transactions)) or self.object_phid
        prefix = "test-" if self.test else ""
        return prefix + hashlib.sha256(text.encode()).hexdigest()[:32]

    def to_json(self) -> dict[str, Any]:
        """The delivery as stored in the inbox."""
        return {
            "object": {"type": self.object_type, "phid": self.object_phid},
            "transactions": list(self.transactions),
            "triggers": list(self.triggers),
            "test": self.test,
            "epoch": self.epoch,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Delivery:
        """Back from :meth:`to_json`."""
        return cls(
            data["object"]["type"],
            data["object"]["phid"],
            tuple(data["transactions"]),
            tuple(data["triggers"]),
            bool(data["test"]),
            int(data["epoch"]),
        )


def parse(body: bytes) -> Delivery:
    """The delivery in ``body``; :class:`MalformedDelivery` saying where it is wrong."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedDelivery(f"body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MalformedDelivery("body must be a JSON object")
    obj = data.get("object")
    if not isinstance(obj, dict):
        raise MalformedDelivery("/object: must be an object with 'type' and 'phid'")
    object_type, object_phid = obj.get("type"), obj.get("phid")
    if not isinstance(object_type, str) or not re.fullmatch(r"[A-Z]{4}", object_type):
        raise MalformedDelivery("/object/type: must be a four-letter PHID type such as DREV")
    _phid(object_phid, "/object/phid")
    action = data.get("action")
    if not isinstance(action, dict):
        raise MalformedDelivery("/action: must be an object")
    test, epoch = action.get("test", False), action.get("epoch")
    if not isinstance(test, bool):
        raise MalformedDelivery("/action/test: must be true or false")
    if isinstance(epoch, bool) or not isinstance(epoch, int):
        raise MalformedDelivery("/action/epoch: must be an integer")
    return Delivery(
        object_type,
        str(object_phid),
        _phids(data.get("transactions", []), "/transactions"),
        _phids(data.get("triggers", []), "/triggers"),
        test,
        epoch,
    )


def _phids(items: Any, where: str) -> tuple[str, ...]:
    if not isinstance(items, list):
        raise MalformedDelivery(f"{where}: must be an array of {{'phid': ...}}")
    out = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise MalformedDelivery(f"{where}/{index}: must be an object with 'phid'")
        out.append(_phid(item.get("phid"), f"{where}/{index}/phid"))
    return tuple(out)


def _phid(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _PHID.match(value):
        raise MalformedDelivery(f"{where}: must be a PHID (PHID-XXXX-...), got {value!r}")
    return value
