"""One schedule verifying several clusters: ``detail.request`` a list of restore requests, through the real
intake handler, moto (DynamoDB, Step Functions running the real state machine, SNS) and the Atlas simulator,
on a virtual clock. Each element is its own restore (own key, lock and guards); a bad or refused element
does not stop the others; a fault on one fails the event for a retry that creates nothing twice."""

from __future__ import annotations

import copy
import threading
from typing import Any

import pytest

from flexrestore.local.harness import FakeLambdaContext, OfflineStack
from flexrestore.simulator import DEMO, RateLimit
from tests.integration.intake_support import (
    creates,
    deliver_concurrently,
    emf,
    execution_input,
    load,
    restore_items,
    settled,
)

SAMPLE = "schedule-nightly-verify-list.json"
SCHEDULE = "nightly-verify-all"


def sample() -> dict[str, Any]:
    return copy.deepcopy(load(SAMPLE))


def created_targets(stack: OfflineStack) -> list[str]:
    """The targets Atlas was asked to restore into, once every execution started so far has ended (the
    Atlas create is an execution's first step)."""
    settled(stack)
    return [str(c.body["targetDeploymentItemName"]) for c in creates(stack)]


def test_the_list_sample_makes_one_restore_per_element(stack: OfflineStack) -> None:
    event = sample()
    result = stack.invoke("intake", event)

    assert (result["schedule"], result["eventId"]) == (SCHEDULE, event["id"])
    restores = result["restores"]
    assert [(r["index"], r["statusCode"]) for r in restores] == [(0, 202), (1, 202)]
    assert [r["source"] for r in restores] == [
        f"{DEMO.group_id}/{DEMO.source_cluster}",
        f"{DEMO.group_id}/{DEMO.billing_source_cluster}",
    ]
    assert [r["snapshotId"] for r in restores] == [DEMO.latest_snapshot_id, DEMO.billing_latest_snapshot_id]
    assert restores[0]["restoreId"] != restores[1]["restoreId"]

    # Two Atlas creates, two executions, two records, each saying which schedule asked.
    assert created_targets(stack) == [DEMO.scratch_target, DEMO.billing_scratch_target]
    for restore in restores:
        started = execution_input(stack, restore["executionArn"])
        assert started["restoreJobId"] == restore["restoreJobId"]
        assert stack.wait_for_execution(restore["executionArn"])["status"] == "SUCCEEDED"
        record = stack.record(restore["restoreId"])
        assert record is not None
        assert record["requestedBy"] == {
            "trigger": "schedule",
            "caller": None,
            "schedule": SCHEDULE,
            "alarm": None,
            "eventId": event["id"],
        }
        assert record["targetDeploymentItemName"] == restore["targetDeploymentItemName"]
        assert record["finalStatus"] == "COMPLETED"
    assert sorted(set(stack.executions())) == sorted(r["executionArn"] for r in restores)

    # EventBridge delivers at least once: the same event again creates nothing new and answers the same.
    again = stack.invoke("intake", event)
    assert again == result
    assert len(creates(stack)) == 2
    assert len(stack.executions()) == 2


def test_concurrent_deliveries_of_a_list_create_each_restore_once(stack: OfflineStack) -> None:
    from flexrestore.triggers.eventbridge import IntakeFailed

    event = sample()
    results = deliver_concurrently(stack, event, 20)

    assert sorted(created_targets(stack)) == [DEMO.billing_scratch_target, DEMO.scratch_target]
    failed = [r for r in results if not isinstance(r, dict)]
    # A delivery that met an element in progress elsewhere fails for a retry, naming that element.
    assert all(isinstance(f, IntakeFailed) and "already being handled" in str(f) for f in failed), failed
    # Lambda's retries: every one gets the same answer, and nothing is created twice.
    answers = [r for r in results if isinstance(r, dict)]
    answers += [stack.invoke("intake", event) for _ in failed]
    assert all(a == answers[0] for a in answers)
    assert [r["statusCode"] for r in answers[0]["restores"]] == [202, 202]
    assert len(creates(stack)) == 2 and len(restore_items(stack)) == 2 and len(stack.executions()) == 2


