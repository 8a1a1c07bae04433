"""Back-off and Retry-After parsing: pure functions, no server, no clock."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from flexrestore.atlas.retry import (
    RetryPolicy,
    equal_jitter_backoff,
    full_jitter_backoff,
    parse_retry_after,
    retry_after_jitter,
)

NOW = datetime(2026, 11, 1, 2, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("retry_number", "ceiling"), [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 16.0), (6, 20.0)]
)
def test_full_jitter_stays_between_zero_and_the_capped_exponential(retry_number: int, ceiling: float) -> None:
    rng = random.Random(7)
    delays = [full_jitter_backoff(retry_number, base=1.0, cap=20.0, rng=rng) for _ in range(500)]
    assert all(0.0 <= d <= ceiling for d in delays)
    # Really jittered: spread over most of the range, not a constant.
    assert max(delays) > ceiling * 0.9
    assert min(delays) < ceiling * 0.1


def test_rate_limit_backoff_follows_atlas_docs_10_20_40_with_a_floor() -> None:
    rng = random.Random(3)
    for retry_number, step in [(1, 10.0), (2, 20.0), (3, 40.0), (4, 60.0), (9, 60.0)]:
        delays = [equal_jitter_backoff(retry_number, base=10.0, cap=60.0, rng=rng) for _ in range(300)]
        assert all(step / 2 <= d <= step for d in delays), (retry_number, min(delays), max(delays))
        assert max(delays) - min(delays) > step / 4  # jittered


def test_retry_after_jitter_is_small_and_never_negative() -> None:
    rng = random.Random(1)
    assert all(0.0 <= retry_after_jitter(7.0, rng=rng) <= 0.7 for _ in range(200))
    assert all(0.0 <= retry_after_jitter(120.0, rng=rng) <= 1.0 for _ in range(200))
    assert retry_after_jitter(0.0, rng=rng) == 0.0


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("7", 7.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("2.5", 2.5),
        ("-3", 0.0),
        ("55", 55.0),
        (None, None),
        ("", None),
        ("soon", None),
        ("nan", None),
        ("inf", None),
    ],
)
def test_retry_after_delta_seconds(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == expected


def test_retry_after_http_date_is_measured_against_the_injected_now() -> None:
    assert parse_retry_after("Sun, 01 Nov 2026 02:00:07 GMT", now=NOW) == pytest.approx(7.0)
    assert parse_retry_after("Sun, 01 Nov 2026 02:01:00 GMT", now=NOW) == pytest.approx(60.0)


def test_retry_after_http_date_in_the_past_means_now() -> None:
    assert parse_retry_after("Sat, 31 Oct 2026 23:00:00 GMT", now=NOW) == 0.0


def test_retry_policy_refuses_nonsense_bounds() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="max_total_wait"):
        RetryPolicy(max_total_wait=-1)
