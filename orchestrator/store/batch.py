"""Validating and encoding an append into the :class:`~orchestrator.store.backends.AppendBatch` a
backend commits: JSON strings, sizes checked against the payload limit, UTC datetimes.

Everything here happens before any I/O, so a rejected append writes nothing. Errors name the
stream, the event (position in the append, type, id) and sizes, never the payload.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from orchestrator.store import codec
from orchestrator.store.backends import AppendBatch, EncodedWork
from orchestrator.store.errors import InvalidAppend, PayloadTooLarge
from orchestrator.store.model import NewEvent, Snapshot, WorkItem


def encode_append(
    stream_id: str,
    expected_version: int,
    events: Sequence[NewEvent],
    *,
    enqueue: Sequence[WorkItem],
    complete: Sequence[str],
    worker_id: str | None,
    snapshot: Snapshot | None,
    now: datetime,
    payload_limit: int,
    guard: tuple[str, int] | None = None,
) -> AppendBatch:
    """Validate an append and encode it for a backend; raises :class:`InvalidAppend` (or its
    :class:`PayloadTooLarge`) naming the culprit, before any I/O."""
    if not isinstance(stream_id, str) or not stream_id:
        raise InvalidAppend(f"stream_id must be a non-empty string, not {stream_id!r}")
    if isinstance(expected_version, bool) or not isinstance(expected_version, int) or expected_version < 0:
        raise InvalidAppend(f"expected_version must be an integer >= 0, not {expected_version!r}")
    ids: list[uuid.UUID] = []
    types: list[str] = []
    data: list[str] = []
    metadata: list[str] = []
    dumps = codec.dumps
    uuid_type = uuid.UUID
    # Metadata is often one dict shared by all the events of an append (lineage), or empty: encoded
    # once then, not per event (the dict is not changed meanwhile: nothing else runs in this loop).
    last_metadata: object = None
    encoded_metadata = ""
    metadata_size = 0
    for n, event in enumerate(events, start=1):
        event_id, event_type, event_data, event_metadata = event.id, event.type, event.data, event.metadata
        if not (
            isinstance(event_id, uuid_type)
            and isinstance(event_type, str)
            and event_type
            and isinstance(event_data, dict)
            and isinstance(event_metadata, dict)
        ):
            raise InvalidAppend(
                f"{_describe(n, event, stream_id)} needs a uuid.UUID id, a non-empty type, "
                "and dicts of data and metadata"
            )
        try:
            encoded_data = dumps(event_data) if event_data else "{}"
            if event_metadata is not last_metadata:
                encoded_metadata = dumps(event_metadata) if event_metadata else "{}"
        except codec.NOT_JSON as error:
            raise InvalidAppend(
                f"the data or metadata of {_describe(n, event, stream_id)} is not JSON: {error}"
            ) from None
        # Inline codec.encoded_size: this loop runs for every event.
        if event_metadata is not last_metadata:
            last_metadata = event_metadata
            metadata_size = (
                len(encoded_metadata) if encoded_metadata.isascii() else len(encoded_metadata.encode())
            )
        size = (len(encoded_data) if encoded_data.isascii() else len(encoded_data.encode())) + metadata_size
        if size > payload_limit:
            raise PayloadTooLarge(f"{_describe(n, event, stream_id)} (data + metadata)", size, payload_limit)
        ids.append(event_id)
        types.append(event_type)
        data.append(encoded_data)
        metadata.append(encoded_metadata)
    if len(set(ids)) != len(ids):
        raise InvalidAppend(f"the events of one append to {stream_id!r} must have distinct ids")
    if complete and not worker_id:
        raise InvalidAppend("completing work items needs the worker_id holding their leases")
    if guard is not None:
        _check_guard(stream_id, guard)
    work = _encode_work(enqueue, now, payload_limit)
    snapshot_version = snapshot_state = None
    if snapshot is not None:
        if snapshot.stream_id != stream_id:
            raise InvalidAppend(f"a snapshot of {snapshot.stream_id!r} cannot be saved with {stream_id!r}")
        if not 1 <= snapshot.version <= expected_version + len(events):
            raise InvalidAppend(
                f"snapshot version {snapshot.version} of {stream_id!r} is not between 1 and the "
                f"stream's new version {expected_version + len(events)}"
            )
        snapshot_version = snapshot.version
        snapshot_state = codec.encode(snapshot.state, f"the snapshot state of {stream_id!r}")
    return AppendBatch(
        stream_id=stream_id,
        expected_version=expected_version,
        now=now,
        event_ids=ids,
        event_types=types,
        event_data=data,
        event_metadata=metadata,
        enqueue=work,
        complete=list(dict.fromkeys(complete)),
        worker_id=worker_id,
        snapshot_version=snapshot_version,
        snapshot_state=snapshot_state,
        guard=guard,
    )


def _check_guard(stream_id: str, guard: object) -> None:
    """Raise :class:`InvalidAppend` unless ``guard`` is ``(another stream, version >= 0)``."""
    if not (isinstance(guard, tuple) and len(guard) == 2):
        raise InvalidAppend(
            f"the guard of an append to {stream_id!r} must be a (stream_id, version) pair, not {guard!r}"
        )
    guard_stream, version = guard
    if not isinstance(guard_stream, str) or not guard_stream:
        raise InvalidAppend(
            f"the guard stream of an append to {stream_id!r} must be a non-empty string, not {guard_stream!r}"
        )
    if guard_stream == stream_id:
        raise InvalidAppend(
            f"the guard of an append to {stream_id!r} names the appended stream itself: "
            "expected_version checks that one"
        )
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise InvalidAppend(
            f"the guard version of an append to {stream_id!r} must be an integer >= 0, not {version!r}"
        )


def _encode_work(enqueue: Sequence[WorkItem], now: datetime, limit: int) -> list[EncodedWork]:
    encoded: dict[str, EncodedWork] = {}
    for item in enqueue:
        what = f"work item {item.id!r}"
        if not item.id or not item.queue or not item.kind or not item.stream_id:
            raise InvalidAppend(f"{what}: id, queue, stream_id and kind must be non-empty strings")
        payload = codec.encode(item.payload, f"the payload of {what}")
        codec.check_size(codec.encoded_size(payload), limit, f"the payload of {what}")
        if item.run_at is not None and item.run_at.utcoffset() is None:
            raise InvalidAppend(f"{what}: run_at must be timezone-aware, not naive")
        run_at = now if item.run_at is None else item.run_at.astimezone(UTC)
        encoded.setdefault(
            item.id, EncodedWork(item.id, item.queue, item.stream_id, item.kind, payload, run_at)
        )
    return list(encoded.values())


def _describe(n: int, event: NewEvent, stream_id: str) -> str:
    """Names the ``n``-th event of an append in error messages (built only when one is raised)."""
    return f"event {n} ({event.type!r}, id {event.id}) of stream {stream_id!r}"


def utc(moment: datetime, what: str) -> datetime:
    """``moment`` in UTC; raises ValueError naming ``what`` for a naive datetime."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, not naive: {moment!r}")
    return moment.astimezone(UTC)