def test_a_list_of_one_is_not_the_same_restore_as_the_single_object(stack: OfflineStack) -> None:
    # The element's key carries its index: the single-object event with the same id is another restore.
    single = load("schedule-nightly-verify.json")
    as_list = copy.deepcopy(single)
    as_list["detail"]["request"] = [single["detail"]["request"]]
    first = stack.invoke("intake", as_list)["restores"][0]
    assert first["statusCode"] == 202
    assert stack.wait_for_execution(first["executionArn"])["status"] == "SUCCEEDED"
    assert stack.invoke("intake", single)["restoreId"] != first["restoreId"]


def test_an_invalid_element_is_refused_and_told_and_the_others_run(
    stack: OfflineStack, capsys: pytest.CaptureFixture[str]
) -> None:
    event = sample()
    event["detail"]["request"][0]["clusterName"] = "orders prod"
    result = stack.invoke("intake", event)

    bad, good = result["restores"]
    assert (bad["index"], bad["statusCode"], bad["errorCode"]) == (0, 400, "INVALID_REQUEST")
    assert [e["field"] for e in bad["errors"]] == ["detail.request[0].clusterName"]
    assert (good["index"], good["statusCode"]) == (1, 202)
    assert created_targets(stack) == [DEMO.billing_scratch_target]
    assert [r["targetDeploymentItemName"] for r in restore_items(stack)] == [DEMO.billing_scratch_target]

    refused = emf(capsys.readouterr().out, "RestoreRefused")
    assert [m["reason"] for m in refused] == ["invalid-request"]
    # The good element runs to its end meanwhile and tells its own outcome.
    (told,) = [n for n in stack.notifications() if n["subject"].startswith("Restore refused")]
    assert told["subject"] == f"Restore refused (schedule {SCHEDULE}): invalid request"
    assert "detail.request[0].clusterName" in told["message"]


def test_a_guard_refused_element_is_audited_and_the_others_run(stack: OfflineStack) -> None:
    event = sample()
    event["detail"]["request"][1]["targetDeploymentItemName"] = DEMO.busy_cluster
    result = stack.invoke("intake", event)

    good, busy = result["restores"]
    assert (good["statusCode"], busy["statusCode"], busy["reason"]) == (202, 409, "target-busy")
    assert created_targets(stack) == [DEMO.scratch_target]
    (refusal,) = restore_items(stack, "refusal")
    assert refusal["requestedBy"]["schedule"] == SCHEDULE
    assert (refusal["clusterName"], refusal["targetDeploymentItemName"]) == (
        DEMO.billing_source_cluster,
        DEMO.busy_cluster,
    )
    (told,) = [n for n in stack.notifications() if n["subject"].startswith("Restore refused")]
    assert told["subject"] == f"Restore refused (schedule {SCHEDULE}): billing-prod -> orders-busy"


def test_two_elements_naming_one_target_the_second_is_refused_busy(stack: OfflineStack) -> None:
    event = sample()
    event["detail"]["request"][1] = copy.deepcopy(event["detail"]["request"][0])
    result = stack.invoke("intake", event)

    first, second = result["restores"]
    assert first["statusCode"] == 202
    assert (second["statusCode"], second["errorCode"], second["reason"]) == (
        409,
        "TARGET_LOCKED",
        "target-locked",
    )
    assert created_targets(stack) == [DEMO.scratch_target]
    (refusal,) = restore_items(stack, "refusal")
    assert refusal["reason"] == "target-locked"


