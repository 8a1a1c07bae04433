"""How a restore ended: the poll step's observation, the final record, and the Record step's work (write it
once, free the target, count it). Plain Python over ports.

Through the state machine (JSON): the execution input (:class:`~flexrestore.contracts.ExecutionInput`); the
poll Lambda's answer, or the Catch-all's error shaped by a Pass state (:class:`Observation`);
:func:`final_record` merges the input, the stored record (who asked, timeline) and the observation,
deterministically, so a retried Record step writes the same item.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from flexrestore.clock import isoformat, parse_iso
from flexrestore.contracts import (
    ErrorInfo,
    ExecutionInput,
    InvalidExecutionInput,
    RestoreRecord,
    TimelineEntry,
)
from flexrestore.contracts.record import COMPLETED, ERROR, FAILED, FINAL_STATUSES, TIMED_OUT
from flexrestore.domain.notifying import error_info
from flexrestore.domain.polling import Phase, classify
from flexrestore.domain.ports import Locks, Metrics, OutcomeRecords

__all__ = [
    "COMPLETED",
    "ERROR",
    "FAILED",
    "FINAL_STATUSES",
    "TIMED_OUT",
    "Observation",
    "caught_error",
    "end_restore",
    "final_record",
    "notify_step_input",
    "observation_for_job",
    "observation_from_catch",
    "observation_job_vanished",
    "observation_timed_out",
]

logger = logging.getLogger("flexrestore.outcome")

# Errors the poll Lambda raises on purpose; anything else reaching the Catch-all is a crash.
STILL_RUNNING_ERROR = "RestoreStillRunning"
ATLAS_FAULTS = ("AtlasUnavailable", "AtlasRateLimited", "AtlasBadResponse")
# The metric each ending counts (template.yaml's alarms select on these names).
ENDING_METRICS = {
    COMPLETED: "RestoreCompleted",
    FAILED: "RestoreFailed",
    TIMED_OUT: "RestoreTimedOut",
    ERROR: "RestoreError",
}
DURATION_METRIC = "RestoreDurationSeconds"
# A restore job may exist in Atlas, unseen: the restore ends ERROR and the target keeps its lease.
UNCERTAIN = "CREATE_UNCERTAIN"


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_iso(value)
    except ValueError:
        return None


def _iso(moment: datetime | None) -> str | None:
    return isoformat(moment) if moment is not None else None


@dataclass(frozen=True)
class Observation:
    """What the loop saw last: how the restore ended (``final_status``) and Atlas's job as then."""

    final_status: str
    observed_at: datetime | None
    atlas_status: str | None = None
    restore_scheduled_date: datetime | None = None
    restore_finished_date: datetime | None = None
    error: ErrorInfo | None = None
    # True when a restore job may exist in Atlas although none is known: the target stays locked until its
    # lease runs out, so no second restore can start into it meanwhile.
    hold_lock: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "finalStatus": self.final_status,
            "observedAt": _iso(self.observed_at),
            "atlasStatus": self.atlas_status,
            "restoreScheduledDate": _iso(self.restore_scheduled_date),
            "restoreFinishedDate": _iso(self.restore_finished_date),
            "error": self.error.to_json() if self.error else None,
            "holdLock": self.hold_lock,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Observation:
        """Read back what the poll Lambda returned, or what the Catch-all's Pass state shaped."""
        if not isinstance(data, dict):
            return observation_from_catch("States.Runtime", "the poll step produced no observation", None)
        if "caught" in data:
            caught = data["caught"] if isinstance(data["caught"], dict) else {}
            name = str(caught.get("Error") or "States.Runtime")
            if data.get("holdLock") is True:  # the create step's Catch-all (ShapeCreateError)
                message = f"the create step gave up: {_cause_message(caught.get('Cause'))}"
                return cls(ERROR, None, error=error_info(name, message), hold_lock=True)
            return observation_from_catch(name, caught.get("Cause"), None)
        status = data.get("finalStatus")
        if status not in FINAL_STATUSES:
            return observation_from_catch(
                "States.Runtime", f"the poll step answered an unknown final status {status!r}", None
            )
        error = data.get("error")
        return cls(
            final_status=str(status),
            observed_at=_time(data.get("observedAt")),
            atlas_status=data.get("atlasStatus"),
            restore_scheduled_date=_time(data.get("restoreScheduledDate")),
            restore_finished_date=_time(data.get("restoreFinishedDate")),
            error=error_info(str(error.get("code")), str(error.get("message")))
            if isinstance(error, dict)
            else None,
            hold_lock=data.get("holdLock") is True,
        )


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


def caught_error(error: Any, cause: Any) -> ErrorInfo:
    """``{"code", "message"}`` from a Catch's ``{"Error", "Cause"}`` (no stack trace)."""
    return error_info(str(error or "States.Runtime"), _cause_message(cause))


