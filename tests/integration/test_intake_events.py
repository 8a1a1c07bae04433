"""The intake handler end to end, offline: every sample in events/ and the HTTP API's answers, through the
real handler, moto (DynamoDB, Step Functions running the real state machine, Secrets Manager) and the Atlas
simulator, on a virtual clock."""

from __future__ import annotations

import base64
import copy
import json
import threading
from typing import Any

import pytest

from flexrestore.local.harness import OfflineStack
from flexrestore.simulator import DEMO, RateLimit
from tests.integration.intake_support import (
    answer,
    api_post,
    creates,
    emf,
    execution_input,
    load,
    request_body,
    restore_items,
    settled,
)

CALLER = "arn:aws:sts::123456789012:assumed-role/flexrestore-operator/alice"
EXECUTION_INPUT_KEYS = {
    "restoreId",
    "groupId",
    "clusterName",
    "snapshotId",
    "restoreJobId",
    "targetDeploymentItemName",
    "targetProjectId",
    "requestedAt",
    "deadline",
    "firstPollSeconds",
    "lockId",
}


def api_get(path: str, query: dict[str, str] | None = None) -> dict[str, Any]:
    event = load("api-get-restore.json")
    event["path"] = path
    event["requestContext"]["path"] = "/prod" + path
    if path == "/restores":
        event["resource"] = event["requestContext"]["resourcePath"] = "/restores"
        event["pathParameters"] = None
    else:
        event["pathParameters"] = {"restoreId": path.rsplit("/", 1)[-1]}
    event["queryStringParameters"] = query
    event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} if query else None
    return event


def atlas_calls(stack: OfflineStack) -> list[tuple[str, str]]:
    return [(c.method, c.operation or c.path) for c in stack.simulator.calls]


# --- the samples -------------------------------------------------------------------------------------


def test_api_post_sample_creates_records_and_hands_off(stack: OfflineStack) -> None:
    status, body, headers = answer(stack.invoke("intake", load("api-post-restore.json")))

    assert status == 202
    restore_id = body["restoreId"]
    assert headers["Location"] == f"/restores/{restore_id}" == body["location"]
    assert body["status"] == "PENDING"
    assert body["snapshotId"] == DEMO.latest_snapshot_id
    assert body["executionArn"].endswith(f":execution:flexrestore-restore-poll:{restore_id}")

    # Atlas: token, newest snapshot, target's state, then (the restore's execution, which the answer waited
    # for) exactly one create with targetProjectId set; the poll loop makes the calls after these.
    assert [c.operation for c in stack.simulator.calls][:4] == [
        "token",
        "listFlexBackupSnapshots",
        "getFlexCluster",
        "createFlexRestoreJob",
    ]
    (create,) = creates(stack)
    assert create.body == {
        "snapshotId": DEMO.latest_snapshot_id,
        "targetDeploymentItemName": DEMO.scratch_target,
        "targetProjectId": DEMO.group_id,
    }
    assert body["restoreJobId"] in stack.simulator.jobs
    assert stack.simulator.violations == []

    # The execution was started with the contract's input (docs/contracts.md), named after the restore.
    started = execution_input(stack, body["executionArn"])
    assert set(started) == EXECUTION_INPUT_KEYS
    assert started == {
        "restoreId": restore_id,
        "groupId": DEMO.group_id,
        "clusterName": DEMO.source_cluster,
        "snapshotId": DEMO.latest_snapshot_id,
        "restoreJobId": None,  # the execution's create step fills it in, and the first wait
        "targetDeploymentItemName": DEMO.scratch_target,
        "targetProjectId": DEMO.group_id,
        "requestedAt": "2026-11-01T02:00:00Z",
        "deadline": "2026-11-01T03:00:00Z",
        "firstPollSeconds": None,
        "lockId": f"lock#{DEMO.group_id}#{DEMO.scratch_target}",
    }

    # The poll loop runs it to the end; the record keeps who asked and why.
    assert stack.wait_for_execution(body["executionArn"])["status"] == "SUCCEEDED"
    record = stack.record(restore_id)
    assert record is not None
    assert record["kind"] == "restore"
    assert record["source"] == f"{DEMO.group_id}/{DEMO.source_cluster}"
    assert record["requestedBy"] == {
        "trigger": "api",
        "caller": CALLER,
        "schedule": None,
        "alarm": None,
        "eventId": load("api-post-restore.json")["requestContext"]["requestId"],
    }
    assert record["reason"] == "verify last night's backup of orders-prod"
    assert record["restoreJobId"] == body["restoreJobId"]
    assert record["executionArn"] == body["executionArn"]
    assert record["breakGlass"] is None
    assert record["finalStatus"] == "COMPLETED"
    assert [t["status"] for t in record["timeline"]][:3] == ["ACCEPTED", "CREATING", "PENDING"]
    assert record["handoff"] is None and record["createAttemptedAt"] == "2026-11-01T02:00:00Z"


