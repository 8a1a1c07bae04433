"""Which Atlas restore job belongs to a restore whose create answer was lost: the one adoption rule, used by
the Atlas client inside one create call and by the intake when it resumes a crashed attempt.

A job is adopted when it restores the same snapshot into the same target (project and name) and either is
still running (whoever made it, a second restore into that target must not start) or was scheduled at or
after the attempt, less :data:`ADOPTION_TOLERANCE` for clocks that disagree (Atlas schedules a restore a
few seconds after the create, so a job made by the attempt normally lies after it). Newest first.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from flexrestore.domain.ports import JobInfo

ADOPTION_TOLERANCE = timedelta(minutes=5)
_NEVER = datetime.min.replace(tzinfo=UTC)

J = TypeVar("J", bound=JobInfo)


def same_restore(job: JobInfo, *, snapshot_id: str, target_name: str, target_project_id: str) -> bool:
    """The job restores ``snapshot_id`` into that target (a job that leaves a field out is not excluded)."""
    return (
        job.snapshot_id == snapshot_id
        and job.target_deployment_item_name == target_name
        and job.target_project_id in (target_project_id, None)
        and job.delivery_type in ("RESTORE", None)
    )


def adoptable_job(
    jobs: Iterable[J], *, snapshot_id: str, target_name: str, target_project_id: str, attempted_at: datetime
) -> J | None:
    """The job an attempt made at ``attempted_at`` may have created, or None."""
    since = _aware(attempted_at) - ADOPTION_TOLERANCE
    candidates = [
        job
        for job in jobs
        if same_restore(
            job, snapshot_id=snapshot_id, target_name=target_name, target_project_id=target_project_id
        )
        and (
            not job.is_terminal
            or (job.restore_scheduled_date is not None and _aware(job.restore_scheduled_date) >= since)
        )
    ]
    return max(candidates, key=scheduled_key, default=None)


def scheduled_key(job: JobInfo) -> datetime:
    return _aware(job.restore_scheduled_date) if job.restore_scheduled_date is not None else _NEVER


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