def observation_from_catch(error: str, cause: Any, observed_at: datetime | None) -> Observation:
    """The ending for an error that escaped the poll step's retriers (its Catch-all)."""
    message = _cause_message(cause)
    if error == STILL_RUNNING_ERROR:
        # Only if the retrier ran out of attempts before the deadline (it is sized not to).
        return Observation(
            TIMED_OUT,
            observed_at,
            error=error_info("POLL_RETRIES_EXHAUSTED", f"still not finished: {message}"),
        )
    if error in ATLAS_FAULTS:
        message = f"Atlas kept failing, gave up polling: {message}"
    return Observation(ERROR, observed_at, error=error_info(error, message))


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
        error = error_info("ATLAS_RESTORE_FAILED", f"Atlas reports restore job {job_id} as {status}")
    return Observation(
        COMPLETED if phase is Phase.COMPLETED else FAILED,
        observed_at,
        atlas_status=status,
        restore_scheduled_date=restore_scheduled_date,
        restore_finished_date=restore_finished_date,
        error=error,
    )


def observation_timed_out(start: ExecutionInput, now: datetime) -> Observation:
    minutes = round((start.deadline - start.requested_at).total_seconds() / 60)
    return Observation(
        TIMED_OUT,
        now,
        error=error_info(
            "DEADLINE_EXCEEDED",
            f"restore job {start.restore_job_id} did not finish within {minutes} min "
            f"(deadline {isoformat(start.deadline)})",
        ),
    )


def observation_job_vanished(start: ExecutionInput, now: datetime, atlas_said: str) -> Observation:
    return Observation(
        ERROR,
        now,
        error=error_info(
            "RESTORE_JOB_NOT_FOUND",
            f"Atlas no longer knows restore job {start.restore_job_id} ({atlas_said})",
        ),
    )


def _seconds(start: datetime | None, end: datetime | None) -> int | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds())


def _timeline(stored: list[TimelineEntry], observation: Observation) -> list[TimelineEntry]:
    timeline = list(stored)
    # The poll step's own timeline write is best-effort: make sure the last status seen is there.
    if observation.atlas_status and (not timeline or timeline[-1].status != observation.atlas_status):
        at = observation.observed_at
        if at is not None:
            timeline.append(TimelineEntry(status=observation.atlas_status, at=at))
    return timeline


def final_record(
    start: ExecutionInput,
    stored: RestoreRecord | None,
    observation: Observation,
    *,
    execution_arn: str | None,
    now: datetime,
) -> RestoreRecord:
    """The restore record as it ends. ``stored`` is the item the intake (and the poll step) wrote.

    ``durationSeconds`` is the measured RTO, from the request to Atlas's ``restoreFinishedDate``; when Atlas
    gives no finish date it runs to when the loop noticed the end, and ``durationSource`` says so.
    A restore that timed out or broke has no duration (it did not finish).
    """
    noticed_at = observation.observed_at or now
    finished = observation.final_status in (COMPLETED, FAILED)
    duration_end = observation.restore_finished_date or noticed_at
    requested_at = stored.requested_at if stored else start.requested_at
    values: dict[str, Any] = {
        # What the intake wrote survives (requestedBy, reason, breakGlass, lockId, ...).
        **(stored.model_dump(by_alias=False) if stored else {}),
        "id": start.restore_id,
        "restore_id": start.restore_id,
        "source": f"{start.group_id}/{start.cluster_name}",
        "requested_at": requested_at,
        "group_id": start.group_id,
        "cluster_name": start.cluster_name,
        "snapshot_id": start.snapshot_id or (stored.snapshot_id if stored else None),
        "target_deployment_item_name": start.target_deployment_item_name,
        "target_project_id": start.target_project_id,
        "restore_job_id": start.restore_job_id or (stored.restore_job_id if stored else None),
        "execution_arn": execution_arn or (stored.execution_arn if stored else None),
        "status": observation.atlas_status or (stored.status if stored else None),
        "timeline": _timeline(stored.timeline if stored else [], observation),
        "final_status": observation.final_status,
        "finished_at": observation.restore_finished_date or noticed_at,
        "noticed_at": noticed_at,
        "restore_scheduled_date": observation.restore_scheduled_date
        or (stored.restore_scheduled_date if stored else None),
        "restore_finished_date": observation.restore_finished_date,
        "duration_seconds": _seconds(start.requested_at, duration_end) if finished else None,
        "duration_source": (
            ("atlas" if observation.restore_finished_date else "observed") if finished else None
        ),
        "atlas_duration_seconds": _seconds(
            observation.restore_scheduled_date, observation.restore_finished_date
        ),
        "error": observation.error,
        "notification": None,  # set by the Notify step, after this record exists
        "handoff": None,  # the execution that records the end exists
    }
    return RestoreRecord.model_validate(values)


