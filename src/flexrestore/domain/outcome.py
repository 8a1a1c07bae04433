"""How a restore ended: the poll loop's observation, the final record, and what people and machines are
told. Plain Python: no AWS, no HTTP. Every date is ISO 8601 UTC with a ``Z``.

Data flow through the state machine (JSON):
- execution input (CONTRACTS.md) -> :class:`StartInput`;
- the poll Lambda's answer, or the Catch-all's error shaped by a Pass state -> :class:`Observation`;
- :func:`final_record` merges the start input, the stored record (who asked, timeline) and the
  observation into the final record, deterministically, so a retried Record step writes the same item.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flexrestore.domain.polling import Phase, classify

COMPLETED = "COMPLETED"
FAILED = "FAILED"
TIMED_OUT = "TIMED_OUT"
ERROR = "ERROR"
FINAL_STATUSES = (COMPLETED, FAILED, TIMED_OUT, ERROR)

EVENT_SOURCE = "flexrestore"
_DETAIL_TYPES = {
    COMPLETED: "Flex Restore Succeeded",
    FAILED: "Flex Restore Failed",
    ERROR: "Flex Restore Failed",
    TIMED_OUT: "Flex Restore Timed Out",
}
# Errors the poll Lambda raises on purpose; anything else reaching the Catch-all is a crash.
STILL_RUNNING_ERROR = "RestoreStillRunning"
ATLAS_FAULTS = ("AtlasUnavailable", "AtlasRateLimited", "AtlasBadResponse")
MAX_ERROR_MESSAGE = 1000
MAX_SUBJECT = 99  # SNS: "less than 100 characters"


class InvalidExecutionInput(ValueError):
    """The execution input breaks the contract; names the field and the rule (never retried)."""


def parse_time(value: Any, field_name: str) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidExecutionInput(
                f"field '{field_name}' must be an ISO 8601 date-time, got {value[:40]!r}"
            ) from None
    else:
        raise InvalidExecutionInput(f"field '{field_name}' must be an ISO 8601 date-time string")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _optional_time(value: Any, field_name: str) -> datetime | None:
    return None if value in (None, "") else parse_time(value, field_name)


def _required_text(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value.strip():
        raise InvalidExecutionInput(f"field '{name}' is required and must be a non-empty string")
    return value


def _optional_text(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidExecutionInput(f"field '{name}' must be a string or null")
    return value or None


@dataclass(frozen=True)
class StartInput:
    """The execution input the intake sends (CONTRACTS.md, "Execution input")."""

    restore_id: str
    group_id: str
    cluster_name: str
    restore_job_id: str
    target_deployment_item_name: str
    target_project_id: str
    requested_at: datetime
    deadline: datetime
    snapshot_id: str | None = None
    lock_id: str | None = None

    @classmethod
    def from_event(cls, event: Any) -> StartInput:
        if not isinstance(event, dict):
            raise InvalidExecutionInput("the execution input must be a JSON object")
        group_id = _required_text(event, "groupId")
        return cls(
            restore_id=_required_text(event, "restoreId"),
            group_id=group_id,
            cluster_name=_required_text(event, "clusterName"),
            restore_job_id=_required_text(event, "restoreJobId"),
            target_deployment_item_name=_required_text(event, "targetDeploymentItemName"),
            target_project_id=_optional_text(event, "targetProjectId") or group_id,
            requested_at=parse_time(event.get("requestedAt"), "requestedAt"),
            deadline=parse_time(event.get("deadline"), "deadline"),
            snapshot_id=_optional_text(event, "snapshotId"),
            lock_id=_optional_text(event, "lockId"),
        )


@dataclass(frozen=True)
class Observation:
    """What the loop saw last: how the restore ended (``final_status``) and Atlas's job as then."""

    final_status: str
    observed_at: datetime | None
    atlas_status: str | None = None
    restore_scheduled_date: datetime | None = None
    restore_finished_date: datetime | None = None
    error: dict[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "finalStatus": self.final_status,
            "observedAt": iso(self.observed_at) if self.observed_at else None,
            "atlasStatus": self.atlas_status,
            "restoreScheduledDate": iso(self.restore_scheduled_date) if self.restore_scheduled_date else None,
            "restoreFinishedDate": iso(self.restore_finished_date) if self.restore_finished_date else None,
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Observation:
        """Read back what the poll Lambda returned, or what the Catch-all's Pass state shaped."""
        if not isinstance(data, dict):
            return observation_from_catch("States.Runtime", "the poll step produced no observation", None)
        if "caught" in data:
            caught = data["caught"] if isinstance(data["caught"], dict) else {}
            return observation_from_catch(
                str(caught.get("Error") or "States.Runtime"), caught.get("Cause"), None
            )
        status = data.get("finalStatus")
        if status not in FINAL_STATUSES:
            return observation_from_catch(
                "States.Runtime", f"the poll step answered an unknown final status {status!r}", None
            )
        error = data.get("error")
        if isinstance(error, dict):
            error = _error(str(error.get("code")), str(error.get("message")))
        return cls(
            final_status=status,
            observed_at=_optional_time(data.get("observedAt"), "observedAt"),
            atlas_status=data.get("atlasStatus"),
            restore_scheduled_date=_optional_time(data.get("restoreScheduledDate"), "restoreScheduledDate"),
            restore_finished_date=_optional_time(data.get("restoreFinishedDate"), "restoreFinishedDate"),
            error=error if isinstance(error, dict) else None,
        )


def _error(code: str, message: str) -> dict[str, str]:
    message = message if len(message) <= MAX_ERROR_MESSAGE else message[: MAX_ERROR_MESSAGE - 1] + "…"
    return {"code": code, "message": message}


def _cause_message(cause: Any) -> str:
    """A Lambda error's Cause is ``{"errorType", "errorMessage", "stackTrace"?}``: keep the message only."""
    if not isinstance(cause, str) or not cause:
        return "no cause given"
    try:
        parsed = json.loads(cause)
    except ValueError:
        return cause
    if isinstance(parsed, dict) and "errorMessage" in parsed:
        return str(parsed["errorMessage"])
    return cause


def caught_error(error: Any, cause: Any) -> dict[str, str]:
    """``{"code", "message"}`` from a Catch's ``{"Error", "Cause"}`` (no stack trace)."""
    return _error(str(error or "States.Runtime"), _cause_message(cause))


def observation_from_catch(error: str, cause: Any, observed_at: datetime | None) -> Observation:
    """The ending for an error that escaped the poll step's retriers (its Catch-all)."""
    message = _cause_message(cause)
    if error == STILL_RUNNING_ERROR:
        # Only if the retrier ran out of attempts before the deadline (it is sized not to).
        return Observation(
            TIMED_OUT, observed_at, error=_error("POLL_RETRIES_EXHAUSTED", f"still not finished: {message}")
        )
    if error in ATLAS_FAULTS:
        message = f"Atlas kept failing, gave up polling: {message}"
    return Observation(ERROR, observed_at, error=_error(error, message))


def observation_for_job(
    *,
    job_id: str,
    status: str,
    observed_at: datetime,
    restore_scheduled_date: datetime | None,
    restore_finished_date: datetime | None,
) -> Observation | None:
    """The ending a terminal job status means, or None while the restore is still going."""
    phase = classify(status)
    if not phase.is_terminal:
        return None
    error = None
    if phase is Phase.FAILED:
        error = _error("ATLAS_RESTORE_FAILED", f"Atlas reports restore job {job_id} as {status}")
    return Observation(
        COMPLETED if phase is Phase.COMPLETED else FAILED,
        observed_at,
        atlas_status=status,
        restore_scheduled_date=restore_scheduled_date,
        restore_finished_date=restore_finished_date,
        error=error,
    )


def observation_timed_out(start: StartInput, now: datetime) -> Observation:
    minutes = round((start.deadline - start.requested_at).total_seconds() / 60)
    return Observation(
        TIMED_OUT,
        now,
        error=_error(
            "DEADLINE_EXCEEDED",
            f"restore job {start.restore_job_id} did not finish within {minutes} min "
            f"(deadline {iso(start.deadline)})",
        ),
    )


def observation_job_vanished(start: StartInput, now: datetime, atlas_said: str) -> Observation:
    return Observation(
        ERROR,
        now,
        error=_error(
            "RESTORE_JOB_NOT_FOUND",
            f"Atlas no longer knows restore job {start.restore_job_id} ({atlas_said})",
        ),
    )


def _seconds(start: datetime | None, end: datetime | None) -> int | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds())


