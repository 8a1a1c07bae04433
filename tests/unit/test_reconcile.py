"""The reconciler over the fakes: what the intake accepted but could not hand over is started or, at its
deadline, ended and told; a lease left by a restore that ended or was never recorded is freed; nothing a
running restore still needs is touched."""

from __future__ import annotations

from flexrestore.contracts import RequestedBy
from flexrestore.domain.request import parse_request
from tests.fakes import GROUP, SOURCE, TARGET, World

REQUEST = parse_request({"groupId": GROUP, "clusterName": SOURCE, "targetDeploymentItemName": TARGET})
ASKED = RequestedBy(trigger="schedule", schedule="nightly", event_id="e-1")


def accepted_without_execution(world: World) -> str:
    world.executions.faults.once("start_execution", RuntimeError("ServiceUnavailable"))
    _, answer = world.intake.submit(REQUEST, ASKED, "event:e-1")
    assert answer["executionArn"] is None
    return str(answer["restoreId"])


def test_a_pending_hand_off_is_started_once_the_intake_had_its_chance() -> None:
    world = World()
    restore_id = accepted_without_execution(world)
    assert world.reconciler.run().started == []  # within the grace: the intake may still be at it

    world.clock.advance(150)
    report = world.reconciler.run()

    assert report.started == [restore_id]
    assert list(world.executions.started) == [restore_id]
    record = world.store.records[restore_id]
    assert record.handoff is None and record.execution_arn is not None
    assert world.reconciler.run().started == []  # done once


def test_a_hand_off_that_never_works_ends_as_an_error_at_its_deadline_and_is_told() -> None:
    world = World()
    restore_id = accepted_without_execution(world)
    world.executions.faults.always("start_execution", RuntimeError("ServiceUnavailable"))
    world.clock.advance(600)
    assert world.reconciler.run().waiting == [restore_id]

    world.clock.advance(3600)
    report = world.reconciler.run()

    assert report.ended == [restore_id]
    record = world.store.records[restore_id]
    assert record.final_status == "ERROR" and record.error is not None
    assert record.error.code == "HANDOFF_FAILED" and "nothing was sent to Atlas" in record.error.message
    assert world.locks.held == {}  # the target is free again
    assert "RestoreError" in world.metrics.names()
    ((subject, _),) = world.notifier.messages
    assert subject == f"Restore ERROR: {SOURCE} → {TARGET}"
    (event,) = world.notifier.events
    assert (event.source, event.detail_type) == ("flexrestore.restores", "Flex Restore Errored")
    assert event.resources == ()  # no execution ever ran
    assert event.detail_json()["error"]["code"] == "HANDOFF_FAILED"
    assert world.atlas.creates == 0


def test_a_hand_off_a_create_step_has_claimed_is_left_to_its_execution() -> None:
    world = World()
    restore_id = accepted_without_execution(world)
    world.store.claim_create(restore_id, at=world.clock())  # an execution got there after all
    world.executions.faults.always("start_execution", RuntimeError("ServiceUnavailable"))
    world.clock.advance(7200)

    report = world.reconciler.run()

    assert report.ended == []
    assert world.store.records[restore_id].final_status is None
    assert world.locks.held  # its execution releases it


def test_a_lease_without_a_record_is_freed_and_a_running_restores_lease_is_kept() -> None:
    world = World()
    world.locks.acquire(GROUP, "orphan-target", restore_id="never-recorded", lease_seconds=7200)
    _, answer = world.intake.submit(REQUEST, ASKED, "event:e-2")  # a restore that runs
    world.clock.advance(20 * 60)

    report = world.reconciler.run()

    assert report.released == [f"lock#{GROUP}#orphan-target"]
    assert [h.restore_id for h in world.locks.held.values()] == [answer["restoreId"]]


def test_a_restore_that_ended_with_its_create_uncertain_keeps_its_lease() -> None:
    world = World()
    _, answer = world.intake.submit(REQUEST, ASKED, "event:e-3")
    record = world.store.records[answer["restoreId"]]
    from flexrestore.contracts import ErrorInfo

    world.store.records[answer["restoreId"]] = record.model_copy(
        update={"final_status": "ERROR", "error": ErrorInfo(code="CREATE_UNCERTAIN", message="m")}
    )
    world.clock.advance(20 * 60)
    assert world.reconciler.run().released == []
    assert world.locks.held
