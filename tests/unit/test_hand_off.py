"""The create step, the first task of a restore's execution, over the fakes: Atlas is asked for the job once;
a create whose answer was lost is never sent again before Atlas has been asked whether the job exists; an
uncertain create is never recorded as a failure while Atlas can still be asked."""

from __future__ import annotations

from datetime import timedelta

import pytest

from flexrestore.contracts import ExecutionInput, RequestedBy
from flexrestore.domain.errors import AtlasBadRequest, AtlasUnavailable
from flexrestore.domain.hand_off import Created, Ended
from flexrestore.domain.request import parse_request
from tests.fakes import GROUP, SOURCE, TARGET, World

REQUEST = parse_request({"groupId": GROUP, "clusterName": SOURCE, "targetDeploymentItemName": TARGET})
ASKED = RequestedBy(trigger="api", caller="arn:aws:iam::123456789012:user/ops")


def accepted(world: World) -> ExecutionInput:
    """A restore the intake accepted and handed over: the input its execution starts with."""
    _, answer = world.intake.submit(REQUEST, ASKED, "api-key:k")
    return world.executions.started[answer["restoreId"]]


def test_the_create_step_makes_the_job_and_notes_it() -> None:
    world = World()
    start = accepted(world)

    result = world.create_step.run(start)

    assert isinstance(result, Created)
    (job_id,) = world.atlas.jobs
    assert result.job.id == job_id and 0 <= result.first_poll_seconds <= 3600
    record = world.store.records[start.restore_id]
    assert record.restore_job_id == job_id and record.create_attempted_at is not None
    assert [entry.status for entry in record.timeline] == ["ACCEPTED", "CREATING", "PENDING"]


def test_a_retried_step_after_the_create_went_through_sends_nothing_again() -> None:
    world = World()
    start = accepted(world)
    first = world.create_step.run(start)
    again = world.create_step.run(start)
    assert isinstance(first, Created) and isinstance(again, Created)
    assert again.job.id == first.job.id
    assert world.atlas.calls.count("create_restore_job") == 1


def test_a_lost_create_answer_with_atlas_unlistable_is_retried_then_adopted_never_sent_twice() -> None:
    """Atlas makes the job but answers 500, and listing the jobs fails too (503): the step fails for the
    state machine's retry, never records a failure; the retry asks Atlas and adopts the job."""
    world = World()
    start = accepted(world)
    world.atlas.lose_next_create_answer = True
    with pytest.raises(AtlasUnavailable):
        world.create_step.run(start)
    world.atlas.faults.once("list_restore_jobs", AtlasUnavailable("HTTP 503", status=503))
    with pytest.raises(AtlasUnavailable):
        world.create_step.run(start)  # Atlas cannot be asked: fail again, for another retry
    assert world.store.records[start.restore_id].final_status is None

    result = world.create_step.run(start)

    assert isinstance(result, Created)
    assert world.atlas.calls.count("create_restore_job") == 1  # never a second create
    assert len(world.atlas.jobs) == 1 and result.job.id == next(iter(world.atlas.jobs))
    assert world.store.records[start.restore_id].restore_job_id == result.job.id


def test_atlas_refusing_the_create_ends_the_restore_and_frees_its_target() -> None:
    world = World()
    start = accepted(world)
    world.atlas.faults.once(
        "create_restore_job", AtlasBadRequest("HTTP 400", status=400, error_code="INVALID_ATTRIBUTE")
    )
    result = world.create_step.run(start)
    assert isinstance(result, Ended)
    assert result.observation.final_status == "ERROR" and not result.observation.hold_lock
    assert result.observation.error is not None and result.observation.error.code == "INVALID_ATTRIBUTE"
    assert world.atlas.jobs == {}


def test_an_uncertain_create_past_the_deadline_ends_uncertain_and_keeps_the_target_locked() -> None:
    world = World()
    start = accepted(world)
    world.atlas.lose_next_create_answer = True
    with pytest.raises(AtlasUnavailable):
        world.create_step.run(start)
    world.clock.advance(3601)
    world.atlas.faults.once("list_restore_jobs", AtlasUnavailable("HTTP 503", status=503))

    result = world.create_step.run(start)

    assert isinstance(result, Ended)
    assert result.observation.hold_lock
    assert result.observation.error is not None and result.observation.error.code == "CREATE_UNCERTAIN"


def test_at_the_deadline_a_create_atlas_can_be_asked_about_is_still_adopted() -> None:
    world = World()
    start = accepted(world)
    world.atlas.lose_next_create_answer = True
    with pytest.raises(AtlasUnavailable):
        world.create_step.run(start)
    world.clock.advance(3601)
    result = world.create_step.run(start)
    assert isinstance(result, Created)  # the poll loop then reports it TIMED_OUT or done, as Atlas says


def test_a_restore_that_ended_before_its_create_step_sends_nothing() -> None:
    world = World()
    start = accepted(world)
    record = world.store.records[start.restore_id]
    world.store.records[start.restore_id] = record.model_copy(update={"final_status": "ERROR"})
    result = world.create_step.run(start)
    assert isinstance(result, Ended)
    assert world.atlas.calls.count("create_restore_job") == 0


def test_the_first_look_is_never_after_the_deadline() -> None:
    world = World()
    start = accepted(world)
    start = start.model_copy(update={"deadline": start.requested_at + timedelta(seconds=20)})
    result = world.create_step.run(start)
    assert isinstance(result, Created) and result.first_poll_seconds <= 20