def test_api_get_sample_reads_the_posted_restore(stack: OfflineStack) -> None:
    status, body, _ = answer(stack.invoke("intake", load("api-get-restore.json")))
    assert (status, body["errorCode"]) == (404, "RESTORE_NOT_FOUND")

    _, posted, _ = answer(stack.invoke("intake", load("api-post-restore.json")))
    status, record, _ = answer(stack.invoke("intake", load("api-get-restore.json")))
    assert status == 200
    assert record["restoreId"] == posted["restoreId"]
    assert record["restoreJobId"] == posted["restoreJobId"]
    assert record["targetDeploymentItemName"] == DEMO.scratch_target
    assert len(creates(stack)) == 1  # reading never creates


def test_api_post_bad_sample_names_every_field_and_calls_nothing(stack: OfflineStack) -> None:
    status, body, _ = answer(stack.invoke("intake", load("api-post-restore-bad.json")))
    assert status == 400
    assert body["errorCode"] == "INVALID_REQUEST"
    assert {e["field"] for e in body["errors"]} == {"groupId", "clusterName", "dryRun", "force"}
    assert stack.simulator.calls == []
    assert restore_items(stack) == []


def test_alarm_into_alarm_runs_its_recovery_plan(stack: OfflineStack) -> None:
    event = load("alarm-into-alarm.json")
    result = stack.invoke("intake", event)
    assert result["statusCode"] == 202
    assert result["targetDeploymentItemName"] == DEMO.recovery_target
    (execution,) = settled(stack)
    assert execution["status"] == "SUCCEEDED"
    (create,) = creates(stack)
    assert create.body["targetDeploymentItemName"] == DEMO.recovery_target
    record = stack.record(result["restoreId"])
    assert record is not None
    assert record["requestedBy"]["trigger"] == "alarm"
    assert record["requestedBy"]["alarm"] == "orders-prod-data-loss"
    assert record["reason"] == "orders-prod lost data: restore its latest snapshot into orders-dr"
    assert list(stack.simulator.jobs) == [record["restoreJobId"]]
    assert record["finalStatus"] == "COMPLETED"


def test_alarm_into_ok_creates_nothing_and_is_counted(
    stack: OfflineStack, capsys: pytest.CaptureFixture[str]
) -> None:
    result = stack.invoke("intake", load("alarm-into-ok.json"))
    assert result["status"] == "IGNORED" and result["reason"] == "not-into-alarm"
    assert stack.simulator.calls == []
    assert restore_items(stack) == []
    (metric,) = emf(capsys.readouterr().out, "AlarmIgnored")
    assert metric["reason"] == "not-into-alarm"


def test_alarm_without_plan_creates_nothing_and_is_counted(
    stack: OfflineStack, capsys: pytest.CaptureFixture[str]
) -> None:
    event = load("alarm-into-alarm.json")
    event["detail"]["alarmName"] = "disk-almost-full"
    result = stack.invoke("intake", event)
    assert result["reason"] == "no-plan"
    assert stack.simulator.calls == []
    (metric,) = emf(capsys.readouterr().out, "AlarmIgnored")
    assert metric["reason"] == "no-plan"


