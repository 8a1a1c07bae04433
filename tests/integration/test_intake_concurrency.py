"""Exactly once: concurrent duplicate deliveries, and retries after a crash at every step of the intake."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from flexrestore.local.harness import OfflineStack
from tests.integration.intake_support import (
    answer,
    creates,
    deliver_concurrently,
    execution_input,
    load,
    restore_items,
)

DELIVERIES = 50


def test_concurrent_deliveries_of_one_scheduled_event_create_one_restore(stack: OfflineStack) -> None:
    from flexrestore.handlers.intake import IntakeFailed

    event = load("schedule-nightly-verify.json")
    results = deliver_concurrently(stack, event, DELIVERIES)

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


# --- a crash at each step: the retry continues the same restore ---------------------------------------


class Crash(RuntimeError):
    pass


def crash_once(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> Callable[[], int]:
    """Make ``owner.name`` raise the first time it is called (as if the Lambda died right there)."""
    original = getattr(owner, name)
    calls = {"n": 0}

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise Crash(f"crashed in {name}")
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, flaky)
    return lambda: calls["n"]


@pytest.mark.parametrize(
    ("module", "owner", "method"),
    [
        ("flexrestore.aws.records", "RestoreRecords", "create"),
        ("flexrestore.aws.records", "RestoreRecords", "mark_job_created"),  # after Atlas made the job
        ("flexrestore.aws.executions", "Executions", "start"),  # between the create and the start
        ("flexrestore.aws.records", "RestoreRecords", "set_execution"),  # after the start
    ],
)
def test_retry_after_a_crash_continues_with_the_same_restore_and_job(
    stack: OfflineStack, monkeypatch: pytest.MonkeyPatch, module: str, owner: str, method: str
) -> None:
    import importlib

    target = getattr(importlib.import_module(module), owner)
    crash_once(monkeypatch, target, method)
    event = load("schedule-nightly-verify.json")

    with pytest.raises(Crash):
        stack.invoke("intake", event)
    result = stack.invoke("intake", event)  # Lambda's retry of the same event

    assert result["statusCode"] == 202
    assert len(creates(stack)) == 1  # never a second Atlas job
    assert len(stack.simulator.jobs) == 1
    (record,) = restore_items(stack)
    assert record["restoreId"] == result["restoreId"]
    assert record["restoreJobId"] == result["restoreJobId"] == next(iter(stack.simulator.jobs))
    assert record["executionArn"] == result["executionArn"]
    assert len(stack.executions()) == 1
    assert execution_input(stack, result["executionArn"])["restoreJobId"] == result["restoreJobId"]
    assert stack.wait_for_execution(result["executionArn"])["status"] == "SUCCEEDED"


def test_failed_create_is_recorded_and_a_retry_makes_a_fresh_attempt(
    stack: OfflineStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flexrestore.atlas.client import AtlasClient
    from flexrestore.atlas.errors import AtlasRateLimited
    from flexrestore.handlers.intake import IntakeFailed

    real_create = AtlasClient.create_restore_job

    def rate_limited(*args: Any, **kwargs: Any) -> Any:
        raise AtlasRateLimited(
            "Atlas POST restoreJobs failed: HTTP 429",
            status=429,
            error_code="RATE_LIMITED",
            retry_after=600.0,
        )

    monkeypatch.setattr(AtlasClient, "create_restore_job", rate_limited)
    event = load("schedule-nightly-verify.json")
    with pytest.raises(IntakeFailed, match="503 RATE_LIMITED"):
        stack.invoke("intake", event)
    (failed,) = restore_items(stack)
    assert failed["finalStatus"] == "ERROR"
    assert failed["error"]["code"] == "RATE_LIMITED"
    assert failed["timeline"][-1]["status"] == "CREATE_FAILED"
    assert stack.executions() == []
    # No poll loop will run for it, so the intake tells people and machines itself.
    (notification,) = stack.notifications()
    assert notification["subject"] == "Restore ERROR: orders-prod → orders-verify"
    assert notification["record"]["error"]["code"] == "RATE_LIMITED"
    (outcome_event,) = stack.events()
    assert outcome_event["detail-type"] == "Flex Restore Failed"
    assert outcome_event["detail"]["restoreId"] == failed["restoreId"]
    told = stack.record(failed["restoreId"])["notification"]  # type: ignore[index]
    assert told["sns"]["status"] == told["events"]["status"] == "SENT"

    monkeypatch.setattr(AtlasClient, "create_restore_job", real_create)
    result = stack.invoke("intake", event)  # Lambda's retry: the lock was released, a fresh attempt
    assert result["statusCode"] == 202
    assert result["restoreId"] != failed["restoreId"]  # the ended attempt is kept as it was
    assert len(creates(stack)) == 1
    assert stack.record(failed["restoreId"])["finalStatus"] == "ERROR"  # type: ignore[index]


def test_a_failed_record_write_leaves_the_target_unlocked(
    stack: OfflineStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flexrestore.aws.locks import TargetLocks
    from flexrestore.aws.records import RestoreRecords
    from flexrestore.simulator import DEMO

    crash_once(monkeypatch, RestoreRecords, "create")
    status, body, _ = answer(stack.invoke("intake", load("api-post-restore.json")))
    assert (status, body["errorCode"]) == (500, "INTERNAL_ERROR")
    assert TargetLocks("flexrestore-restores").holder(DEMO.group_id, DEMO.scratch_target) is None
    assert creates(stack) == []
