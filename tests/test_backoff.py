"""The shared back-off (:mod:`orchestrator.backoff`): delays double from ``base`` up to ``cap`` and
each is drawn from [d/2, d], so clients that failed together spread out."""

from __future__ import annotations

import random

import pytest

from orchestrator.backoff import Backoff


class Highest(random.Random):
    """Always draws the top of the range: the delay is exactly d."""

    def uniform(self, a: float, b: float) -> float:
        return max(a, b)


class Lowest(random.Random):
    """Always draws the bottom of the range: the delay is exactly d/2."""

    def uniform(self, a: float, b: float) -> float:
        return min(a, b)


def test_delays_double_from_base_and_stop_at_the_cap() -> None:
    backoff = Backoff(base=0.5, cap=3.0, rng=Highest())
    assert [backoff.next() for _ in range(6)] == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]
    assert [Backoff(0.5, 3.0, rng=Lowest()).delay(n) for n in (1, 2, 3, 4, 50)] == [
        0.25,
        0.5,
        1.0,
        1.5,
        1.5,
    ]


def test_each_delay_is_jittered_within_its_upper_half() -> None:
    backoff = Backoff(base=1.0, cap=8.0, rng=random.Random(7))
    for failures, top in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)):
        draws = [backoff.delay(failures) for _ in range(200)]
        assert all(top / 2 <= d <= top for d in draws), (failures, min(draws), max(draws))
        assert len(set(draws)) > 150  # spread out, not one value for everyone
        assert max(draws) - min(draws) > top / 4


def test_reset_starts_again_at_base_and_huge_counts_do_not_overflow() -> None:
    backoff = Backoff(base=0.2, cap=15.0, rng=Highest())
    for _ in range(10_000):
        backoff.next()
    assert backoff.next() == 15.0
    assert backoff.delay(10**9) == 15.0
    backoff.reset()
    assert backoff.next() == 0.2
    assert backoff.delay(0) == backoff.delay(1) == 0.2


@pytest.mark.parametrize(("base", "cap"), [(0.0, 1.0), (-1.0, 1.0), (2.0, 1.0)])
def test_a_base_that_is_not_positive_or_above_the_cap_is_refused(base: float, cap: float) -> None:
    with pytest.raises(ValueError, match="0 < base <= cap"):
        Backoff(base, cap)
