"""The final record and the notification texts (plain Python, no mocks; the outcome event: test_events.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from flexrestore.contracts import ExecutionInput, InvalidExecutionInput, RestoreRecord
from flexrestore.domain import messages, notifying, outcome
from flexrestore.domain.outcome import Observation

StartInput = ExecutionInput  # what the intake starts the poll loop with

T0 = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
GROUP = "65f1a2b3c4d5e6f708192a3b"


def start_event(**changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "restoreId": "r-1",
        "groupId": GROUP,
        "clusterName": "orders-prod",
        "snapshotId": "6723a1f0c4d5e6f708193b01",
        "restoreJobId": "6ae69d205e1a7c0d3f000001",
        "targetDeploymentItemName": "orders-verify",
        "targetProjectId": GROUP,
        "requestedAt": "2026-11-01T02:00:00Z",
        "deadline": "2026-11-01T03:00:00Z",
        "firstPollSeconds": 50,
        "lockId": None,
    }
    event.update(changes)
    return event


STORED_ITEM = {
    "id": "r-1",
    "kind": "restore",
    "restoreId": "r-1",
    "source": f"{GROUP}/orders-prod",
    "groupId": GROUP,
    "clusterName": "orders-prod",
    "targetDeploymentItemName": "orders-verify",
    "targetProjectId": GROUP,
    "requestedAt": "2026-11-01T02:00:00Z",
    "requestedBy": {"trigger": "schedule", "caller": None, "schedule": "nightly-verify"},
    "reason": "nightly backup check",
    "status": "RUNNING",
    "timeline": [
        {"status": "PENDING", "at": "2026-11-01T02:00:00Z"},
        {"status": "RUNNING", "at": "2026-11-01T02:00:50Z"},
    ],
}
STORED = RestoreRecord.model_validate(STORED_ITEM)


def final(
    start: ExecutionInput, stored: RestoreRecord | None, ending: Observation, **kwargs: Any
) -> dict[str, Any]:
    """The final record's JSON form (what is stored, answered and sent)."""
    return outcome.final_record(start, stored, ending, **kwargs).to_json()


def completed(finished: datetime | None = T0 + timedelta(seconds=65)) -> Observation:
    ending = outcome.observation_for_job(
        job_id="6ae69d205e1a7c0d3f000001",
        status="COMPLETED",
        observed_at=T0 + timedelta(seconds=75),
        restore_scheduled_date=T0 + timedelta(seconds=5),
        restore_finished_date=finished,
    )
    assert ending is not None
    return ending


def test_start_input_reads_the_contract() -> None:
    start = StartInput.from_event(start_event(targetProjectId=None))
    assert start.restore_job_id == "6ae69d205e1a7c0d3f000001"
    assert start.target_project_id == GROUP  # defaults to the source project
    assert start.deadline - start.requested_at == timedelta(hours=1)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"restoreId": None}, "field 'restoreId' is required"),
        ({"deadline": "tomorrow"}, "field 'deadline' must be an ISO 8601 date-time"),
        ({"requestedAt": 5}, "field 'requestedAt' must be an ISO 8601 date-time"),
        ({"lockId": 7}, "field 'lockId' must be a string or null"),
    ],
)
def test_bad_start_input_names_the_field_and_the_rule(change: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidExecutionInput, match=words):
        StartInput.from_event(start_event(**change))


def test_non_terminal_statuses_mean_keep_polling() -> None:
    for status in ("PENDING", "RUNNING", "CLOSED"):
        ending = outcome.observation_for_job(
            job_id="j", status=status, observed_at=T0, restore_scheduled_date=None, restore_finished_date=None
        )
        assert ending is None


def test_observation_survives_the_trip_through_the_state_machine() -> None:
    ending = completed()
    assert Observation.from_dict(json.loads(json.dumps(ending.to_dict()))) == ending


def test_an_atlas_failure_is_failed_with_the_job_named() -> None:
    ending = outcome.observation_for_job(
        job_id="j1", status="FAILED", observed_at=T0, restore_scheduled_date=None, restore_finished_date=None
    )
    assert ending is not None
    assert ending.final_status == "FAILED"
    assert ending.error is not None
    assert ending.error.to_json() == {
        "code": "ATLAS_RESTORE_FAILED",
        "message": "Atlas reports restore job j1 as FAILED",
    }


