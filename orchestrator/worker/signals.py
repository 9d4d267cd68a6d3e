"""SIGTERM and SIGINT for a worker process: the first stops it gracefully, a second exits at once.

Exiting at once leaves the leases of the running items to expire normally: other workers claim them
then. The exit status is 128 + the signal's number, as a shell reports a process killed by it.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

import structlog

log = structlog.get_logger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextmanager
def graceful_signals(stop: Callable[[], None]) -> Iterator[None]:
    """While inside, the first SIGTERM/SIGINT calls ``stop``; the next one exits the process."""
    received: list[int] = []

    def handle(signum: int, frame: FrameType | None) -> None:
        del frame
        received.append(signum)
        name = signal.Signals(signum).name
        if len(received) == 1:
            log.warning("worker.signal", signal=name, action="finishing running items, then exiting")
            stop()
            return
        log.warning("worker.signal", signal=name, action="exiting now; leases will expire")
        os._exit(128 + signum)

    previous = {signum: signal.signal(signum, handle) for signum in SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