def end_restore(
    start: ExecutionInput,
    observation: Observation,
    *,
    execution_arn: str | None,
    records: OutcomeRecords,
    locks: Locks,
    metrics: Metrics,
    now: Callable[[], datetime],
) -> RestoreRecord:
    """The Record step: write the final record once, free the target, count the ending once."""
    stored = records.get(start.restore_id)
    observation = _what_atlas_may_hold(start, stored, observation)
    if stored is not None and stored.ended:
        record, written = stored, False  # a retry after a successful write: nothing to do
    else:
        record, written = records.save_final(
            final_record(start, stored, observation, execution_arn=execution_arn, now=now())
        )
    if start.lock_id and not observation.hold_lock:
        released = locks.release(start.lock_id, start.restore_id)
        logger.info("target lock", extra={"lockId": start.lock_id, "released": released})
    elif start.lock_id:
        logger.warning(
            "target lock kept until its lease ends: a restore job may exist", extra={"lockId": start.lock_id}
        )
    if written:  # count each restore once, however often this step is retried
        count_ending(metrics, record)
    logger.info(
        "final record written" if written else "final record already there",
        extra={"finalStatus": record.final_status, "durationSeconds": record.duration_seconds},
    )
    return record


def _what_atlas_may_hold(
    start: ExecutionInput, stored: RestoreRecord | None, observation: Observation
) -> Observation:
    """The create step's Catch-all ends a restore whose create step gave up (its retriers ran out) without
    knowing whether Atlas has a job; the record knows. A create was sent and no job is known: the create is
    uncertain (``CREATE_UNCERTAIN``, never a failure) and the target keeps its lease until it runs out, as at
    the create step's own deadline. Nothing was ever sent: no job can exist, and the target is freed."""
    if not observation.hold_lock or observation.final_status != ERROR or stored is None:
        return observation
    if start.restore_job_id or stored.restore_job_id:
        return observation  # the job is known
    if observation.error is not None and observation.error.code == UNCERTAIN:
        return observation
    if stored.create_attempted_at is None:
        return replace(observation, hold_lock=False)
    why = observation.error.message if observation.error is not None else "the create step gave up"
    sent = isoformat(stored.create_attempted_at)
    message = (
        f"a restore job may exist in Atlas (the create was sent at {sent} and its answer was not kept), "
        f"and {why}; the target stays locked until its lease ends"
    )
    return replace(observation, error=error_info(UNCERTAIN, message))


def count_ending(metrics: Metrics, record: RestoreRecord) -> None:
    """One count of how the restore ended, and its RTO when it has one (wherever the ending was decided)."""
    metrics.count(ENDING_METRICS[record.final_status or ERROR])
    if record.duration_seconds is not None:
        metrics.duration(DURATION_METRIC, record.duration_seconds)


@dataclass(frozen=True)
class EndingToTell:
    """The record the Notify step tells, whether the Record step saved it, and why not."""

    record: RestoreRecord
    saved: bool
    record_error: dict[str, str] | None = None
    hold_lock: bool = False  # the observation said a job may exist: the target keeps its lease


def notify_step_input(event: Any) -> tuple[dict[str, Any], str | None]:
    """The Notify step's state and its execution's ARN: ``{"input": <state>, "executionArn"}``, or the state
    alone (what executions started before the ARN was passed along still send)."""
    if not isinstance(event, dict):
        return {}, None
    if "executionArn" in event and isinstance(event.get("input"), dict):
        arn = event.get("executionArn")
        return event["input"], arn if isinstance(arn, str) and arn else None
    return event, None


def ending_to_tell(state: dict[str, Any], *, now: datetime) -> EndingToTell:
    """The saved final record (``recorded.record``), or one rebuilt from the input and the observation when
    the Record step failed (``recordError``): the message then says it was not saved."""
    recorded = (state.get("recorded") or {}).get("record")
    if isinstance(recorded, dict) and recorded.get("finalStatus"):
        return EndingToTell(RestoreRecord.model_validate(recorded), saved=True)
    caught = state.get("recordError")
    record_error = caught if isinstance(caught, dict) else {}
    error = caught_error(
        record_error.get("Error"), record_error.get("Cause") or "the Record step produced no record"
    )
    observation = Observation.from_dict((state.get("poll") or {}).get("observation"))
    hold_lock = observation.hold_lock
    try:
        record = final_record(
            ExecutionInput.from_event(state), None, observation, execution_arn=None, now=now
        )
    except InvalidExecutionInput as exc:
        restore_id = str(state.get("restoreId") or "unknown")
        record = RestoreRecord(
            id=restore_id,
            restore_id=restore_id,
            source="unknown",
            requested_at=now,
            group_id=str(state.get("groupId") or "unknown"),
            cluster_name=str(state.get("clusterName") or "unknown"),
            target_deployment_item_name=str(state.get("targetDeploymentItemName") or "unknown"),
            target_project_id=str(state.get("targetProjectId") or state.get("groupId") or "unknown"),
            final_status=ERROR,
            finished_at=now,
            error=error_info("InvalidExecutionInput", str(exc)),
        )
    return EndingToTell(record, saved=False, record_error=error.to_json(), hold_lock=hold_lock)