def test_a_caught_crash_is_an_error_with_the_message_and_no_stack_trace() -> None:
    cause = json.dumps(
        {"errorType": "RuntimeError", "errorMessage": "boom", "stackTrace": ['  File "poll.py", line 3']}
    )
    ending = Observation.from_dict(
        {"finalStatus": "ERROR", "caught": {"Error": "RuntimeError", "Cause": cause}}
    )
    assert ending.final_status == "ERROR"
    assert ending.error is not None and ending.error.to_json() == {"code": "RuntimeError", "message": "boom"}


def test_atlas_faults_that_outlast_the_retries_say_so() -> None:
    cause = json.dumps({"errorType": "AtlasUnavailable", "errorMessage": "HTTP 503"})
    ending = outcome.observation_from_catch("AtlasUnavailable", cause, None)
    assert ending.final_status == "ERROR"
    assert ending.error is not None
    assert ending.error.message == "Atlas kept failing, gave up polling: HTTP 503"


def test_poll_retries_running_out_counts_as_timed_out() -> None:
    ending = outcome.observation_from_catch("RestoreStillRunning", '{"errorMessage": "job is RUNNING"}', None)
    assert ending.final_status == "TIMED_OUT"


def test_a_vanished_job_is_an_error_naming_it() -> None:
    start = StartInput.from_event(start_event())
    ending = outcome.observation_job_vanished(start, T0, "404 RESOURCE_NOT_FOUND")
    assert ending.error is not None
    assert ending.error.to_json() == {
        "code": "RESTORE_JOB_NOT_FOUND",
        "message": "Atlas no longer knows restore job 6ae69d205e1a7c0d3f000001 (404 RESOURCE_NOT_FOUND)",
    }


def test_completed_record_measures_the_rto_from_request_to_atlas_finish() -> None:
    start = StartInput.from_event(start_event())
    record = final(start, STORED, completed(), execution_arn="arn:x", now=T0 + timedelta(minutes=5))
    assert record["finalStatus"] == "COMPLETED"
    assert record["durationSeconds"] == 65
    assert record["durationSource"] == "atlas"
    assert record["atlasDurationSeconds"] == 60
    assert record["finishedAt"] == "2026-11-01T02:01:05Z"
    assert record["noticedAt"] == "2026-11-01T02:01:15Z"
    assert record["requestedBy"] == {**STORED_ITEM["requestedBy"], "alarm": None, "eventId": None}
    assert record["reason"] == "nightly backup check"
    assert record["source"] == f"{GROUP}/orders-prod"
    assert record["executionArn"] == "arn:x"
    assert record["error"] is None
    # The final status is on the timeline even if the poll step's own write was lost.
    assert record["timeline"][-1] == {"status": "COMPLETED", "at": "2026-11-01T02:01:15Z"}
    assert [entry["status"] for entry in record["timeline"]] == ["PENDING", "RUNNING", "COMPLETED"]


def test_without_an_atlas_finish_date_the_rto_runs_to_when_it_was_noticed_and_says_so() -> None:
    start = StartInput.from_event(start_event())
    record = final(start, STORED, completed(finished=None), execution_arn=None, now=T0)
    assert record["durationSeconds"] == 75
    assert record["durationSource"] == "observed"
    assert record["atlasDurationSeconds"] is None
    assert "measured to when the end was noticed" in messages.body(RestoreRecord.model_validate(record))


def test_a_timed_out_restore_has_no_duration() -> None:
    start = StartInput.from_event(start_event())
    ending = outcome.observation_timed_out(start, T0 + timedelta(hours=1))
    record = final(start, STORED, ending, execution_arn=None, now=T0)
    assert record["finalStatus"] == "TIMED_OUT"
    assert record["durationSeconds"] is None
    assert record["error"]["code"] == "DEADLINE_EXCEEDED"
    assert "did not finish within 60 min" in record["error"]["message"]
    assert record["status"] == "RUNNING"  # the last status Atlas showed


def test_the_record_is_the_same_however_often_it_is_built() -> None:
    start = StartInput.from_event(start_event())
    ending = completed()
    first = final(start, STORED, ending, execution_arn="a", now=T0)
    again = final(start, STORED, ending, execution_arn="a", now=T0 + timedelta(minutes=3))
    assert first == again


def test_a_record_without_the_intake_item_still_says_what_and_where() -> None:
    start = StartInput.from_event(start_event())
    record = final(start, None, completed(), execution_arn=None, now=T0)
    assert record["requestedAt"] == "2026-11-01T02:00:00Z"
    assert record["requestedBy"] is None
    assert record["timeline"] == [{"status": "COMPLETED", "at": "2026-11-01T02:01:15Z"}]


