"""Property: any sequence of appends, conflicting or repeated, leaves the store equal to a simple model."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.store import ConcurrencyError, DuplicateEventId, EventStore, InvalidAppend, NewEvent

# One step: (stream index, number of events, offset from the right expected version, repeat an
# earlier append instead of a new one?)
steps = st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, 3), st.sampled_from([0, 0, 0, -1, 1]), st.booleans()),
    min_size=1,
    max_size=12,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=steps)
def test_appends_match_the_model(
    store: EventStore, unique: Callable[[str], str], steps: list[tuple[int, int, int, bool]]
) -> None:
    streams = [unique("prop") for _ in range(3)]
    model: dict[str, list[uuid.UUID]] = {s: [] for s in streams}
    done: list[tuple[str, int, list[NewEvent]]] = []
    start = store.last_position()

    for index, count, offset, repeat in steps:
        stream = streams[index]
        if repeat and done:
            stream, expected, events = done[(index * 7 + count) % len(done)]
            # A repetition of a stored append: a no-op returning what was stored.
            recorded = store.append(stream, expected, events)
            assert [e.id for e in recorded] == [e.id for e in events]
            continue
        events = [NewEvent(uuid.uuid4(), "E", {"i": i}) for i in range(count)]
        expected = len(model[stream]) + offset
        if offset == 0:
            recorded = store.append(stream, expected, events)
            assert [e.version for e in recorded] == list(range(expected + 1, expected + count + 1))
            model[stream].extend(e.id for e in events)
            if events:
                done.append((stream, expected, events))
        else:
            try:
                store.append(stream, expected, events)
            except (ConcurrencyError, DuplicateEventId, InvalidAppend):  # InvalidAppend: version -1
                pass
            else:
                raise AssertionError(f"append at {expected} to a stream at {len(model[stream])} succeeded")

    for stream in streams:
        assert [e.id for e in store.read_stream(stream)] == model[stream]
        assert store.stream_version(stream) == len(model[stream])
    assert len(store.read_all(start, 10_000)) == sum(len(ids) for ids in model.values())
