"""When to look at a restore job, and what its status means. Plain Python: no AWS, no HTTP.

The poll loop is the state machine's Poll task retrying itself (docs/architecture.md, "The poll loop"):
the poll Lambda raises ``RestoreStillRunning`` while the job is not terminal, and the task's ``Retry`` on
that error waits before the next look; the first look comes ``first_poll_seconds`` after the start.
"""

from __future__ import annotations

import enum
import math
from datetime import datetime, timedelta

# Observed flex restores finish about 50 s after Atlas's restoreScheduledDate (docs/architecture.md):
# the first look comes this long after the scheduled date, then the back-off above takes over.
FIRST_POLL_AFTER_SCHEDULED_SECONDS = 45
# Upper bound of the first wait (the ASL guard sends anything else straight to the first poll).
MAX_FIRST_POLL_SECONDS = 3600

TERMINAL_STATUSES = frozenset({"COMPLETED", "FAILED"})
RUNNING_STATUSES = frozenset({"PENDING", "QUEUED", "RUNNING"})


class Phase(enum.Enum):
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    RUNNING = "RUNNING"  # a documented, non-terminal status
    UNKNOWN = "UNKNOWN"  # not in the documented enum (e.g. CLOSED): not terminal, but worth a log line

    @property
    def is_terminal(self) -> bool:
        return self in (Phase.COMPLETED, Phase.FAILED)


def classify(status: str | None) -> Phase:
    """What an Atlas restore-job status means for the loop. Unknown values keep polling."""
    normalized = (status or "").strip().upper()
    if normalized == "COMPLETED":
        return Phase.COMPLETED
    if normalized == "FAILED":
        return Phase.FAILED
    if normalized in RUNNING_STATUSES:
        return Phase.RUNNING
    return Phase.UNKNOWN


def first_poll_seconds(
    now: datetime,
    restore_scheduled_date: datetime | None,
    *,
    settle_seconds: int = FIRST_POLL_AFTER_SCHEDULED_SECONDS,
) -> int:
    """Seconds from ``now`` until the first look: ``settle_seconds`` after Atlas's scheduled date.

    Without a scheduled date the restore is taken to start now. Never negative (a scheduled date in the
    past means: look soon), never more than ``MAX_FIRST_POLL_SECONDS``. An integer, as a Wait's
    ``SecondsPath`` requires.
    """
    start = restore_scheduled_date if restore_scheduled_date is not None else now
    seconds = math.ceil((start - now).total_seconds() + settle_seconds)
    return max(0, min(MAX_FIRST_POLL_SECONDS, seconds))


def outage_tolerated(unreachable_since: datetime, now: datetime, tolerance_seconds: float) -> bool:
    """Whether an Atlas outage that began at ``unreachable_since`` is still short enough to ride out.

    While it is, the poll keeps to its normal schedule (the job is still running as far as we know);
    beyond it, the fault is raised for the state machine's Atlas retriers, then ends the restore as ERROR.
    The outage starts at the first fault and ends at the next good read, so separate hiccups never add up.
    """
    return (now - unreachable_since).total_seconds() < tolerance_seconds


def look_not_before(now: datetime, retry_after_seconds: float | None) -> datetime | None:
    """When Atlas's ``Retry-After`` lets us look again, or None if it gave none."""
    if retry_after_seconds is None or retry_after_seconds <= 0:
        return None
    return now + timedelta(seconds=retry_after_seconds)


def deadline_passed(deadline: datetime, now: datetime) -> bool:
    """Checked first on every poll: at or after the deadline the restore ends as TIMED_OUT."""
    return now >= deadline
