"""Poll Lambda: one look at the Atlas restore job.

Returns the ending (COMPLETED, FAILED, TIMED_OUT, ERROR) as an observation, or raises
``RestoreStillRunning``, which the state machine's retrier turns into the next look (see the ASL file's
Comment). Atlas faults that outlast the client's own retries propagate as their typed errors
(``AtlasUnavailable``, ``AtlasRateLimited``, ``AtlasBadResponse``) for the Atlas retrier.
"""

from __future__ import annotations

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


@logger.inject_lambda_context(correlation_id_path="restoreId")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from flexrestore.atlas.errors import AtlasError, AtlasNotFound
    from flexrestore.atlas.factory import get_atlas_client

    start = outcome.StartInput.from_event(event)
    now = clock.utcnow()
    if polling.deadline_passed(start.deadline, now):
        logger.warning("deadline reached before the restore finished", extra={"deadline": start.deadline})
        return outcome.observation_timed_out(start, now).to_dict()

    try:
        job = get_atlas_client().get_restore_job(start.group_id, start.cluster_name, start.restore_job_id)
    except AtlasNotFound as exc:
        atlas_said = " ".join(str(part) for part in (exc.status, exc.error_code, exc.detail) if part)
        logger.error("Atlas no longer knows the restore job", extra={"atlas": atlas_said})
        return outcome.observation_job_vanished(start, clock.utcnow(), atlas_said or "HTTP 404").to_dict()
    except AtlasError as exc:
        raise _by_public_name(exc) from None

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
