"""Exponential back-off with jitter, for retrying a database that went away.

Hand-written rather than taken from ``tenacity`` or ``backoff``: the worker needs a delay to wait on
its own stop event (so a SIGTERM during an outage is answered at once), not a decorator that sleeps,
and the whole policy is the three lines of :meth:`Backoff.next`.
"""

from __future__ import annotations

import random


class Backoff:
    """Delays growing from ``base`` to ``cap`` seconds, each drawn uniformly from [d/2, d] ("equal
    jitter"), so workers that lost the database together do not reconnect together."""

    def __init__(self, base: float = 0.2, cap: float = 15.0, rng: random.Random | None = None) -> None:
        if base <= 0 or cap < base:
            raise ValueError("Backoff needs 0 < base <= cap")
        self.base = base
        self.cap = cap
        self.failures = 0
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography

    def next(self) -> float:
        """The delay before the next try; each call counts one more failure."""
        delay: float = min(self.cap, self.base * 2.0**self.failures)
        self.failures = min(self.failures + 1, 32)
        return delay / 2 + self._rng.uniform(0, delay / 2)

    def reset(self) -> None:
        """A success: the next failure waits ``base`` again."""
        self.failures = 0
