"""Exactly once: concurrent duplicate deliveries, retries after a crash at every step of the intake, and a
crash that nothing retries."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from flexrestore.local.harness import OfflineStack
from tests.integration.intake_support import (
    answer,
    creates,
    deliver_concurrently,
    load,
    restore_items,
    settled,
)

DELIVERIES = 50


def test_concurrent_deliveries_of_one_alarm_event_create_one_restore(stack: OfflineStack) -> None:
    from flexrestore.triggers.eventbridge import IntakeFailed

    event = load("alarm-into-alarm.json")
    results = deliver_concurrently(stack, event, DELIVERIES)

    settled(stack)
    assert len(creates(stack)) == 1
    accepted = [r for r in results if isinstance(r, dict)]
    failed = [r for r in results if not isinstance(r, dict)]
    assert accepted, results
    assert {r["restoreId"] for r in accepted} == {accepted[0]["restoreId"]}
    # Duplicates that arrived while the first was in progress fail for a retry, with a plain message.
    assert all(isinstance(f, IntakeFailed) and "already being handled" in str(f) for f in failed)

    # Lambda retries them later: each gets the first answer, and still nothing is created twice.
    for _ in failed:
        assert stack.invoke("intake", event) == accepted[0]
    assert len(creates(stack)) == 1
    assert len(restore_items(stack)) == 1
    assert len(stack.executions()) == 1


def test_concurrent_posts_with_one_idempotency_key_create_one_restore(stack: OfflineStack) -> None:
    results = [answer(r) for r in deliver_concurrently(stack, load("api-post-restore.json"), DELIVERIES)]

    assert len(creates(stack)) == 1
    statuses = Counter(status for status, _, _ in results)
    assert set(statuses) <= {202, 409}
    assert statuses[202] >= 1
    assert {body["restoreId"] for status, body, _ in results if status == 202} == {
        next(body["restoreId"] for status, body, _ in results if status == 202)
    }
    for status, body, headers in results:
        if status == 409:
            assert body["errorCode"] == "REQUEST_IN_PROGRESS" and headers["Retry-After"]
    assert len(restore_items(stack)) == 1


# --- a crash, through the real wiring (each step's crash is a unit test: tests/unit/test_request_flow.py) ---


class Crash(BaseException):
    """A Lambda that dies right there: nothing gets to clean up."""


def test_retry_after_a_crash_past_the_start_continues_with_the_same_restore_and_execution(
    stack: OfflineStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The intake dies after Step Functions took the start and before the record says so: powertools releases
    the crashed attempt's key (its invocation time is up), and Lambda's retry finds the execution by its name,
    so there is one restore, one execution and one Atlas job."""
    from flexrestore.aws.store import RestoreStore

    original = RestoreStore.set_execution
    calls = {"n": 0}

    def crash_once(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise Crash("crashed after the start")
        return original(*args, **kwargs)

    monkeypatch.setattr(RestoreStore, "set_execution", crash_once)
    event = load("alarm-into-alarm.json")

    with pytest.raises(Crash):
        stack.invoke("intake", event)
    from flexrestore.aws.clients import client

    client("dynamodb").delete_item(  # what DynamoDB's TTL does once the crashed attempt's claim has lapsed
        TableName="flexrestore-idempotency",
        Key={"id": client("dynamodb").scan(TableName="flexrestore-idempotency")["Items"][0]["id"]},
    )
    result = stack.invoke("intake", event)  # Lambda's retry of the same event

    assert result["statusCode"] == 202
    assert len(stack.executions()) == 1
    (execution,) = settled(stack)
    assert execution["status"] == "SUCCEEDED"
    assert len(creates(stack)) == 1  # never a second Atlas job
    (record,) = restore_items(stack)
    assert record["restoreId"] == result["restoreId"]
    assert record["executionArn"] == result["executionArn"] == execution["executionArn"]
    assert record["restoreJobId"] == next(iter(stack.simulator.jobs))
    assert record["finalStatus"] == "COMPLETED" and "handoff" not in record


@pytest.mark.parametrize("sample", ["alarm-into-alarm.json", "api-post-restore.json"])
def test_a_crash_after_the_record_with_no_redelivery_still_ends_recorded_and_told(
    stack: OfflineStack, monkeypatch: pytest.MonkeyPatch, sample: str
) -> None:
    """The intake dies right after it recorded the restore, before the start, and nothing delivers the event
    again (an API caller that gives up; an alarm event whose retries are spent): only time passes, and the
    reconciler, running every 5 minutes as scheduled, starts the execution, which ends it."""
    from flexrestore.aws.executions import Executions
    from flexrestore.aws.locks import TargetLocks
    from flexrestore.local.harness import RESTORES_TABLE
    from flexrestore.simulator import DEMO

    def crash(*args: Any, **kwargs: Any) -> str:
        raise Crash("died right after the record")

    monkeypatch.setattr(Executions, "start_execution", crash)
    with pytest.raises(Crash):
        stack.invoke("intake", load(sample))
    monkeypatch.undo()
    (accepted,) = restore_items(stack)
    assert accepted["handoff"] == "PENDING" and stack.executions() == [] and creates(stack) == []

    with stack.conductor.participating():
        stack.conductor.sleep(300)  # the reconciler's next run
        report = stack.invoke("reconcile", {})
    assert report["started"] == [accepted["restoreId"]]

    (execution,) = settled(stack)
    assert execution["status"] == "SUCCEEDED"
    (record,) = restore_items(stack)
    assert record["finalStatus"] == "COMPLETED" and record["restoreJobId"] == next(iter(stack.simulator.jobs))
    assert len(creates(stack)) == 1
    (told,) = stack.notifications()
    assert told["record"]["restoreId"] == record["restoreId"] and told["subject"].startswith(
        "Restore COMPLETED"
    )
    assert TargetLocks(RESTORES_TABLE).holder(DEMO.group_id, record["targetDeploymentItemName"]) is None
