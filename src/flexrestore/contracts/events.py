"""The events the service puts on EventBridge for machines: a published, versioned contract.

The envelope: ``source`` ``flexrestore.restores`` for how a restore ended (detail-type ``Flex Restore
Succeeded``, ``Flex Restore Failed``, ``Flex Restore Timed Out`` or ``Flex Restore Errored``, one per
``finalStatus``) and ``flexrestore.runs`` for how a verification run ended (``Flex Verification Run
Completed``); ``resources`` names the restore's Step Functions execution (empty when it never had one).

The detail is a model of its own, built from the record by one function (:func:`restore_outcome`,
:func:`run_outcome`), never the stored record itself: it carries what a consumer needs and nothing the
service keeps for itself (no ``kind``, table keys, ``lockId``, hand-off or notification bookkeeping). Its
``version`` is ``"1"``; a change that can break a consumer (a field removed, renamed or retyped, a value
no longer sent) makes it ``"2"``, while new fields may appear in ``"1"``. Every field is present, ``null``
when it has no value. The JSON Schema of every detail-type is in ``docs/events/`` (``make docs``), and
every contract change is named in CHANGELOG.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from pydantic import ConfigDict, Field

from flexrestore.contracts.base import Contract, Timestamp
from flexrestore.contracts.plan import NotifyPolicy
from flexrestore.contracts.record import (
    COMPLETED,
    ERROR,
    FAILED,
    TIMED_OUT,
    BreakGlass,
    ErrorInfo,
    FinalStatus,
    RequestedBy,
    RestoreRecord,
)
from flexrestore.contracts.run import RunRecord, RunSource, RunStatus, RunSummary

EVENT_VERSION: Final = "1"
RESTORES_SOURCE: Final = "flexrestore.restores"
RUNS_SOURCE: Final = "flexrestore.runs"
EVENT_SOURCES: Final = (RESTORES_SOURCE, RUNS_SOURCE)

RESTORE_SUCCEEDED: Final = "Flex Restore Succeeded"
RESTORE_FAILED: Final = "Flex Restore Failed"
RESTORE_TIMED_OUT: Final = "Flex Restore Timed Out"
RESTORE_ERRORED: Final = "Flex Restore Errored"
RUN_COMPLETED: Final = "Flex Verification Run Completed"
RESTORE_DETAIL_TYPES: Final[Mapping[str, str]] = {
    COMPLETED: RESTORE_SUCCEEDED,
    FAILED: RESTORE_FAILED,
    TIMED_OUT: RESTORE_TIMED_OUT,
    ERROR: RESTORE_ERRORED,
}


def restore_detail_type(final_status: str | None) -> str:
    """The detail-type of a restore's outcome event (a restore without a known ending is an ERROR)."""
    return RESTORE_DETAIL_TYPES.get(final_status or ERROR, RESTORE_ERRORED)


