"""Rate limits: a token bucket per key (an account, a source address).

In memory, per hub process: behind several workers each keeps its own count, which bounds
an attacker by workers × limit — still far from a brute force. A bucket holds ``count``
attempts and refills at ``count / seconds`` per second; idle buckets are forgotten.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..config import Rate


@dataclass
class _Bucket:
    level: float
    stamp: float
    refused: bool = False  # refusing since the last success (so the first refusal is known)


@dataclass
class RateLimiter:
    rate: Rate
    clock: Callable[[], float] = time.monotonic
    #: buckets kept at most: keys are chosen by the caller (any user name), so a flood of
    #: fresh keys must not grow memory or make every hit walk them all
    max_keys: int = 10_000
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    def hit(self, key: str) -> tuple[float | None, bool]:
        """Take one attempt for ``key``: (None, False) if allowed, else (seconds until one
        is allowed, whether this is the first refusal of a run)."""
        now = self.clock()
        if len(self._buckets) >= self.max_keys and key not in self._buckets:
            self._forget(now)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(self.rate.count), now)
        per_second = self.rate.count / self.rate.seconds
        bucket.level = min(float(self.rate.count), bucket.level + (now - bucket.stamp) *
                           per_second)
        bucket.stamp = now
        if bucket.level >= 1:
            bucket.level -= 1
            bucket.refused = False
            return None, False
        first = not bucket.refused
        bucket.refused = True
        return (1 - bucket.level) / per_second, first

    def _forget(self, now: float) -> None:
        """Drop the buckets that are full again; if that is not enough (a flood of fresh
        keys), drop the least recently used half, the refusing ones last (a lock-out is not
        lifted by flooding other keys while there are others to drop)."""
        full_after = self.rate.seconds
        for key in [k for k, b in self._buckets.items() if now - b.stamp > full_after]:
            del self._buckets[key]
        if len(self._buckets) < self.max_keys:
            return
        ranked = sorted(self._buckets.items(), key=lambda kv: (kv[1].refused, kv[1].stamp))
        for key, _ in ranked[:len(ranked) - self.max_keys // 2]:
            del self._buckets[key]
