"""SQLite only: the WAL is checkpointed by a thread of the backend, not by the appends."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import structlog

from orchestrator.store import ConnectionOptions, EventStore
from orchestrator.store.backends.checkpoints import WalCheckpointer

from .helpers import event


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "orchestrator.db"


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


Checkpointers = Callable[[], list[threading.Thread]]


@pytest.fixture
def checkpointers() -> Checkpointers:
    """The checkpointer threads started during the test that still run (a thread of another test's
    store, left open, does not count)."""
    earlier = set(threading.enumerate())

    def running() -> list[threading.Thread]:
        return [
            t for t in threading.enumerate() if t.name.startswith("sqlite-checkpointer:") and t not in earlier
        ]

    return running


def test_commits_reach_the_database_file_soon_after_the_append_not_in_it(
    path: Path, checkpointers: Checkpointers
) -> None:
    # In WAL mode only a checkpoint writes to the database file: its size shows when one ran.
    options = ConnectionOptions(sqlite_checkpoint_interval=0.3)
    with EventStore.from_url(f"sqlite:///{path}", options=options, auto_upgrade=True) as store:
        size = path.stat().st_size
        store.append("exec", 0, [event(blob="x" * 2000) for _ in range(200)])
        assert path.stat().st_size == size  # the append itself did not checkpoint
        assert wait_until(lambda: path.stat().st_size > size)
        assert [t.name for t in checkpointers()] == ["sqlite-checkpointer:orchestrator.db"]
    assert checkpointers() == []  # closing the store stops its thread


def test_without_the_checkpointer_sqlite_checkpoints_in_the_appends(
    path: Path, checkpointers: Checkpointers
) -> None:
    options = ConnectionOptions(sqlite_checkpoint_interval=0)
    with EventStore.from_url(f"sqlite:///{path}", options=options, auto_upgrade=True) as store:
        size = path.stat().st_size
        version = 0
        # SQLite checkpoints in the commit that takes the WAL past 1,000 pages.
        while path.stat().st_size == size:
            store.append("exec", version, [event(blob="x" * 2000) for _ in range(100)])
            version += 100
            assert version < 10_000
        assert checkpointers() == []


def test_the_wal_stays_bounded_under_a_stream_of_appends(path: Path) -> None:
    options = ConnectionOptions(sqlite_checkpoint_interval=0.01, sqlite_checkpoint_pages=64)
    wal = Path(f"{path}-wal")
    largest = 0
    written = 0
    with EventStore.from_url(f"sqlite:///{path}", options=options, auto_upgrade=True) as store:
        for n in range(200):
            events = [event(blob="x" * 1000) for _ in range(20)]
            store.append("exec", n * 20, events)
            written += 20 * 1000
            largest = max(largest, wal.stat().st_size)
    # ~4 MB written; the WAL restarted from its beginning again and again (pages of 4 KiB).
    assert written >= 4_000_000
    assert largest < 1_500_000, largest
    with EventStore.from_url(f"sqlite:///{path}") as store:
        assert store.stream_version("exec") == 4000
        assert [e.version for e in store.read_stream("exec")] == list(range(1, 4001))


def test_a_failing_checkpoint_is_logged_and_the_thread_goes_on(
    tmp_path: Path, checkpointers: Checkpointers
) -> None:
    not_a_database = tmp_path / "notes.txt"
    not_a_database.write_text("not SQLite " * 100)
    checkpointer = WalCheckpointer(
        str(not_a_database), interval=0.01, restart_frames=64, busy_timeout=1, writer_lock=threading.Lock()
    )
    with structlog.testing.capture_logs() as logs:
        for failures in (1, 2):  # a commit, a failed checkpoint; another commit, another one
            checkpointer.committed()
            assert wait_until(lambda n=failures: len(logs) >= n)
        assert [t.name for t in checkpointers()] == ["sqlite-checkpointer:notes.txt"]  # still there
        checkpointer.close()
    assert checkpointers() == []
    assert {entry["event"] for entry in logs} == {"store.sqlite_checkpoint_failed"}
    assert all("not a database" in entry["error"] and entry["log_level"] == "warning" for entry in logs)