class RestoreOutcome(Contract):
    """How one restore ended: the detail of every flexrestore.restores event."""

    model_config = ConfigDict(title="RestoreOutcome")

    version: Literal["1"] = Field(EVENT_VERSION, description="the detail's contract version")
    restore_id: str = Field(description="32 lowercase hex characters; GET /restores/{restoreId} reads it")
    run_id: str | None = Field(
        None, description="the verification run this restore is part of; null for a restore on its own"
    )
    final_status: FinalStatus = Field(description="how the restore ended")
    status: str | None = Field(
        None,
        description="the last status seen: Atlas's restore job status (COMPLETED, FAILED, or the status it "
        "still had when the restore timed out), or ACCEPTED/CREATING when no job was ever seen",
    )
    group_id: str = Field(description="the source project")
    cluster_name: str = Field(description="the source Flex cluster")
    snapshot_id: str | None = Field(None, description="the snapshot restored")
    target_deployment_item_name: str = Field(description="the target cluster, overwritten by the restore")
    target_project_id: str = Field(description="the target's project")
    restore_job_id: str | None = Field(None, description="Atlas's restore job; null when none was created")
    requested_at: Timestamp
    requested_by: RequestedBy | None = None
    reason: str | None = None
    break_glass: BreakGlass | None = Field(
        None, description="set when a break-glass request was let overwrite a protected target: who, and why"
    )
    finished_at: Timestamp | None = Field(
        None, description="when it ended (Atlas's time when Atlas gave one)"
    )
    duration_seconds: int | None = Field(
        None,
        description="the measured RTO: requestedAt to Atlas's restoreFinishedDate (COMPLETED, FAILED); "
        "null when the restore did not finish",
    )
    duration_source: Literal["atlas", "observed"] | None = Field(
        None, description="atlas: to restoreFinishedDate; observed: Atlas gave none, to when the end was seen"
    )
    atlas_duration_seconds: int | None = Field(
        None, description="Atlas's own part: restoreScheduledDate to restoreFinishedDate"
    )
    error: ErrorInfo | None = Field(None, description="why it did not complete: {code, message}")
    record_saved: bool = Field(
        True,
        description="false when the final record could not be stored: GET /restores/{restoreId} does not "
        "show this ending, the event does",
    )


class RestoreSucceeded(RestoreOutcome):
    """Flex Restore Succeeded: the restore COMPLETED."""

    model_config = ConfigDict(title="RestoreSucceeded")

    final_status: Literal["COMPLETED"] = Field(description="how the restore ended")


class RestoreFailed(RestoreOutcome):
    """Flex Restore Failed: Atlas reports the restore job FAILED."""

    model_config = ConfigDict(title="RestoreFailed")

    final_status: Literal["FAILED"] = Field(description="how the restore ended")


class RestoreTimedOut(RestoreOutcome):
    """Flex Restore Timed Out: the restore had not finished by its deadline."""

    model_config = ConfigDict(title="RestoreTimedOut")

    final_status: Literal["TIMED_OUT"] = Field(description="how the restore ended")


class RestoreErrored(RestoreOutcome):
    """Flex Restore Errored: the service could not see the restore through (Atlas refused the create,
    kept failing, lost the job; the execution could not be started; a fault of the service)."""

    model_config = ConfigDict(title="RestoreErrored")

    final_status: Literal["ERROR"] = Field(description="how the restore ended")


RESTORE_DETAILS: Final[Mapping[str, type[RestoreOutcome]]] = {
    RESTORE_SUCCEEDED: RestoreSucceeded,
    RESTORE_FAILED: RestoreFailed,
    RESTORE_TIMED_OUT: RestoreTimedOut,
    RESTORE_ERRORED: RestoreErrored,
}


def restore_outcome(record: RestoreRecord, *, record_saved: bool = True) -> RestoreOutcome:
    """The outcome event's detail, from the final record (one without a final status is an ERROR)."""
    final_status = record.final_status or ERROR
    return RESTORE_DETAILS[restore_detail_type(final_status)](
        restore_id=record.restore_id,
        run_id=record.run.run_id if record.run is not None else None,
        final_status=final_status,
        status=record.status,
        group_id=record.group_id,
        cluster_name=record.cluster_name,
        snapshot_id=record.snapshot_id,
        target_deployment_item_name=record.target_deployment_item_name,
        target_project_id=record.target_project_id,
        restore_job_id=record.restore_job_id,
        requested_at=record.requested_at,
        requested_by=record.requested_by,
        reason=record.reason,
        break_glass=record.break_glass,
        finished_at=record.finished_at,
        duration_seconds=record.duration_seconds,
        duration_source=record.duration_source,
        atlas_duration_seconds=record.atlas_duration_seconds,
        error=record.error,
        record_saved=record_saved,
    )