def _timeline(stored: Any, observation: Observation) -> list[dict[str, str]]:
    timeline = [
        {"status": str(entry.get("status")), "at": str(entry.get("at"))}
        for entry in (stored if isinstance(stored, list) else [])
        if isinstance(entry, dict)
    ]
    # The poll step's own timeline write is best-effort: make sure the last status seen is there.
    if observation.atlas_status and (not timeline or timeline[-1]["status"] != observation.atlas_status):
        at = observation.observed_at
        timeline.append({"status": observation.atlas_status, "at": iso(at) if at else ""})
    return timeline


def final_record(
    start: StartInput,
    stored: dict[str, Any] | None,
    observation: Observation,
    *,
    execution_arn: str | None,
    now: datetime,
) -> dict[str, Any]:
    """The restore record as it ends. ``stored`` is the item the intake (and the poll step) wrote.

    ``durationSeconds`` is the measured RTO, from the request to Atlas's ``restoreFinishedDate``; when Atlas
    gives no finish date it runs to when the loop noticed the end, and ``durationSource`` says so.
    A restore that timed out or broke has no duration (it did not finish).
    """
    stored = dict(stored or {})
    noticed_at = observation.observed_at or now
    finished = observation.final_status in (COMPLETED, FAILED)
    duration_end = observation.restore_finished_date or noticed_at
    record: dict[str, Any] = {
        # What the intake wrote survives (requestedBy, reason, breakGlass, ...).
        **stored,
        "id": start.restore_id,
        "kind": "restore",
        "restoreId": start.restore_id,
        "source": f"{start.group_id}/{start.cluster_name}",
        "requestedAt": stored.get("requestedAt") or iso(start.requested_at),
        "requestedBy": stored.get("requestedBy"),
        "reason": stored.get("reason"),
        "groupId": start.group_id,
        "clusterName": start.cluster_name,
        "snapshotId": start.snapshot_id or stored.get("snapshotId"),
        "targetDeploymentItemName": start.target_deployment_item_name,
        "targetProjectId": start.target_project_id,
        "restoreJobId": start.restore_job_id,
        "executionArn": execution_arn or stored.get("executionArn"),
        "breakGlass": stored.get("breakGlass"),
        "status": observation.atlas_status or stored.get("status"),
        "timeline": _timeline(stored.get("timeline"), observation),
        "finalStatus": observation.final_status,
        "finishedAt": iso(observation.restore_finished_date or noticed_at),
        "noticedAt": iso(noticed_at),
        "restoreScheduledDate": (
            iso(observation.restore_scheduled_date)
            if observation.restore_scheduled_date
            else stored.get("restoreScheduledDate")
        ),
        "restoreFinishedDate": (
            iso(observation.restore_finished_date) if observation.restore_finished_date else None
        ),
        "durationSeconds": _seconds(start.requested_at, duration_end) if finished else None,
        "durationSource": (
            ("atlas" if observation.restore_finished_date else "observed") if finished else None
        ),
        "atlasDurationSeconds": _seconds(
            observation.restore_scheduled_date, observation.restore_finished_date
        ),
        "error": observation.error,
    }
    record.pop("notification", None)  # set by the Notify step, after this record exists
    return record


