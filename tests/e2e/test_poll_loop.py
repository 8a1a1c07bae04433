"""The real state machine, executed by moto, with its Lambda tasks calling the real handlers in-process
and the Atlas simulator answering, all on one virtual clock: one test per way a restore can end.

Each test asserts what people and machines see: the final record (GET /restores/{id}), the SNS message
and the EventBridge outcome event.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from flexrestore.aws.locks import TargetLocks
from flexrestore.aws.notifier import Notifier
from flexrestore.clock import VirtualClock
from flexrestore.contracts.events import OutcomeEvent
from flexrestore.domain.errors import RestoreStillRunning
from flexrestore.local.harness import RESTORES_TABLE, OfflineStack
from flexrestore.simulator import DEMO, AtlasSimulator, RateLimit
from tests.e2e.support import StartedRestore, start_restore
from tests.published import assert_published_event

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def stack(request: pytest.FixtureRequest) -> Iterator[OfflineStack]:
    scenario = getattr(request, "param", "ok")
    with OfflineStack(scenario=scenario, clock=VirtualClock()) as offline:
        yield offline


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def ended(
    stack: OfflineStack, restore: StartedRestore
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Run the execution to its end; the final record, the one SNS message and the one outcome event."""
    execution = stack.wait_for_execution(restore.execution_arn)
    assert execution["status"] == "SUCCEEDED", (execution.get("error"), execution.get("cause"))
    record = stack.record(restore.restore_id)
    assert record is not None
    notifications, events = stack.notifications(), stack.events()
    assert len(notifications) == 1
    assert len(events) == 1
    notification, event = notifications[0], events[0]
    # The message ends with the record, as saved (before the notification it carries existed).
    saved = {**record, "notification": None}
    assert notification["record"] == saved
    # The event is the published contract: its detail-type's schema, the execution in resources, the
    # record's values under the record's names, and nothing of the service's own bookkeeping.
    detail = assert_published_event(event)
    assert event["source"] == "flexrestore.restores"
    assert event["resources"] == [restore.execution_arn]
    assert detail["version"] == "1" and detail["recordSaved"] is True
    assert {k: v for k, v in detail.items() if k in saved} == {k: saved[k] for k in detail if k in saved}
    assert set(detail) - set(saved) == {"version", "recordSaved", "runId"}  # runId: the record's run.runId
    assert detail["runId"] is None and saved["run"] is None
    assert record["notification"]["status"] == "SENT"
    return record, notification, event


def test_a_completed_restore_is_recorded_with_its_rto_and_announced(stack: OfflineStack) -> None:
    restore = start_restore(stack, take_lock=True)
    record, notification, event = ended(stack, restore)

    assert record["finalStatus"] == "COMPLETED"
    assert record["error"] is None
    # Atlas: scheduled 5 s after the request, finished 60 s after that.
    assert record["atlasDurationSeconds"] == 60
    assert record["durationSeconds"] == 65
    assert record["durationSource"] == "atlas"
    assert [entry["status"] for entry in record["timeline"]][-1] == "COMPLETED"
    assert record["timeline"][0]["status"] == "PENDING"
    assert record["requestedBy"]["caller"] == "arn:aws:iam::123456789012:user/ops"
    assert record["executionArn"] == restore.execution_arn
    noticed = (at(record["noticedAt"]) - at(record["restoreFinishedDate"])).total_seconds()
    assert 0 <= noticed <= 20
    assert stack.state_transitions(restore.execution_arn) <= 15

    assert notification["subject"] == "Restore COMPLETED: orders-prod → orders-verify in 65 s"
    assert "Duration:     RTO 65 s; Atlas restore itself 60 s" in notification["message"]
    assert event["detail-type"] == "Flex Restore Succeeded"

    # The target is free again for the next restore.
    assert stack.record(restore.lock_id or "") is None
    assert [call for call in stack.atlas_calls() if call["violation"]] == []


