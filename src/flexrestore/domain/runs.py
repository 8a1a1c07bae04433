"""How a verification run ends: one entry per source (from its final restore record, or why it never
restored), the summary counts, the run's final status, which per-restore messages the plan wants, the one
summary message, the outcome event and the per-plan metrics. Plain Python; the run record's shape is
``contracts/run.py``.

- A source is **verified** when its restore COMPLETED, within ``rtoObjectiveSeconds`` if the plan has one,
  and (once plans validate) its validation SUCCEEDED.
- The run is ``SUCCEEDED`` when every source is verified, ``FAILED`` when none completed (a run with no
  source at all too), ``PARTIAL`` otherwise.
- ``objectiveMet`` is only about restores that completed: a failed restore has no RTO to meet (its
  ``finalStatus`` says what went wrong), so it is null there, as without an objective or a duration.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from flexrestore.contracts import ErrorInfo, RequestedBy, RestoreRecord
from flexrestore.contracts.events import (
    RUN_COMPLETED,
    RUNS_SOURCE,
    OutcomeEvent,
    RunCompleted,
    run_event,
    run_outcome,
)
from flexrestore.contracts.plan import NOTIFY_ALL, NOTIFY_FAILURES, Plan
from flexrestore.contracts.record import COMPLETED, ERROR, FAILED, TIMED_OUT
from flexrestore.contracts.run import (
    PARTIAL,
    REFUSED,
    RUN_FAILED,
    SUCCEEDED,
    RunRecord,
    RunSource,
    RunStatus,
    RunSummary,
    RunTarget,
    SnapshotPick,
    ValidationResult,
)
from flexrestore.domain.messages import MAX_SUBJECT, duration_words, subject_line
from flexrestore.domain.plans import PlannedSource

__all__ = [
    "RUNS_SOURCE",
    "RUN_DETAIL_TYPE",
    "finish_run",
    "is_verified",
    "notify_per_restore",
    "objective_met",
    "refused_source",
    "run_body",
    "run_completed_event",
    "run_event_detail",
    "run_metrics",
    "run_report_lines",
    "run_status",
    "run_subject",
    "source_from_record",
    "summarize",
]

RUN_DETAIL_TYPE: Final = RUN_COMPLETED
RESTORE_NOT_ENDED: Final = "RESTORE_NOT_ENDED"

# CloudWatch metrics of a run, each with the dimension PLAN_DIMENSION = the plan's name.
PLAN_DIMENSION: Final = "plan"
METRIC_SOURCES_VERIFIED: Final = "VerificationSourcesVerified"
METRIC_SOURCES_FAILED: Final = (
    "VerificationSourcesFailed"  # did not complete (failed, timed out, error, refused)
)
METRIC_OBJECTIVES_MISSED: Final = "VerificationObjectivesMissed"
METRIC_RTO_MEDIAN: Final = "VerificationRtoMedianSeconds"
METRIC_RTO_MAX: Final = "VerificationRtoMaxSeconds"
METRIC_RUN_NOT_SUCCEEDED: Final = "VerificationRunNotSucceeded"  # 1 or 0 per run: the alarm's metric
RUN_METRICS: Final = (
    METRIC_SOURCES_VERIFIED,
    METRIC_SOURCES_FAILED,
    METRIC_OBJECTIVES_MISSED,
    METRIC_RTO_MEDIAN,
    METRIC_RTO_MAX,
    METRIC_RUN_NOT_SUCCEEDED,
)

# SNS takes messages up to 256 KiB, EventBridge entries up to 256 KB: room is left for the rest.
MAX_MESSAGE_BYTES: Final = 250_000
MAX_DETAIL_BYTES: Final = 240_000
_CELL_MAX = 40


# --- one source ---------------------------------------------------------------------------------------


def objective_met(duration_seconds: int | None, rto_objective_seconds: int | None) -> bool | None:
    """Whether a measured RTO is within the objective; None without an objective or a duration."""
    if duration_seconds is None or rto_objective_seconds is None:
        return None
    return duration_seconds <= rto_objective_seconds


def source_from_record(
    planned: PlannedSource,
    record: RestoreRecord,
    *,
    rto_objective_seconds: int | None,
    snapshot_taken_at: datetime | None = None,
    snapshot_choice: SnapshotPick | None = None,
    target: RunTarget | None = None,
    validation: ValidationResult | None = None,
) -> RunSource:
    """The run's entry for a source whose restore was made, from the restore's final record. A record
    that has not ended (the run gave up waiting) counts as ``ERROR``."""
    status = record.final_status or ERROR
    error = record.error
    if record.final_status is None:
        error = ErrorInfo(
            code=RESTORE_NOT_ENDED, message=f"restore {record.restore_id} had not ended when the run ended"
        )
    return RunSource(
        index=planned.index,
        origin=planned.origin,
        group_id=record.group_id,
        cluster_name=record.cluster_name,
        target_deployment_item_name=record.target_deployment_item_name,
        target_project_id=record.target_project_id,
        snapshot_id=record.snapshot_id,
        snapshot_taken_at=snapshot_taken_at,
        snapshot_choice=snapshot_choice,
        restore_id=record.restore_id,
        restore_job_id=record.restore_job_id,
        final_status=status,
        duration_seconds=record.duration_seconds,
        objective_met=(
            objective_met(record.duration_seconds, rto_objective_seconds) if status == COMPLETED else None
        ),
        error=error,
        target=target,
        validation=validation,
    )


def refused_source(
    planned: PlannedSource,
    *,
    code: str | None = None,
    message: str | None = None,
    status: str = REFUSED,
    snapshot_id: str | None = None,
    snapshot_taken_at: datetime | None = None,
    snapshot_choice: SnapshotPick | None = None,
) -> RunSource:
    """The run's entry for a source that was never restored: refused when the sources were resolved
    (``planned.refusal``), when no snapshot qualified, or by the intake's validation and guards (its
    errorCode and message). ``status="ERROR"`` for an intake that failed (Atlas or AWS unavailable)
    rather than refused."""
    refusal = planned.refusal
    code = code or (refusal.code if refusal else REFUSED)
    message = message or (refusal.message if refusal else "the source was refused")
    return RunSource.model_validate(
        {
            "index": planned.index,
            "origin": planned.origin,
            "groupId": planned.group_id,
            "clusterName": planned.cluster_name,
            "targetDeploymentItemName": planned.target_deployment_item_name,
            "targetProjectId": planned.target_project_id,
            "snapshotId": snapshot_id,
            "snapshotTakenAt": snapshot_taken_at,
            "snapshotChoice": snapshot_choice,
            "finalStatus": status,
            "error": ErrorInfo(code=code, message=message),
        }
    )


def is_verified(source: RunSource) -> bool:
    """Completed, within the objective, and validated when the plan validates."""
    validated = source.validation is None or source.validation.status == "SUCCEEDED"
    return source.final_status == COMPLETED and source.objective_met is not False and validated


# --- the run --------------------------------------------------------------------------------------------


def summarize(sources: Sequence[RunSource]) -> RunSummary:
    """The run's counts, and the median and the longest RTO of the completed sources."""
    statuses: list[str] = [s.final_status for s in sources]
    completed = [s for s in sources if s.final_status == COMPLETED]
    durations = [s.duration_seconds for s in completed if s.duration_seconds is not None]
    lifetimes = [s.target.existed_seconds for s in sources if s.target is not None and s.target.ephemeral]
    return RunSummary(
        total=len(sources),
        verified=sum(1 for s in sources if is_verified(s)),
        completed=len(completed),
        failed=statuses.count(FAILED),
        timed_out=statuses.count(TIMED_OUT),
        error=statuses.count(ERROR),
        refused=statuses.count(REFUSED),
        objective_missed=sum(1 for s in completed if s.objective_met is False),
        rto_median_seconds=_median(durations),
        rto_max_seconds=max(durations) if durations else None,
        validation_failed=sum(
            1 for s in completed if s.validation is not None and s.validation.status != "SUCCEEDED"
        ),
        cluster_hours=round(sum(s or 0 for s in lifetimes) / 3600, 2) if lifetimes else None,
    )


