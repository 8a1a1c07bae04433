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
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flexrestore.domain import notifying
from flexrestore.domain.intake import hand_over
from flexrestore.domain.outcome import count_ending
from flexrestore.domain.ports import Executions, Locks, Metrics, Notifier, ReconcileRecords

logger = logging.getLogger("flexrestore.reconcile")

HANDOFF_GRACE = timedelta(minutes=2)  # an intake still at work is not raced
LOCK_GRACE = timedelta(minutes=15)
UNCERTAIN = "CREATE_UNCERTAIN"


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
        if self.notifier is None:
            return
        try:
            notifying.tell(ended, notifier=self.notifier, deliveries=self.records, now=self.now)
        except Exception:  # the record holds the ending; the next run does not retry the message
            logger.exception("could not notify the ended restore %s", restore_id)

    def _release_orphaned_leases(self, report: Report) -> None:
        for holder in self.locks.held_since(before=self.now() - LOCK_GRACE):
            record = self.records.get(holder.restore_id)
            if record is not None and not record.ended:
                continue  # its execution will release it
            if record is not None and record.error is not None and record.error.code == UNCERTAIN:
                continue  # a job may exist: the lease runs out on its own
            if self.locks.release(holder.lock_id, holder.restore_id):
                logger.warning(
                    "released an orphaned target lease",
                    extra={"lockId": holder.lock_id, "restoreId": holder.restore_id},
                )
                report.released.append(holder.lock_id)