@pytest.mark.parametrize("stack", ["fail"], indirect=True)
def test_an_atlas_failure_is_recorded_as_failed_and_announced(stack: OfflineStack) -> None:
    restore = start_restore(stack)
    record, notification, event = ended(stack, restore)

    assert record["finalStatus"] == "FAILED"
    assert record["error"] == {
        "code": "ATLAS_RESTORE_FAILED",
        "message": f"Atlas reports restore job {restore.job_id} as FAILED",
    }
    assert record["timeline"][-1]["status"] == "FAILED"
    assert notification["subject"].startswith("Restore FAILED: orders-prod → orders-verify")
    assert (
        f"Error:        ATLAS_RESTORE_FAILED: Atlas reports restore job {restore.job_id}"
        in notification["message"]
    )
    assert event["detail-type"] == "Flex Restore Failed"


@pytest.mark.parametrize("stack", ["never-finishes"], indirect=True)
def test_a_restore_that_never_finishes_times_out_at_the_deadline(stack: OfflineStack) -> None:
    restore = start_restore(stack, deadline_seconds=600)
    record, notification, event = ended(stack, restore)

    assert record["finalStatus"] == "TIMED_OUT"
    assert record["durationSeconds"] is None
    assert record["error"]["code"] == "DEADLINE_EXCEEDED"
    assert f"restore job {restore.job_id} did not finish within 10 min" in record["error"]["message"]
    assert record["status"] in ("PENDING", "QUEUED", "RUNNING")  # what Atlas last showed
    # Noticed at the first look after the deadline, which is at most one back-off step (90 s) late.
    late = (at(record["noticedAt"]) - at(restore.execution_input["deadline"])).total_seconds()
    assert 0 <= late <= 90
    assert notification["subject"] == "Restore TIMED_OUT: orders-prod → orders-verify"
    assert event["detail-type"] == "Flex Restore Timed Out"


@pytest.mark.parametrize("stack", ["job-vanishes"], indirect=True)
def test_a_job_atlas_no_longer_knows_ends_as_an_error_naming_it(stack: OfflineStack) -> None:
    restore = start_restore(stack)
    record, notification, event = ended(stack, restore)

    assert record["finalStatus"] == "ERROR"
    assert record["error"]["code"] == "RESTORE_JOB_NOT_FOUND"
    assert record["error"]["message"].startswith(f"Atlas no longer knows restore job {restore.job_id} (404")
    assert notification["subject"] == "Restore ERROR: orders-prod → orders-verify"
    assert f"Atlas no longer knows restore job {restore.job_id}" in notification["message"]
    assert event["detail-type"] == "Flex Restore Errored"


def test_atlas_down_for_the_whole_window_ends_as_an_error_well_before_the_deadline(
    stack: OfflineStack,
) -> None:
    restore = start_restore(stack)
    stack.simulator.stop()  # Atlas refuses every connection from now on
    record, notification, event = ended(stack, restore)

    assert record["finalStatus"] == "ERROR"
    assert record["error"]["code"] == "AtlasUnavailable"
    assert record["error"]["message"].startswith("Atlas kept failing, gave up polling: Atlas GET")
    assert "beyond the 600 s tolerance" in record["error"]["message"]
    # The outage is ridden out for the tolerance (10 min from the first fault), then the Atlas retrier
    # gives up after a few attempts: the end comes well before the 60-minute deadline.
    unreachable = (at(record["noticedAt"]) - at(record["atlasUnreachableSince"])).total_seconds()
    assert unreachable >= 600
    assert at(record["noticedAt"]) < at(restore.execution_input["deadline"]) - timedelta(minutes=30)
    assert notification["subject"] == "Restore ERROR: orders-prod → orders-verify"
    assert "Atlas kept failing" in notification["message"]
    assert event["detail-type"] == "Flex Restore Errored"
    polls = [error for error in stack.lambda_errors if error["function"] == "poll"]
    assert {error["errorType"] for error in polls} == {"RestoreStillRunning", "AtlasUnavailable"}
    # Within the tolerance every look is a normal one; past it, one look and the Atlas retrier's 4 retries.
    assert [error["errorType"] for error in polls].count("AtlasUnavailable") == 5
    assert polls[-5:] == [error for error in polls if error["errorType"] == "AtlasUnavailable"]


