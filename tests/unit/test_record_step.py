"""The Record step after the create step gave up (its retriers ran out, so the state machine's Catch-all
shaped an ERROR that holds the target): what the record says Atlas may hold decides the ending and the
target."""

from __future__ import annotations

import json

from flexrestore.contracts import RequestedBy
from flexrestore.domain.intake import execution_input_for
from flexrestore.domain.outcome import Observation, end_restore
from flexrestore.domain.request import parse_request
from tests.fakes import GROUP, SOURCE, TARGET, World

REQUEST = parse_request({"groupId": GROUP, "clusterName": SOURCE, "targetDeploymentItemName": TARGET})
ASKED = RequestedBy(trigger="api", caller="arn:aws:iam::123456789012:user/ops")
# What the create step's Catch-all (ShapeCreateError in restore.asl.json) hands the Record step.
CREATE_GAVE_UP = {
    "finalStatus": "ERROR",
    "holdLock": True,
    "caught": {
        "Error": "AtlasUnavailable",
        "Cause": json.dumps(
            {"errorType": "AtlasUnavailable", "errorMessage": "listing restore jobs: HTTP 503"}
        ),
    },
}


def recorded(world: World) -> str:
    _, answer = world.intake.submit(REQUEST, ASKED, "api:one")
    return str(answer["restoreId"])


def record_step(world: World, restore_id: str) -> None:
    start = execution_input_for(world.store.records[restore_id], 3600)
    end_restore(
        start,
        Observation.from_dict(CREATE_GAVE_UP),
        execution_arn=None,
        records=world.store,
        locks=world.locks,
        metrics=world.metrics,
        now=world.clock,
    )


def test_a_create_step_that_gave_up_after_sending_the_create_ends_uncertain_and_keeps_the_target() -> None:
    world = World()
    restore_id = recorded(world)
    world.store.claim_create(restore_id, at=world.clock())  # the create was sent; its answer was lost
    world.clock.advance(900)

    record_step(world, restore_id)
    record_step(world, restore_id)  # a retried Record step decides the same

    record = world.store.records[restore_id]
    assert record.final_status == "ERROR" and record.error is not None
    assert record.error.code == "CREATE_UNCERTAIN"  # not a failure: Atlas may have the job
    assert record.error.message == (
        "a restore job may exist in Atlas (the create was sent at 2026-11-01T02:00:00Z and its answer was "
        "not kept), and the create step gave up: listing restore jobs: HTTP 503; the target stays locked "
        "until its lease ends"
    )
    assert [h.restore_id for h in world.locks.held.values()] == [restore_id]
    world.clock.advance(20 * 60)
    assert world.reconciler.run().released == []  # and the reconciler leaves it to the lease


def test_a_create_step_that_gave_up_before_sending_anything_frees_the_target() -> None:
    world = World()
    restore_id = recorded(world)  # no createAttemptedAt: nothing reached Atlas

    record_step(world, restore_id)

    record = world.store.records[restore_id]
    assert record.final_status == "ERROR" and record.error is not None
    assert record.error.code == "AtlasUnavailable"
    assert record.error.message == "the create step gave up: listing restore jobs: HTTP 503"
    assert world.locks.held == {}
