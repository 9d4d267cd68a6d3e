"""What can go wrong in the event store, each with a message that says what to do about it.

Messages name streams, ids, sizes and (redacted) URLs, never payloads.
"""

from __future__ import annotations

from collections.abc import Sequence

from orchestrator.errors import DATA_LIMIT_EXCEEDED


class StoreError(Exception):
    """Base class of every error raised by :mod:`orchestrator.store`."""


class ConcurrencyError(StoreError):
    """The stream moved on: ``expected_version`` is stale. Nothing of the append was written."""

    def __init__(self, stream_id: str, expected_version: int, actual_version: int) -> None:
        super().__init__(
            f"stream {stream_id!r} is at version {actual_version}, not at the expected version "
            f"{expected_version}: another writer appended first; nothing was written, reload and decide again"
        )
        self.stream_id = stream_id
        self.expected_version = expected_version
        self.actual_version = actual_version


class StreamMoved(StoreError):
    """The append's guard failed: the guard stream is no longer at the version the append was
    decided on. Nothing of the append was written.

    Raised by an append with ``guard=(guard_stream, expected_version)`` when ``guard_stream`` (a
    stream the append reads from but does not write, e.g. the state machine's registry stream of an
    execution's start) is at ``actual_version``. Refresh what was derived from that stream, decide
    again, and retry.

    Its own error, not a :class:`ConcurrencyError`: that one says the appended stream moved (callers
    react by reloading it, or, for a stream appended at version 0, by taking it as existing), while
    this one is about another stream; catching one must not mean handling the other.
    """

    def __init__(self, stream_id: str, guard_stream: str, expected_version: int, actual_version: int) -> None:
        super().__init__(
            f"guard of the append to {stream_id!r} failed: stream {guard_stream!r} is at version "
            f"{actual_version}, not at the expected version {expected_version}; nothing was written, "
            "refresh what was read from it and decide again"
        )
        self.stream_id = stream_id
        self.guard_stream = guard_stream
        self.expected_version = expected_version
        self.actual_version = actual_version


class LeaseLost(StoreError):
    """A work item to complete is no longer leased by this worker. Nothing of the append was written.

    This is the fence: the worker lost its lease (it expired, or another worker claimed the item) and
    must drop its result instead of applying it twice.
    """

    def __init__(self, worker_id: str, work_ids: Sequence[str]) -> None:
        ids = ", ".join(repr(i) for i in work_ids)
        super().__init__(
            f"worker {worker_id!r} no longer holds the lease on work item(s) {ids} (expired, released, "
            f"completed or claimed by another worker); nothing was written, drop this result"
        )
        self.worker_id = worker_id
        self.work_ids = tuple(work_ids)


class InvalidAppend(StoreError, ValueError):
    """The append's arguments are unusable (bad version, duplicate ids, non-JSON data, ...)."""


class DuplicateEventId(InvalidAppend):
    """Event ids of the append are stored in the stream already, as other events (or only some of
    them are stored: the append is not a repetition of an earlier one). Nothing was written."""

    def __init__(self, event_ids: Sequence[str], detail: str) -> None:
        ids = ", ".join(event_ids) or "of this append"
        super().__init__(f"event id(s) {ids} already stored {detail}; nothing was written")
        self.event_ids = tuple(event_ids)


class PayloadTooLarge(InvalidAppend):
    """An encoded payload exceeds the configured limit. Nothing of the append was written."""

    #: The Step Functions error name for this condition.
    error = DATA_LIMIT_EXCEEDED

    def __init__(self, what: str, size: int, limit: int) -> None:
        super().__init__(
            f"{DATA_LIMIT_EXCEEDED}: {what} is {size:,} bytes encoded, over the limit of {limit:,} bytes; "
            f"nothing was written"
        )
        self.size = size
        self.limit = limit


class StoreUnavailable(StoreError):
    """The database cannot be used: bad URL, server down, missing directory, ...

    ``url`` is redacted (no password).
    """

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"event store {url} is unavailable: {reason}")
        self.url = url
        self.reason = reason


class StoreBusy(StoreError):
    """SQLite: another process held the write lock for longer than the busy timeout."""

    def __init__(self, url: str, timeout: float) -> None:
        super().__init__(
            f"event store {url} is busy: another process kept the SQLite write lock for more than "
            f"{timeout:g} s. SQLite allows one writing process at a time; stop the other writer, "
            f"raise the busy timeout, or use PostgreSQL for several workers. Nothing was written"
        )
        self.url = url
        self.timeout = timeout


class SchemaOutOfDate(StoreError):
    """The database schema is not at the revision this code needs."""

    def __init__(self, url: str, current: str | None, head: str) -> None:
        super().__init__(
            f"event store {url} has schema revision {current or 'none'}, this version needs {head}: "
            f"run `orchestrator db upgrade` against it"
        )
        self.url = url
        self.current = current
        self.head = head
