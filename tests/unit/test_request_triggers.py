"""Schedules, alarms and recovery plans turned into restore requests at the edge (flexrestore.triggers);
the intake's pure helpers."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from flexrestore.domain.intake import first_poll_within_deadline, idempotency_key, restore_id_for
from flexrestore.domain.recovery import AlarmIgnored, RecoveryPlanError, load_recovery_plans
from flexrestore.domain.request import InvalidRequest, TriggeredRestore, parse_request
from flexrestore.triggers import kind_of
from flexrestore.triggers.eventbridge import (
    MAX_SCHEDULED_RESTORES,
    ScheduledRestores,
    parse_alarm,
    parse_schedule,
)
from flexrestore.triggers.http import RESTORE_ID_PATTERN

EVENTS = Path(__file__).resolve().parents[2] / "events"
GROUP = "65f1a2b3c4d5e6f708192a3b"
PLAN = {"groupId": GROUP, "clusterName": "orders-prod", "targetDeploymentItemName": "orders-dr"}


def event(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return loaded


def test_event_kinds_of_the_samples() -> None:
    assert kind_of(event("api-post-restore.json")) == "api"
    assert kind_of(event("api-get-restore.json")) == "api"
    assert kind_of(event("schedule-nightly-verify.json")) == "schedule"
    assert kind_of(event("alarm-into-alarm.json")) == "alarm"
    assert kind_of({"detail-type": "Something Else"}) == "unknown"
    assert kind_of([]) == "unknown"


def test_scheduled_event_carries_request_and_schedule_name() -> None:
    triggered = parse_schedule(event("schedule-nightly-verify.json"))
    assert triggered.request.cluster_name == "orders-prod"
    assert triggered.request.target_deployment_item_name == "orders-verify"
    assert triggered.request.explicit_snapshot_id is None
    assert triggered.requested_by.to_record() == {
        "trigger": "schedule",
        "caller": None,
        "schedule": "nightly-verify",
        "alarm": None,
        "eventId": "7bf73129-1428-4cd3-a780-95db273d1602",
    }


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda e: e.pop("detail"), "detail"),
        (lambda e: e["detail"].pop("schedule"), "detail.schedule"),
        (lambda e: e["detail"].update(schedule="bad name!"), "detail.schedule"),
        (lambda e: e["detail"].update(extra=1), "detail"),
        (lambda e: e["detail"].pop("request"), "detail.request"),
        (lambda e: e["detail"]["request"].update(groupId="nope"), "detail.request.groupId"),
        (lambda e: e["detail"]["request"].update(dryRun="false"), "detail.request.dryRun"),
        (lambda e: e.pop("id"), "id"),
        (lambda e: e.update(id="x" * 200), "id"),
    ],
)
def test_bad_scheduled_events_name_the_field(change: Any, field: str) -> None:
    sample = copy.deepcopy(event("schedule-nightly-verify.json"))
    change(sample)
    with pytest.raises(InvalidRequest) as caught:
        parse_schedule(sample)
    assert field in [e["field"] for e in caught.value.errors]


# --- a schedule asking for several restores -------------------------------------------------------------


def listed(*requests: Any) -> dict[str, Any]:
    sample = copy.deepcopy(event("schedule-nightly-verify-list.json"))
    sample["detail"]["request"] = list(requests)
    return sample


def test_a_single_request_object_is_still_one_restore() -> None:
    parsed = parse_schedule(event("schedule-nightly-verify.json"))
    assert isinstance(parsed, TriggeredRestore)
    assert parsed.request.cluster_name == "orders-prod"


def test_a_list_sample_asks_for_each_restore_in_order() -> None:
    sample = event("schedule-nightly-verify-list.json")
    parsed = parse_schedule(sample)

    assert isinstance(parsed, ScheduledRestores)
    assert (parsed.schedule, parsed.event_id) == ("nightly-verify-all", sample["id"])
    routes = [
        (e.request.cluster_name, e.request.target_deployment_item_name)
        for e in parsed.elements
        if isinstance(e, TriggeredRestore)
    ]
    assert routes == [("orders-prod", "orders-verify"), ("billing-prod", "billing-verify")]
    assert {e.requested_by.to_record()["schedule"] for _, e in parsed.valid} == {"nightly-verify-all"}
    assert {e.requested_by.event_id for _, e in parsed.valid} == {sample["id"]}


def test_a_list_of_one_is_a_list() -> None:
    parsed = parse_schedule(listed(PLAN))
    assert isinstance(parsed, ScheduledRestores) and len(parsed.valid) == 1


def test_a_list_of_the_most_restores_is_accepted() -> None:
    parsed = parse_schedule(listed(*[PLAN] * MAX_SCHEDULED_RESTORES))
    assert isinstance(parsed, ScheduledRestores) and len(parsed.valid) == MAX_SCHEDULED_RESTORES == 10


@pytest.mark.parametrize("size", [0, MAX_SCHEDULED_RESTORES + 1])
def test_an_empty_or_too_long_list_refuses_the_whole_event(size: int) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_schedule(listed(*[PLAN] * size))
    (problem,) = caught.value.errors
    assert problem["field"] == "detail.request"
    assert "a list of 1 to 10" in problem["message"] and f"got a list of {size}" in problem["message"]


def test_a_bad_element_is_named_by_its_index_and_the_others_stand() -> None:
    parsed = parse_schedule(
        listed(PLAN, {**PLAN, "clusterName": "orders prod", "priority": "high"}, "orders-prod", PLAN)
    )

    assert isinstance(parsed, ScheduledRestores)
    assert [index for index, _ in parsed.valid] == [0, 3]
    bad, not_an_object = parsed.elements[1], parsed.elements[2]
    assert isinstance(bad, InvalidRequest) and isinstance(not_an_object, InvalidRequest)
    assert {e["field"] for e in bad.errors} == {"detail.request[1].clusterName", "detail.request[1].priority"}
    assert bad.message.startswith("detail.request[1]: ")
    assert not_an_object.errors == [{"field": "detail.request[2]", "message": "must be a JSON object"}]


def test_a_bad_schedule_name_refuses_a_list_too() -> None:
    sample = listed(PLAN)
    sample["detail"]["schedule"] = "no spaces allowed"
    with pytest.raises(InvalidRequest) as caught:
        parse_schedule(sample)
    assert [e["field"] for e in caught.value.errors] == ["detail.schedule"]


def test_alarm_into_alarm_starts_its_plan() -> None:
    plans = load_recovery_plans(json.dumps({"orders-prod-data-loss": PLAN}))
    triggered = parse_alarm(event("alarm-into-alarm.json"), plans)
    assert isinstance(triggered, TriggeredRestore)
    assert triggered.request.target_deployment_item_name == "orders-dr"
    assert triggered.request.reason == "recovery plan of CloudWatch alarm 'orders-prod-data-loss'"
    assert triggered.requested_by.alarm == "orders-prod-data-loss"
    assert triggered.requested_by.event_id == "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92"


def test_plan_reason_is_kept() -> None:
    plans = load_recovery_plans(json.dumps({"orders-prod-data-loss": {**PLAN, "reason": "runbook 7"}}))
    triggered = parse_alarm(event("alarm-into-alarm.json"), plans)
    assert isinstance(triggered, TriggeredRestore)
    assert triggered.request.reason == "runbook 7"


def test_alarm_into_ok_creates_nothing() -> None:
    plans = load_recovery_plans(json.dumps({"orders-prod-data-loss": PLAN}))
    ignored = parse_alarm(event("alarm-into-ok.json"), plans)
    assert isinstance(ignored, AlarmIgnored)
    assert ignored.reason == "not-into-alarm"
    assert "from ALARM to OK" in ignored.message


@pytest.mark.parametrize(
    ("previous", "state"), [("ALARM", "ALARM"), ("OK", "INSUFFICIENT_DATA"), ("ALARM", "OK")]
)
def test_only_a_change_into_alarm_acts(previous: str, state: str) -> None:
    sample = copy.deepcopy(event("alarm-into-alarm.json"))
    sample["detail"]["previousState"]["value"] = previous
    sample["detail"]["state"]["value"] = state
    plans = load_recovery_plans(json.dumps({"orders-prod-data-loss": PLAN}))
    decision = parse_alarm(sample, plans)
    assert isinstance(decision, AlarmIgnored) and decision.reason == "not-into-alarm"


def test_alarm_without_plan_creates_nothing() -> None:
    ignored = parse_alarm(event("alarm-into-alarm.json"), {})
    assert isinstance(ignored, AlarmIgnored)
    assert ignored.reason == "no-plan" and "orders-prod-data-loss" in ignored.message


def test_alarm_name_with_bidi_override_is_refused() -> None:
    sample = copy.deepcopy(event("alarm-into-alarm.json"))
    sample["detail"]["alarmName"] = "orders\u202e"
    with pytest.raises(InvalidRequest) as caught:
        parse_alarm(sample, {})
    assert caught.value.errors[0]["field"] == "detail.alarmName"


def test_recovery_plans_empty_and_default() -> None:
    assert load_recovery_plans("") == {}
    assert load_recovery_plans("{}") == {}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "must be a JSON object"),
        ('{"disk-full": "orders-dr"}', "alarm 'disk-full' must be a JSON object"),
        (json.dumps({"disk-full": {**PLAN, "targetDeploymentItemName": "bad/name"}}), "alarm 'disk-full'"),
        (json.dumps({"disk-full": {**PLAN, "extra": 1}}), "extra is not a known field"),
        (json.dumps({"disk-full": {**PLAN, "dryRun": True}}), "dryRun"),
    ],
)
def test_broken_recovery_plans_name_the_alarm_and_field(text: str, words: str) -> None:
    with pytest.raises(RecoveryPlanError) as caught:
        load_recovery_plans(text)
    assert words in str(caught.value)


def test_plan_error_names_the_bad_field() -> None:
    with pytest.raises(RecoveryPlanError) as caught:
        load_recovery_plans(json.dumps({"disk-full": {**PLAN, "groupId": "X"}}))
    assert "alarm 'disk-full'" in str(caught.value) and "groupId must be an Atlas project id" in str(
        caught.value
    )


# --- the intake's pure helpers --------------------------------------------------------------------


def test_restore_id_is_deterministic_per_key_and_generation() -> None:
    key = idempotency_key("event", "7bf73129-1428-4cd3-a780-95db273d1602")
    assert restore_id_for(key) == restore_id_for(key, 0)
    assert restore_id_for(key) != restore_id_for(key, 1)
    assert restore_id_for(key) != restore_id_for(idempotency_key("event", "another"))
    # The id GET /restores/{restoreId} accepts (32 lowercase hex), and the same id for the same key in every
    # release: a retry that reaches a newer deployment must still find its restore.
    assert re.fullmatch(RESTORE_ID_PATTERN, restore_id_for(key))
    assert restore_id_for(key) == "54d356e1531054b5b146153a26133342"
    assert restore_id_for(key, 1) == "c37a773c6d205139908c5e662cb4e70f"


def test_idempotency_key_hides_its_parts() -> None:
    key = idempotency_key("api-key", "arn:aws:sts::123456789012:assumed-role/x/alice", "my-key")
    assert key.startswith("api-key:") and "alice" not in key and "my-key" not in key
    assert key != idempotency_key("api-key", "arn:aws:sts::123456789012:assumed-role/x/bob", "my-key")


def test_api_get_sample_points_at_the_post_samples_restore() -> None:
    post, get = event("api-post-restore.json"), event("api-get-restore.json")
    key = idempotency_key(
        "api-key", post["requestContext"]["identity"]["userArn"], post["headers"]["Idempotency-Key"]
    )
    assert get["pathParameters"]["restoreId"] == restore_id_for(key)
    parse_request(json.loads(post["body"]))  # the good sample is valid


NOW = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)


def test_first_poll_is_shortly_after_the_scheduled_date() -> None:
    assert first_poll_within_deadline(NOW, NOW + timedelta(seconds=5), deadline_seconds=3600) == 50
    late = NOW - timedelta(minutes=10)
    assert first_poll_within_deadline(NOW, late, deadline_seconds=3600) == 0  # look at once
    assert first_poll_within_deadline(NOW, None, deadline_seconds=3600) == 45  # no date: it starts now
    # Never past the deadline, nor past the longest first wait the state machine accepts.
    assert first_poll_within_deadline(NOW, NOW + timedelta(minutes=30), deadline_seconds=600) == 600
    assert first_poll_within_deadline(NOW, NOW + timedelta(hours=5), deadline_seconds=86400) == 3600
