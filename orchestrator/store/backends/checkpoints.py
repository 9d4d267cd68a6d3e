"""Checkpoints of an SQLite write-ahead log on a thread of their own, off the append path.

By default SQLite checkpoints in the commit that grows the WAL past ``wal_autocheckpoint`` pages:
the committing append then copies ~1,000 pages into the database file and waits for two fsyncs,
7-10 ms where an append takes ~1 ms, in one append of every ~30 (100-event ones; 12-15% of the
time of a stream of them). With ``synchronous=NORMAL`` those checkpoints are also the only moments
the WAL reaches the disk, so how long a commit stays exposed to a power cut depends on how much is
written after it: a quiet database may keep its last commits in the page cache for hours.

:class:`WalCheckpointer` moves that work to a thread with a connection of its own. After a commit it
waits ``interval`` seconds (so a stream of commits shares one checkpoint), then runs a PASSIVE
checkpoint, which never blocks the writer nor readers: commits are durable at most about
``interval`` after they return, and appends never pay for a checkpoint. A passive checkpoint only
copies the frames committed before it began; the WAL file restarts from its beginning only when
a write transaction starts after everything in it was copied, which a busy writer never lets
happen. So once the WAL holds ``restart_frames`` pages, the checkpointer copies the few frames
committed meanwhile in a second pass while holding the backend's writer lock (a short pause for
the appends of this process; the next write restarts the file). Should the thread fall behind or
fail, SQLite's own automatic checkpoint, left on at twice ``restart_frames``, bounds the WAL.

Hand-written: neither sqlite3 nor SQLAlchemy checkpoints in the background (Litestream, which does,
is a separate replication process).
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

#: How much longer than ``restart_frames`` the WAL may grow before SQLite checkpoints in a commit.
FALLBACK_FACTOR = 2


class WalCheckpointer:
    """Background checkpoints of one SQLite file's WAL (see the module docstring)."""

    def __init__(
        self,
        path: str,
        *,
        interval: float,
        restart_frames: int,
        busy_timeout: float,
        writer_lock: threading.Lock,
    ) -> None:
        self._path = path
        self._interval = interval
        self._restart_frames = max(1, restart_frames)
        self._busy_timeout = busy_timeout
        self._writer_lock = writer_lock
        self._committed = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def autocheckpoint_pages(self) -> int:
        """``PRAGMA wal_autocheckpoint`` for the writer: SQLite's own checkpoint, as a fallback."""
        return self._restart_frames * FALLBACK_FACTOR

    def committed(self) -> None:
        """Called after each commit of the writer: a checkpoint is due within ``interval``."""
        if self._thread is None:
            self._start()
        if not self._committed.is_set():
            self._committed.set()

    def close(self) -> None:
        """Stop the thread (after a last checkpoint of what is pending) and wait for it."""
        self._stopping.set()
        self._committed.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=self._busy_timeout + 5)

    def _start(self) -> None:
        """Start the thread (called by the writer, under the writer lock: never twice at once)."""
        if not self._stopping.is_set():
            self._thread = threading.Thread(
                target=self._run, name=f"sqlite-checkpointer:{Path(self._path).name}", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        connection: sqlite3.Connection | None = None
        try:
            while True:
                self._committed.wait()
                # Let a stream of commits gather; a close cuts the wait short.
                self._stopping.wait(self._interval)
                self._committed.clear()
                try:
                    if connection is None:
                        connection = sqlite3.connect(
                            self._path, timeout=self._busy_timeout, isolation_level=None
                        )
                    self._checkpoint(connection)
                except Exception as error:  # the thread must outlive any failure
                    # Appends go on meanwhile; SQLite's fallback checkpoint bounds the WAL.
                    failure = f"{type(error).__name__}: {error}"
                    log.warning("store.sqlite_checkpoint_failed", path=self._path, error=failure)
                    if connection is not None:
                        connection.close()
                        connection = None
                if self._stopping.is_set():
                    return
        finally:
            if connection is not None:
                connection.close()

    def _checkpoint(self, connection: sqlite3.Connection) -> None:
        if _passive(connection) < self._restart_frames:  # also when not in WAL mode (-1)
            return
        # Copy what was committed during the pass above with no commit in between, so that the
        # next write transaction restarts the WAL from its beginning. Bounded wait: if the writer
        # is held that long, SQLite's fallback checkpoint keeps the file bounded anyway.
        if not self._writer_lock.acquire(timeout=self._busy_timeout):
            return
        try:
            _passive(connection)
        finally:
            self._writer_lock.release()


def _passive(connection: sqlite3.Connection) -> int:
    """Run ``PRAGMA wal_checkpoint(PASSIVE)``; returns how many frames the WAL holds (-1: the database
    is not in WAL mode)."""
    _busy, frames, _copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return int(frames)