# --- HTTP behaviours ---------------------------------------------------------------------------------


def test_retried_post_with_the_same_key_returns_the_first_answer(stack: OfflineStack) -> None:
    first = answer(stack.invoke("intake", load("api-post-restore.json")))
    second = answer(stack.invoke("intake", load("api-post-restore.json")))
    assert second[0] == 202 and second[1] == first[1]
    assert second[2]["Location"] == first[2]["Location"]
    assert len(creates(stack)) == 1


def test_same_key_with_a_different_body_is_refused(stack: OfflineStack) -> None:
    stack.invoke("intake", load("api-post-restore.json"))
    key = load("api-post-restore.json")["headers"]["Idempotency-Key"]
    status, body, _ = answer(stack.invoke("intake", api_post(request_body(reason="another reason"), key=key)))
    assert (status, body["errorCode"]) == (422, "IDEMPOTENCY_KEY_REUSED")
    assert len(creates(stack)) == 1


def test_post_without_key_is_deduplicated_on_request_and_caller(stack: OfflineStack) -> None:
    first = answer(stack.invoke("intake", api_post(request_body())))
    second = answer(stack.invoke("intake", api_post(request_body())))
    assert first[0] == second[0] == 202
    assert first[1]["restoreId"] == second[1]["restoreId"]
    assert len(creates(stack)) == 1


def test_dry_run_answers_every_verdict_and_creates_nothing(stack: OfflineStack) -> None:
    status, body, _ = answer(stack.invoke("intake", api_post(request_body(dryRun=True), key="dry-1")))
    assert status == 200
    assert body["dryRun"] is True and body["allowed"] is True
    assert body["wouldRestore"]["snapshotId"] == DEMO.latest_snapshot_id
    guards = {v["guard"]: v for v in body["verdicts"]}
    assert {"break-glass", "allowed-project", "self-restore", "protected-name", "target-exists"} <= set(
        guards
    )
    assert {"target-kind", "protected-tag", "target-state", "target-version", "target-lock"} <= set(guards)
    assert all(v["allowed"] for v in body["verdicts"])
    assert creates(stack) == [] and restore_items(stack) == []


def test_dry_run_shows_a_refusal_without_creating(stack: OfflineStack) -> None:
    status, body, _ = answer(
        stack.invoke("intake", api_post(request_body(dryRun=True, targetDeploymentItemName="orders-busy")))
    )
    assert status == 200 and body["allowed"] is False
    state = next(v for v in body["verdicts"] if v["guard"] == "target-state")
    assert state["allowed"] is False and state["status"] == 409
    assert creates(stack) == []


