"""The reconciler (scheduled every few minutes): what the intake accepted but could not hand over is never
left behind, and no target stays locked by a restore that has ended or was never recorded.

- A restore still ``handoff: PENDING`` after ``grace`` (the intake died between its record and the start, or
  Step Functions refused the start) gets its execution started, named after it, so a start the intake did
  make is found, not repeated. If that has not worked by the restore's deadline, and no create step ever
  claimed it (``createAttemptedAt``: nothing was sent to Atlas), it ends as ERROR ``HANDOFF_FAILED``: the
  target is freed, the ending counted and told like any other.
- A target lease older than ``lock_grace`` whose restore has ended (its Record step could not release it) or
  has no record (the intake died between the lease and the record) is released. A restore that ended with its
  create uncertain (``CREATE_UNCERTAIN``) keeps its lease until the lease runs out.
- A restore that has not ended but whose execution has (failed, timed out or was stopped before its Record
  step, e.g. by an operator) ends as ERROR ``EXECUTION_ENDED``, counted and told. Every restore that has not
  ended holds a lease, so the leases are the index of open restores. If a create was sent, a job may be
  running in Atlas: the lease is kept until it runs out; otherwise it is released.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flexrestore.contracts import RestoreRecord
from flexrestore.domain import notifying
from flexrestore.domain.intake import hand_over
from flexrestore.domain.outcome import count_ending
from flexrestore.domain.ports import Executions, Locks, Metrics, Notifier, ReconcileRecords

logger = logging.getLogger("flexrestore.reconcile")

HANDOFF_GRACE = timedelta(minutes=2)  # an intake still at work is not raced
LOCK_GRACE = timedelta(minutes=15)
UNCERTAIN = "CREATE_UNCERTAIN"
EXECUTION_ENDED = "EXECUTION_ENDED"
_ENDED_EXECUTION = ("FAILED", "TIMED_OUT", "ABORTED")


@dataclass
class Report:
    started: list[str] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, list[str]]:
        return {
            "started": self.started,
            "ended": self.ended,
            "waiting": self.waiting,
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
            self._tell(record.restore_id)

    def _tell(self, restore_id: str) -> None:
        ended = self.records.get(restore_id)
        if ended is None:
            return
        count_ending(self.metrics, ended)
        if self.notifier is not None:
            try:
                notifying.tell(ended, notifier=self.notifier, deliveries=self.records, now=self.now)
            except Exception:  # the record holds the ending; the next run does not retry the message
                logger.exception("could not notify the ended restore %s", restore_id)
        if self.tell_run is not None and ended.run is not None:
            try:
                self.tell_run(ended)
            except Exception:  # the run's wait times out and its Finish step reads the record anyway
                logger.exception("could not tell the run of the ended restore %s", restore_id)

    def _release_orphaned_leases(self, report: Report) -> None:
        for holder in self.locks.held_since(before=self.now() - LOCK_GRACE):
            record = self.records.get(holder.restore_id)
            if record is not None and not record.ended:
                self._end_abandoned(record, report)  # else its execution will release it
                continue
            if record is not None and record.error is not None and record.error.code == UNCERTAIN:
                continue  # a job may exist: the lease runs out on its own
            if self.locks.release(holder.lock_id, holder.restore_id):
                logger.warning(
                    "released an orphaned target lease",
                    extra={"lockId": holder.lock_id, "restoreId": holder.restore_id},
                )
                report.released.append(holder.lock_id)

    def _end_abandoned(self, record: RestoreRecord, report: Report) -> bool:
        """End a restore whose execution has ended without recording it; True if it did."""
        if not record.execution_arn or record.handoff is not None:
            return False
        status = self.executions.status(record.execution_arn)
        if status not in _ENDED_EXECUTION:
            return False
        message = f"the restore's execution ended {status} before recording an outcome" + (
            "; an Atlas restore job may exist, so the target stays locked until its lease runs out"
            if record.create_attempted_at
            else "; nothing was sent to Atlas"
        )
        if not self.records.end_abandoned(
            record.restore_id, code=EXECUTION_ENDED, message=message, at=self.now()
        ):
            return False
        report.ended.append(record.restore_id)
        if record.lock_id and record.create_attempted_at is None:
            self.locks.release(record.lock_id, record.restore_id)
        self._tell(record.restore_id)
        return True
