"""The token buckets behind login and broadcast rate limits: refusals, refill, and a flood of
fresh keys (any user name) that neither grows memory nor lifts a lock-out."""

from __future__ import annotations

from ttcs.core.access.ratelimit import RateLimiter
from ttcs.core.config import Rate


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_key_is_refused_past_its_count_and_allowed_again_as_it_refills() -> None:
    clock = Clock()
    limiter = RateLimiter(Rate(count=3, seconds=60), clock=clock)
    assert [limiter.hit("ops") for _ in range(3)] == [(None, False)] * 3
    wait, first = limiter.hit("ops")
    assert first and wait is not None and 19 < wait <= 20  # one attempt back per 20 s
    assert limiter.hit("ops")[1] is False  # still refusing: not the first refusal
    assert limiter.hit("other") == (None, False)  # another key has its own bucket
    clock.now += 20
    assert limiter.hit("ops") == (None, False)


def test_a_flood_of_fresh_keys_is_bounded_and_keeps_a_lock_out() -> None:
    clock = Clock()
    limiter = RateLimiter(Rate(count=2, seconds=600), clock=clock, max_keys=100)
    for _ in range(3):
        limiter.hit("victim")  # locked out
    for n in range(5000):
        clock.now += 0.001
        assert limiter.hit(f"guess-{n}") == (None, False)
        assert len(limiter._buckets) <= 100
    wait, _ = limiter.hit("victim")
    assert wait is not None  # flooding other names did not lift the victim's lock-out
