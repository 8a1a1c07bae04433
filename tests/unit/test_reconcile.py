"""The reconciler over the fakes: what the intake accepted but could not hand over is started or, at its
deadline, ended and told; a lease left by a restore that ended or was never recorded is freed; nothing a
running restore still needs is touched."""

from __future__ import annotations

from flexrestore.contracts import Delivery, ErrorInfo, Notification, RequestedBy
from flexrestore.domain.intake import execution_input_for
from flexrestore.domain.outcome import Observation, final_record
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


# --- endings left untold --------------------------------------------------------------------------------


def ended_by_its_execution(world: World, key: str, notification: Notification | None) -> str:
    """A restore whose execution recorded its end (COMPLETED), with ``notification`` as its Notify step left
    it on the record."""
    _, answer = world.intake.submit(REQUEST, ASKED, key)
    restore_id = str(answer["restoreId"])
    record = world.store.records[restore_id]
    world.store.records[restore_id] = record.model_copy(
        update={"final_status": "COMPLETED", "finished_at": world.clock(), "notification": notification}
    )
    world.locks.release(record.lock_id or "", restore_id)
    return restore_id


def test_an_ending_whose_execution_failed_to_notify_is_told_again_on_the_channels_that_failed() -> None:
    world = World()
    at = world.clock()
    left = Notification(
        status="FAILED",
        at=at,
        sns=Delivery(status="FAILED", at=at, error=ErrorInfo(code="Throttled", message="SNS said no")),
        events=Delivery(status="SENT", at=at, event_id="event-0"),
    )
    restore_id = ended_by_its_execution(world, "event:e-4", left)
    assert world.reconciler.run().told == []  # its execution still runs: its Notify step may yet tell

    world.executions.end(restore_id, "FAILED", error="NotificationFailed")
    world.notifier.faults.once("publish", RuntimeError("Throttled"))
    assert world.reconciler.run().told == []  # SNS still refuses: the next run tries again

    report = world.reconciler.run()

    assert report.told == [restore_id]
    ((subject, _),) = world.notifier.messages
    assert subject.startswith("Restore COMPLETED")
    assert world.notifier.events == []  # EventBridge had it already
    notification = world.store.records[restore_id].notification
    assert notification is not None and notification.status == "SENT"
    assert world.reconciler.run().told == []  # told once


def test_an_ending_its_execution_told_is_only_noted_when_the_record_missed_it() -> None:
    world = World()
    restore_id = ended_by_its_execution(world, "event:e-5", None)  # DynamoDB refused the Notify step's notes
    world.executions.end(restore_id, "SUCCEEDED", {"status": "SENT", "at": "2026-11-01T02:01:20Z"})

    report = world.reconciler.run()

    assert report.told == [] and world.notifier.messages == [] and world.notifier.events == []
    notification = world.store.records[restore_id].notification
    assert notification is not None and notification.status == "SENT"


def test_the_reconcilers_own_ending_is_told_again_when_telling_it_failed() -> None:
    world = World()
    restore_id = accepted_without_execution(world)
    world.executions.faults.always("start_execution", RuntimeError("ServiceUnavailable"))
    world.notifier.faults.always("publish", RuntimeError("Throttled"), times=2)
    world.clock.advance(4000)

    first = world.reconciler.run()
    assert first.ended == [restore_id] and first.told == [] and world.notifier.messages == []

    second = world.reconciler.run()

    assert second.told == [restore_id]
    ((subject, _),) = world.notifier.messages
    assert subject == f"Restore ERROR: {SOURCE} → {TARGET}"
    assert len(world.notifier.events) == 1
    assert world.metrics.names().count("RestoreError") == 1  # counted once, when it ended


# --- endings left unrecorded ------------------------------------------------------------------------------


def handed_over(world: World, key: str) -> str:
    _, answer = world.intake.submit(REQUEST, ASKED, key)
    return str(answer["restoreId"])


def test_a_restore_whose_execution_could_not_record_its_end_is_ended_as_its_notify_step_told_it() -> None:
    world = World()
    restore_id = handed_over(world, "event:e-6")
    record = world.store.records[restore_id]
    world.store.records[restore_id] = record.model_copy(
        update={"restore_job_id": "job-1", "status": "RUNNING"}
    )
    world.clock.advance(75)
    told = final_record(
        execution_input_for(world.store.records[restore_id], 3600),
        None,  # the Record step never saved it: the Notify step rebuilt it from the execution's state
        Observation(
            "COMPLETED", world.clock(), atlas_status="COMPLETED", restore_finished_date=world.clock()
        ),
        execution_arn=None,
        now=world.clock(),
    )
    output = {"status": "SENT", "at": "2026-11-01T02:01:15Z", "recordSaved": False, "record": told.to_json()}
    world.executions.end(restore_id, "SUCCEEDED", {**output, "holdLock": False})

    report = world.reconciler.run()

    assert report.ended == [restore_id]
    ended = world.store.records[restore_id]
    assert ended.final_status == "COMPLETED" and ended.duration_seconds == 75
    assert ended.requested_by == ASKED and ended.restore_job_id == "job-1"  # what the intake wrote survives
    assert ended.notification is not None and ended.notification.status == "SENT"
    assert world.notifier.messages == []  # people were told by the Notify step already
    assert world.locks.held == {}  # the target is free
    assert world.metrics.names().count("RestoreCompleted") == 1
    assert world.reconciler.run().ended == []  # once


def test_a_stopped_execution_ends_its_restore_as_an_error_and_keeps_the_target_while_a_job_may_run() -> None:
    world = World()
    restore_id = handed_over(world, "event:e-7")
    record = world.store.records[restore_id]
    world.store.records[restore_id] = record.model_copy(
        update={"restore_job_id": "job-2", "status": "RUNNING"}
    )
    world.executions.end(restore_id, "ABORTED")

    report = world.reconciler.run()

    assert report.ended == [restore_id] and report.told == [restore_id]
    ended = world.store.records[restore_id]
    assert ended.final_status == "ERROR" and ended.error is not None
    assert ended.error.code == "EXECUTION_ENDED"
    assert ended.error.message == (
        "the restore's execution ended (ABORTED) before it wrote the final record; "
        "Atlas's job was last seen RUNNING"
    )
    ((subject, _),) = world.notifier.messages
    assert subject.startswith("Restore ERROR")
    world.clock.advance(20 * 60)
    assert world.reconciler.run().released == []
    assert [h.restore_id for h in world.locks.held.values()] == [restore_id]  # until its lease runs out