# Notification channels, each delivered at most once per restore (see handlers/notify.py): their
# delivery is recorded on the restore record under ``notification.<channel>``.
SNS_CHANNEL = "sns"
EVENTS_CHANNEL = "events"
NOTIFICATION_CHANNELS = (SNS_CHANNEL, EVENTS_CHANNEL)
SENT = "SENT"
NOT_SENT = "FAILED"
_DELIVERY_ID_FIELDS = {SNS_CHANNEL: "messageId", EVENTS_CHANNEL: "eventId"}


def delivered(channel: str, at: datetime, delivery_id: str) -> dict[str, str]:
    """``notification.<channel>`` once the channel took the message (SNS MessageId, EventBridge EventId)."""
    return {"status": SENT, "at": iso(at), _DELIVERY_ID_FIELDS[channel]: delivery_id}


def not_delivered(at: datetime, code: str, message: str) -> dict[str, Any]:
    """``notification.<channel>`` after a failed attempt: the next attempt sends it again."""
    return {"status": NOT_SENT, "at": iso(at), "error": _error(code, message)}


def earlier_delivery(notification: Any, channel: str) -> str | None:
    """The id of an earlier attempt's delivery on ``channel`` (the record's ``notification`` map), or
    None if that channel has not been sent yet and must be."""
    entry = notification.get(channel) if isinstance(notification, dict) else None
    if not isinstance(entry, dict) or entry.get("status") != SENT:
        return None
    return str(entry.get(_DELIVERY_ID_FIELDS[channel]) or "")


