"""Alarms and recovery plans turned into restore requests at the edge (flexrestore.triggers); the intake's
pure helpers."""

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
from flexrestore.triggers.eventbridge import parse_alarm
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
    assert kind_of(event("alarm-into-alarm.json")) == "alarm"
    assert kind_of({"detail-type": "Something Else"}) == "unknown"
    assert kind_of([]) == "unknown"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda e: e.pop("id"), "id"),
        (lambda e: e.update(id="x" * 200), "id"),
        (lambda e: e.pop("source"), "source"),
        (lambda e: e["detail"].update(alarmName=""), "detail.alarmName"),
    ],
)
def test_bad_alarm_events_name_the_field(change: Any, field: str) -> None:
    sample = copy.deepcopy(event("alarm-into-alarm.json"))
    change(sample)
    plans = load_recovery_plans(json.dumps({"orders-prod-data-loss": PLAN}))
    with pytest.raises(InvalidRequest) as caught:
        parse_alarm(sample, plans)
    assert field in [e["field"] for e in caught.value.errors]


def test_a_scheduled_event_is_not_the_intakes_any_more() -> None:
    # Scheduled verification is a plan's schedule, which starts a run: the intake does not take the old
    # "Scheduled Event" shape (Lambda fails it and the dead-letter queue keeps it).
    scheduled = {**event("alarm-into-alarm.json"), "detail-type": "Scheduled Event", "source": "aws.events"}
    assert kind_of(scheduled) == "unknown"


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
