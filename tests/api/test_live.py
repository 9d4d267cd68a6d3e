"""The live hub: one thread waits on the store and wakes every waiting stream, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

from orchestrator.api.live import LiveHub
from orchestrator.store import EventStore, NewEvent


def _append(store: EventStore, stream: str) -> None:
    version = store.stream_version(stream)
    store.append(stream, version, [NewEvent(uuid.uuid4(), "Ping", {"at": time.time()})])


def test_waiters_wake_on_an_append_from_another_store(database_url: str) -> None:
    store = EventStore.from_url(database_url, auto_upgrade=True)
    other = EventStore.from_url(database_url)  # stands in for another process (a worker)
    hub = LiveHub(store, slice_seconds=0.5)
    try:
        head = store.last_position()

        async def scenario() -> list[bool]:
            waits = [asyncio.create_task(hub.wait(head, 60)) for _ in range(3)]
            await asyncio.sleep(0.2)
            assert not any(w.done() for w in waits)  # nothing new yet: they wait
            threading.Thread(target=_append, args=(other, "live-test")).start()
            return list(await asyncio.gather(*waits))

        assert asyncio.run(scenario()) == [True, True, True]

        async def known() -> bool:
            return await hub.wait(head, 60)  # the store has moved past ``head`` already

        assert asyncio.run(known()) is True

        async def quiet() -> bool:
            return await hub.wait(store.last_position(), 0.3)

        assert asyncio.run(quiet()) is False
    finally:
        hub.close()
        other.close()
        store.close()


def test_close_wakes_the_waiters_and_ends_the_thread(sqlite_url: str) -> None:
    store = EventStore.from_url(sqlite_url, auto_upgrade=True)
    hub = LiveHub(store, slice_seconds=0.5)
    try:

        async def scenario() -> bool:
            waiting = asyncio.create_task(hub.wait(store.last_position(), 600))
            await asyncio.sleep(0.2)
            hub.close()
            return await asyncio.wait_for(waiting, 60)

        assert asyncio.run(scenario()) is False and hub.closed
        deadline = time.monotonic() + 60
        while any(t.name == "live-hub" for t in threading.enumerate()):
            assert time.monotonic() < deadline, "the hub's thread outlived close()"
            time.sleep(0.05)

        async def after_close() -> bool:
            return await hub.wait(0, 60)

        assert asyncio.run(after_close()) is False
    finally:
        store.close()
