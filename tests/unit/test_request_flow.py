"""The intake flow's own decisions, over the in-memory fakes of tests/fakes.py (no AWS, no HTTP, no mocks):
which restoreId a key gets on a retry, which Atlas job a resumed attempt adopts, and what a crash at each
step leaves behind when the same request comes again."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from flexrestore.contracts import RequestedBy, RestoreRecord
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
        ("store", "create"),  # before anything was handed over
        ("executions", "start_execution"),  # recorded, not handed over
        ("store", "set_execution"),  # handed over, not noted
    ],
)
def test_retry_after_a_crash_continues_with_the_same_restore_and_one_execution(fake: str, call: str) -> None:
    world = World()
    getattr(world, fake).faults.once(call, Crash(call))

    with pytest.raises(Crash):
        world.intake.submit(REQUEST, ASKED, KEY)
    status, answer = world.intake.submit(REQUEST, ASKED, KEY)  # the retry of the same event

    assert status == 202
    assert world.atlas.creates == 0  # the intake never asks Atlas for the job: the execution does
    (stored,) = world.store.records.values()
    assert stored.restore_id == answer["restoreId"] == restore_id_for(KEY, 0)
    assert stored.execution_arn == answer["executionArn"] is not None
    assert stored.handoff is None
    assert list(world.executions.started) == [answer["restoreId"]]
    assert world.executions.started[answer["restoreId"]].restore_job_id is None  # the create step fills it


def test_a_start_refused_by_step_functions_is_accepted_and_left_to_the_reconciler() -> None:
    world = World()
    world.executions.faults.once("start_execution", RuntimeError("ThrottlingException"))

    status, answer = world.intake.submit(REQUEST, ASKED, KEY)

    assert status == 202  # accepted: the restore is recorded and will be handed over
    assert answer["executionArn"] is None and answer["status"] == "ACCEPTED"
    (stored,) = world.store.records.values()
    assert stored.handoff == "PENDING" and stored.final_status is None
    assert "HandOffDeferred" in world.metrics.names()
    assert world.atlas.creates == 0


def test_a_failed_record_write_leaves_the_target_unlocked() -> None:
    world = World()
    world.store.faults.once("create", Crash("create"))
    with pytest.raises(Crash):
        world.intake.submit(REQUEST, ASKED, KEY)
    assert world.locks.held == {}
    assert world.atlas.creates == 0


def test_the_answer_carries_the_atlas_job_once_the_create_step_has_it() -> None:
    world = World()
    _, answer = world.intake.submit(REQUEST, ASKED, KEY)
    assert (answer["restoreJobId"], answer["status"]) == (None, "ACCEPTED")
    assert "being created" in answer["message"]

    assert world.intake.submit(REQUEST, ASKED, KEY)[1] == answer  # a repeat gets the first answer

    start = world.executions.started[answer["restoreId"]]
    world.create_step.run(start)  # what the execution does next
    settled = world.intake.settled(answer, wait_seconds=0)
    assert settled["restoreId"] == answer["restoreId"]
    assert settled["restoreJobId"] == next(iter(world.atlas.jobs)) and settled["status"] == "PENDING"
    assert "message" not in settled
