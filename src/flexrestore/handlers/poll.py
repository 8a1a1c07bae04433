"""Poll Lambda: one look at the Atlas restore job.

Returns the ending (COMPLETED, FAILED, TIMED_OUT, ERROR) as an observation, or raises
``RestoreStillRunning``, which the state machine's retrier turns into the next look (see the ASL file's
Comment).

Atlas faults that outlast the client's own retries (5xx, timeouts, rate limits, unreadable answers) are
ridden out while the outage is shorter than ATLAS_OUTAGE_TOLERANCE_SECONDS: the record keeps
``atlasUnreachableSince`` (set on the first fault, cleared by the next good read) and the poll raises
``RestoreStillRunning``, so the next look follows the normal schedule and separate short hiccups never
add up. Beyond the tolerance the fault propagates as its typed error (``AtlasUnavailable``,
``AtlasRateLimited``, ``AtlasBadResponse``) for the state machine's Atlas retriers, then its Catch-all
(ERROR, recorded and notified, with the cause). A ``Retry-After`` is kept as ``atlasRetryNotBefore``: a
look scheduled before it does not call Atlas. The schedule itself cannot be moved from here, so such a
look costs a transition without an Atlas call; with looks at most 90 s apart that is a few at most.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from flexrestore import clock
from flexrestore.domain import outcome, polling

if TYPE_CHECKING:
    from flexrestore.atlas.errors import AtlasError

logger = Logger()


class RestoreStillRunning(Exception):  # its name is what the retrier matches
    """The job is not terminal yet: the Poll task's retrier waits, then looks again."""


def _record_status(restore_id: str, status: str, at: str) -> None:
    """Live progress for ``GET /restores/{id}``. Best-effort: the loop must not fail on it."""
    from flexrestore.aws.outcomes import RestoreOutcomes
    from flexrestore.settings import get_settings

    try:
        table = get_settings().require("restores_table")
        if RestoreOutcomes(table).record_status(restore_id, status, at):
            logger.info("restore job status changed", extra={"atlasStatus": status, "at": at})
    except Exception as exc:
        logger.warning(
            "could not write the status to the restore record; polling goes on",
            extra={"atlasStatus": status, "errorType": type(exc).__name__, "error": str(exc)},
        )


def _by_public_name(error: AtlasError) -> AtlasError:
    """The same error as its public class: the state machine's retriers match on the class name
    (``AtlasUnavailable``), so a private subclass of the client must not reach Step Functions."""
    from flexrestore.atlas import errors

    public = next(
        cls
        for cls in type(error).__mro__
        if cls.__module__ == errors.__name__ and not cls.__name__.startswith("_")
    )
    if public is type(error):
        return error
    return public(  # type: ignore[no-any-return]
        str(error),
        status=error.status,
        error_code=error.error_code,
        detail=error.detail,
        retryable=error.retryable,
        retry_after=error.retry_after,
    )


def _with_note(error: AtlasError, note: str) -> AtlasError:
    """The same public error, its message followed by ``(note)``: the cause the record and message show."""
    return type(error)(
        f"{error} ({note})",
        status=error.status,
        error_code=error.error_code,
        detail=error.detail,
        retryable=error.retryable,
        retry_after=error.retry_after,
    )