def _median(values: Sequence[int]) -> int | float | None:
    if not values:
        return None
    middle = statistics.median(values)
    return int(middle) if float(middle).is_integer() else float(middle)


def run_status(summary: RunSummary) -> RunStatus:
    """SUCCEEDED when every source is verified, FAILED when none completed, PARTIAL otherwise."""
    if summary.total > 0 and summary.verified == summary.total:
        return SUCCEEDED
    if summary.completed == 0:
        return RUN_FAILED
    return PARTIAL


def finish_run(
    *,
    run_id: str,
    plan: Plan,
    started_at: datetime,
    finished_at: datetime,
    sources: Iterable[RunSource],
    requested_by: RequestedBy | None = None,
) -> RunRecord:
    """The run record: the sources in the run's order, the summary, the final status."""
    ordered = sorted(sources, key=lambda s: s.index)
    summary = summarize(ordered)
    return RunRecord(
        run_id=run_id,
        plan=plan.name,
        requested_by=requested_by,
        started_at=started_at,
        finished_at=finished_at,
        final_status=run_status(summary),
        rto_objective_seconds=plan.rto_objective_seconds,
        notify=plan.notify,
        sources=ordered,
        summary=summary,
    )


def notify_per_restore(notify: str, final_status: str | None) -> bool:
    """Whether a run's restore that ended ``final_status`` gets its own message, for the plan's ``notify``:
    ALL every one, FAILURES only those that did not complete, SUMMARY none (the summary is always sent)."""
    if notify == NOTIFY_ALL:
        return True
    if notify == NOTIFY_FAILURES:
        return final_status != COMPLETED
    return False