def test_get_restores_lists_newest_first_filters_and_pages(stack: OfflineStack) -> None:
    made = []
    for target in (DEMO.scratch_target, DEMO.recovery_target):
        _, body, _ = answer(stack.invoke("intake", api_post(request_body(targetDeploymentItemName=target))))
        made.append(body["restoreId"])
        stack.wait_for_execution(body["executionArn"])  # moves the virtual clock past this restore
    other = load("alarm-into-alarm.json")  # the alarm's plan also restores orders-prod
    made.append(stack.invoke("intake", other)["restoreId"])
    stack.invoke("intake", api_post(request_body(targetDeploymentItemName=DEMO.busy_cluster)))  # refused

    status, page, _ = answer(stack.invoke("intake", api_get("/restores")))
    assert status == 200
    listed = [r["restoreId"] for r in page["restores"]]
    assert set(listed) == set(made)
    assert [r["requestedAt"] for r in page["restores"]] == sorted(
        (r["requestedAt"] for r in page["restores"]), reverse=True
    )
    assert page["nextToken"] is None
    # Refusal audit items live in the same table: never listed as restores.
    assert restore_items(stack, "refusal") and all(r["kind"] == "restore" for r in page["restores"])

    seen: list[str] = []
    token: str | None = None
    query = {"cluster": DEMO.source_cluster, "groupId": DEMO.group_id, "limit": "1"}
    for _ in range(5):
        status, page, _ = answer(
            stack.invoke("intake", api_get("/restores", {**query, **({"nextToken": token} if token else {})}))
        )
        assert status == 200
        seen += [r["restoreId"] for r in page["restores"]]
        token = page["nextToken"]
        if not token:
            break
    assert seen == listed

    for query, expected in (
        ({"cluster": "orders-other"}, []),
        ({"cluster": DEMO.source_cluster}, listed),
        ({"groupId": DEMO.group_id}, listed),
        ({"groupId": DEMO.other_group_id}, []),
        ({"groupId": DEMO.other_group_id, "cluster": DEMO.source_cluster}, []),
    ):
        status, page, _ = answer(stack.invoke("intake", api_get("/restores", query)))
        assert (status, [r["restoreId"] for r in page["restores"]]) == (200, expected), query


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "ten"}, "limit"),
        # Unicode digits: str.isdigit() accepts them and int() refuses them, or reads them (٣ is 3).
        ({"limit": "²"}, "limit"),
        ({"limit": "¹⁰"}, "limit"),
        ({"limit": "⑤"}, "limit"),
        ({"limit": "٣"}, "limit"),
        ({"cluster": "bad name"}, "cluster"),
        ({"groupId": "nope"}, "groupId"),
        ({"nextToken": "garbage!"}, "nextToken"),
        ({"nextToken": base64.urlsafe_b64encode(b'{"i":"byKind","k":{"id":"x"}}').decode()}, "nextToken"),
        (
            {
                "nextToken": base64.urlsafe_b64encode(
                    b'{"i":"byKind","k":{"id":"x","kind":"lock","requestedAt":"z"}}'
                ).decode()
            },
            "nextToken",
        ),
        ({"sort": "asc"}, "query"),
    ],
)
def test_get_restores_refuses_bad_queries(stack: OfflineStack, query: dict[str, str], field: str) -> None:
    status, body, _ = answer(stack.invoke("intake", api_get("/restores", query)))
    assert status == 400
    assert field in [e["field"] for e in body["errors"]]


def test_get_restore_with_a_malformed_id_is_400_and_unknown_route_404(stack: OfflineStack) -> None:
    status, body, _ = answer(stack.invoke("intake", api_get("/restores/NOT-A-RESTORE-ID")))
    assert status == 400 and body["errors"][0]["field"] == "restoreId"
    event = api_get("/restores/" + "a" * 32)
    event["httpMethod"] = event["requestContext"]["httpMethod"] = "DELETE"
    status, body, _ = answer(stack.invoke("intake", event))
    assert status == 404 and "Traceback" not in json.dumps(body)


def test_base64_encoded_body_is_accepted(stack: OfflineStack) -> None:
    event = api_post(request_body(), key="b64")
    event["body"] = base64.b64encode(event["body"].encode()).decode()
    event["isBase64Encoded"] = True
    assert answer(stack.invoke("intake", event))[0] == 202


@pytest.mark.parametrize("body", ["%%% not base64", base64.b64encode(b"\xff\xfe not utf-8").decode()])
def test_bad_base64_body_is_400(stack: OfflineStack, body: str) -> None:
    event = api_post(request_body(), key="b64-bad")
    event["body"], event["isBase64Encoded"] = body, True
    status, answered, _ = answer(stack.invoke("intake", event))
    assert status == 400 and answered["errors"][0]["field"] == "body"
    assert stack.simulator.calls == []


# --- refusals and failures -----------------------------------------------------------------------------


