"""Validation of a restored source (domain/validation.py): the built-in checks from Atlas's facts, and the
reading of a plan's validator: only a well-formed SUCCEEDED within the timeout is success."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from flexrestore.domain.validation import (
    BuiltInFacts,
    ValidatorCall,
    built_in_checks,
    judge_validator,
    max_age_hours,
    release_series,
    verdict,
)

STARTED = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
FACTS = BuiltInFacts(
    target="frv-0a1b2c3d-000",
    target_state="IDLE",
    target_version="8.0.15",
    snapshot_version="8.0.13",
    job_status="COMPLETED",
    job_finished_at=STARTED + timedelta(seconds=65),
    snapshot_taken_at=STARTED - timedelta(hours=23),
    run_started_at=STARTED,
    max_age_hours=48,
)


def statuses(facts: BuiltInFacts) -> dict[str, str]:
    return {c.name: c.status for c in built_in_checks(facts)}


def test_a_good_restore_passes_every_built_in_check() -> None:
    assert statuses(FACTS) == {
        "target-idle": "PASSED",
        "target-version": "PASSED",
        "restore-job": "PASSED",
        "snapshot-age": "PASSED",
    }
    result = verdict(built_in_checks(FACTS), validator=None, validator_verdict=None, at=STARTED)
    assert result.status == "SUCCEEDED" and result.validator is None


@pytest.mark.parametrize(
    ("change", "check"),
    [
        ({"target_state": "UPDATING"}, "target-idle"),
        ({"target_problem": "Atlas does not know the target"}, "target-idle"),
        ({"target_version": "7.0.12"}, "target-version"),  # another release series than the snapshot's
        ({"target_version": "8.2.1"}, "target-version"),
        ({"job_status": "FAILED"}, "restore-job"),
        ({"job_finished_at": None}, "restore-job"),  # COMPLETED but no restoreFinishedDate
        ({"job_problem": "no such job"}, "restore-job"),
        ({"snapshot_taken_at": STARTED - timedelta(hours=49)}, "snapshot-age"),
        ({"snapshot_taken_at": None}, "snapshot-age"),
    ],
)
def test_each_built_in_check_fails_on_its_own(change: dict[str, Any], check: str) -> None:
    found = statuses(replace(FACTS, **change))
    assert found[check] == "FAILED"
    assert [name for name, status in found.items() if status == "FAILED"] == [check]
    result = verdict(
        built_in_checks(replace(FACTS, **change)), validator="arn", validator_verdict=None, at=STARTED
    )
    assert result.status == "FAILED" and check in (result.message or "")
    assert result.checks[-1].name == "validator" and result.checks[-1].status == "SKIPPED"  # not asked


def test_unknown_versions_and_no_age_limit_are_skipped_not_failed() -> None:
    found = statuses(replace(FACTS, snapshot_version=None, max_age_hours=None))
    assert found["target-version"] == "SKIPPED" and found["snapshot-age"] == "SKIPPED"
    assert (
        verdict(
            built_in_checks(replace(FACTS, max_age_hours=None)),
            validator=None,
            validator_verdict=None,
            at=STARTED,
        ).status
        == "SUCCEEDED"
    )


def test_the_age_limit_comes_from_the_plan() -> None:
    assert max_age_hours({"choice": "LATEST", "maxAgeHours": 30}) == 30
    assert max_age_hours({"choice": "RANDOM_WITHIN_WINDOW", "windowDays": 7}) == 168
    assert max_age_hours({"choice": "RANDOM_WITHIN_WINDOW", "windowDays": 7, "maxAgeHours": 24}) == 24
    assert max_age_hours({"choice": "LATEST"}) is None
    assert release_series("8.0.15") == (8, 0) and release_series("") is None


def judged(call: ValidatorCall, timeout: int = 60) -> tuple[str, str]:
    status, message, checks = judge_validator(call, timeout_seconds=timeout)
    assert checks[0].name == "validator"
    return status, message


def test_a_validator_that_says_succeeded_in_time_succeeds() -> None:
    status, message, checks = judge_validator(
        ValidatorCall(
            "ANSWERED",
            {
                "status": "SUCCEEDED",
                "message": "orders: 1200 documents",
                "checks": [
                    {"name": "orders", "status": "PASSED", "message": "1200 >= 1000"},
                    {"name": "bad", "status": "MAYBE"},
                ],
                "extra": "ignored",
            },
            seconds=3,
        ),
        timeout_seconds=60,
    )
    assert (status, message) == ("SUCCEEDED", "orders: 1200 documents")
    assert [(c.name, c.status) for c in checks] == [
        ("validator", "PASSED"),
        ("validator:orders", "PASSED"),
        ("validator:checks", "SKIPPED"),  # the malformed one is left out, and that is said
    ]
    failed = judged(ValidatorCall("ANSWERED", {"status": "FAILED", "message": "orders is empty"}))
    assert failed == ("FAILED", "orders is empty")


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        ({"status": "OK", "message": "fine"}, "status must be SUCCEEDED or FAILED"),
        ({"status": "succeeded", "message": "fine"}, "status must be SUCCEEDED or FAILED"),
        ({"status": "SUCCEEDED"}, "message must be a string"),
        ({"status": "SUCCEEDED", "message": 42}, "message must be a string"),
        ({"status": "TIMED_OUT", "message": "x"}, "status must be SUCCEEDED or FAILED"),
        ("SUCCEEDED", "expected a JSON object, got a string"),
        (None, "expected a JSON object, got nothing"),
        ([{"status": "SUCCEEDED", "message": "x"}], "expected a JSON object, got a list"),
        (True, "expected a JSON object, got a boolean"),
    ],
)
def test_an_answer_of_another_shape_is_failed_never_success(payload: Any, why: str) -> None:
    status, message = judged(ValidatorCall("ANSWERED", payload))
    assert status == "FAILED" and why in message


def test_an_error_is_failed_with_its_words() -> None:
    status, message = judged(ValidatorCall("ERROR", error="it raised RuntimeError: cannot connect\x1b[31m"))
    assert status == "FAILED" and "cannot connect" in message and "\x1b" not in message


def test_a_late_answer_or_a_stopped_validator_is_timed_out_even_if_it_said_succeeded() -> None:
    late = ValidatorCall("ANSWERED", {"status": "SUCCEEDED", "message": "fine"}, seconds=61)
    assert judged(late, timeout=60)[0] == "TIMED_OUT"
    stopped = ValidatorCall("TIMED_OUT", error="Lambda stopped it: Task timed out after 60.00 seconds")
    status, message = judged(stopped)
    assert status == "TIMED_OUT" and "Task timed out" in message


def test_long_messages_are_kept_short() -> None:
    status, message = judged(ValidatorCall("ANSWERED", {"status": "FAILED", "message": "x" * 5000}))
    assert status == "FAILED" and len(message) == 1000