# --- telling people and machines ----------------------------------------------------------------------


def run_subject(record: RunRecord) -> str:
    """e.g. ``Verification PARTIAL: nightly-orders 18/20 restored, 1 over RTO`` (under 100 characters: a
    long plan name is shortened, never the counts)."""
    summary = record.summary or summarize(record.sources)
    status = record.final_status or run_status(summary)
    tail = f" {summary.completed}/{summary.total} restored"
    if summary.objective_missed:
        tail += f", {summary.objective_missed} over RTO"
    if summary.validation_failed:
        tail += f", {summary.validation_failed} failed validation"
    head = f"Verification {status}: "
    room = MAX_SUBJECT - len(head) - len(tail)
    name = record.plan if len(record.plan) <= room else record.plan[: max(room - 1, 0)] + "…"
    return subject_line(f"{head}{name}{tail}")


def run_body(record: RunRecord, *, max_bytes: int = MAX_MESSAGE_BYTES) -> str:
    """For a person at a glance: :func:`run_report_lines`; then the run record as JSON (without its sources
    if the message would be too large for SNS)."""
    document = record.to_json()
    lines = run_report_lines(record)
    text = "\n".join([*lines, "", json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False)])
    if len(text.encode("utf-8")) <= max_bytes:
        return text
    compact = {**document, "sources": [], "sourcesOmitted": len(record.sources)}
    note = (
        f"The run record's {len(record.sources)} sources are left out of this message (too large for it); "
        f"the run record {record.id} and the {RUN_DETAIL_TYPE!r} event hold them."
    )
    return "\n".join(
        [*lines, "", note, "", json.dumps(compact, indent=2, sort_keys=True, ensure_ascii=False)]
    )


def run_report_lines(record: RunRecord) -> list[str]:
    """The readable part of the run's summary message: the subject, the result, a table of the sources
    (status and RTO), the problems (``flexrestore-local --plan`` shows the same)."""
    summary = record.summary or summarize(record.sources)
    document = record.to_json()
    lines = [run_subject(record), ""]
    lines.append(f"Plan:         {record.plan}")
    lines.append(f"Run id:       {record.run_id}")
    lines.append(f"Started:      {document['startedAt']}")
    lines.append(f"Finished:     {document['finishedAt']}")
    lines.append(f"Result:       {_result_words(record, summary)}")
    if summary.rto_max_seconds is not None:
        objective = record.rto_objective_seconds
        aim = f"; objective {duration_words(objective)}" if objective is not None else ""
        median = _seconds_words(summary.rto_median_seconds or 0)
        lines.append(f"RTO:          median {median}, longest {duration_words(summary.rto_max_seconds)}{aim}")
    lines += ["", *_table(record.sources)]
    problems = [s for s in record.sources if s.error is not None]
    if problems:
        lines += ["", "Problems:"]
        lines += [
            "  "
            + _clean(f"#{s.index} {_source_cell(s)} → {_target_cell(s)}: {s.error.code}: {s.error.message}")
            for s in problems
            if s.error is not None
        ]
    return lines


