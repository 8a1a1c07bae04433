"""The create step: the first task of a restore's execution, which asks Atlas for the restore job.

The intake hands a restore over once it is recorded (docs/architecture.md, "The durable hand-off"); from then
on the execution owns it and Step Functions retries this step on its own. Each attempt:

- a restore that has ended already (the reconciler ended a hand-off that never started) ends here too;
- a recorded job is the job (a retry after the create went through);
- a create that was sent before (``createAttemptedAt``) may have reached Atlas: Atlas is asked first, and the
  job it has for this snapshot and target is adopted (domain/jobs.py); if Atlas cannot be asked, the attempt
  fails for a retry, never for a second create;
- otherwise ``createAttemptedAt`` is claimed on the record (conditional: not on an ended restore), then the
  create is sent.

Atlas refusing the create (4xx) ends the restore as ERROR: nothing was created, the target is freed. Atlas
faults (429, 5xx, timeouts, unreadable answers) propagate as their types for the state machine's retriers. At
the deadline, a create that may have reached Atlas and still cannot be checked ends as ERROR
``CREATE_UNCERTAIN`` and keeps the target locked until its lease runs out: a second restore into that target
must not start while the first may exist.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from flexrestore.clock import isoformat
from flexrestore.contracts import ExecutionInput
from flexrestore.contracts.record import ERROR
from flexrestore.domain import polling
from flexrestore.domain.errors import (
    AtlasAuthError,
    AtlasBadRequest,
    AtlasConflict,
    AtlasCredentialsError,
    AtlasError,
    AtlasNotFound,
    ServiceMisconfigured,
)
from flexrestore.domain.jobs import adoptable_job
from flexrestore.domain.notifying import error_info
from flexrestore.domain.outcome import Observation
from flexrestore.domain.ports import Atlas, HandOffRecords, JobInfo

logger = logging.getLogger("flexrestore.handoff")

# Atlas answered: it did not create the job, and retrying the same request cannot change that.
_REFUSALS = (AtlasBadRequest, AtlasNotFound, AtlasConflict, AtlasAuthError, AtlasCredentialsError)


@dataclass(frozen=True)
class Created:
    job: JobInfo
    first_poll_seconds: int


@dataclass(frozen=True)
class Known:
    """The execution was started with its Atlas job already in the input: nothing to create."""


@dataclass(frozen=True)
class Ended:
    """The restore ends without a job to poll (recorded by the Record step, told by the Notify step)."""

    observation: Observation


@dataclass
class CreateStep:
    atlas: Callable[[], Atlas]
    records: HandOffRecords
    now: Callable[[], datetime]

    def run(self, start: ExecutionInput) -> Created | Ended | Known:
        if start.restore_job_id:
            return Known()  # an execution started for a job that exists follows it
        record = self.records.get(start.restore_id)
        if record is None:
            return self._ended("RECORD_MISSING", "the restore has no record; nothing was asked of Atlas")
        if record.ended:
            logger.info(
                "the restore ended before its create step", extra={"finalStatus": record.final_status}
            )
            return self._ended(
                "ENDED_BEFORE_CREATE", f"the restore had ended ({record.final_status}) before the create step"
            )
        try:
            atlas = self.atlas()
        except ServiceMisconfigured as exc:
            return self._ended("SERVICE_MISCONFIGURED", f"service misconfigured: {exc}")
        if record.restore_job_id:
            return self._created(
                start, atlas.get_restore_job(start.group_id, start.cluster_name, record.restore_job_id)
            )
        snapshot_id = str(start.snapshot_id or record.snapshot_id)
        target = {
            "snapshot_id": snapshot_id,
            "target_name": start.target_deployment_item_name,
            "target_project_id": start.target_project_id,
        }
        if record.create_attempted_at is not None:
            # A create was sent before and its answer was lost: Atlas is asked before anything is sent again.
            try:
                jobs = atlas.list_restore_jobs(start.group_id, start.cluster_name)
            except AtlasError as exc:
                if polling.deadline_passed(start.deadline, self.now()):
                    return self._ended(
                        "CREATE_UNCERTAIN",
                        f"a restore job may exist in Atlas (the create was sent at "
                        f"{isoformat(record.create_attempted_at)} and its answer was lost), and Atlas could "
                        f"not be asked before the deadline ({exc}); the target stays locked until its lease "
                        "ends",
                        hold_lock=True,
                    )
                raise
            adopted = adoptable_job(jobs, attempted_at=record.create_attempted_at, **target)
            if adopted is not None:
                logger.info(
                    "adopting the Atlas job an earlier attempt made", extra={"restoreJobId": adopted.id}
                )
                self.records.mark_job_created(
                    start.restore_id, restore_job_id=adopted.id, status=adopted.status, at=self.now()
                )
                return self._created(start, adopted)
        if polling.deadline_passed(start.deadline, self.now()):
            return self._ended(
                "DEADLINE_EXCEEDED", "the Atlas restore job could not be created before the deadline"
            )
        if not self.records.claim_create(start.restore_id, at=self.now()):
            return self._ended("ENDED_BEFORE_CREATE", "the restore ended before its create was sent")
        try:
            job = atlas.create_restore_job(start.group_id, start.cluster_name, **target)
        except _REFUSALS as exc:
            code = exc.error_code or type(exc).__name__
            logger.error("Atlas refused the restore job", extra={"errorCode": code})
            return self._ended(code, f"Atlas refused to create the restore job: {exc}")
        self.records.mark_job_created(
            start.restore_id, restore_job_id=job.id, status=job.status, at=self.now()
        )
        logger.info("Atlas restore job created", extra={"restoreJobId": job.id, "status": job.status})
        return self._created(start, job)

    def _created(self, start: ExecutionInput, job: JobInfo) -> Created:
        first = polling.first_poll_seconds(self.now(), job.restore_scheduled_date)
        left = max(0, int((start.deadline - self.now()).total_seconds()))
        return Created(job=job, first_poll_seconds=min(first, left))

    def _ended(self, code: str, message: str, *, hold_lock: bool = False) -> Ended:
        return Ended(Observation(ERROR, self.now(), error=error_info(code, message), hold_lock=hold_lock))
