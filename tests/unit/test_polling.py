"""The poll schedule and status rules (plain Python), and the ASL file that must mirror them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from flexrestore.domain import polling
from flexrestore.domain.polling import Phase

ASL = Path(__file__).resolve().parents[2] / "src/flexrestore/statemachine/restore_poll.asl.json"
NOW = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)


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
    delays = list(polling.retry_delays(max_attempts=9))
    assert delays == [10, 15, 22.5, 33.75, 50.625, 75.9375, 90, 90, 90]


def test_a_one_minute_restore_is_noticed_within_20_seconds_in_few_polls() -> None:
    # Atlas's simulator and observed runs: scheduled 5 s after the request, done a minute later.
    first_poll = polling.first_poll_seconds(NOW, NOW + timedelta(seconds=5))
    finished = 5 + 60
    seen = polling.first_look_at_or_after(first_poll, finished)
    assert seen - finished <= 20
    polls = len(polling.poll_offsets(first_poll, finished))
    # Choice + Wait + Poll + Record + Notify, plus one transition per retry.
    assert 5 + (polls - 1) <= 15


def test_a_thirty_minute_restore_is_noticed_within_90_seconds_under_60_transitions() -> None:
    first_poll = polling.first_poll_seconds(NOW, NOW + timedelta(seconds=5))
    finished = 5 + 30 * 60
    seen = polling.first_look_at_or_after(first_poll, finished)
    assert seen - finished <= 90
    assert 5 + polling.retries_needed(finished, first_poll) <= 60


def test_the_deadline_is_reached_at_the_deadline_itself() -> None:
    deadline = polling.deadline_from(NOW, 3600)
    assert deadline == NOW + timedelta(hours=1)
    assert not polling.deadline_passed(deadline, deadline - timedelta(seconds=1))
    assert polling.deadline_passed(deadline, deadline)


def _poll_state() -> dict[str, object]:
    definition = json.loads(ASL.read_text(encoding="utf-8"))
    state: dict[str, object] = definition["States"]["Poll"]
    return state


def test_the_state_machine_retrier_is_the_schedule_this_module_describes() -> None:
    still_running = next(r for r in _poll_state()["Retry"] if r["ErrorEquals"] == ["RestoreStillRunning"])  # type: ignore[attr-defined]
    assert still_running["IntervalSeconds"] == polling.POLL_INTERVAL_SECONDS
    assert still_running["BackoffRate"] == polling.POLL_BACKOFF_RATE
    assert still_running["MaxDelaySeconds"] == polling.POLL_MAX_DELAY_SECONDS
    assert still_running["MaxAttempts"] == polling.POLL_MAX_ATTEMPTS
    assert still_running.get("JitterStrategy", "NONE") == "NONE"  # bounded, deterministic latency


def test_the_retrier_outlasts_the_longest_deadline() -> None:
    needed = polling.retries_needed(polling.LONGEST_DEADLINE_SECONDS)
    assert needed < polling.POLL_MAX_ATTEMPTS


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
    assert tolerance >= 5 * polling.POLL_MAX_DELAY_SECONDS
