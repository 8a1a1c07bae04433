"""The restore record (one DynamoDB item per restore, ``kind = "restore"``, key ``id`` = restoreId) and the
refusal audit record (``kind = "refusal"``). ``GET /restores/{restoreId}`` answers the record's JSON form and
SNS messages carry it; outcome events carry a detail built from it (``contracts/events.py``). See
docs/contracts.md."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from flexrestore.contracts.base import Contract, Timestamp

COMPLETED = "COMPLETED"
FAILED = "FAILED"
TIMED_OUT = "TIMED_OUT"
ERROR = "ERROR"
FINAL_STATUSES = (COMPLETED, FAILED, TIMED_OUT, ERROR)
FinalStatus = Literal["COMPLETED", "FAILED", "TIMED_OUT", "ERROR"]
TriggerKind = Literal["api", "schedule", "alarm"]

RESTORE_KIND = "restore"
REFUSAL_KIND = "refusal"


class RequestedBy(Contract):
    """Who asked for a restore."""

    trigger: TriggerKind = Field(description="api, schedule or alarm")
    caller: str | None = Field(None, description="IAM principal ARN of an API caller")
    schedule: str | None = Field(None, description="name of the schedule that asked")
    alarm: str | None = Field(None, description="CloudWatch alarm whose recovery plan ran")
    event_id: str | None = Field(None, description="API Gateway request id or EventBridge event id")

    def to_record(self) -> dict[str, Any]:
        return self.to_json()


class TimelineEntry(Contract):
    status: str = Field(description="a status the service or Atlas reported (CREATING, PENDING, ...)")
    at: Timestamp = Field(description="when it was first seen")


class ErrorInfo(Contract):
    code: str
    message: str


class BreakGlass(Contract):
    """An authorized break-glass restore: who waived the protected-target guards, and why."""

    reason: str | None = None
    principal: str | None = None


class Delivery(Contract):
    """One notification channel's delivery (``notification.sns`` / ``notification.events``)."""

    status: Literal["SENT", "FAILED"]
    at: Timestamp
    message_id: str | None = Field(None, description="SNS MessageId (sns channel)")
    event_id: str | None = Field(None, description="EventBridge EventId (events channel)")
    error: ErrorInfo | None = None


class Notification(Contract):
    """How the ending was told: overall status, then each channel."""

    status: Literal["SENT", "FAILED"] | None = None
    at: Timestamp | None = None
    error: ErrorInfo | None = None
    sns: Delivery | None = None
    events: Delivery | None = None


class RunLink(Contract):
    """The verification run a restore belongs to (absent for a restore asked for on its own)."""

    run_id: str = Field(description="the run")
    plan: str = Field(description="the plan's name")
    index: int = Field(description="the source's place in the run")
    notify: Literal["ALL", "FAILURES", "SUMMARY"] = Field(
        description="the plan's notify policy: whether this restore gets its own message"
    )


class AtlasFault(Contract):
    code: str
    message: str
    at: Timestamp


class RestoreRecord(Contract):
    """One restore, from the request to its outcome."""

    model_config = ConfigDict(title="RestoreRecord")

    id: str = Field(description="DynamoDB key: the restoreId")
    kind: Literal["restore"] = "restore"
    restore_id: str = Field(description="32 lowercase hex characters")
    source: str = Field(description="<groupId>/<clusterName>")
    requested_at: Timestamp
    requested_by: RequestedBy | None = None
    reason: str | None = None
    group_id: str
    cluster_name: str
    snapshot_id: str | None = None
    target_deployment_item_name: str
    target_project_id: str
    break_glass: BreakGlass | None = None
    lock_id: str | None = Field(None, description="the target lock this restore holds")
    status: str | None = Field(
        None, description="the latest status (ACCEPTED, CREATING, then Atlas's job status)"
    )
    timeline: list[TimelineEntry] = Field(default_factory=list)
    restore_job_id: str | None = Field(None, description="the Atlas restore job")
    execution_arn: str | None = Field(None, description="the restore's Step Functions execution")
    run: RunLink | None = Field(None, description="the verification run this restore is part of")
    handoff: Literal["PENDING"] | None = Field(
        None,
        description="PENDING from the intake's record until its execution has started (the reconciler starts "
        "executions the intake could not)",
    )
    create_attempted_at: Timestamp | None = Field(
        None, description="when the create step first sent the Atlas create (a job may exist from then on)"
    )
    final_status: FinalStatus | None = Field(None, description="set once, when the restore has ended")
    finished_at: Timestamp | None = Field(
        None, description="when it ended (Atlas's time when Atlas gave one)"
    )
    noticed_at: Timestamp | None = Field(None, description="when the poll loop saw the end")
    restore_scheduled_date: Timestamp | None = None
    restore_finished_date: Timestamp | None = None
    duration_seconds: int | None = Field(
        None, description="the measured RTO: requestedAt to Atlas's restoreFinishedDate (completed or failed)"
    )
    duration_source: Literal["atlas", "observed"] | None = Field(
        None, description="atlas: to restoreFinishedDate; observed: Atlas gave none, to noticedAt"
    )
    atlas_duration_seconds: int | None = Field(
        None, description="Atlas's own part: restoreScheduledDate to restoreFinishedDate"
    )
    error: ErrorInfo | None = None
    notification: Notification | None = None
    atlas_unreachable_since: Timestamp | None = Field(
        None, description="first Atlas fault of an ongoing outage (cleared by the next good read)"
    )
    atlas_retry_not_before: Timestamp | None = Field(None, description="Atlas's Retry-After, as a time")
    atlas_fault: AtlasFault | None = None

    @property
    def ended(self) -> bool:
        return self.final_status is not None


class RefusalRecord(Contract):
    """An audit record of a refused request: who asked, what for, which guard refused, why, when."""

    model_config = ConfigDict(title="RefusalRecord")

    id: str = Field(description="refusal#<uuid>")
    kind: Literal["refusal"] = "refusal"
    requested_at: Timestamp
    requested_by: RequestedBy
    request: dict[str, Any] = Field(description="the restore request, as sent")
    group_id: str
    cluster_name: str
    target_deployment_item_name: str
    target_project_id: str
    break_glass: bool = False
    guard: str
    reason: str
    status: int
    message: str
