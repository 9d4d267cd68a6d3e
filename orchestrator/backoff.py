"""Exponential back-off with jitter, for whatever retries something that failed: the worker's
database connection, Conduit calls, Phabricator work items.

Hand-written rather than taken from ``tenacity`` or ``backoff``: the callers need a delay to wait on in
their own way (the worker on its stop event, so a SIGTERM during an outage is answered at once; the
Phabricator inbox as the ``run_at`` of the next attempt, in another process), not a decorator that
sleeps, and the whole policy is the few lines of :meth:`Backoff.delay`.
"""

from __future__ import annotations

import random

_MAX_DOUBLINGS = 32
"""Past this many failures the delay stops growing (it is at ``cap`` long before): no float overflow."""


class Backoff:
    """Delays growing from ``base`` to ``cap`` seconds, each drawn uniformly from [d/2, d] ("equal
    jitter"), so clients that failed together do not try again together."""

    def __init__(self, base: float = 0.2, cap: float = 15.0, rng: random.Random | None = None) -> None:
        if base <= 0 or cap < base:
            raise ValueError("Backoff needs 0 < base <= cap")
        self.base = base
        self.cap = cap
        self.failures = 0
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography

    def delay(self, failures: int) -> float:
        """The delay after ``failures`` failures in a row (1 or less: about ``base``), drawn from
        [d/2, d] where d = min(cap, base * 2 ** (failures - 1)). Counts nothing: for callers that
        keep the count themselves (the attempt number of a work item)."""
        doublings = min(max(failures, 1) - 1, _MAX_DOUBLINGS)
        grown: float = min(self.cap, self.base * 2.0**doublings)
        return grown / 2 + self._rng.uniform(0, grown / 2)

    def next(self) -> float:
        """The delay before the next try; each call counts one more failure."""
        self.failures = min(self.failures + 1, _MAX_DOUBLINGS + 1)
        return self.delay(self.failures)

    def reset(self) -> None:
        """A success: the next failure waits ``base`` again."""
        self.failures = 0
