"""One waiter on the event store for every live stream of the UI.

Each open execution page keeps a server-sent-events stream (:mod:`orchestrator.api.ui`) that must hear
of new events promptly without polling. :meth:`EventStore.wait_for_events` does the waiting
(PostgreSQL: LISTEN/NOTIFY; SQLite: woken by this process's appends, polling for other processes'),
but it blocks a thread, and on PostgreSQL only one thread per store listens (the others poll). So the
app has one :class:`LiveHub`: a single thread waits on the store while any stream is waiting, and wakes
the streams' coroutines (``loop.call_soon_threadsafe``) when the store's head moves past what each has
seen. No stream holds a thread; a stream that is cancelled (client gone, server shutting down) simply
stops waiting, and :meth:`LiveHub.close` (at the app's shutdown) wakes every stream so it can end.

The hub's thread exists only while streams wait: it ends after a round with no waiter and starts again
with the next one. Hand-written because it is a fan-out of one ``threading`` wait to ``asyncio``
waiters, twenty lines of glue that no library provides over this store.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass, field

import structlog

from orchestrator.store import EventStore, StoreError

log = structlog.get_logger(__name__)
SLICE_SECONDS = 2.0  # one wait on the store; a closed hub's thread ends within it
RETRY_SECONDS = 1.0  # after the store failed, wait this long before asking again


@dataclass(eq=False)
class _Waiter:
    after: int
    loop: asyncio.AbstractEventLoop
    event: asyncio.Event = field(default_factory=asyncio.Event)

    def wake(self) -> None:
        with contextlib.suppress(RuntimeError):  # its loop is closed: nobody is listening any more
            self.loop.call_soon_threadsafe(self.event.set)


class LiveHub:
    """Wakes async waiters when ``store`` has events after the position each has seen."""

    def __init__(self, store: EventStore, *, slice_seconds: float = SLICE_SECONDS) -> None:
        """A hub over ``store``; its thread waits at most ``slice_seconds`` at a time."""
        self._store = store
        self._slice = slice_seconds
        self._lock = threading.Lock()
        self._waiters: set[_Waiter] = set()
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()
        self._head: int | None = None  # the store's last position as the thread last saw it

    @property
    def closed(self) -> bool:
        """Whether the app is shutting down: streams should end."""
        return self._closed.is_set()

    async def wait(self, after: int, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for an event after position ``after``.

        True when there is one (at once if the hub already knows of one); False on timeout or when
        the hub closes.
        """
        if self.closed:
            return False
        waiter = _Waiter(after, asyncio.get_running_loop())
        with self._lock:
            if self._head is not None and self._head > after:
                return True
            self._waiters.add(waiter)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="live-hub", daemon=True)
                self._thread.start()
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter.event.wait(), timeout)
            return waiter.event.is_set() and not self.closed
        finally:
            with self._lock:
                self._waiters.discard(waiter)

    def close(self) -> None:
        """Wake every waiter and let the thread end (the app is shutting down)."""
        self._closed.set()
        with self._lock:
            waiters = list(self._waiters)
        for waiter in waiters:
            waiter.wake()

    def _run(self) -> None:
        while not self.closed:
            with self._lock:
                if not self._waiters:
                    self._thread = None  # the next waiter starts a new thread
                    self._head = None  # nobody keeps it fresh from now on
                    return
            try:
                if self._head is None:
                    self._advance(self._store.last_position())
                assert self._head is not None
                if self._store.wait_for_events(self._head, self._slice):
                    self._advance(self._store.last_position())
            except Exception as exc:
                log.warning(
                    "live.store_error", error=type(exc).__name__, unavailable=isinstance(exc, StoreError)
                )
                self._closed.wait(RETRY_SECONDS)
        with self._lock:
            self._thread = None

    def _advance(self, head: int) -> None:
        with self._lock:
            self._head = head
            ready = [w for w in self._waiters if w.after < head]
        for waiter in ready:
            waiter.wake()
