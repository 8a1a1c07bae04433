"""The intake flow's own decisions, over the in-memory fakes of tests/fakes.py (no AWS, no HTTP, no mocks):
which restoreId a key gets on a retry, which Atlas job a resumed attempt adopts, and what a crash at each
step leaves behind when the same request comes again."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from flexrestore.contracts import RequestedBy, RestoreRecord
from flexrestore.domain.errors import AtlasRateLimited, AtlasUnavailable
from flexrestore.domain.intake import IntakeError, new_record, restore_id_for
from flexrestore.domain.jobs import adoptable_job
from flexrestore.domain.request import parse_request
from tests.fakes import GROUP, NOW, SNAPSHOT, SOURCE, TARGET, Crash, Job, World

KEY = "event:abc"
REQUEST = parse_request({"groupId": GROUP, "clusterName": SOURCE, "targetDeploymentItemName": TARGET})
ASKED = RequestedBy(trigger="schedule", schedule="nightly-verify", event_id="abc")


def record(requested_at: datetime, **changes: Any) -> RestoreRecord:
    made = new_record(
        "r", REQUEST, ASKED, snapshot_id=SNAPSHOT, requested_at=requested_at, break_glass=None, lock_id=None
    )
    return made.model_copy(update=changes)


def test_a_new_key_gets_its_first_restore_id() -> None:
    assert World().intake._claim_restore_id(KEY) == (restore_id_for(KEY, 0), None)


def test_a_retry_resumes_the_restore_a_crashed_attempt_left() -> None:
    world = World()
    left = record(NOW - timedelta(minutes=3), status="CREATING")
    world.store.records[restore_id_for(KEY, 0)] = left
    assert world.intake._claim_restore_id(KEY) == (restore_id_for(KEY, 0), left)


def test_an_ended_attempt_is_never_resumed() -> None:
    world = World()
    world.store.records[restore_id_for(KEY, 0)] = record(NOW - timedelta(minutes=3), final_status="ERROR")
    world.store.records[restore_id_for(KEY, 1)] = record(NOW - timedelta(minutes=1), final_status="ERROR")
    assert world.intake._claim_restore_id(KEY) == (restore_id_for(KEY, 2), None)


def test_a_record_older_than_the_idempotency_window_is_not_resumed() -> None:
    world = World()
    world.store.records[restore_id_for(KEY, 0)] = record(NOW - timedelta(days=2), status="PENDING")
    assert world.intake._claim_restore_id(KEY) == (restore_id_for(KEY, 1), None)


def job(status: str, scheduled: datetime | None) -> Job:
    return Job(id="6ae69d205e1a7c0d3f000001", status=status, restore_scheduled_date=scheduled)


@pytest.mark.parametrize(
    ("found", "adopted"),
    [
        (job("PENDING", NOW - timedelta(days=3)), True),  # still running into the target: ours to follow
        (job("COMPLETED", NOW + timedelta(seconds=5)), True),  # made after the record: the crashed attempt's
        (job("COMPLETED", NOW - timedelta(minutes=4)), True),  # within the clock-skew tolerance
        (job("COMPLETED", NOW - timedelta(days=1)), False),  # yesterday's restore of the same snapshot
        (job("FAILED", None), False),
        (None, False),
    ],
)
def test_a_resumed_attempt_adopts_only_its_own_job(found: Job | None, adopted: bool) -> None:
    result = adoptable_job(
        [found] if found else [],
        snapshot_id=SNAPSHOT,
        target_name=TARGET,
        target_project_id=GROUP,
        attempted_at=NOW,
    )
    assert (result is not None) == adopted


def test_errors_carry_their_answer() -> None:
    error = IntakeError(503, "RATE_LIMITED", "retry later", refusal=False, retry_after=7, extra={"x": 1})
    assert error.body() == {"message": "retry later", "errorCode": "RATE_LIMITED", "x": 1}
    assert (error.status, error.retry_after, error.refusal) == (503, 7, False)


# --- a crash at each step, then the same request again ---------------------------------------------------


@pytest.mark.parametrize(
    ("fake", "call"),
    [
        ("store", "create"),
        ("store", "mark_job_created"),  # after Atlas made the job
        ("executions", "start_execution"),  # between the create and the start
        ("store", "set_execution"),  # after the start
    ],
)
def test_retry_after_a_crash_continues_with_the_same_restore_and_job(fake: str, call: str) -> None:
    world = World()
    getattr(world, fake).faults.once(call, Crash(call))

    with pytest.raises(Crash):
        world.intake.submit(REQUEST, ASKED, KEY)
    status, answer = world.intake.submit(REQUEST, ASKED, KEY)  # the retry of the same event

    assert status == 202
    assert world.atlas.creates == 1  # never a second Atlas job
    (stored,) = world.store.records.values()
    assert stored.restore_id == answer["restoreId"] == restore_id_for(KEY, 0)
    assert stored.restore_job_id == answer["restoreJobId"] == next(iter(world.atlas.jobs))
    assert stored.execution_arn == answer["executionArn"]
    assert list(world.executions.started) == [answer["restoreId"]]
    assert world.executions.started[answer["restoreId"]].restore_job_id == answer["restoreJobId"]


def test_a_failed_create_is_recorded_and_told_and_a_retry_makes_a_fresh_attempt() -> None:
    world = World()
    limited = AtlasRateLimited("HTTP 429", status=429, error_code="RATE_LIMITED", retry_after=600.0)
    world.atlas.faults.once("create_restore_job", limited)

    with pytest.raises(IntakeError) as refused:
        world.intake.submit(REQUEST, ASKED, KEY)
    assert (refused.value.status, refused.value.code, refused.value.retry_after) == (503, "RATE_LIMITED", 600)
    (failed,) = world.store.records.values()
    assert failed.final_status == "ERROR" and failed.error is not None and failed.error.code == "RATE_LIMITED"
    assert failed.timeline[-1].status == "CREATE_FAILED"
    assert world.executions.started == {}
    assert world.locks.held == {}  # the target is free again
    # No poll loop will run for it, so the intake tells people and machines itself, and counts it.
    ((subject, _),) = world.notifier.messages
    assert subject == f"Restore ERROR: {SOURCE} → {TARGET}"
    ((detail_type, detail),) = world.notifier.events
    assert (detail_type, detail["restoreId"]) == ("Flex Restore Failed", failed.restore_id)
    told = world.store.records[failed.restore_id].notification
    assert told is not None and told.sns is not None and told.events is not None
    assert told.sns.status == told.events.status == told.status == "SENT"
    assert "RestoreError" in world.metrics.names()

    status, answer = world.intake.submit(REQUEST, ASKED, KEY)  # the retry: a fresh attempt
    assert status == 202
    assert answer["restoreId"] == restore_id_for(KEY, 1) != failed.restore_id
    assert world.atlas.calls.count("create_restore_job") == 2  # Atlas refused the first: nothing made
    assert len(world.atlas.jobs) == 1
    assert world.store.records[failed.restore_id].final_status == "ERROR"  # kept as it was


def test_a_failed_record_write_leaves_the_target_unlocked() -> None:
    world = World()
    world.store.faults.once("create", Crash("create"))
    with pytest.raises(Crash):
        world.intake.submit(REQUEST, ASKED, KEY)
    assert world.locks.held == {}
    assert world.atlas.creates == 0


def test_an_atlas_outage_during_the_create_ends_the_attempt_and_frees_the_target() -> None:
    world = World()
    world.atlas.faults.once("create_restore_job", AtlasUnavailable("HTTP 503", status=503))
    with pytest.raises(IntakeError) as failed:
        world.intake.submit(REQUEST, ASKED, KEY)
    assert (failed.value.status, failed.value.refusal) == (503, False)
    assert world.locks.held == {}
