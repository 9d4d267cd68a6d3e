"""Helpers run as separate processes by the tests (``python processes.py <command> ...``).

- ``append URL PREFIX COUNT [DELAY]``: after DELAY seconds, COUNT appends of 1 to 3 events, spread
  over three streams ``PREFIX-0..2`` of its own, retrying on conflicts; prints ``done``.
- ``hold-sqlite-lock PATH SECONDS``: takes the SQLite write lock of PATH, prints ``locked``, holds
  it for SECONDS, then rolls back.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def spawn(*args: str) -> subprocess.Popen[str]:
    """Start this script with ``args`` in a new process (stdout piped, text mode)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def append(url: str, prefix: str, count: int, delay: float) -> None:
    from orchestrator.store import ConcurrencyError, EventStore, NewEvent

    with EventStore.from_url(url) as store:
        time.sleep(delay)
        for n in range(count):
            stream = f"{prefix}-{n % 3}"
            events = [NewEvent(uuid.uuid4(), "Appended", {"n": n, "i": i}) for i in range(1 + n % 3)]
            while True:
                try:
                    store.append(stream, store.stream_version(stream), events)
                    break
                except ConcurrencyError:
                    continue
    sys.stdout.write("done\n")


def hold_sqlite_lock(path: str, seconds: float) -> None:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("BEGIN IMMEDIATE")
    sys.stdout.write("locked\n")
    sys.stdout.flush()
    time.sleep(seconds)
    connection.execute("ROLLBACK")
    connection.close()


if __name__ == "__main__":
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    command, *arguments = sys.argv[1:]
    if command == "append":
        url, prefix, count, *delay = arguments
        append(url, prefix, int(count), float(delay[0]) if delay else 0.0)
    elif command == "hold-sqlite-lock":
        hold_sqlite_lock(arguments[0], float(arguments[1]))
    else:
        raise SystemExit(f"unknown command {command!r}")
