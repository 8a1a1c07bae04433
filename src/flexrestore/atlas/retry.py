"""Retry policy of the Atlas client: pure functions, no HTTP, no clock of their own.

* 5xx, timeouts and connection errors: exponential back-off with *full jitter* (AWS architecture blog,
  "Exponential Backoff and Jitter"): ``uniform(0, min(cap, base * 2**(n-1)))``. Full jitter spreads the
  retries of many Lambdas best; a 5xx burst usually clears within a few seconds, so ``base`` is 1 s.
* 429 with ``Retry-After``: wait at least what Atlas asked, plus up to 10 % (at most 1 s) of jitter so
  concurrent containers do not come back in the same instant.
* 429 without ``Retry-After`` (Atlas's docs warn the header may be missing): exponential back-off from 10 s
  (10, 20, 40 s ... the docs' own example) with *equal jitter* (half fixed, half random). Atlas refills its
  token buckets at rates like "5 per 60 seconds", i.e. one request every 12 s, so a 1-2 s back-off would
  spend the whole retry budget inside an empty bucket; the fixed half keeps a floor under every wait.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    """Attempts per operation, the first one included."""
    max_total_wait: float = 60.0
    """Seconds, on the injected clock, from the first attempt after which no retry is started."""
    backoff_base: float = 1.0
    backoff_cap: float = 20.0
    rate_limit_base: float = 10.0
    rate_limit_cap: float = 60.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.max_total_wait < 0:
            raise ValueError("max_total_wait must not be negative")


def full_jitter_backoff(retry_number: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Delay before retry ``retry_number`` (1 = first retry): uniform in ``[0, min(cap, base*2**(n-1))]``."""
    ceiling = min(cap, base * 2.0 ** max(0, retry_number - 1))
    return rng.uniform(0.0, ceiling)


def equal_jitter_backoff(retry_number: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Delay in ``[d/2, d]`` with ``d = min(cap, base*2**(n-1))``: never shorter than half the step."""
    step = min(cap, base * 2.0 ** max(0, retry_number - 1))
    return step / 2 + rng.uniform(0.0, step / 2)


def retry_after_jitter(retry_after: float, *, rng: random.Random) -> float:
    """Extra wait on top of ``Retry-After``: up to 10 % of it, at most 1 s."""
    return rng.uniform(0.0, min(1.0, retry_after * 0.1))


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (RFC 9110 §10.2.3), or ``None`` if absent/unusable.

    Accepts delta-seconds (``"7"``; a decimal is tolerated) and an HTTP-date
    (``"Sun, 01 Nov 2026 02:00:07 GMT"``), the latter measured against ``now`` (epoch seconds from the
    injected clock). Dates in the past mean "now" (0 s).
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if seconds != seconds or seconds in (float("inf"), float("-inf")):  # NaN / inf
            return None
        return max(0.0, seconds)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, moment.timestamp() - now)