def test_separate_short_atlas_outages_during_a_slow_restore_do_not_add_up(stack: OfflineStack) -> None:
    # Atlas answers 503/500 to everything for 5 minutes, twice, during a 30-minute restore. Each outage is
    # shorter than the tolerance; together, they hold more faults than the Atlas retrier allows.
    stack.simulator.state.flaky_failures = 10**9
    clock = stack.clock
    begin = clock.now()
    outages = [(300.0, 600.0), (1200.0, 1500.0)]
    real_poll = stack._handler("poll")

    def poll_through_outages(event: Any, context: Any) -> Any:
        elapsed = clock.now() - begin
        down = any(start <= elapsed < end for start, end in outages)
        stack.simulator.scenario = "flaky" if down else "ok"  # the job's 30 minutes were fixed at creation
        return real_poll(event, context)

    stack.simulator.scenario = "slow"
    restore = start_restore(stack)
    stack.functions["poll"] = poll_through_outages
    record, notification, event = ended(stack, restore)

    assert record["finalStatus"] == "COMPLETED"
    assert record["atlasDurationSeconds"] == 1800
    assert record["atlasUnreachableSince"] is None  # cleared by the good read after each outage
    faults = [
        error
        for error in stack.lambda_errors
        if error["function"] == "poll" and "Atlas unreachable since" in error["errorMessage"]
    ]
    assert len(faults) >= 6  # more than the Atlas retrier's 1 + 4 attempts
    assert len({error["errorMessage"].split(" (")[0] for error in faults}) == 2  # two outages, two starts
    assert {error["errorType"] for error in stack.lambda_errors} == {"RestoreStillRunning"}
    assert notification["subject"].startswith("Restore COMPLETED: orders-prod → orders-verify in 30 min")
    assert event["detail-type"] == "Flex Restore Succeeded"
    noticed = (at(record["noticedAt"]) - at(record["restoreFinishedDate"])).total_seconds()
    assert 0 <= noticed <= 90


def test_a_poll_lambda_that_crashes_every_time_still_ends_recorded_and_announced(stack: OfflineStack) -> None:
    def broken_poll(event: Any, context: Any) -> Any:
        raise RuntimeError("poll handler bug")

    stack.functions["poll"] = broken_poll
    restore = start_restore(stack, take_lock=True)
    record, notification, event = ended(stack, restore)

    assert record["finalStatus"] == "ERROR"
    assert record["error"] == {"code": "RuntimeError", "message": "poll handler bug"}
    assert notification["subject"] == "Restore ERROR: orders-prod → orders-verify"
    assert "Error:        RuntimeError: poll handler bug" in notification["message"]
    assert event["detail-type"] == "Flex Restore Errored"
    # A crash does not leave the target locked. (stack.record reads restore records only: it is None for a
    # lock item whether or not the lock is there, so ask the locks.)
    assert restore.lock_id is not None
    assert TargetLocks(RESTORES_TABLE).holder(DEMO.group_id, DEMO.scratch_target) is None
    assert (
        stack._client("dynamodb")
        .get_item(TableName=RESTORES_TABLE, Key={"id": {"S": restore.lock_id}})
        .get("Item")
        is None
    )


