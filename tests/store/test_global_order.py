"""Contract: the global log. Readers tailing by position never skip an event that commits late."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from orchestrator.store import ConcurrencyError, EventStore, RecordedEvent

from .helpers import event
from .processes import spawn


def test_read_all_pages_through_every_stream_in_commit_order(
    store: EventStore, unique: Callable[[str], str]
) -> None:
    start = store.last_position()
    a, b = unique("a"), unique("b")
    everything = (
        store.append(a, 0, [event(), event()]) + store.append(b, 0, [event()]) + store.append(a, 2, [event()])
    )

    assert [e.position for e in everything] == [start + 1, start + 2, start + 3, start + 4]
    assert [(e.stream_id, e.version) for e in everything] == [(a, 1), (a, 2), (b, 1), (a, 3)]
    assert store.read_all(start) == everything
    assert store.read_all(start, limit=3) == everything[:3]
    assert store.read_all(start + 3) == everything[3:]
    assert store.read_all(store.last_position()) == []
    with pytest.raises(ValueError, match="limit"):
        store.read_all(start, limit=0)


def test_wait_for_events_answers_at_once_when_there_are_some(
    store: EventStore, unique: Callable[[str], str]
) -> None:
    start = store.last_position()
    store.append(unique("exec"), 0, [event()])
    began = time.monotonic()
    assert store.wait_for_events(start, 10)
    assert time.monotonic() - began < 1


def test_wait_for_events_times_out(store: EventStore) -> None:
    began = time.monotonic()
    assert not store.wait_for_events(store.last_position(), 0.3)
    assert 0.25 <= time.monotonic() - began < 3
    assert not store.wait_for_events(store.last_position(), 0)


def test_wait_for_events_wakes_on_another_threads_append(
    open_store: Callable[..., EventStore], unique: Callable[[str], str]
) -> None:
    waiter, writer = open_store(), open_store()  # two stores: like two workers
    start = waiter.last_position()
    timer = threading.Timer(0.3, lambda: writer.append(unique("exec"), 0, [event()]))
    timer.start()
    began = time.monotonic()
    try:
        assert waiter.wait_for_events(start, 20)
    finally:
        timer.join()
    assert 0.2 <= time.monotonic() - began < 5


def test_wait_for_events_wakes_on_another_process_append(
    store: EventStore, store_url: str, unique: Callable[[str], str]
) -> None:
    start = store.last_position()
    child = spawn("append", store_url, unique("process"), "1", "0.3")
    try:
        assert store.wait_for_events(start, 30)
    finally:
        _, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    assert store.read_all(start)[0].type == "Appended"


class Tail:
    """Follows the global log from ``start`` like a projection would, asserting it never sees a gap."""

    def __init__(self, store: EventStore, start: int) -> None:
        self.store = store
        self.last = start
        self.seen: list[RecordedEvent] = []
        self.stop = threading.Event()
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while True:
                finishing = self.stop.is_set()
                page = self.store.read_all(self.last, 250)
                for recorded in page:
                    assert recorded.position == self.last + 1, f"gap: {self.last} then {recorded.position}"
                    self.last = recorded.position
                    self.seen.append(recorded)
                if finishing and not page:
                    return
                if not page:
                    self.store.wait_for_events(self.last, 0.05)
        except BaseException as error:
            self.failure = error

    def finish(self) -> list[RecordedEvent]:
        self.stop.set()
        self.thread.join(60)
        assert not self.thread.is_alive()
        if self.failure is not None:
            raise self.failure
        return self.seen


def assert_tail_saw_everything(
    store: EventStore, start: int, seen: list[RecordedEvent], expected: int
) -> None:
    """Read afterwards, the log holds exactly what the tail saw while it was written: no event
    committed late with a position the tail had already passed."""
    final = store.read_all(start, 100_000)
    assert len(final) == expected
    assert [e.id for e in seen] == [e.id for e in final]
    assert [e.position for e in final] == list(range(start + 1, start + expected + 1))


def test_tailing_readers_miss_nothing_with_concurrent_writer_threads(
    open_store: Callable[..., EventStore], unique: Callable[[str], str]
) -> None:
    reader = open_store()
    start = reader.last_position()
    tail = Tail(reader, start)
    shared = unique("contended")
    written: list[int] = []
    errors: list[BaseException] = []

    def writer(number: int) -> None:
        try:
            store = open_store()
            own = unique(f"writer{number}")
            for n in range(25):
                stream = shared if n % 5 == 0 else own
                events = [event(n=n, i=i) for i in range(1 + n % 3)]
                while True:  # the shared stream is contended: reload and retry, as the engine does
                    try:
                        store.append(stream, store.stream_version(stream), events)
                        break
                    except ConcurrencyError:
                        continue
                written.append(len(events))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    assert errors == []
    assert_tail_saw_everything(reader, start, tail.finish(), sum(written))


def test_tailing_readers_miss_nothing_with_concurrent_writer_processes(
    store: EventStore, store_url: str, unique: Callable[[str], str]
) -> None:
    start = store.last_position()
    tail = Tail(store, start)
    appends = 40
    children = [spawn("append", store_url, unique(f"process{i}"), str(appends)) for i in range(4)]
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        assert out.strip() == "done"

    per_process = sum(1 + n % 3 for n in range(appends))
    assert_tail_saw_everything(store, start, tail.finish(), per_process * len(children))