def detail_type(final_status: str) -> str:
    """EventBridge detail-type of the outcome event (ERROR is a failure too)."""
    return _DETAIL_TYPES.get(final_status, "Flex Restore Failed")


_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def _duration_words(seconds: int | None) -> str:
    if seconds is None:
        return ""
    if seconds < 120:
        return f"{seconds} s"
    minutes, rest = divmod(seconds, 60)
    return f"{minutes} min {rest} s" if rest else f"{minutes} min"


def break_glass_line(record: dict[str, Any]) -> str | None:
    """``BREAK-GLASS restore by <principal>: <reason>`` when the intake let this restore overwrite a
    protected target on a break-glass request (its record's ``breakGlass``), else None."""
    break_glass = record.get("breakGlass")
    if not isinstance(break_glass, dict):
        return None
    principal = break_glass.get("principal") or "an unknown principal"
    reason = break_glass.get("reason") or "no reason given"
    return _CONTROL.sub(" ", f"BREAK-GLASS restore by {principal}: {reason}")


def subject(record: dict[str, Any]) -> str:
    """One short line, e.g. ``Restore COMPLETED: orders-prod → orders-verify in 62 s`` (< 100 chars),
    ``BREAK-GLASS Restore ...`` for a break-glass restore (the body's first line names who and why)."""
    status = record.get("finalStatus") or "ERROR"
    route = f"{record.get('clusterName')} → {record.get('targetDeploymentItemName')}"
    duration = _duration_words(record.get("durationSeconds"))
    tail = {COMPLETED: f" in {duration}", FAILED: f" after {duration}"}.get(status, "") if duration else ""
    flag = "BREAK-GLASS " if break_glass_line(record) else ""
    text = _CONTROL.sub(" ", f"{flag}Restore {status}: {route}{tail}")
    return text if len(text) <= MAX_SUBJECT else text[: MAX_SUBJECT - 1] + "…"


def body(record: dict[str, Any], *, record_saved: bool = True) -> str:
    """A few lines for people, then the record as JSON for machines. A break-glass restore says so,
    with who and why, on the first line."""
    flagged = break_glass_line(record)
    lines = ([flagged] if flagged else []) + [subject(record), ""]
    lines.append(f"Restore id:   {record.get('restoreId')}")
    lines.append(f"Source:       {record.get('source')} (snapshot {record.get('snapshotId') or 'unknown'})")
    lines.append(f"Target:       {record.get('targetProjectId')}/{record.get('targetDeploymentItemName')}")
    lines.append(f"Atlas job:    {record.get('restoreJobId')}")
    requested_by = record.get("requestedBy") or {}
    who = requested_by.get("caller") or requested_by.get("schedule") or requested_by.get("alarm")
    trigger = requested_by.get("trigger") or "unknown trigger"
    lines.append(f"Requested:    {record.get('requestedAt')} by {trigger}{f' ({who})' if who else ''}")
    if record.get("reason"):
        lines.append(f"Reason:       {record.get('reason')}")
    lines.append(f"Finished:     {record.get('finishedAt')}")
    if record.get("durationSeconds") is not None:
        rto = f"RTO {_duration_words(record['durationSeconds'])}"
        if record.get("durationSource") == "observed":
            rto += " (Atlas gave no finish date: measured to when the end was noticed)"
        if record.get("atlasDurationSeconds") is not None:
            rto += f"; Atlas restore itself {_duration_words(record['atlasDurationSeconds'])}"
        lines.append(f"Duration:     {rto}")
    error = record.get("error")
    if isinstance(error, dict):
        lines.append(f"Error:        {error.get('code')}: {error.get('message')}")
    if not record_saved:
        lines.append("WARNING:      the final record could not be saved in DynamoDB; this message holds it.")
    lines += ["", json.dumps(record, indent=2, sort_keys=True, ensure_ascii=False, default=str)]
    return "\n".join(lines)