def _record(status: str, **changes: Any) -> RestoreRecord:
    record: dict[str, Any] = {
        **STORED_ITEM,
        "finalStatus": status,
        "durationSeconds": 62,
    }
    record.update(changes)
    return RestoreRecord.model_validate(record)


@pytest.mark.parametrize(
    ("record", "subject"),
    [
        (_record("COMPLETED"), "Restore COMPLETED: orders-prod → orders-verify in 62 s"),
        (_record("FAILED"), "Restore FAILED: orders-prod → orders-verify after 62 s"),
        (
            _record("COMPLETED", durationSeconds=1830),
            "Restore COMPLETED: orders-prod → orders-verify in 30 min 30 s",
        ),
        (_record("TIMED_OUT", durationSeconds=None), "Restore TIMED_OUT: orders-prod → orders-verify"),
        (_record("ERROR", durationSeconds=None), "Restore ERROR: orders-prod → orders-verify"),
    ],
)
def test_subjects_are_one_short_human_line(record: RestoreRecord, subject: str) -> None:
    assert messages.subject(record) == subject


def test_subjects_stay_under_100_characters_and_on_one_line() -> None:
    record = _record(
        "COMPLETED", targetDeploymentItemName="x" * 64 + "\nInjected: header", clusterName="c" * 64
    )
    text = messages.subject(record)
    assert len(text) < 100
    assert "\n" not in text


def test_the_body_has_human_lines_then_the_record_as_json() -> None:
    start = StartInput.from_event(start_event())
    record = outcome.final_record(start, STORED, completed(), execution_arn="a", now=T0)
    text = messages.body(record)
    assert text.splitlines()[0] == "Restore COMPLETED: orders-prod → orders-verify in 65 s"
    assert "Requested:    2026-11-01T02:00:00Z by schedule (nightly-verify)" in text
    assert "Duration:     RTO 65 s; Atlas restore itself 60 s" in text
    assert json.loads(text[text.index("\n{") + 1 :]) == record.to_json()


def test_the_body_warns_when_the_record_could_not_be_saved() -> None:
    assert "could not be saved" in messages.body(_record("COMPLETED"), record_saved=False)
    assert "could not be saved" not in messages.body(_record("COMPLETED"))


def test_only_a_channel_marked_sent_counts_as_delivered() -> None:
    from flexrestore.contracts import Notification

    sent = notifying.delivered("sns", T0, "m-1")
    assert sent.to_stored() == {"status": "SENT", "at": "2026-11-01T02:00:00Z", "messageId": "m-1"}
    failed = notifying.not_delivered(T0, "ConnectionError", "unreachable")
    notification = Notification(sns=sent, events=failed)
    assert notifying.earlier_delivery(notification, "sns") == "m-1"
    assert notifying.earlier_delivery(notification, "events") is None  # a failed attempt is sent again
    assert notifying.earlier_delivery(Notification(), "sns") is None
    assert notifying.delivered("events", T0, "e-1").event_id == "e-1"


def test_a_break_glass_restore_says_so_with_who_and_why_first() -> None:
    stored = RestoreRecord.model_validate(
        {
            **STORED_ITEM,
            "breakGlass": {
                "principal": "arn:aws:iam::123456789012:role/oncall-dba",
                "reason": "INC-4711: orders-verify\nholds bad data",
            },
        }
    )
    start = StartInput.from_event(start_event())
    record = outcome.final_record(start, stored, completed(), execution_arn="a", now=T0)

    assert messages.subject(record) == "BREAK-GLASS Restore COMPLETED: orders-prod → orders-verify in 65 s"
    first, second = messages.body(record).splitlines()[:2]
    assert first == (
        "BREAK-GLASS restore by arn:aws:iam::123456789012:role/oncall-dba: "
        "INC-4711: orders-verify holds bad data"
    )
    assert second == messages.subject(record)


def test_a_restore_without_break_glass_is_not_flagged() -> None:
    start = StartInput.from_event(start_event())
    record = outcome.final_record(start, STORED, completed(), execution_arn="a", now=T0)
    assert "BREAK-GLASS" not in messages.subject(record)
    assert "BREAK-GLASS" not in messages.body(record)
    unknown = _record("COMPLETED", breakGlass={"principal": None, "reason": "r"})
    assert messages.break_glass_line(unknown) == "BREAK-GLASS restore by an unknown principal: r"