def test_guard_refusals_are_answered_recorded_and_counted(
    stack: OfflineStack, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = [
        (request_body(targetDeploymentItemName=DEMO.source_cluster), 400, "self-restore-unconfirmed"),
        (
            request_body(targetDeploymentItemName=DEMO.source_cluster, confirmRestoreOntoSource=True),
            403,
            "protected-tag",
        ),
        (request_body(targetDeploymentItemName=DEMO.busy_cluster), 409, "target-busy"),
        (request_body(targetDeploymentItemName="orders-nowhere"), 404, "target-missing"),
        (request_body(targetDeploymentItemName=DEMO.dedicated_cluster), 400, "dedicated-target"),
        (request_body(targetProjectId=DEMO.other_group_id), 403, "project-not-allowed"),
        (request_body(breakGlass=True), 403, "break-glass-denied"),
    ]
    for body, expected_status, reason in cases:
        status, answered, _ = answer(stack.invoke("intake", api_post(body)))
        assert (status, answered.get("reason")) == (expected_status, reason), answered
        assert answered["message"] and "Traceback" not in answered["message"]
        if status == 400:
            assert answered["errors"][0]["field"]
    assert creates(stack) == []
    assert restore_items(stack) == []
    refusals = restore_items(stack, "refusal")
    assert sorted(r["reason"] for r in refusals) == sorted(reason for _, _, reason in cases)
    assert all(r["requestedBy"]["caller"] == CALLER and r["message"] for r in refusals)
    counted = sorted(m["reason"] for m in emf(capsys.readouterr().out, "RestoreRefused"))
    assert counted == sorted(reason for _, _, reason in cases)


def held_poll_loop(stack: OfflineStack) -> threading.Event:
    """Hold every poll loop at its first poll until the returned event is set (the loop would otherwise
    run ahead on the virtual clock, finish the restore and release the target before the test looks)."""
    from flexrestore.handlers.poll import handler as poll

    go_on = threading.Event()

    def held(event: Any, context: Any) -> Any:
        assert go_on.wait(30), "the test never released the poll loop"
        return poll(event, context)

    stack.functions["poll"] = held
    return go_on


def test_second_restore_into_a_locked_target_gets_409_naming_the_first(stack: OfflineStack) -> None:
    go_on = held_poll_loop(stack)
    _, first, _ = answer(stack.invoke("intake", load("api-post-restore.json")))
    status, body, _ = answer(
        stack.invoke("intake", api_post(request_body(reason="another one"), key="second"))
    )
    assert (status, body["reason"]) == (409, "target-locked")
    assert first["restoreId"] in body["message"]
    assert len(creates(stack)) == 1
    # Once the first restore has ended, the lock is released and the target is usable again.
    go_on.set()
    stack.wait_for_execution(first["executionArn"])
    status, _, _ = answer(stack.invoke("intake", api_post(request_body(reason="another one"), key="second")))
    assert status == 202
    assert len(creates(stack)) == 2


def test_explicit_snapshot_that_failed_is_refused_before_any_create(stack: OfflineStack) -> None:
    status, body, _ = answer(
        stack.invoke("intake", api_post(request_body(snapshotId=DEMO.failed_snapshot_id)))
    )
    assert (status, body["errorCode"]) == (409, "SNAPSHOT_NOT_RESTORABLE")
    assert DEMO.failed_snapshot_id in body["message"] and "FAILED" in body["message"]
    assert creates(stack) == []


def test_explicit_snapshot_that_exists_is_used(stack: OfflineStack) -> None:
    status, body, _ = answer(
        stack.invoke("intake", api_post(request_body(snapshotId=DEMO.previous_snapshot_id)))
    )
    assert status == 202 and body["snapshotId"] == DEMO.previous_snapshot_id
    assert creates(stack)[0].body["snapshotId"] == DEMO.previous_snapshot_id


def test_unknown_snapshot_or_cluster_is_404_with_atlas_error_code(stack: OfflineStack) -> None:
    status, body, _ = answer(stack.invoke("intake", api_post(request_body(snapshotId="f" * 24))))
    assert status == 404 and "f" * 24 in body["message"] and body["errorCode"]
    status, body, _ = answer(stack.invoke("intake", api_post(request_body(clusterName="orders-unknown"))))
    assert (status, body["errorCode"]) == (404, "CLUSTER_NOT_FOUND")
    assert creates(stack) == []


def test_dedicated_source_is_400_with_atlas_error_code(stack: OfflineStack) -> None:
    status, body, _ = answer(
        stack.invoke("intake", api_post(request_body(clusterName=DEMO.dedicated_cluster)))
    )
    assert (status, body["errorCode"]) == (400, "CANNOT_USE_NON_FLEX_CLUSTER_IN_FLEX_API")
    assert body["errors"][0]["field"] == "clusterName"


def test_brief_rate_limit_is_retried_within_bounds(stack: OfflineStack) -> None:
    # Every bucket starts empty and gets 2 tokens 10 s later: each operation's first call is refused with
    # Retry-After 10 s (within the client's 15 s budget); the client waits (virtually) and goes on.
    stack.simulator.scenario = "rate-limited"
    status, body, _ = answer(stack.invoke("intake", load("api-post-restore.json")))
    assert status == 202
    # The create step waits out its own 429 (10 s): longer than the answer waits for the job.
    assert stack.wait_for_execution(body["executionArn"])["status"] == "SUCCEEDED"
    assert len(stack.simulator.jobs) == 1
    calls = [c for c in stack.simulator.calls if c.operation != "token"]
    refused = [c for c in calls if c.status == 429]
    assert refused and {c.operation for c in refused} == {c.operation for c in calls}
    for call in refused:  # each retried no earlier than its Retry-After, and then served
        retry = next(c for c in calls if c.operation == call.operation and c.at > call.at)
        assert retry.at >= call.at + 10 and retry.status == 200


def test_long_rate_limit_is_503_with_atlas_retry_after(stack: OfflineStack) -> None:
    # Buckets that refill only 900 s after their first call: beyond the client's retry budget.
    stack.simulator.rate_limit = RateLimit(refill_seconds=900)
    stack.simulator.scenario = "rate-limited"
    status, body, headers = answer(stack.invoke("intake", load("api-post-restore.json")))
    assert (status, headers["Retry-After"]) == (503, "900")
    assert body["errorCode"] == "RATE_LIMITED_TOKEN_BUCKET"
    assert "retry in 900 s" in body["message"]
    assert creates(stack) == [] and restore_items(stack) == []


def test_persistent_rate_limit_without_header_is_503_with_a_default_retry_after(stack: OfflineStack) -> None:
    stack.simulator.state.limited_calls = 1000
    stack.simulator.scenario = "rate-limited-no-header"
    status, body, headers = answer(stack.invoke("intake", load("api-post-restore.json")))
    assert status == 503 and int(headers["Retry-After"]) > 0
    assert body["errorCode"].startswith("RATE_LIMITED")
    assert creates(stack) == []


def test_not_found_scenario_is_404(stack: OfflineStack) -> None:
    stack.simulator.scenario = "not-found"
    status, body, _ = answer(stack.invoke("intake", load("api-post-restore.json")))
    assert (status, body["errorCode"]) == (404, "CLUSTER_NOT_FOUND")


def test_flaky_atlas_still_ends_in_one_restore(stack: OfflineStack) -> None:
    stack.simulator.scenario = "flaky"
    status, body, _ = answer(stack.invoke("intake", load("api-post-restore.json")))
    assert status == 202
    assert stack.wait_for_execution(body["executionArn"])["status"] == "SUCCEEDED"
    record = stack.record(body["restoreId"])
    assert record is not None and record["finalStatus"] == "COMPLETED"
    assert list(stack.simulator.jobs) == [record["restoreJobId"]]  # retried, adopted, never made twice
    # The 202 carries the job when the create step had it within its 5 s wait (the retries' jitter decides
    # whether it did), and otherwise says it is being created.
    assert body.get("restoreJobId") in (record["restoreJobId"], None)
    assert (body.get("restoreJobId") is None) == ("being created" in body.get("message", ""))


def test_an_alarm_refusal_is_returned_not_retried_and_told(stack: OfflineStack) -> None:
    # A restore into the plan's target is running: the alarm's restore is refused, not queued.
    status, running, _ = answer(
        stack.invoke("intake", api_post(request_body(targetDeploymentItemName=DEMO.recovery_target)))
    )
    assert status == 202
    result = stack.invoke("intake", load("alarm-into-alarm.json"))
    assert result["statusCode"] == 409 and result["reason"] == "target-locked"
    (refusal,) = restore_items(stack, "refusal")
    assert refusal["requestedBy"]["alarm"] == "orders-prod-data-loss"
    # Nobody waits on an alarm's answer: people are told.
    told = [n for n in stack.notifications() if n["subject"].startswith("Restore refused")]
    assert [n["subject"] for n in told] == [
        f"Restore refused (alarm orders-prod-data-loss): orders-prod -> {DEMO.recovery_target}"
    ]
    assert "409 TARGET_LOCKED" in told[0]["message"] and running["restoreId"] in told[0]["message"]


def test_an_alarm_fault_raises_for_a_retry_then_succeeds(stack: OfflineStack) -> None:
    from flexrestore.triggers.eventbridge import IntakeFailed

    stack.simulator.rate_limit = RateLimit(refill_seconds=900)
    stack.simulator.scenario = "rate-limited"
    with pytest.raises(IntakeFailed, match="503 RATE_LIMITED"):
        stack.invoke("intake", load("alarm-into-alarm.json"))
    stack.simulator.scenario = "ok"
    result = stack.invoke("intake", load("alarm-into-alarm.json"))
    assert result["statusCode"] == 202
    settled(stack)
    assert len(creates(stack)) == 1


def test_an_invalid_alarm_event_is_refused_counted_and_told(
    stack: OfflineStack, capsys: pytest.CaptureFixture[str]
) -> None:
    event = copy.deepcopy(load("alarm-into-alarm.json"))
    event["detail"]["alarmName"] = "orders\u202eprod"
    result = stack.invoke("intake", event)
    assert result["statusCode"] == 400
    assert [e["field"] for e in result["errors"]] == ["detail.alarmName"]
    assert stack.simulator.calls == []
    assert emf(capsys.readouterr().out, "RestoreRefused")[0]["reason"] == "invalid-request"
    (told,) = stack.notifications()
    assert told["subject"].startswith("Restore refused (alarm ")
    assert "detail.alarmName" in told["message"]


def test_missing_secret_is_a_clear_500_naming_the_secret_id(stack: OfflineStack) -> None:
    from flexrestore.atlas import factory
    from flexrestore.aws.clients import client

    client("secretsmanager").delete_secret(SecretId="flexrestore/atlas", ForceDeleteWithoutRecovery=True)
    factory.reset()
    status, body, _ = answer(stack.invoke("intake", load("api-post-restore.json")))
    assert (status, body["errorCode"]) == (500, "SERVICE_MISCONFIGURED")
    assert "flexrestore/atlas" in body["message"]
    assert stack.simulator.calls == []


def test_malformed_secret_is_named_never_shown(stack: OfflineStack) -> None:
    from flexrestore.atlas import factory
    from flexrestore.aws.clients import client

    client("secretsmanager").put_secret_value(
        SecretId="flexrestore/atlas",
        SecretString=json.dumps({"clientId": "only-an-id-value", "secret": "hunter2"}),
    )
    factory.reset()
    status, body, _ = answer(stack.invoke("intake", load("api-post-restore.json")))
    assert status == 500 and "flexrestore/atlas" in body["message"]
    assert "hunter2" not in json.dumps(body) and "only-an-id-value" not in json.dumps(body)


# --- the request table through the real handler --------------------------------------------------------

BAD_BODIES: list[tuple[str, str, str]] = [
    ("wrong group pattern", json.dumps(request_body(groupId="65F1A2B3C4D5E6F708192A3B")), "groupId"),
    ("trailing newline after a valid id", json.dumps(request_body(groupId=DEMO.group_id + "\n")), "groupId"),
    (
        "trailing newline after snapshot",
        json.dumps(request_body(snapshotId=DEMO.latest_snapshot_id + "\n")),
        "snapshotId",
    ),
    ("extra field", json.dumps(request_body(priority="high")), "priority"),
    ("bool as string", json.dumps(request_body(dryRun="true")), "dryRun"),
    ("id as number", json.dumps(request_body(groupId=1)), "groupId"),
    (
        "bidi in target",
        json.dumps(request_body(targetDeploymentItemName="orders\u202everify")),
        "targetDeploymentItemName",
    ),
    ("control char in cluster", json.dumps(request_body(clusterName="orders\x07prod")), "clusterName"),
    ("non-JSON body", "groupId=65f1a2b3c4d5e6f708192a3b", "body"),
    ("JSON array", "[]", "body"),
    ("empty body", "", "body"),
    ("oversized body", json.dumps(request_body(reason="x" * 17000)), "body"),
    ("duplicate key", '{"groupId": "a", "groupId": "b"}', "groupId"),
    ("lone surrogate", json.dumps(request_body(reason="\ud800")), "reason"),
    ("line separator in reason", json.dumps(request_body(reason="a\u2028b")), "reason"),
    (
        "arabic letter mark in target",
        json.dumps(request_body(targetDeploymentItemName="x\u061cy")),
        "targetDeploymentItemName",
    ),
]


@pytest.mark.parametrize(("what", "raw", "field"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_requests_are_400_with_zero_atlas_calls(
    stack: OfflineStack, what: str, raw: str, field: str
) -> None:
    status, body, _ = answer(stack.invoke("intake", api_post(None, raw=raw, key=f"bad-{what}")))
    assert status == 400
    assert field in [e["field"] for e in body["errors"]]
    assert len(json.dumps(body)) < 3000  # never the input echoed back
    assert stack.simulator.calls == []


def test_wrong_content_type_is_400(stack: OfflineStack) -> None:
    event = api_post(request_body(), **{"Content-Type": "text/plain"})
    status, body, _ = answer(stack.invoke("intake", event))
    assert status == 400 and body["errors"][0]["field"] == "Content-Type"
    assert stack.simulator.calls == []


def test_bad_idempotency_key_is_400(stack: OfflineStack) -> None:
    status, body, _ = answer(stack.invoke("intake", api_post(request_body(), key="k" * 200)))
    assert status == 400 and body["errors"][0]["field"] == "Idempotency-Key"


def test_unicode_target_name_passes_validation_and_meets_the_guards(stack: OfflineStack) -> None:
    """Atlas's target pattern allows Unicode letters, so validation accepts the name; but a flex cluster's
    name is ASCII (^[a-zA-Z0-9][a-zA-Z0-9-]*$), so no flex target can have it: the target-exists guard
    answers, without sending Atlas a path its spec forbids."""
    body = request_body(targetDeploymentItemName="Prüfung-δοκιμή")
    status, answered, _ = answer(stack.invoke("intake", api_post({**body, "dryRun": True})))
    assert status == 200 and answered["wouldRestore"]["targetDeploymentItemName"] == "Prüfung-δοκιμή"
    exists = next(v for v in answered["verdicts"] if v["guard"] == "target-exists")
    assert exists["allowed"] is False
    status, answered, _ = answer(stack.invoke("intake", api_post(body)))
    assert (status, answered["reason"]) == (404, "target-missing")
    assert "Prüfung-δοκιμή" in answered["message"]
    assert creates(stack) == []
    assert stack.simulator.violations == []
