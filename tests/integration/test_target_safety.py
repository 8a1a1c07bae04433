"""Target safety end to end: the real intake handler, moto (DynamoDB, the real state machine) and the Atlas
simulator, on a virtual clock. What a caller sees when a target may not be overwritten or is in use."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from flexrestore.aws.locks import lock_id_for
from flexrestore.clock import VirtualClock
from flexrestore.local.harness import RESTORES_TABLE, OfflineStack
from flexrestore.simulator import DEMO
from tests.integration.intake_support import creates, load
from tests.unit.test_guards import GUARD_ORDER as STATIC_GUARD_ORDER

OPERATOR = "arn:aws:sts::123456789012:assumed-role/flexrestore-operator/alice"
BREAK_GLASS_CALLER = "arn:aws:sts::123456789012:assumed-role/BreakGlass/bob"
GUARD_ORDER = [*STATIC_GUARD_ORDER, "target-lock"]  # the lock is checked last, by the intake
REAL_WAIT_LIMIT = 30.0  # real seconds a blocked poll waits for the test before it gives up


def post(body: dict[str, Any], *, key: str, caller: str = OPERATOR) -> dict[str, Any]:
    """The POST sample with another body, Idempotency-Key and IAM caller."""
    event = load("api-post-restore.json")
    event["body"] = json.dumps(body)
    event["headers"]["Idempotency-Key"] = key
    event["multiValueHeaders"]["Idempotency-Key"] = [key]
    event["requestContext"]["requestId"] = f"req-{key}"
    event["requestContext"]["identity"]["userArn"] = caller
    return event


def restore(target: str = DEMO.scratch_target, **fields: Any) -> dict[str, Any]:
    return {
        "groupId": DEMO.group_id,
        "clusterName": DEMO.source_cluster,
        "targetDeploymentItemName": target,
        "reason": "target safety test",
        **fields,
    }


def answer(response: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return response["statusCode"], json.loads(response["body"])


def items(kind: str) -> list[dict[str, Any]]:
    from flexrestore.aws.clients import client
    from flexrestore.aws.codec import from_item

    scanned = client("dynamodb").scan(TableName=RESTORES_TABLE)["Items"]
    return [from_item(item) for item in scanned if item["kind"]["S"] == kind]


@pytest.fixture
def virtual_clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def env() -> dict[str, str]:
    return {}


@pytest.fixture
def stack(virtual_clock: VirtualClock, env: dict[str, str]) -> Iterator[OfflineStack]:
    with OfflineStack(scenario="ok", clock=virtual_clock, env_overrides=env) as s:
        yield s


@pytest.fixture
def held_polls(stack: OfflineStack) -> Iterator[threading.Event]:
    """Poll loops wait at their first poll until the test sets the event, so a restore stays running
    (and its target locked) for as long as the test needs, whatever the virtual clock does."""
    from flexrestore.handlers.poll import handler as real_poll

    go = threading.Event()

    def held_poll(event: dict[str, Any], context: Any) -> Any:
        if not go.wait(REAL_WAIT_LIMIT):
            raise RuntimeError("the test never released the poll loop")
        return real_poll(event, context)

    stack.functions["poll"] = held_poll
    yield go
    go.set()
    for arn in stack.executions():
        stack.wait_for_execution(arn)


# --- one restore per target -----------------------------------------------------------------------------


@pytest.mark.parametrize("requests", [2, 5])
def test_simultaneous_requests_for_one_target_one_202_the_rest_409_naming_it(
    stack: OfflineStack, held_polls: threading.Event, requests: int
) -> None:
    stack.invoke("intake", post(restore(dryRun=True), key="warm-up"))  # build the shared clients first
    start = threading.Barrier(requests)
    answers: list[tuple[int, dict[str, Any]]] = []
    failures: list[BaseException] = []

    def ask(n: int) -> None:
        event = post(restore(reason=f"request {n}"), key=f"race-{n}")
        start.wait()
        try:
            answers.append(answer(stack.invoke("intake", event)))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(REAL_WAIT_LIMIT)

    assert failures == []
    accepted = [body for status, body in answers if status == 202]
    refused = [(status, body) for status, body in answers if status != 202]
    assert len(accepted) == 1, answers
    winner = accepted[0]["restoreId"]
    assert len(refused) == requests - 1
    for status, body in refused:
        assert (status, body["errorCode"], body["reason"], body["guard"]) == (
            409,
            "TARGET_LOCKED",
            "target-locked",
            "target-lock",
        )
        assert f"restore {winner} is already running into this target" in body["message"]
    assert len(creates(stack)) == 1
    assert [r["restoreId"] for r in items("restore")] == [winner]
    assert sorted(r["reason"] for r in items("refusal")) == ["target-locked"] * (requests - 1)
    (lock,) = items("lock")
    assert (lock["id"], lock["restoreId"]) == (lock_id_for(DEMO.group_id, DEMO.scratch_target), winner)


def test_the_lock_is_released_when_the_restore_ends(stack: OfflineStack, held_polls: threading.Event) -> None:
    status, first = answer(stack.invoke("intake", post(restore(), key="first")))
    assert status == 202
    assert [lock["restoreId"] for lock in items("lock")] == [first["restoreId"]]

    held_polls.set()
    stack.wait_for_execution(first["executionArn"])

    assert items("lock") == []
    assert stack.record(first["restoreId"])["finalStatus"] == "COMPLETED"  # type: ignore[index]
    status, second = answer(stack.invoke("intake", post(restore(), key="second")))
    assert status == 202 and second["restoreId"] != first["restoreId"]


def test_a_lock_whose_loop_crashed_expires_and_the_target_becomes_usable(
    stack: OfflineStack, virtual_clock: VirtualClock
) -> None:
    # The Record step (which releases the lock) crashes on every attempt: the loop ends, the lock stays.
    def crashing_record(event: dict[str, Any], context: Any) -> Any:
        raise RuntimeError("record Lambda crashed")

    stack.functions["record"] = crashing_record
    status, first = answer(stack.invoke("intake", post(restore(), key="crashed")))
    assert status == 202
    stack.wait_for_execution(first["executionArn"])
    assert [lock["restoreId"] for lock in items("lock")] == [first["restoreId"]]

    status, body = answer(stack.invoke("intake", post(restore(reason="retry after crash"), key="next")))
    assert (status, body["reason"]) == (409, "target-locked")
    assert first["restoreId"] in body["message"]
    assert len(creates(stack)) == 1

    # The lease (TARGET_LOCK_LEASE_SECONDS, default 2 h) runs out: the target is usable again.
    lock = items("lock")[0]
    virtual_clock.advance(lock["expiresAt"] - virtual_clock.now() + 1)
    stack.functions["record"] = "flexrestore.handlers.record.handler"
    status, second = answer(stack.invoke("intake", post(restore(reason="after the lease"), key="later")))
    assert status == 202, second
    assert len(creates(stack)) == 2
    assert [lock["restoreId"] for lock in items("lock")] == [second["restoreId"]]
    stack.wait_for_execution(second["executionArn"])
    assert items("lock") == []


# --- refusals: answered, audited, and never an Atlas create ----------------------------------------------


def test_protected_by_tag_is_403_audited_and_makes_no_create(stack: OfflineStack) -> None:
    # orders-prod carries the Atlas tag restore-protected=true in the DEMO seed.
    body = restore(DEMO.source_cluster, confirmRestoreOntoSource=True)
    status, refused = answer(stack.invoke("intake", post(body, key="onto-prod")))

    assert status == 403
    assert (refused["errorCode"], refused["reason"], refused["guard"]) == (
        "PROTECTED_TAG",
        "protected-tag",
        "protected-tag",
    )
    assert "carries the Atlas tag restore-protected=true" in refused["message"]
    assert creates(stack) == []
    assert items("restore") == [] and items("lock") == []
    (audit,) = items("refusal")
    assert (audit["reason"], audit["status"], audit["guard"]) == ("protected-tag", 403, "protected-tag")
    assert audit["requestedBy"]["caller"] == OPERATOR
    assert audit["targetDeploymentItemName"] == DEMO.source_cluster
    assert audit["message"] == refused["message"]


@pytest.mark.parametrize("env", [{"PROTECTED_TARGETS": "orders-ver*"}])
def test_protected_by_name_is_403_and_makes_no_create(stack: OfflineStack) -> None:
    status, refused = answer(stack.invoke("intake", post(restore(), key="verify")))
    assert (status, refused["reason"]) == (403, "protected-target")
    assert "PROTECTED_TARGETS entry 'orders-ver*'" in refused["message"]
    assert creates(stack) == []


def test_break_glass_from_a_caller_not_listed_is_403_and_makes_no_create(stack: OfflineStack) -> None:
    body = restore(DEMO.source_cluster, confirmRestoreOntoSource=True, breakGlass=True, reason="INC-1")
    status, refused = answer(stack.invoke("intake", post(body, key="not-listed")))
    assert (status, refused["reason"]) == (403, "break-glass-denied")
    assert f"caller {OPERATOR} may not break glass" in refused["message"]
    assert creates(stack) == []
    assert [a["reason"] for a in items("refusal")] == ["break-glass-denied"]


BREAK_GLASS_ENV = {"BREAK_GLASS_PRINCIPALS": "arn:aws:iam::123456789012:role/BreakGlass"}


@pytest.mark.parametrize(
    ("env", "body"),
    [
        # orders-prod is protected by its Atlas tag (and is the source: the restore replaces its data)
        (BREAK_GLASS_ENV, restore(DEMO.source_cluster, confirmRestoreOntoSource=True)),
        # orders-dr is protected by name
        ({**BREAK_GLASS_ENV, "PROTECTED_TARGETS": "orders-dr"}, restore(DEMO.recovery_target)),
    ],
    ids=["protected-tag", "protected-name"],
)
def test_break_glass_from_a_listed_principal_is_202_recorded_and_notified(
    stack: OfflineStack, body: dict[str, Any]
) -> None:
    why = "INC-4711: rebuild from last night's snapshot"
    event = post({**body, "breakGlass": True, "reason": why}, key="break-glass", caller=BREAK_GLASS_CALLER)
    status, accepted = answer(stack.invoke("intake", event))

    assert status == 202, accepted
    assert accepted["breakGlass"] is True
    assert len(creates(stack)) == 1
    stack.wait_for_execution(accepted["executionArn"])
    record = stack.record(accepted["restoreId"])
    assert record is not None
    assert record["finalStatus"] == "COMPLETED"
    assert record["breakGlass"] == {"reason": why, "principal": BREAK_GLASS_CALLER}
    (notification,) = stack.notifications()
    assert notification["record"]["breakGlass"] == {"reason": why, "principal": BREAK_GLASS_CALLER}
    assert items("refusal") == []


# --- dry run ----------------------------------------------------------------------------------------------


def test_dry_run_answers_every_guard_in_order_and_creates_nothing(stack: OfflineStack) -> None:
    status, body = answer(stack.invoke("intake", post(restore(dryRun=True), key="dry")))

    assert status == 200
    assert body["allowed"] is True
    assert [v["guard"] for v in body["verdicts"]] == GUARD_ORDER
    assert all(v["allowed"] and v["status"] == 200 and v["message"] for v in body["verdicts"])
    assert creates(stack) == []
    assert items("restore") == [] and items("lock") == [] and items("refusal") == []


def test_dry_run_shows_every_refusal_not_just_the_first(
    stack: OfflineStack, held_polls: threading.Event
) -> None:
    _, running = answer(stack.invoke("intake", post(restore(DEMO.recovery_target), key="running")))
    # orders-dr is now locked by a running restore, and this caller may not break glass.
    body = restore(DEMO.recovery_target, dryRun=True, breakGlass=True, reason="just looking")
    status, answered = answer(stack.invoke("intake", post(body, key="dry-refused")))

    assert status == 200
    assert answered["allowed"] is False
    verdicts = {v["guard"]: v for v in answered["verdicts"]}
    assert list(verdicts) == GUARD_ORDER
    refused = {guard: (v["reason"], v["status"]) for guard, v in verdicts.items() if not v["allowed"]}
    assert refused == {
        "break-glass": ("break-glass-denied", 403),
        "target-lock": ("target-locked", 409),
    }
    assert running["restoreId"] in verdicts["target-lock"]["message"]
    assert answered["message"].startswith("the restore would be refused (403 break-glass-denied)")
    assert len(creates(stack)) == 1  # only the running restore's


# --- recovery plans ---------------------------------------------------------------------------------------

ALARM = "orders-prod-data-loss"


def alarm_event() -> dict[str, Any]:
    event = load("alarm-into-alarm.json")
    assert event["detail"]["alarmName"] == ALARM
    return event


def cold_start() -> None:
    """What the intake module runs when a container starts (a first import runs it by itself)."""
    from flexrestore import bootstrap

    bootstrap.checked_recovery_plans()


def plans(**plan: Any) -> str:
    return json.dumps({ALARM: {"groupId": DEMO.group_id, "clusterName": DEMO.source_cluster, **plan}})


@pytest.mark.parametrize(
    "env",
    [
        {
            "PROTECTED_TARGETS": "orders-dr",
            "RECOVERY_PLANS": plans(targetDeploymentItemName="orders-dr", reason="recover into orders-dr"),
        }
    ],
)
def test_a_recovery_plan_aimed_at_a_protected_target_fails_at_cold_start(stack: OfflineStack) -> None:
    from flexrestore.domain.recovery import RecoveryPlanError

    with pytest.raises(RecoveryPlanError) as refused:
        cold_start()
    message = str(refused.value)
    assert f"recovery plan '{ALARM}': target 'orders-dr'" in message
    assert "PROTECTED_TARGETS entry 'orders-dr'" in message
    with pytest.raises(RecoveryPlanError):
        stack.invoke("intake", alarm_event())
    assert creates(stack) == []


@pytest.mark.parametrize(
    "env",
    [
        {
            "BREAK_GLASS_PRINCIPALS": "arn:aws:iam::123456789012:role/BreakGlass",
            "RECOVERY_PLANS": plans(targetDeploymentItemName="orders-dr", breakGlass=True, reason="recover"),
        }
    ],
)
def test_a_recovery_plan_may_not_carry_break_glass(stack: OfflineStack) -> None:
    from flexrestore.domain.recovery import RecoveryPlanError

    with pytest.raises(RecoveryPlanError, match="breakGlass is not allowed in a recovery plan"):
        cold_start()


@pytest.mark.parametrize(
    "env",
    [
        {
            "RECOVERY_PLANS": plans(
                targetDeploymentItemName=DEMO.source_cluster, confirmRestoreOntoSource=True, reason="rollback"
            )
        }
    ],
)
def test_a_plan_into_a_tag_protected_target_is_refused_when_the_alarm_fires(stack: OfflineStack) -> None:
    # Tags live in Atlas, so only the alarm itself can see them: refused, audited, and nothing created.
    result = stack.invoke("intake", alarm_event())

    assert (result["statusCode"], result["reason"]) == (403, "protected-tag")
    assert creates(stack) == []
    (audit,) = items("refusal")
    assert audit["requestedBy"]["trigger"] == "alarm"
    assert audit["requestedBy"]["alarm"] == ALARM
    assert audit["reason"] == "protected-tag"