def run_event_detail(record: RunRecord, *, max_bytes: int = MAX_DETAIL_BYTES) -> RunCompleted:
    """The ``Flex Verification Run Completed`` event's detail (``contracts/events.py``, from the ended run
    record). When it is too large for an EventBridge entry, the verified sources are left out
    (``sourcesOmitted`` counts them), then all."""
    detail = run_outcome(record)
    if _size(detail.to_json()) <= max_bytes:
        return detail
    kept = [s for s in record.sources if not is_verified(s)]
    trimmed = run_outcome(record, sources=kept, sources_omitted=len(record.sources) - len(kept))
    if _size(trimmed.to_json()) <= max_bytes:
        return trimmed
    return run_outcome(record, sources=[], sources_omitted=len(record.sources))


def run_completed_event(
    record: RunRecord, *, resources: tuple[str, ...] = (), max_bytes: int = MAX_DETAIL_BYTES
) -> OutcomeEvent:
    """The event an ended run puts on the bus: source ``flexrestore.runs``, its detail as above."""
    return run_event(run_event_detail(record, max_bytes=max_bytes), resources=resources)


def run_metrics(record: RunRecord) -> Mapping[str, float]:
    """The run's metric values, by name (each with the dimension ``plan`` = the plan's name). The RTO
    metrics are left out when no source completed."""
    summary = record.summary or summarize(record.sources)
    values: dict[str, float] = {
        METRIC_SOURCES_VERIFIED: summary.verified,
        METRIC_SOURCES_FAILED: summary.total - summary.completed,
        METRIC_OBJECTIVES_MISSED: summary.objective_missed,
        METRIC_RUN_NOT_SUCCEEDED: 0 if (record.final_status or run_status(summary)) == SUCCEEDED else 1,
    }
    if summary.rto_median_seconds is not None:
        values[METRIC_RTO_MEDIAN] = float(summary.rto_median_seconds)
    if summary.rto_max_seconds is not None:
        values[METRIC_RTO_MAX] = float(summary.rto_max_seconds)
    return values


def _result_words(record: RunRecord, summary: RunSummary) -> str:
    status = record.final_status or run_status(summary)
    words = [f"{status}: {summary.verified} of {summary.total} sources verified"]
    counts = [
        (summary.completed, "completed"),
        (summary.failed, "failed"),
        (summary.timed_out, "timed out"),
        (summary.error, "ended in error"),
        (summary.refused, "refused"),
        (summary.objective_missed, "over the RTO objective"),
        (summary.validation_failed, "failed validation"),
    ]
    details = [f"{count} {what}" for count, what in counts if count]
    return words[0] + (f" ({', '.join(details)})" if details else "")


_HEADERS = ("#", "SOURCE", "TARGET", "SNAPSHOT (UTC)", "STATUS", "RTO", "OBJECTIVE")


def _table(sources: Sequence[RunSource]) -> list[str]:
    rows = [_HEADERS] + [
        (
            str(s.index),
            _source_cell(s),
            _target_cell(s),
            s.snapshot_taken_at.strftime("%Y-%m-%d %H:%M") if s.snapshot_taken_at else "-",
            s.final_status,
            duration_words(s.duration_seconds) or "-",
            _objective_cell(s.objective_met),
        )
        for s in sources
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(_HEADERS))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    ]


def _seconds_words(seconds: float) -> str:
    """``duration_words``, with the half second a median of two can have (``75.5 s``)."""
    if seconds < 120 and not float(seconds).is_integer():
        return f"{seconds:.1f} s"
    return duration_words(round(seconds))


def _objective_cell(met: bool | None) -> str:
    if met is None:
        return "-"
    return "met" if met else "MISSED"


def _source_cell(source: RunSource) -> str:
    return _cut(source.cluster_name or f"({source.origin or 'selector'}: no cluster)")


def _target_cell(source: RunSource) -> str:
    name = source.target.name if source.target is not None and source.target.name else None
    return _cut(name or source.target_deployment_item_name or "-")


def _cut(text: str) -> str:
    text = _clean(text)
    return text if len(text) <= _CELL_MAX else text[: _CELL_MAX - 1] + "…"


def _clean(text: str) -> str:
    """``text`` on one line, without control characters (error messages come from Atlas)."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())


def _size(document: Mapping[str, Any]) -> int:
    return len(json.dumps(document, ensure_ascii=False, default=str).encode("utf-8"))
