"""The status rules and the first wait (plain Python), and the poll schedule of the deployed ASL file: the
Poll task's retrier on RestoreStillRunning, read from the file and reasoned about here."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from flexrestore.domain import polling
from flexrestore.domain.polling import Phase

ASL = Path(__file__).resolve().parents[2] / "src/flexrestore/statemachine/restore.asl.json"
NOW = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
LONGEST_DEADLINE_SECONDS = 86400  # POLL_DEADLINE_SECONDS's upper bound (settings.py)


def _poll_state() -> dict[str, Any]:
    definition = json.loads(ASL.read_text(encoding="utf-8"))
    state: dict[str, Any] = definition["States"]["Poll"]
    return state


def _still_running_retrier() -> dict[str, Any]:
    retrier: dict[str, Any] = next(
        r for r in _poll_state()["Retry"] if r["ErrorEquals"] == ["RestoreStillRunning"]
    )
    return retrier


def retry_delays(max_attempts: int | None = None) -> Iterator[float]:
    """The waits between looks, exactly as Step Functions computes them for this retrier (no jitter)."""
    retrier = _still_running_retrier()
    attempts = retrier["MaxAttempts"] if max_attempts is None else max_attempts
    for attempt in range(attempts):
        yield min(retrier["IntervalSeconds"] * retrier["BackoffRate"] ** attempt, retrier["MaxDelaySeconds"])


def poll_offsets(first_poll_seconds: float, horizon_seconds: float) -> list[float]:
    """Seconds after the start of the execution at which the loop looks, up to ``horizon_seconds``."""
    offsets = [float(first_poll_seconds)]
    for delay in retry_delays():
        if offsets[-1] >= horizon_seconds:
            break
        offsets.append(offsets[-1] + delay)
    return offsets


def first_look_at_or_after(first_poll_seconds: float, finished_after_seconds: float) -> float:
    """When the loop first sees a job that finishes ``finished_after_seconds`` after the start."""
    return next(
        o for o in poll_offsets(first_poll_seconds, finished_after_seconds) if o >= finished_after_seconds
    )


def retries_needed(horizon_seconds: float, first_poll_seconds: float = 0.0) -> int:
    """Retries the loop makes to still be looking ``horizon_seconds`` after the start."""
    return len(poll_offsets(first_poll_seconds, horizon_seconds)) - 1


@pytest.mark.parametrize(
    ("status", "phase"),
    [
        ("COMPLETED", Phase.COMPLETED),
        ("FAILED", Phase.FAILED),
        ("completed", Phase.COMPLETED),
        ("PENDING", Phase.RUNNING),
        ("QUEUED", Phase.RUNNING),
        ("RUNNING", Phase.RUNNING),
        ("CLOSED", Phase.UNKNOWN),
        ("", Phase.UNKNOWN),
        (None, Phase.UNKNOWN),
    ],
)
def test_statuses_are_classified(status: str | None, phase: Phase) -> None:
    assert polling.classify(status) is phase


def test_only_completed_and_failed_end_the_loop() -> None:
    assert [p for p in Phase if p.is_terminal] == [Phase.COMPLETED, Phase.FAILED]


def test_first_look_comes_45_seconds_after_the_scheduled_date() -> None:
    assert polling.first_poll_seconds(NOW, NOW + timedelta(seconds=5)) == 50


def test_first_look_without_a_scheduled_date_counts_from_now() -> None:
    assert polling.first_poll_seconds(NOW, None) == 45


def test_first_look_rounds_up_to_whole_seconds() -> None:
    seconds = polling.first_poll_seconds(NOW, NOW + timedelta(seconds=5, milliseconds=200))
    assert seconds == 51
    assert isinstance(seconds, int)


def test_first_look_is_never_negative_nor_beyond_an_hour() -> None:
    assert polling.first_poll_seconds(NOW, NOW - timedelta(minutes=10)) == 0
    assert polling.first_poll_seconds(NOW, NOW + timedelta(days=2)) == polling.MAX_FIRST_POLL_SECONDS


def test_waits_grow_by_half_each_time_up_to_90_seconds() -> None:
    delays = list(retry_delays(max_attempts=9))
    assert delays == [10, 15, 22.5, 33.75, 50.625, 75.9375, 90, 90, 90]


def test_a_one_minute_restore_is_noticed_within_20_seconds_in_few_polls() -> None:
    # Atlas's simulator and observed runs: scheduled 5 s after the request, done a minute later.
    first_poll = polling.first_poll_seconds(NOW, NOW + timedelta(seconds=5))
    finished = 5 + 60
    seen = first_look_at_or_after(first_poll, finished)
    assert seen - finished <= 20
    polls = len(poll_offsets(first_poll, finished))
    # Choice + Wait + Poll + Record + Notify, plus one transition per retry.
    assert 5 + (polls - 1) <= 15


def test_a_thirty_minute_restore_is_noticed_within_90_seconds_under_60_transitions() -> None:
    first_poll = polling.first_poll_seconds(NOW, NOW + timedelta(seconds=5))
    finished = 5 + 30 * 60
    seen = first_look_at_or_after(first_poll, finished)
    assert seen - finished <= 90
    assert 5 + retries_needed(finished, first_poll) <= 60


def test_the_deadline_is_reached_at_the_deadline_itself() -> None:
    deadline = NOW + timedelta(hours=1)
    assert not polling.deadline_passed(deadline, deadline - timedelta(seconds=1))
    assert polling.deadline_passed(deadline, deadline)


def test_the_state_machine_retrier_is_10_s_times_1_5_up_to_90_s_without_jitter() -> None:
    still_running = _still_running_retrier()
    assert still_running["IntervalSeconds"] == 10
    assert still_running["BackoffRate"] == 1.5
    assert still_running["MaxDelaySeconds"] == 90
    assert still_running["MaxAttempts"] == 1000
    assert still_running.get("JitterStrategy", "NONE") == "NONE"  # bounded, deterministic latency


def test_the_retrier_outlasts_the_longest_deadline() -> None:
    # The deadline, checked on every poll, is what ends a restore that never finishes, never this counter.
    needed = retries_needed(LONGEST_DEADLINE_SECONDS)
    assert needed < _still_running_retrier()["MaxAttempts"]


def test_the_first_wait_guard_matches_the_domain_bound() -> None:
    definition = json.loads(ASL.read_text(encoding="utf-8"))
    rules = definition["States"]["CheckFirstPollDelay"]["Choices"][0]["And"]
    upper = next(rule["NumericLessThanEquals"] for rule in rules if "NumericLessThanEquals" in rule)
    assert upper == polling.MAX_FIRST_POLL_SECONDS


def test_an_atlas_outage_is_tolerated_until_the_tolerance_is_reached() -> None:
    since = NOW
    assert polling.outage_tolerated(since, since, 600)
    assert polling.outage_tolerated(since, since + timedelta(seconds=599), 600)
    assert not polling.outage_tolerated(since, since + timedelta(seconds=600), 600)
    assert not polling.outage_tolerated(since, since, 0)  # zero: never ride an outage out


def test_retry_after_sets_when_atlas_may_be_asked_again() -> None:
    assert polling.look_not_before(NOW, 55) == NOW + timedelta(seconds=55)
    assert polling.look_not_before(NOW, None) is None
    assert polling.look_not_before(NOW, 0) is None


def test_the_default_outage_tolerance_outlasts_the_longest_poll_wait_several_times() -> None:
    from flexrestore.settings import Settings

    tolerance = Settings.model_validate({}).atlas_outage_tolerance_seconds
    assert tolerance == 600
    # At least a few looks fall inside a tolerated outage, whatever the point in the schedule.
    assert tolerance >= 5 * _still_running_retrier()["MaxDelaySeconds"]