def test_when_dynamodb_refuses_the_record_the_notification_still_carries_the_outcome(
    stack: OfflineStack,
) -> None:
    def broken_record(event: Any, context: Any) -> Any:
        raise ConnectionError("DynamoDB is unreachable")

    stack.functions["record"] = broken_record
    restore = start_restore(stack)
    execution = stack.wait_for_execution(restore.execution_arn)

    assert execution["status"] == "SUCCEEDED"
    [notification] = stack.notifications()
    [event] = stack.events()
    assert notification["subject"] == "Restore COMPLETED: orders-prod → orders-verify in 65 s"
    assert "the final record could not be saved in DynamoDB" in notification["message"]
    assert notification["record"]["recordSaved"] is False
    assert notification["record"]["recordError"] == {
        "code": "ConnectionError",
        "message": "DynamoDB is unreachable",
    }
    detail = assert_published_event(event)
    assert detail["finalStatus"] == "COMPLETED"
    assert detail["recordSaved"] is False  # GET /restores/{id} does not show this ending; the event does
    assert event["resources"] == [restore.execution_arn]  # named though no saved record holds it
    assert [error["function"] for error in stack.lambda_errors].count("record") == 5  # 1 + 4 retries


def test_when_event_bridge_fails_once_the_retry_sends_only_the_event(
    stack: OfflineStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_event = Notifier.put_event
    attempts: list[str] = []

    def fails_the_first_time(notifier: Notifier, event: OutcomeEvent) -> str:
        attempts.append(event.detail_type)
        if len(attempts) == 1:
            raise ConnectionError("EventBridge endpoint unreachable")
        return put_event(notifier, event)

    monkeypatch.setattr(Notifier, "put_event", fails_the_first_time)
    restore = start_restore(stack)
    record, notification, event = ended(stack, restore)  # exactly one SNS message and one event

    assert len(attempts) == 2
    assert [error["function"] for error in stack.lambda_errors].count("notify") == 1
    assert notification["subject"] == "Restore COMPLETED: orders-prod → orders-verify in 65 s"
    assert event["detail-type"] == "Flex Restore Succeeded"
    deliveries = record["notification"]
    assert deliveries["sns"]["status"] == "SENT"
    assert deliveries["sns"]["messageId"]
    assert deliveries["events"]["status"] == "SENT"
    assert deliveries["events"]["eventId"] == event["id"]
    # The event went out after the SNS message, on the retry.
    assert deliveries["events"]["at"] >= deliveries["sns"]["at"]


def test_a_failed_notification_is_marked_on_the_record_and_fails_the_execution(stack: OfflineStack) -> None:
    stack._client("sns").delete_topic(TopicArn=stack.topic_arn)
    restore = start_restore(stack)
    execution = stack.wait_for_execution(restore.execution_arn)

    assert execution["status"] == "FAILED"
    assert execution["error"] == "NotificationFailed"
    record = stack.record(restore.restore_id)
    assert record is not None
    assert record["finalStatus"] == "COMPLETED"  # the outcome is not lost
    assert record["notification"]["status"] == "FAILED"
    assert record["notification"]["error"]["code"] == "NotFoundException"
    assert "Publish" in record["notification"]["error"]["message"]  # the SNS call that failed
    assert stack.notifications() == []
    # Machines were told, once, though SNS never took the message; the record says which channel failed.
    [event] = stack.events()
    assert event["detail"]["finalStatus"] == "COMPLETED"
    assert record["notification"]["events"]["status"] == "SENT"
    assert record["notification"]["sns"]["status"] == "FAILED"
    assert record["notification"]["sns"]["error"]["code"] == "NotFoundException"
    assert [error["function"] for error in stack.lambda_errors].count("notify") == 5  # 1 + 4 retries


def test_a_failed_notification_is_marked_even_when_the_final_record_was_never_written(
    stack: OfflineStack,
) -> None:
    def broken_record(event: Any, context: Any) -> Any:
        raise ConnectionError("DynamoDB is unreachable")

    stack.functions["record"] = broken_record
    stack._client("sns").delete_topic(TopicArn=stack.topic_arn)
    restore = start_restore(stack)
    execution = stack.wait_for_execution(restore.execution_arn)

    assert execution["status"] == "FAILED"
    assert execution["error"] == "NotificationFailed"
    record = stack.record(restore.restore_id)  # the intake's record, without a final status
    assert record is not None
    assert record["finalStatus"] is None
    assert record["notification"]["status"] == "FAILED"
    assert record["notification"]["error"]["code"] == "NotFoundException"


def test_stacks_share_nothing(stack: OfflineStack) -> None:
    # A fresh stack: no record, message or event from the tests before, a new table and topic.
    assert stack.notifications() == []
    assert stack.events() == []
    items = stack._client("dynamodb").scan(TableName=RESTORES_TABLE)["Items"]
    assert items == []
    assert stack.atlas_calls() == []
    assert DEMO.latest_snapshot_id


def test_rate_limits_beyond_the_clients_patience_are_waited_out_by_the_state_machine(
    stack: OfflineStack,
) -> None:
    restore = start_restore(stack)
    # Every Atlas operation's bucket now starts empty and refills 55 s after its first call: more than the
    # client's own retry budget (15 s), so the poll Lambda raises AtlasRateLimited and the state machine
    # waits.
    stack.simulator.rate_limit = RateLimit(refill_seconds=55)
    stack.simulator.scenario = "rate-limited"
    record, notification, event = ended(stack, restore)

    assert record["finalStatus"] == "COMPLETED"
    polls = [error for error in stack.lambda_errors if error["function"] == "poll"]
    assert any("Retry-After" in error["errorMessage"] for error in polls)  # looks that did not call Atlas
    # Retry-After is honoured: after the first 429, Atlas is not asked again before it said.
    looks = [call for call in stack.simulator.calls if call.method == "GET" and "/restoreJobs/" in call.path]
    assert looks[0].status == 429
    assert all(look.at >= looks[0].at + 55 for look in looks[1:])
    assert looks[-1].status == 200
    assert event["detail-type"] == "Flex Restore Succeeded"
    assert notification["subject"].startswith("Restore COMPLETED")


def test_closing_the_stack_stops_an_execution_that_is_still_running() -> None:
    polled = threading.Event()

    def never_done(event: Any, context: Any) -> Any:
        polled.set()
        raise RestoreStillRunning("still going")

    with OfflineStack(scenario="never-finishes", clock=VirtualClock()) as stack:
        stack.functions["poll"] = never_done
        restore = start_restore(stack, deadline_seconds=86400)
        assert polled.wait(10)
    thread = stack._threads[restore.execution_arn]
    assert not thread.is_alive()
    # Stopped, not run to the end: far fewer than the retrier's 1000 attempts.
    assert len(stack.lambda_errors) < 1000


def test_the_stack_can_use_an_atlas_it_did_not_start() -> None:
    clock = VirtualClock()
    with AtlasSimulator(clock=clock, scenario="ok") as atlas:
        secret = {"clientId": DEMO.client_id, "clientSecret": DEMO.client_secret}
        with OfflineStack(clock=clock, atlas_url=atlas.start(), secret=secret) as stack:
            assert stack.simulator is None
            restore = start_restore(stack)
            record, _, _ = ended(stack, restore)
            assert record["finalStatus"] == "COMPLETED"
            assert stack.atlas_calls() == []  # only the stack's own simulator is observed
        assert any("/backup/restoreJobs/" in call.path for call in atlas.calls)


def test_a_broken_definition_is_refused_every_time_though_good_ones_are_parsed_once(
    stack: OfflineStack,
) -> None:
    from botocore.exceptions import ClientError

    # The harness keeps moto's parse of each definition (it takes ~0.3 s); failures are not kept.
    sfn = stack._client("stepfunctions")
    broken = '{"StartAt": "Nowhere", "States": {"Done": {"Type": "Succeed"}'
    for name in ("broken-1", "broken-2"):
        with pytest.raises(ClientError, match="ASLParserException"):
            sfn.create_state_machine(name=name, definition=broken, roleArn=f"arn:aws:iam::1:role/{name}")
    # The stack's own definition, parsed when the stack made it, still runs a restore to its end.
    record, _, _ = ended(stack, start_restore(stack))
    assert record["finalStatus"] == "COMPLETED"
