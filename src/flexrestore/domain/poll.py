"""One look at the Atlas restore job (the poll step): the ending as an :class:`Observation`, or
``RestoreStillRunning`` for the state machine's retrier to look again later (docs/architecture.md, "The
poll loop").

Atlas faults that outlast the client's own retries (5xx, timeouts, rate limits, unreadable answers), and
Atlas credentials that cannot be read for now (Secrets Manager throttled), are ridden out while the outage
is shorter than the tolerance: the record keeps ``atlasUnreachableSince`` (set on the first fault, cleared
by the next good read) and the look raises ``RestoreStillRunning``, so separate short hiccups never add up.
Beyond the tolerance the fault is raised as its typed error for the state machine's Atlas retriers, then its
Catch-all (ERROR). A ``Retry-After`` is kept as ``atlasRetryNotBefore``: a look scheduled before it does not
call Atlas. Without a readable record, nothing is tolerated.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from flexrestore.clock import isoformat
from flexrestore.contracts import ExecutionInput, InvalidExecutionInput
from flexrestore.domain import outcome, polling
from flexrestore.domain.errors import (
    AtlasBadResponse,
    AtlasError,
    AtlasNotFound,
    AtlasRateLimited,
    AtlasUnavailable,
    DependencyUnavailable,
    RestoreStillRunning,
)
from flexrestore.domain.ports import Atlas, OutageState, PollRecords

logger = logging.getLogger("flexrestore.poll")

# What keeps a look from Atlas for now. DependencyUnavailable: the Atlas credentials could not be read
# (Secrets Manager throttled, a cold container): Atlas goes on restoring meanwhile, as in an Atlas outage.
_FAULTS = (AtlasUnavailable, AtlasRateLimited, AtlasBadResponse, DependencyUnavailable)
Fault = AtlasError | DependencyUnavailable


class _Outage:
    """The record's view of an ongoing Atlas outage. Best-effort: if the record cannot be read or written,
    nothing is tolerated (every fault goes to the state machine's Atlas retriers) and no Retry-After is
    remembered."""

    def __init__(self, records: PollRecords, restore_id: str, tolerance: int) -> None:
        self.records: PollRecords | None = records
        self.restore_id = restore_id
        self.tolerance = tolerance
        try:
            state = records.atlas_outage(restore_id)
        except Exception as exc:
            logger.warning(
                "could not read the Atlas outage state from the restore record; faults are not tolerated",
                extra={"errorType": type(exc).__name__, "error": str(exc)},
            )
            self.records, state = None, OutageState()
        self.since = state.since
        self.not_before = state.not_before

    def tolerated(self, now: datetime) -> bool:
        return self.since is not None and polling.outage_tolerated(self.since, now, self.tolerance)

    def fault(self, error: Fault, now: datetime) -> None:
        """Note a fault; ``since`` becomes when this outage began (None if it cannot be tracked)."""
        if self.records is None:
            self.since = None
            return
        not_before = polling.look_not_before(now, error.retry_after)
        try:
            self.since = self.records.note_atlas_fault(
                self.restore_id,
                at=now,
                not_before=not_before,
                code=type(error).__name__,
                message=str(error)[:500],
            )
        except Exception as exc:
            logger.warning(
                "could not note the Atlas fault on the restore record; it is not tolerated",
                extra={"errorType": type(exc).__name__, "error": str(exc)},
            )
            self.since = None

    def recovered(self) -> None:
        if self.records is None or (self.since is None and self.not_before is None):
            return
        try:
            self.records.clear_atlas_outage(self.restore_id)
            logger.info("Atlas answered again", extra={"unreachableSince": _iso(self.since)})
        except Exception as exc:  # the next fault would count from the old start: shorter tolerance only
            logger.warning(
                "could not clear the Atlas outage on the restore record",
                extra={"errorType": type(exc).__name__, "error": str(exc)},
            )

    def beyond_tolerance(self, now: datetime) -> str:
        if self.since is None:
            return "outage not tracked: the restore record could not be read or written"
        seconds = round((now - self.since).total_seconds())
        return (
            f"Atlas unreachable since {isoformat(self.since)}, {seconds} s, "
            f"beyond the {self.tolerance} s tolerance"
        )


def _with_message(fault: Fault, message: str) -> Fault:
    if isinstance(fault, DependencyUnavailable):
        return DependencyUnavailable(fault.code, message, retry_after=fault.retry_after)
    return fault.with_message(message)


def _iso(moment: datetime | None) -> str | None:
    return isoformat(moment) if moment else None


@dataclass
class Poller:
    atlas: Callable[[], Atlas]
    records: PollRecords
    outage_tolerance_seconds: int
    now: Callable[[], datetime]

    def look(self, start: ExecutionInput) -> outcome.Observation:
        """The ending, or ``RestoreStillRunning``; an Atlas fault beyond the tolerance raises its type."""
        job_id = start.restore_job_id
        if not job_id:
            raise InvalidExecutionInput("field 'restoreJobId' is required and must be a non-empty string")
        now = self.now()
        if polling.deadline_passed(start.deadline, now):
            logger.warning(
                "deadline reached before the restore finished", extra={"deadline": _iso(start.deadline)}
            )
            return outcome.observation_timed_out(start, now)

        outage = _Outage(self.records, start.restore_id, self.outage_tolerance_seconds)
        if outage.not_before is not None and now < outage.not_before:
            wait = f"Atlas asked not to call before {isoformat(outage.not_before)} (Retry-After)"
            if outage.tolerated(now):
                logger.info("not looking yet: %s", wait)
                raise RestoreStillRunning(f"restore job {start.restore_job_id}: {wait}; not looking yet")
            raise AtlasRateLimited(
                f"{wait}; {outage.beyond_tolerance(now)}",
                status=429,
                retry_after=(outage.not_before - now).total_seconds(),
            )

        try:
            job = self.atlas().get_restore_job(start.group_id, start.cluster_name, job_id)
        except AtlasNotFound as exc:
            atlas_said = " ".join(str(part) for part in (exc.status, exc.error_code, exc.detail) if part)
            logger.error("Atlas no longer knows the restore job", extra={"atlas": atlas_said})
            return outcome.observation_job_vanished(start, self.now(), atlas_said or "HTTP 404")
        except _FAULTS as fault:
            failed_at = self.now()  # after the call: the client may have spent its retry budget
            outage.fault(fault, failed_at)
            if outage.tolerated(failed_at):
                logger.warning(
                    "Atlas fault; riding it out on the normal schedule",
                    extra={
                        "errorType": type(fault).__name__,
                        "error": str(fault),
                        "since": _iso(outage.since),
                    },
                )
                raise RestoreStillRunning(
                    f"restore job {start.restore_job_id}: Atlas unreachable since "
                    f"{_iso(outage.since)} ({type(fault).__name__}: {fault})"
                ) from None
            raise _with_message(fault, f"{fault} ({outage.beyond_tolerance(failed_at)})") from None

        outage.recovered()
        observed_at = self.now()  # after the call: the client may have waited out a Retry-After
        self._record_status(start.restore_id, job.status, observed_at)
        if polling.classify(job.status) is polling.Phase.UNKNOWN:
            logger.warning(
                "restore job has a status Atlas does not document; still polling",
                extra={"status": job.status},
            )
        ending = outcome.observation_for_job(
            job_id=job.id,
            status=job.status,
            observed_at=observed_at,
            restore_scheduled_date=job.restore_scheduled_date,
            restore_finished_date=job.restore_finished_date,
        )
        if ending is None:
            raise RestoreStillRunning(f"restore job {job.id} is {job.status}")
        logger.info(
            "restore job ended", extra={"finalStatus": ending.final_status, "atlasStatus": job.status}
        )
        return ending

    def _record_status(self, restore_id: str, status: str, at: datetime) -> None:
        """Live progress for ``GET /restores/{id}``. Best-effort: the loop must not fail on it."""
        try:
            if self.records.record_status(restore_id, status, at):
                logger.info("restore job status changed", extra={"atlasStatus": status, "at": isoformat(at)})
        except Exception as exc:
            logger.warning(
                "could not write the status to the restore record; polling goes on",
                extra={"atlasStatus": status, "errorType": type(exc).__name__, "error": str(exc)},
            )
