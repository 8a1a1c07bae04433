"""The sweeper (scheduled every few minutes): no ephemeral cluster outlives its run. Plain Python over the
ports; ``handlers/sweep.py`` runs it.

It reads the runs table's sparse index of source items whose cluster may still exist (``liveCluster``,
set before a create is sent, removed once Atlas no longer has the cluster or the deletion guard refused
it), so it only ever looks at clusters this service recorded creating; it never lists a project for
clusters to delete, and a cluster the service did not create (``frv-decoy0-001``) is never a candidate.

For each such cluster whose **run has ended** (its run record is written, or its execution is no longer
running: the run crashed or was stopped) and whose **retention has passed** (``retainUntil``), and whose
restore is not still running, it does what the run's Cleanup step does (``domain/run_targets.py``): the
deletion guard (``domain/ephemeral.py``), the delete, and a wait of up to ``SWEEP_WAIT_SECONDS`` for Atlas
to no longer have it (what is still deleting is confirmed by the next sweep). Every deletion goes on the
run record: on the source item, on the ended run's source entry and its summary's ``clusterHours``. A run
whose execution ended without finishing (a crash) is finished by the sweeper once none of its clusters is
left (``RUN_ABORTED``), so its record, message and event still come.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from flexrestore import clock
from flexrestore.contracts import ErrorInfo
from flexrestore.contracts.plan import Plan
from flexrestore.contracts.run import RunRecord, RunTarget
from flexrestore.domain.ports import ExecutionStatus, RestoreRecordsRead, RunState, RunStore, SourceState
from flexrestore.domain.run_targets import GONE_LOOK_SECONDS, AtlasBusy, TargetLife

logger = logging.getLogger("flexrestore.sweeper")

RUN_ABORTED: Final = "RUN_ABORTED"
# How long one sweep waits for the deletes it sent (Atlas: 30 to 47 s); the next sweep confirms the rest.
SWEEP_WAIT_SECONDS: Final = 75.0
# A run whose execution Step Functions no longer knows is taken as ended this long after it started.
RUN_MAX_SECONDS: Final = 2 * 86400
_RUNNING: Final = "RUNNING"


@dataclass
class SweepReport:
    deleted: list[str] = field(default_factory=list)
    deleting: list[str] = field(default_factory=list)
    retained: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # their run or restore still runs
    runs_finished: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "clustersDeleted": self.deleted,
            "clustersDeleting": self.deleting,
            "clustersRetained": self.retained,
            "deletionsRefused": self.refused,
            "clustersWaiting": self.waiting,
            "runsFinished": self.runs_finished,
        }


@dataclass
class Sweeper:
    runs: RunStore
    targets: Callable[[], TargetLife]
    restores: RestoreRecordsRead
    executions: Callable[[], ExecutionStatus]
    finish_run: Callable[[str, str, ErrorInfo], RunRecord]
    now: Callable[[], datetime]
    seconds: Callable[[], float] = clock.seconds
    sleep: Callable[[float], None] = clock.sleep

    def sweep(self, *, budget_seconds: float) -> SweepReport:
        report = SweepReport()
        by_run: dict[str, list[SourceState]] = defaultdict(list)
        for source in self.runs.live_targets():
            if source.run_id is not None:
                by_run[source.run_id].append(source)
        until = self.seconds() + min(budget_seconds, SWEEP_WAIT_SECONDS)
        pending: list[tuple[RunState, SourceState, RunTarget]] = []
        latest: dict[tuple[str, int], RunTarget] = {}  # what each target's record is now
        crashed: dict[str, RunState] = {}
        left: dict[str, int] = {}
        for run_id, sources in sorted(by_run.items()):
            state = self.runs.run_state(run_id)
            if state is None or not state.plan:
                continue
            ended = self._ended(state)
            names = [str(s.target.name if s.target else s.index) for s in sources]
            if ended is None:
                report.waiting += names
                continue
            if ended == "crashed":
                crashed[run_id] = state
            plan = Plan.model_validate(state.plan)
            left[run_id] = 0
            for source in sources:
                name = str(source.target.name if source.target else source.index)
                if self._restore_running(source):
                    report.waiting.append(name)
                    left[run_id] += 1
                    continue
                try:
                    what, target = self.targets().clean(state, source, plan, wait_seconds=0)
                except AtlasBusy as busy:
                    logger.warning("sweeper: Atlas busy, %s left for the next sweep: %s", name, busy)
                    report.waiting.append(name)
                    left[run_id] += 1
                    continue
                if target is not None and target != source.target:
                    latest[(run_id, source.index)] = target
                if what == "deleting" and target is not None:
                    pending.append((state, source, target))
                elif what == "retained":
                    report.retained.append(name)
                    left[run_id] += 1
                elif what == "refused":
                    report.refused.append(name)
                elif what == "gone":
                    report.deleted.append(name)
        gone, still = self._wait(pending, until, report)
        for state, source, target in gone:
            latest[(state.record.run_id, source.index)] = target
        for state, _, _ in still:
            left[state.record.run_id] += 1
        changed: dict[str, list[tuple[int, RunTarget]]] = defaultdict(list)
        for (run_id, index), target in latest.items():
            changed[run_id].append((index, target))
        for run_id, updates in changed.items():
            self._record_on_ended_run(run_id, updates)
        for run_id, state in crashed.items():
            if left.get(run_id, 0) == 0:
                self._finish_crashed(state, report)
        if any((report.deleted, report.refused, report.runs_finished)):
            logger.info("sweep", extra={"sweep": report.to_dict()})
        return report

    def _ended(self, state: RunState) -> str | None:
        """``finished``, ``crashed`` (its execution ended without finishing it), or None: it still runs."""
        head = state.record
        if head.finished_at is not None:
            return "finished"
        status = self.executions().status(head.execution_arn) if head.execution_arn else None
        if status == _RUNNING:
            return None
        if status is None and self.now() - head.started_at < timedelta(seconds=RUN_MAX_SECONDS):
            return None
        return "crashed"

    def _restore_running(self, source: SourceState) -> bool:
        if source.restore_id is None:
            return False
        record = self.restores.get(source.restore_id)
        return record is not None and not record.ended

    def _wait(
        self,
        pending: list[tuple[RunState, SourceState, RunTarget]],
        until: float,
        report: SweepReport,
    ) -> tuple[list[tuple[RunState, SourceState, RunTarget]], list[tuple[RunState, SourceState, RunTarget]]]:
        """Wait for the deletes sent in this sweep: ``(gone, still deleting at until)``."""
        done: list[tuple[RunState, SourceState, RunTarget]] = []
        while pending and self.seconds() + GONE_LOOK_SECONDS <= until:
            self.sleep(GONE_LOOK_SECONDS)
            still: list[tuple[RunState, SourceState, RunTarget]] = []
            for state, source, target in pending:
                try:
                    gone = self.targets().look_gone(state.record.run_id, source.index, target)
                except AtlasBusy:
                    gone = None
                if gone is None:
                    still.append((state, source, target))
                else:
                    report.deleted.append(str(target.name))
                    done.append((state, source, gone))
            pending = still
        report.deleting += [str(t.name) for _, _, t in pending]
        return done, pending

    def _record_on_ended_run(self, run_id: str, updates: list[tuple[int, RunTarget]]) -> None:
        """An ended run's record shows its targets' later life, and its summary the cluster-hours."""
        wrote = [self.runs.update_ended_source(run_id, index, target) for index, target in updates]
        if not any(wrote):
            return
        record = self.runs.get_run(run_id)
        if record is None:
            return
        lifetimes = [
            s.target.existed_seconds for s in record.sources if s.target is not None and s.target.ephemeral
        ]
        hours = round(sum(s or 0 for s in lifetimes) / 3600, 2) if lifetimes else None
        self.runs.set_cluster_hours(run_id, hours)

    def _finish_crashed(self, state: RunState, report: SweepReport) -> None:
        head = state.record
        status = self.executions().status(head.execution_arn) if head.execution_arn else None
        error = ErrorInfo(
            code=RUN_ABORTED,
            message=f"the run's execution ended ({status or 'unknown to Step Functions'}) before the run "
            "finished; the sweeper deleted its clusters and ended it",
        )
        try:
            self.finish_run(head.run_id, head.plan, error)
        except Exception:
            logger.exception("sweeper: could not finish the crashed run %s", head.run_id)
            return
        report.runs_finished.append(head.run_id)
