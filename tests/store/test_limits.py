"""Contract: the payload limit (default 256 KiB per event, configurable): a clear error, nothing written."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from orchestrator.store import (
    DEFAULT_PAYLOAD_LIMIT,
    EventStore,
    InvalidAppend,
    NewEvent,
    PayloadTooLarge,
    WorkItem,
)

from .helpers import event

ENVELOPE = len('{"x":""}') + len("{}")  # the encoded size of data {"x": ""} plus empty metadata


def sized(size: int, char: str = "a") -> NewEvent:
    """An event whose encoded data + metadata is ``size`` bytes (``char`` of 1 or 2 UTF-8 bytes)."""
    width = len(char.encode())
    assert (size - ENVELOPE) % width == 0
    return NewEvent(uuid.uuid4(), "TaskSucceeded", {"x": char * ((size - ENVELOPE) // width)}, {})


def test_default_limit_is_256_kib(store: EventStore, unique: Callable[[str], str]) -> None:
    assert DEFAULT_PAYLOAD_LIMIT == 256 * 1024
    stream = unique("exec")
    store.append(stream, 0, [sized(DEFAULT_PAYLOAD_LIMIT)])
    with pytest.raises(PayloadTooLarge):
        store.append(stream, 1, [sized(DEFAULT_PAYLOAD_LIMIT + 2)])
    assert store.stream_version(stream) == 1


def test_an_oversized_event_fails_the_append_clearly(
    open_store: Callable[..., EventStore], unique: Callable[[str], str]
) -> None:
    store = open_store(payload_limit=1000)
    stream = unique("exec")
    big = sized(1002)
    before = store.last_position()

    with pytest.raises(PayloadTooLarge) as raised:
        store.append(stream, 0, [event(), big, event()])

    error = raised.value
    assert isinstance(error, InvalidAppend)
    assert error.error == "States.DataLimitExceeded"
    assert (error.size, error.limit) == (1002, 1000)
    message = str(error)
    assert message.startswith("States.DataLimitExceeded")
    for part in ("event 2", "'TaskSucceeded'", str(big.id), repr(stream), "1,002 bytes", "1,000 bytes"):
        assert part in message
    assert "aaaa" not in message  # never the payload itself
    assert store.last_position() == before
    assert store.stream_version(stream) == 0


def test_the_limit_counts_utf8_bytes(
    open_store: Callable[..., EventStore], unique: Callable[[str], str]
) -> None:
    store = open_store(payload_limit=1000)
    stream = unique("exec")
    store.append(stream, 0, [sized(1000, "é")])
    with pytest.raises(PayloadTooLarge):
        store.append(stream, 1, [sized(1002, "é")])


def test_work_item_payloads_are_limited_too(
    open_store: Callable[..., EventStore], unique: Callable[[str], str]
) -> None:
    store = open_store(payload_limit=1000)
    stream = unique("exec")
    item = WorkItem(unique("work"), unique("queue"), stream, "task", {"x": "b" * 1000})
    with pytest.raises(PayloadTooLarge, match="work item"):
        store.append(stream, 0, [event()], enqueue=[item])
    assert store.stream_version(stream) == 0


def test_the_limit_must_be_positive(store_url: str) -> None:
    with pytest.raises(ValueError, match="payload_limit"):
        EventStore.from_url(store_url, payload_limit=0)