class _AtlasOutage:
    """The restore record's view of an ongoing Atlas outage. Best-effort like ``_record_status``: if
    DynamoDB cannot be read or written, nothing is tolerated (every Atlas fault goes to the state
    machine's Atlas retriers, which then count over the whole loop) and no Retry-After is remembered."""

    def __init__(self, restore_id: str) -> None:
        from flexrestore.aws.outcomes import RestoreOutcomes
        from flexrestore.settings import get_settings

        self.restore_id = restore_id
        self.outcomes: RestoreOutcomes | None = None
        self.since: datetime | None = None
        self.not_before: datetime | None = None
        settings = get_settings()
        self.tolerance = settings.atlas_outage_tolerance_seconds
        try:
            self.outcomes = RestoreOutcomes(settings.require("restores_table"))
            stored = self.outcomes.atlas_outage(restore_id)
        except Exception as exc:
            logger.warning(
                "could not read the Atlas outage state from the restore record; faults are not tolerated",
                extra={"errorType": type(exc).__name__, "error": str(exc)},
            )
            return
        self.since = _moment(stored.get("atlasUnreachableSince"))
        self.not_before = _moment(stored.get("atlasRetryNotBefore"))

    def tolerated(self, now: datetime) -> bool:
        return self.since is not None and polling.outage_tolerated(self.since, now, self.tolerance)

    def fault(self, error: AtlasError, now: datetime) -> None:
        """Note the fault; ``since`` becomes when this outage began (None if it cannot be tracked)."""
        if self.outcomes is None:
            self.since = None
            return
        not_before = polling.look_not_before(now, error.retry_after)
        try:
            since = self.outcomes.note_atlas_fault(
                self.restore_id,
                at=clock.isoformat(now),
                not_before=clock.isoformat(not_before) if not_before else None,
                fault={"code": type(error).__name__, "message": str(error)[:500], "at": clock.isoformat(now)},
            )
        except Exception as exc:
            logger.warning(
                "could not note the Atlas fault on the restore record; it is not tolerated",
                extra={"errorType": type(exc).__name__, "error": str(exc)},
            )
            since = None
        self.since = _moment(since)

    def recovered(self) -> None:
        if self.outcomes is None or (self.since is None and self.not_before is None):
            return
        try:
            self.outcomes.clear_atlas_outage(self.restore_id)
            logger.info("Atlas answered again", extra={"unreachableSince": _iso_or_none(self.since)})
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
            f"Atlas unreachable since {clock.isoformat(self.since)}, {seconds} s, "
            f"beyond the {self.tolerance} s tolerance"
        )


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return outcome.parse_time(value, "atlasUnreachableSince")
    except outcome.InvalidExecutionInput:
        return None


def _iso_or_none(moment: datetime | None) -> str | None:
    return clock.isoformat(moment) if moment else None


@logger.inject_lambda_context(correlation_id_path="restoreId")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from flexrestore.atlas.errors import (
        AtlasBadResponse,
        AtlasError,
        AtlasNotFound,
        AtlasRateLimited,
        AtlasUnavailable,
    )
    from flexrestore.atlas.factory import get_atlas_client

    start = outcome.StartInput.from_event(event)
    now = clock.utcnow()
    if polling.deadline_passed(start.deadline, now):
        logger.warning("deadline reached before the restore finished", extra={"deadline": start.deadline})
        return outcome.observation_timed_out(start, now).to_dict()

    outage = _AtlasOutage(start.restore_id)
    if outage.not_before is not None and now < outage.not_before:
        wait = f"Atlas asked not to call before {clock.isoformat(outage.not_before)} (Retry-After)"
        if outage.tolerated(now):
            logger.info("not looking yet: %s", wait)
            raise RestoreStillRunning(f"restore job {start.restore_job_id}: {wait}; not looking yet")
        raise AtlasRateLimited(
            f"{wait}; {outage.beyond_tolerance(now)}",
            status=429,
            retry_after=(outage.not_before - now).total_seconds(),
        )

    try:
        job = get_atlas_client().get_restore_job(start.group_id, start.cluster_name, start.restore_job_id)
    except AtlasNotFound as exc:
        atlas_said = " ".join(str(part) for part in (exc.status, exc.error_code, exc.detail) if part)
        logger.error("Atlas no longer knows the restore job", extra={"atlas": atlas_said})
        return outcome.observation_job_vanished(start, clock.utcnow(), atlas_said or "HTTP 404").to_dict()
    except (AtlasUnavailable, AtlasRateLimited, AtlasBadResponse) as exc:
        failed_at = clock.utcnow()  # after the call: the client may have spent its retry budget
        outage.fault(exc, failed_at)
        fault = _by_public_name(exc)
        if outage.tolerated(failed_at):
            logger.warning(
                "Atlas fault; riding it out on the normal schedule",
                extra={
                    "errorType": type(fault).__name__,
                    "error": str(fault),
                    "since": _iso_or_none(outage.since),
                },
            )
            raise RestoreStillRunning(
                f"restore job {start.restore_job_id}: Atlas unreachable since "
                f"{_iso_or_none(outage.since)} ({type(fault).__name__}: {fault})"
            ) from None
        raise _with_note(fault, outage.beyond_tolerance(failed_at)) from None
    except AtlasError as exc:
        raise _by_public_name(exc) from None

    outage.recovered()
    observed_at = clock.utcnow()  # after the call: the client may have waited out a Retry-After
    _record_status(start.restore_id, job.status, clock.isoformat(observed_at))
    phase = polling.classify(job.status)
    if phase is polling.Phase.UNKNOWN:
        logger.warning(
            "restore job has a status Atlas does not document; still polling", extra={"status": job.status}
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
    logger.info("restore job ended", extra={"finalStatus": ending.final_status, "atlasStatus": job.status})
    return ending.to_dict()
