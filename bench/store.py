"""Event store benchmark: ours against the ``eventsourcing`` library (9.5), run by hand.

    .venv/bin/python bench/store.py [--pg-url postgresql://postgres@127.0.0.1:5432/test] [--rounds 5]

Pairs, each on the same database (a fresh PostgreSQL database and one SQLite file shared by both
libraries, dropped/removed at the end):

- PostgreSQL: our ``EventStore`` against ``PostgresApplicationRecorder`` (default settings, and
  with ``enable_db_functions=True``, its fastest mode);
- SQLite file: ours (default ``synchronous=NORMAL`` in WAL, and ``FULL``) against
  ``SQLiteApplicationRecorder`` (WAL, the driver's default ``synchronous=FULL``);
- in memory: our SQLite ``:memory:`` against ``POPOApplicationRecorder`` (a reference only: a
  Python dict is not a database).

Measured, with the same events (a Step Functions-like ``data`` of ~330 bytes, lineage
``metadata`` of ~130 bytes) and encoding/decoding included on both sides (theirs: the application
``Mapper`` with its JSON transcoder and the usual UUID/datetime transcodings):

- single-event appends per second (each to the next version of one stream), by one sequential
  appender: each append is durable before it returns, on both sides, so each waits for its own WAL
  flush (fsync); nothing can share it. On PostgreSQL the report adds the ceiling this sets: bare
  one-row ``INSERT``s with a synchronous commit per second, on the same server in the same rounds
  (no function, no lock, no JSON), and the rate that 2x the other side would take;
- 100-event batch appends per second;
- replay of a 25,000-event stream into state: read, decode into event objects and fold their
  data, seconds. Ours decodes each event's data at once and its id and metadata when first read
  (a fold reads neither, so they are never decoded here); theirs decodes whole events.

The machine is shared, so each round runs ours and theirs back to back (alternating who goes first)
and the report gives the median over rounds of the per-round ratio ours/theirs (for replay,
theirs/ours: how many times faster we are).

The PostgreSQL pairs: ours (``orchestrator_append_v3``: one round trip and one synchronous commit
when no other append holds the append lock) against the recorder's default mode (a pipelined
transaction: lock table, notify, insert; one synchronous commit) and against its
``enable_db_functions=True`` mode (one call of its insert function, one synchronous commit).

Needs the ``eventsourcing`` package; its PostgreSQL recorder also needs ``psycopg_pool``
(``pip install "eventsourcing[postgres]"``); without it the PostgreSQL pair is skipped.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import structlog
from eventsourcing.domain import DomainEvent
from eventsourcing.persistence import (
    ApplicationRecorder,
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Mapper,
    UUIDAsHex,
)
from eventsourcing.popo import POPOApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from orchestrator.store import ConnectionOptions, EventStore, NewEvent, upgrade

REPLAY_EVENTS = 25_000


def event_data(n: int) -> dict[str, Any]:
    """A TaskScheduled-like payload (~330 bytes encoded)."""
    return {
        "resource": "arn:aws:states:::lambda:invoke",
        "region": "us-east-1",
        "parameters": {
            "FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:process-order",
            "Payload": {"order_id": 100_000 + n, "customer": "acme", "items": [1, 2, 3], "priority": "high"},
        },
        "timeoutInSeconds": 300,
        "heartbeatInSeconds": 60,
    }


METADATA = {
    "correlation_id": "0b7c3c1e-8d8a-4a4f-9d53-3f0c1f6b2a11",
    "causation_id": "5f1d2e3c-4b5a-6978-8a9b-0c1d2e3f4a5b",
    "actor": "worker-1",
}


def fold(states: Iterable[dict[str, Any]]) -> int:
    """Replay "into state": read each event's data (the engine's fold reads nothing else of most
    events); returns how many events were folded."""
    count = 0
    for data in states:
        count += data is not None
    return count


class StepEvent(DomainEvent):
    """Theirs: the same content as one of our events."""

    event_id: uuid.UUID
    type: str
    data: dict[str, Any]
    metadata: dict[str, Any]


def their_mapper() -> Mapper[uuid.UUID]:
    transcoder = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    return Mapper(transcoder)


# -- the two sides ---------------------------------------------------------------------------------


class Side:
    """One library on one database: append one, append many, replay."""

    name: str

    def new_stream(self) -> None: ...
    def append(self, count: int) -> None: ...
    def replay(self, stream: object) -> int: ...
    def long_stream(self, events: int) -> object: ...
    def close(self) -> None: ...


class Ours(Side):
    def __init__(self, name: str, store: EventStore) -> None:
        self.name = name
        self.store = store
        self.stream = ""
        self.version = 0

    def new_stream(self) -> None:
        self.stream = f"execution-{uuid.uuid4()}"
        self.version = 0

    def append(self, count: int) -> None:
        events = [
            NewEvent(uuid.uuid4(), "TaskScheduled", event_data(self.version + i), METADATA)
            for i in range(count)
        ]
        self.store.append(self.stream, self.version, events)
        self.version += count

    def long_stream(self, events: int) -> object:
        self.new_stream()
        for _ in range(events // 1000):
            self.append(1000)
        return self.stream

    def replay(self, stream: object) -> int:
        return fold(event.data for event in self.store.read_stream(str(stream)))

    def close(self) -> None:
        self.store.close()


class Theirs(Side):
    def __init__(
        self, name: str, recorder: ApplicationRecorder, close: Callable[[], None] = lambda: None
    ) -> None:
        self.name = name
        self.recorder = recorder
        self.mapper = their_mapper()
        self.originator = uuid.uuid4()
        self.version = 0
        self._close = close

    def new_stream(self) -> None:
        self.originator = uuid.uuid4()
        self.version = 0

    def append(self, count: int) -> None:
        now = datetime.now(UTC)
        stored = [
            self.mapper.to_stored_event(
                StepEvent(
                    originator_id=self.originator,
                    originator_version=self.version + i + 1,
                    timestamp=now,
                    event_id=uuid.uuid4(),
                    type="TaskScheduled",
                    data=event_data(self.version + i),
                    metadata=METADATA,
                )
            )
            for i in range(count)
        ]
        self.recorder.insert_events(stored)
        self.version += count

    def long_stream(self, events: int) -> object:
        self.new_stream()
        for _ in range(events // 1000):
            self.append(1000)
        return self.originator

    def replay(self, stream: object) -> int:
        assert isinstance(stream, uuid.UUID)
        to_domain_event = self.mapper.to_domain_event
        return fold(event.data for event in [to_domain_event(s) for s in self.recorder.select_events(stream)])

    def close(self) -> None:
        self._close()


# -- measuring -------------------------------------------------------------------------------------


@dataclass
class Results:
    single: list[float] = field(default_factory=list)  # appends per second
    batch: list[float] = field(default_factory=list)  # batches per second
    replay: list[float] = field(default_factory=list)  # seconds


def timed(action: Callable[[], object], *, settle: bool = False) -> float:
    """Wall time of ``action``; with ``settle``, including a young-generation collection after it.

    Our replay pauses the garbage collector while decoding, so the collections it skips are not
    all avoided, some are deferred: ``settle`` charges them (to both sides, for symmetry).
    """
    gc.collect()
    start = time.perf_counter()
    action()
    if settle:
        gc.collect(1)
    return time.perf_counter() - start


def measure_round(side: Side, results: Results, singles: int, batches: int, stream: object) -> None:
    side.new_stream()
    results.single.append(singles / timed(lambda: [side.append(1) for _ in range(singles)]))
    side.new_stream()
    results.batch.append(batches / timed(lambda: [side.append(100) for _ in range(batches)]))
    count = 0

    def replay() -> None:
        nonlocal count
        count = side.replay(stream)

    results.replay.append(timed(replay, settle=True))
    assert count == REPLAY_EVENTS, (side.name, count)


class DurableFloor:
    """The ceiling of durable single appends on a PostgreSQL server: one-row ``INSERT``s into a
    scratch table, each its own transaction with a synchronous commit (a round trip and a WAL flush,
    and nothing else), per second."""

    def __init__(self, conninfo: str) -> None:
        self.connection = psycopg.connect(conninfo, autocommit=True)
        self.connection.execute("CREATE TABLE IF NOT EXISTS bench_floor (n integer)")
        self.connection.execute("SET synchronous_commit = on")

    def __call__(self, count: int) -> float:
        execute = self.connection.execute
        start = time.perf_counter()
        for n in range(count):
            execute("INSERT INTO bench_floor VALUES (%s)", (n,), prepare=True)
        return count / (time.perf_counter() - start)

    def close(self) -> None:
        self.connection.close()


def compare(
    ours: Side,
    theirs: Side,
    rounds: int,
    singles: int,
    batches: int,
    floor: Callable[[int], float] | None = None,
) -> dict[str, float]:
    streams = {ours.name: ours.long_stream(REPLAY_EVENTS), theirs.name: theirs.long_stream(REPLAY_EVENTS)}
    mine, other = Results(), Results()
    floors: list[float] = []
    # One warm-up round (prepared statements, caches), not counted.
    for side in (ours, theirs):
        measure_round(side, Results(), max(singles // 10, 10), max(batches // 10, 2), streams[side.name])
    for r in range(rounds):
        order = [(ours, mine), (theirs, other)]
        for side, results in order if r % 2 == 0 else reversed(order):
            measure_round(side, results, singles, batches, streams[side.name])
        if floor is not None:
            gc.collect()
            floors.append(floor(singles))
    median = statistics.median
    extra = {}
    if floors:
        extra = {
            "floor_single": median(floors),
            "floor_ratio": median(f / b for f, b in zip(floors, other.single, strict=True)),
        }
    return extra | {
        "ours_single": median(mine.single),
        "theirs_single": median(other.single),
        "single_ratio": median(a / b for a, b in zip(mine.single, other.single, strict=True)),
        "ours_batch": median(mine.batch),
        "theirs_batch": median(other.batch),
        "batch_ratio": median(a / b for a, b in zip(mine.batch, other.batch, strict=True)),
        "ours_replay": median(mine.replay),
        "theirs_replay": median(other.replay),
        "replay_speedup": median(b / a for a, b in zip(mine.replay, other.replay, strict=True)),
    }


def report(title: str, numbers: dict[str, float]) -> None:
    print(f"\n{title}")
    print(
        f"  single appends/s   ours {numbers['ours_single']:9.0f}   theirs {numbers['theirs_single']:9.0f}"
        f"   ratio ours/theirs {numbers['single_ratio']:5.2f}x   (target >= 2x)"
    )
    print(
        f"  100-event batches/s ours {numbers['ours_batch']:8.1f}   theirs {numbers['theirs_batch']:9.1f}"
        f"   ratio ours/theirs {numbers['batch_ratio']:5.2f}x   (target >= 2x)"
    )
    print(
        f"  replay 25,000 (s)  ours {numbers['ours_replay']:9.3f}   theirs {numbers['theirs_replay']:9.3f}"
        f"   ours {numbers['replay_speedup']:5.2f}x faster   (target >= 4x and < 0.25 s)"
    )
    if "floor_single" in numbers:
        print(
            f"  durable floor/s    {numbers['floor_single']:9.0f}   (bare INSERT + synchronous commit each:"
            f" {numbers['floor_ratio']:4.2f}x theirs; 2x theirs: {2 * numbers['theirs_single']:.0f}/s)"
        )


# -- databases -------------------------------------------------------------------------------------


@contextmanager
def fresh_postgres(admin_url: str) -> Iterator[str]:
    name = f"bench_store_{uuid.uuid4().hex[:8]}"
    conninfo = admin_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(conninfo, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_pairs(admin_url: str, database: str) -> list[tuple[str, Side, Side]]:
    try:
        from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore  # noqa: PLC0415
    except ImportError as error:
        print(f"\nPostgreSQL pair skipped: eventsourcing's PostgreSQL recorder cannot be imported ({error});")
        print('  pip install "eventsourcing[postgres]" (it needs psycopg_pool)')
        return []
    info = psycopg.conninfo.conninfo_to_dict(admin_url.replace("postgresql+psycopg://", "postgresql://"))
    ours_url = f"postgresql+psycopg://{info.get('user', 'postgres')}@{info.get('host', '127.0.0.1')}:"
    ours_url += f"{info.get('port', 5432)}/{database}"
    upgrade(ours_url)
    pairs: list[tuple[str, Side, Side]] = []
    for title, functions, table in (
        ("PostgreSQL: ours vs eventsourcing (default settings)", False, "stored_events"),
        ("PostgreSQL: ours vs eventsourcing (enable_db_functions=True)", True, "stored_events_fn"),
    ):
        datastore = PostgresDatastore(
            database,
            str(info.get("host", "127.0.0.1")),
            int(info.get("port", 5432)),
            str(info.get("user", "postgres")),
            str(info.get("password", "")),
            enable_db_functions=functions,
        )
        recorder = PostgresApplicationRecorder(datastore, events_table_name=table)
        recorder.create_table()
        pairs.append(
            (
                title,
                Ours("ours-pg", EventStore.from_url(ours_url)),
                Theirs("es-pg", recorder, datastore.close),
            )
        )
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pg-url", default=os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--singles", type=int, default=500, help="single-event appends per round")
    parser.add_argument("--batches", type=int, default=30, help="100-event appends per round")
    parser.add_argument("--only", choices=["sqlite", "memory", "postgres"], help="run one pair of databases")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        sqlite_file = Path(tmp) / "bench.db"
        sqlite_url = f"sqlite:///{sqlite_file}"
        their_sqlite = SQLiteDatastore(str(sqlite_file))
        their_recorder = SQLiteApplicationRecorder(their_sqlite)
        their_recorder.create_table()
        pairs: list[tuple[str, Side, Side]] = [
            (
                "SQLite file: ours (synchronous=NORMAL, our default) vs eventsourcing (FULL, its default)",
                Ours("ours-sqlite", EventStore.from_url(sqlite_url)),
                Theirs("es-sqlite", their_recorder, their_sqlite.close),
            ),
            (
                "SQLite file: ours (synchronous=FULL) vs eventsourcing (synchronous=FULL)",
                Ours(
                    "ours-sqlite-full",
                    EventStore.from_url(sqlite_url, options=ConnectionOptions(sqlite_synchronous="full")),
                ),
                Theirs("es-sqlite", their_recorder),
            ),
            (
                "In memory (reference only): our SQLite :memory: vs eventsourcing POPO (a Python dict)",
                Ours("ours-memory", EventStore.from_url("sqlite://")),
                Theirs("es-popo", POPOApplicationRecorder()),
            ),
        ]
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {args.rounds} rounds")
        wanted = {"sqlite": pairs[:2], "memory": pairs[2:], "postgres": []}
        for title, ours, theirs in wanted[args.only] if args.only else pairs:
            report(title, compare(ours, theirs, args.rounds, args.singles, args.batches))
        for _, ours, _ in pairs:
            ours.close()
        their_sqlite.close()

    if args.only in (None, "postgres"):
        with fresh_postgres(args.pg_url) as database:
            info = psycopg.conninfo.conninfo_to_dict(
                args.pg_url.replace("postgresql+psycopg://", "postgresql://")
            )
            floor = DurableFloor(psycopg.conninfo.make_conninfo(**{**info, "dbname": database}))
            for title, ours, theirs in postgres_pairs(args.pg_url, database):
                report(title, compare(ours, theirs, args.rounds, args.singles, args.batches, floor))
                ours.close()
                theirs.close()
            floor.close()


if __name__ == "__main__":
    main()