class RunCompleted(Contract):
    """How one verification run ended: the detail of the Flex Verification Run Completed event."""

    model_config = ConfigDict(title="RunCompleted")

    version: Literal["1"] = Field(EVENT_VERSION, description="the detail's contract version")
    run_id: str
    plan: str = Field(description="the plan's name")
    final_status: RunStatus = Field(
        description="SUCCEEDED: every source verified; FAILED: none completed; PARTIAL: the rest"
    )
    requested_by: RequestedBy | None = None
    started_at: Timestamp
    finished_at: Timestamp | None = None
    rto_objective_seconds: int | None = Field(None, description="the plan's objective at the time of the run")
    notify: NotifyPolicy | None = None
    summary: RunSummary | None = None
    sources: list[RunSource] = Field(
        default_factory=list, description="per source, in the run's order (see sourcesOmitted)"
    )
    sources_omitted: int = Field(
        0,
        description="sources left out of this event to keep it under EventBridge's 256 KB (the verified ones "
        "first); the run record holds every source",
    )
    error: ErrorInfo | None = Field(
        None, description="why the run as a whole could not restore its sources (e.g. PLAN_NOT_FOUND)"
    )


def run_outcome(
    record: RunRecord, *, sources: list[RunSource] | None = None, sources_omitted: int = 0
) -> RunCompleted:
    """The run event's detail, from the ended run record; ``sources`` when some are left out."""
    if record.final_status is None:
        raise ValueError(f"run {record.run_id} has not ended: it has no final status")
    return RunCompleted(
        run_id=record.run_id,
        plan=record.plan,
        final_status=record.final_status,
        requested_by=record.requested_by,
        started_at=record.started_at,
        finished_at=record.finished_at,
        rto_objective_seconds=record.rto_objective_seconds,
        notify=record.notify,
        summary=record.summary,
        sources=list(record.sources) if sources is None else sources,
        sources_omitted=sources_omitted,
        error=record.error,
    )


@dataclass(frozen=True)
class OutcomeEvent:
    """One event as it goes on the bus: source, detail-type, resources and the detail."""

    source: str
    detail_type: str
    detail: Contract
    resources: tuple[str, ...] = ()

    def detail_json(self) -> dict[str, Any]:
        return self.detail.to_json()


def restore_event(
    record: RestoreRecord, *, record_saved: bool = True, execution_arn: str | None = None
) -> OutcomeEvent:
    """The outcome event of a restore; ``resources`` names its execution (the record's, else
    ``execution_arn``)."""
    detail = restore_outcome(record, record_saved=record_saved)
    execution = record.execution_arn or execution_arn
    return OutcomeEvent(
        source=RESTORES_SOURCE,
        detail_type=restore_detail_type(detail.final_status),
        detail=detail,
        resources=(execution,) if execution else (),
    )


def run_event(detail: RunCompleted, *, resources: tuple[str, ...] = ()) -> OutcomeEvent:
    """The event of an ended verification run."""
    return OutcomeEvent(source=RUNS_SOURCE, detail_type=RUN_COMPLETED, detail=detail, resources=resources)


# What ``resources`` names, by source.
RESOURCES: Final[Mapping[str, str]] = {
    RESTORES_SOURCE: "the restore's Step Functions execution (its ARN); empty when it never had one",
    RUNS_SOURCE: "the run's execution (its ARN), when it has one",
}
# The published detail-types: file name in docs/events/ -> (source, detail-type, detail model).
PUBLISHED: Final[Mapping[str, tuple[str, str, type[Contract]]]] = {
    "flex-restore-succeeded.json": (RESTORES_SOURCE, RESTORE_SUCCEEDED, RestoreSucceeded),
    "flex-restore-failed.json": (RESTORES_SOURCE, RESTORE_FAILED, RestoreFailed),
    "flex-restore-timed-out.json": (RESTORES_SOURCE, RESTORE_TIMED_OUT, RestoreTimedOut),
    "flex-restore-errored.json": (RESTORES_SOURCE, RESTORE_ERRORED, RestoreErrored),
    "flex-verification-run-completed.json": (RUNS_SOURCE, RUN_COMPLETED, RunCompleted),
}
