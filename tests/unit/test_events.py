"""The outcome events' contract (contracts/events.py): one detail-type per ending, the namespaced source, the
execution in ``resources``, a versioned detail built from the record that leaves the service's own
bookkeeping out and validates against the committed schema."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from flexrestore.contracts import RestoreRecord
from flexrestore.contracts.events import (
    EVENT_VERSION,
    RESTORES_SOURCE,
    OutcomeEvent,
    restore_detail_type,
    restore_event,
    restore_outcome,
)
from flexrestore.domain import notifying
from tests.fakes import FakeNotifier
from tests.published import REPO, assert_published_event

GROUP = "65f1a2b3c4d5e6f708192a3b"
EXECUTION = (
    "arn:aws:states:us-east-1:123456789012:execution:flexrestore-restore:0f1e2d3c4b5a69788796a5b4c3d2e1f0"
)
T0 = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
INTERNAL = (
    "id",
    "kind",
    "lockId",
    "handoff",
    "createAttemptedAt",
    "executionArn",
    "notification",
    "timeline",
    "atlasUnreachableSince",
    "atlasRetryNotBefore",
    "atlasFault",
    "noticedAt",
    "source",
)


def record(final_status: str | None, **changes: Any) -> RestoreRecord:
    item: dict[str, Any] = {
        "id": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
        "kind": "restore",
        "restoreId": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
        "source": f"{GROUP}/orders-prod",
        "groupId": GROUP,
        "clusterName": "orders-prod",
        "snapshotId": "6723a1f0c4d5e6f708193b01",
        "targetDeploymentItemName": "orders-verify",
        "targetProjectId": GROUP,
        "requestedAt": "2026-11-01T02:00:00Z",
        "requestedBy": {"trigger": "api", "caller": "arn:aws:iam::123456789012:user/ops", "eventId": "req-1"},
        "reason": "verify last night's backup",
        "lockId": "lock#" + GROUP + "#orders-verify",
        "status": final_status,
        "timeline": [{"status": "PENDING", "at": "2026-11-01T02:00:05Z"}],
        "restoreJobId": "6ae69d205e1a7c0d3f000001",
        "executionArn": EXECUTION,
        "createAttemptedAt": "2026-11-01T02:00:01Z",
        "finalStatus": final_status,
        "finishedAt": "2026-11-01T02:01:05Z",
        "noticedAt": "2026-11-01T02:01:15Z",
        "durationSeconds": 65,
        "durationSource": "atlas",
        "atlasDurationSeconds": 60,
        "notification": {"status": "SENT", "at": "2026-11-01T02:01:16Z"},
    }
    item.update(changes)
    return RestoreRecord.model_validate(item)


def delivered(event: OutcomeEvent) -> dict[str, Any]:
    """The event as an EventBridge rule hands it to a consumer."""
    return {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": event.detail_type,
        "source": event.source,
        "account": "123456789012",
        "time": "2026-11-01T02:01:16Z",
        "region": "us-east-1",
        "resources": list(event.resources),
        "detail": event.detail_json(),
    }


@pytest.mark.parametrize(
    ("status", "detail_type"),
    [
        ("COMPLETED", "Flex Restore Succeeded"),
        ("FAILED", "Flex Restore Failed"),
        ("TIMED_OUT", "Flex Restore Timed Out"),
        ("ERROR", "Flex Restore Errored"),
        (None, "Flex Restore Errored"),
    ],
)
def test_each_ending_has_its_own_detail_type(status: str | None, detail_type: str) -> None:
    assert restore_detail_type(status) == detail_type


@pytest.mark.parametrize("status", ["COMPLETED", "FAILED", "TIMED_OUT", "ERROR"])
def test_the_event_validates_against_its_committed_schema(status: str) -> None:
    extra: dict[str, Any] = {}
    if status in ("TIMED_OUT", "ERROR"):
        extra = {"durationSeconds": None, "durationSource": None, "atlasDurationSeconds": None}
        extra["error"] = {"code": "DEADLINE_EXCEEDED", "message": "did not finish within 60 min"}
    event = restore_event(record(status, **extra))

    detail = assert_published_event(delivered(event))

    assert event.source == RESTORES_SOURCE == "flexrestore.restores"
    assert event.resources == (EXECUTION,)
    assert detail["version"] == EVENT_VERSION == "1"
    assert detail["finalStatus"] == status


def test_the_detail_carries_what_a_consumer_needs_and_nothing_internal() -> None:
    link = {"runId": "run-2026-11-01", "plan": "nightly", "index": 0, "notify": "FAILURES"}
    detail = restore_event(record("COMPLETED", run=link)).detail_json()

    assert detail == {
        "version": "1",
        "restoreId": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
        "runId": "run-2026-11-01",
        "finalStatus": "COMPLETED",
        "status": "COMPLETED",
        "groupId": GROUP,
        "clusterName": "orders-prod",
        "snapshotId": "6723a1f0c4d5e6f708193b01",
        "targetDeploymentItemName": "orders-verify",
        "targetProjectId": GROUP,
        "restoreJobId": "6ae69d205e1a7c0d3f000001",
        "requestedAt": "2026-11-01T02:00:00Z",
        "requestedBy": {
            "trigger": "api",
            "caller": "arn:aws:iam::123456789012:user/ops",
            "schedule": None,
            "alarm": None,
            "eventId": "req-1",
        },
        "reason": "verify last night's backup",
        "breakGlass": None,
        "finishedAt": "2026-11-01T02:01:05Z",
        "durationSeconds": 65,
        "durationSource": "atlas",
        "atlasDurationSeconds": 60,
        "error": None,
        "recordSaved": True,
    }
    assert not set(INTERNAL) & set(detail)


def test_a_restore_on_its_own_has_a_null_run_id_and_a_record_without_one_still_reads() -> None:
    assert record("COMPLETED").run is None
    assert restore_outcome(record("COMPLETED")).to_json()["runId"] is None


def test_an_unsaved_record_names_the_execution_it_was_given_and_says_it_was_not_saved() -> None:
    unsaved = record("COMPLETED", executionArn=None)
    event = restore_event(unsaved, record_saved=False, execution_arn=EXECUTION)
    assert event.resources == (EXECUTION,)
    assert event.detail_json()["recordSaved"] is False
    assert restore_event(unsaved).resources == ()  # a restore that never had an execution


def test_tell_puts_the_published_event_and_sends_the_record_to_people() -> None:
    notifier = FakeNotifier()
    ended = record("ERROR", error={"code": "RESTORE_JOB_NOT_FOUND", "message": "Atlas no longer knows it"})

    notifying.tell(ended, notifier=notifier, deliveries=None, now=lambda: T0)

    (event,) = notifier.events
    assert (event.source, event.detail_type, event.resources) == (
        "flexrestore.restores",
        "Flex Restore Errored",
        (EXECUTION,),
    )
    assert assert_published_event(delivered(event))["error"]["code"] == "RESTORE_JOB_NOT_FOUND"
    ((subject, body),) = notifier.messages
    assert subject == "Restore ERROR: orders-prod → orders-verify"  # people's wording is unchanged
    assert '"lockId": "lock#' in body  # people (operators) still get the whole record


# --- README's "Consuming outcomes" shows what a consumer really gets --------------------------------------


def consuming_outcomes() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    start = readme.index("### Consuming outcomes")
    return readme[start : readme.index("\n## ", start)]


def readme_json_blocks() -> list[Any]:
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)```", consuming_outcomes(), re.S)]


def test_the_readme_sample_is_a_published_event() -> None:
    sample = next(block for block in readme_json_blocks() if "detail-type" in block)
    detail = assert_published_event(sample)
    source = f"{detail['groupId']}/{detail['clusterName']}"
    as_record = RestoreRecord.model_validate({**detail, "id": detail["restoreId"], "source": source})
    assert restore_outcome(as_record).to_json() == detail  # field for field what the builder makes


def test_the_readme_rule_patterns_match_what_they_say() -> None:
    from moto.events.models import EventPattern

    (not_completed,) = re.findall(r"--event-pattern '(.*?)'", consuming_outcomes())
    (slow,) = [
        block
        for block in readme_json_blocks()
        if "detail-type" in block and "source" in block and isinstance(block["source"], list)
    ]
    events = {
        status: delivered(restore_event(record(status)))
        for status in ("COMPLETED", "FAILED", "TIMED_OUT", "ERROR")
    }

    pattern = EventPattern.load(not_completed)
    assert [s for s, e in events.items() if pattern.matches_event(e)] == ["FAILED", "TIMED_OUT", "ERROR"]
    pattern = EventPattern.load(json.dumps(slow))
    assert not pattern.matches_event(events["COMPLETED"])  # 65 s
    assert pattern.matches_event(delivered(restore_event(record("COMPLETED", durationSeconds=901))))