def test_a_fault_on_one_element_keeps_the_others_and_the_retry_finishes(
    stack: OfflineStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Atlas is down while element 0 runs and back for element 1: element 1 is created all the same, the
    event raises for Lambda's retry, and the retry creates element 0 and only replays element 1."""
    from flexrestore import bootstrap
    from flexrestore.triggers.eventbridge import IntakeFailed

    event = sample()
    event["detail"]["request"].reverse()  # billing first: the element Atlas fails on comes before a good one
    real_build = bootstrap.intake
    atlas_down_for = {DEMO.billing_source_cluster}

    def build(context: Any, **options: Any) -> Any:
        built = real_build(context, **options)
        submit = built.submit

        def submit_while_atlas_flaps(request: Any, requested_by: Any, key: str) -> Any:
            stack.simulator.scenario = "rate-limited" if request.cluster_name in atlas_down_for else "ok"
            return submit(request, requested_by, key)

        built.submit = submit_while_atlas_flaps  # type: ignore[method-assign]
        return built

    monkeypatch.setattr(bootstrap, "intake", build)
    stack.simulator.rate_limit = RateLimit(refill_seconds=900)  # beyond the client's budget: a 503 at once

    with pytest.raises(IntakeFailed) as failed:
        stack.invoke("intake", event)
    assert "1 of 2 restores of this event failed" in str(failed.value)
    assert "request[0]: 503 RATE_LIMITED" in str(failed.value)
    assert created_targets(stack) == [DEMO.scratch_target]  # element 1 was not lost

    atlas_down_for.clear()  # Atlas is back when Lambda retries the event
    result = stack.invoke("intake", event)
    assert [(r["index"], r["statusCode"]) for r in result["restores"]] == [(0, 202), (1, 202)]
    assert created_targets(stack) == [DEMO.scratch_target, DEMO.billing_scratch_target]
    assert len(restore_items(stack)) == 2
    for restore in result["restores"]:
        assert stack.wait_for_execution(restore["executionArn"])["status"] == "SUCCEEDED"


def test_too_little_time_left_leaves_the_rest_to_the_retry(stack: OfflineStack) -> None:
    from flexrestore.handlers import intake as intake_handler
    from flexrestore.triggers.eventbridge import MIN_MS_PER_SCHEDULED_RESTORE, IntakeFailed

    class Hurried(FakeLambdaContext):
        def get_remaining_time_in_millis(self) -> int:
            return MIN_MS_PER_SCHEDULED_RESTORE - 1

    event = sample()
    hurried = Hurried.for_function("intake")
    with pytest.raises(IntakeFailed, match=r"request\[1\]: deferred"):
        intake_handler.handler(event, hurried)
    assert created_targets(stack) == [DEMO.scratch_target]  # the first always runs

    result = stack.invoke("intake", event)  # the retry, with time to spare
    assert [r["statusCode"] for r in result["restores"]] == [202, 202]
    assert created_targets(stack) == [DEMO.scratch_target, DEMO.billing_scratch_target]


def test_each_restore_of_a_list_measures_its_own_rto(
    stack: OfflineStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A poll loop started for the first element must not move the shared virtual clock while the intake
    still works on the second (that would add the loop's wait to the second restore's measured RTO)."""
    from flexrestore.atlas.client import AtlasClient

    original = AtlasClient.create_restore_job
    calls = {"n": 0}

    def slow_second_create(self: AtlasClient, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            # Real time, not virtual: room for the first restore's loop to run ahead if it could.
            threading.Event().wait(0.5)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(AtlasClient, "create_restore_job", slow_second_create)
    restores = stack.invoke("intake", sample())["restores"]

    durations = []
    for restore in restores:
        assert stack.wait_for_execution(restore["executionArn"])["status"] == "SUCCEEDED"
        record = stack.record(restore["restoreId"])
        assert record is not None and record["finalStatus"] == "COMPLETED"
        durations.append(record["durationSeconds"])
    # The simulator's restore: scheduled 5 s after the create, done 60 s after that.
    assert durations == [65, 65]
