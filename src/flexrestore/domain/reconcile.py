"""The reconciler (scheduled every few minutes): what the intake accepted but could not hand over is never
left behind, and no target stays locked by a restore that has ended or was never recorded.

- A restore still ``handoff: PENDING`` after ``grace`` (the intake died between its record and the start, or
  Step Functions refused the start) gets its execution started, named after it, so a start the intake did
  make is found, not repeated. If that has not worked by the restore's deadline, and no create step ever
  claimed it (``createAttemptedAt``: nothing was sent to Atlas), it ends as ERROR ``HANDOFF_FAILED``: the
  target is freed, the ending counted and told like any other.
- A restore whose execution has ended without writing its final record (DynamoDB refused the Record step
  beyond its retries, or the execution was stopped) is ended here: with the ending its Notify step told
  (the execution's output carries it), else as ERROR ``EXECUTION_ENDED``, which keeps the target's lease
  until it runs out when an Atlas job may exist. The lease is released otherwise, and the ending counted
  and told like any other (not told twice: an ending the Notify step told is only noted as told).
- A restore that has ended without being told (its execution failed to notify: SNS or EventBridge down
  beyond the Notify step's retries; or the reconciler's own telling of an ending failed) is told again once
  no execution of it runs; each channel already delivered is skipped (domain/notifying.py), so nobody is told
  twice. One whose execution did tell, but whose record missed the note, is only noted as told. Restores
  requested more than ``LOOKBACK`` ago are left as they are.
- A target lease older than ``lock_grace`` whose restore has ended (its Record step could not release it) or
  has no record (the intake died between the lease and the record) is released. A restore that ended with its
  create uncertain (``CREATE_UNCERTAIN``), or with a job nobody saw end (``EXECUTION_ENDED``), keeps its lease
  until the lease runs out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flexrestore.clock import parse_iso
from flexrestore.contracts import Notification, RestoreRecord
from flexrestore.contracts.record import ERROR
from flexrestore.domain import notifying
from flexrestore.domain.intake import execution_input_for, hand_over
from flexrestore.domain.outcome import UNCERTAIN, Observation, count_ending, final_record
from flexrestore.domain.ports import (
    Executions,
    ExecutionState,
    Locks,
    Metrics,
    Notifier,
    ReconcileRecords,
)

logger = logging.getLogger("flexrestore.reconcile")

HANDOFF_GRACE = timedelta(minutes=2)  # an intake still at work is not raced
LOCK_GRACE = timedelta(minutes=15)
LOOKBACK = timedelta(days=3)  # how far back restores are looked at for an ending left unrecorded or untold
EXECUTION_ENDED = "EXECUTION_ENDED"
LEASE_KEPT = frozenset({UNCERTAIN, EXECUTION_ENDED})  # endings after which an Atlas job may still run


@dataclass
class Report:
    started: list[str] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    told: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, list[str]]:
        return {
            "started": self.started,
            "ended": self.ended,
            "waiting": self.waiting,
            "told": self.told,
            "released": self.released,
        }


@dataclass
class Reconciler:
    records: ReconcileRecords
    locks: Locks
    executions: Executions
    notifier: Notifier | None
    metrics: Metrics
    poll_deadline_seconds: int
    now: Callable[[], datetime]
    # Tells a waiting verification run that one of its restores ended here (domain/run_steps.py).
    tell_run: Callable[[RestoreRecord], bool] | None = None

    def run(self) -> Report:
        report = Report()
        self._hand_over_what_is_pending(report)
        self._settle_what_executions_left(report)
        self._release_orphaned_leases(report)
        logger.info("reconciled", extra=report.to_dict())
        return report

    def _hand_over_what_is_pending(self, report: Report) -> None:
        now = self.now()
        for record in self.records.pending_handoffs(before=now - HANDOFF_GRACE):
            arn = hand_over(
                record,
                executions=self.executions,
                records=self.records,
                deadline_seconds=self.poll_deadline_seconds,
                metrics=self.metrics,
            )
            if arn is not None:
                report.started.append(record.restore_id)
                continue
            deadline = record.requested_at + timedelta(seconds=self.poll_deadline_seconds)
            if now < deadline:
                report.waiting.append(record.restore_id)
                continue
            message = (
                f"the restore's execution could not be started before its deadline ({deadline.isoformat()}); "
                "nothing was sent to Atlas"
            )
            if not self.records.end_unsent(record.restore_id, code="HANDOFF_FAILED", message=message, at=now):
                continue  # a create step claimed it meanwhile: that execution owns its end
            report.ended.append(record.restore_id)
            if record.lock_id:
                self.locks.release(record.lock_id, record.restore_id)
            ended = self.records.get(record.restore_id)
            if ended is not None:
                count_ending(self.metrics, ended)
                self._tell(ended, report)

    def _tell(self, record: RestoreRecord, report: Report) -> None:
        """Tell an ended restore on every channel not delivered yet (and the verification run waiting for it);
        a failure is left to the next run."""
        self._tell_run(record)
        if self.notifier is None:
            return
        try:
            notifying.tell(record, notifier=self.notifier, deliveries=self.records, now=self.now)
        except Exception:  # the record says which channel failed; the next run tells it again
            logger.exception(
                "could not notify the ended restore %s; the next run tries again", record.restore_id
            )
            return
        report.told.append(record.restore_id)

    def _tell_run(self, record: RestoreRecord) -> None:
        if self.tell_run is None or record.run is None or not record.ended:
            return
        try:
            self.tell_run(record)
        except Exception:  # the run's wait times out and its Finish step reads the record anyway
            logger.exception("could not tell the run of the ended restore %s", record.restore_id)

    def _settle_what_executions_left(self, report: Report) -> None:
        for record in self.records.unsettled(since=self.now() - LOOKBACK):
            if record.handoff == "PENDING" or (not record.ended and not record.execution_arn):
                continue  # the hand-off above takes care of it
            execution = self._execution(record)
            if execution is not None and execution.running:
                continue  # its own steps will record and tell its end
            if not record.ended and execution is not None:
                self._end_after(record, execution, report)
            elif execution is not None and execution.told:
                self._note_told(record, execution)
            else:
                logger.warning("telling an ending nobody was told of", extra={"restoreId": record.restore_id})
                self._tell(record, report)

    def _end_after(self, record: RestoreRecord, execution: ExecutionState, report: Report) -> None:
        """The execution has ended and the record has not: write the final record it could not write."""
        now = self.now()
        output = execution.output or {}
        told = output.get("record") if execution.status == "SUCCEEDED" else None
        if isinstance(told, dict) and told.get("finalStatus"):
            observation = _observation_told(
                RestoreRecord.model_validate(told), output.get("holdLock") is True
            )
        else:
            what = f"{execution.status}" + (f" with {execution.error}" if execution.error else "")
            seen = f"; Atlas's job was last seen {record.status}" if record.restore_job_id else ""
            observation = Observation(
                ERROR,
                now,
                error=notifying.error_info(
                    EXECUTION_ENDED,
                    f"the restore's execution ended ({what}) before it wrote the final record{seen}",
                ),
                hold_lock=record.restore_job_id is not None or record.create_attempted_at is not None,
            )
        start = execution_input_for(record, self.poll_deadline_seconds)
        final = final_record(start, record, observation, execution_arn=record.execution_arn, now=now)
        if not self.records.end_as(final):
            return  # ended meanwhile
        logger.warning(
            "ended a restore its execution left without a final record",
            extra={"restoreId": record.restore_id, "finalStatus": final.final_status},
        )
        report.ended.append(record.restore_id)
        if record.lock_id and not observation.hold_lock:
            self.locks.release(record.lock_id, record.restore_id)
        count_ending(self.metrics, final)
        ended = self.records.get(record.restore_id) or final
        if execution.told:
            self._note_told(ended, execution)
            self._tell_run(ended)
        else:
            self._tell(ended, report)

    def _execution(self, record: RestoreRecord) -> ExecutionState | None:
        if not record.execution_arn:
            return None
        try:
            return self.executions.describe(record.execution_arn)
        except Exception as exc:  # not knowing whether it runs, leave it to the next run
            logger.warning("could not describe the execution: %s", type(exc).__name__)
            return ExecutionState(status="RUNNING")

    def _note_told(self, record: RestoreRecord, execution: ExecutionState) -> None:
        """The execution's Notify step did tell; only the record's note of it was lost (DynamoDB failed)."""
        told = execution.output or {}
        try:
            at = parse_iso(str(told.get("at")))
        except ValueError:
            at = self.now()
        self.records.mark_notification(record.restore_id, Notification(status="SENT", at=at))

    def _release_orphaned_leases(self, report: Report) -> None:
        for holder in self.locks.held_since(before=self.now() - LOCK_GRACE):
            record = self.records.get(holder.restore_id)
            if record is not None and not record.ended:
                continue  # its execution will release it
            if record is not None and record.error is not None and record.error.code in LEASE_KEPT:
                continue  # a job may exist: the lease runs out on its own
            if self.locks.release(holder.lock_id, holder.restore_id):
                logger.warning(
                    "released an orphaned target lease",
                    extra={"lockId": holder.lock_id, "restoreId": holder.restore_id},
                )
                report.released.append(holder.lock_id)


def _observation_told(told: RestoreRecord, hold_lock: bool) -> Observation:
    """The observation behind an ending the Notify step told without a saved record (the execution output)."""
    return Observation(
        told.final_status or ERROR,
        told.noticed_at,
        atlas_status=told.status,
        restore_scheduled_date=told.restore_scheduled_date,
        restore_finished_date=told.restore_finished_date,
        error=told.error,
        hold_lock=hold_lock,
    )
