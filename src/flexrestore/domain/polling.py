"""When to look at a restore job, and what its status means. Plain Python: no AWS, no HTTP.

The poll loop is the state machine's Poll task retrying itself: the poll Lambda raises
``RestoreStillRunning`` while the job is not terminal, and the task's ``Retry`` on that error waits
``POLL_INTERVAL_SECONDS * POLL_BACKOFF_RATE ** n`` (capped at ``POLL_MAX_DELAY_SECONDS``, no jitter)
before the next look. AWS bills one state transition per retry, against three (Task, Choice, Wait) for
a classic loop. The constants below mirror ``statemachine/restore_poll.asl.json`` (a unit test keeps
them equal), so the benchmark and the README can reason about the schedule without running it.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterator
from datetime import datetime, timedelta

# Retrier on RestoreStillRunning (see the ASL file).
POLL_INTERVAL_SECONDS = 10
POLL_BACKOFF_RATE = 1.5
POLL_MAX_DELAY_SECONDS = 90
# Enough retries to outlast the longest allowed deadline (POLL_DEADLINE_SECONDS <= 86400): the deadline,
# checked on every poll, is what ends a restore that never finishes, never this counter.
POLL_MAX_ATTEMPTS = 1000
LONGEST_DEADLINE_SECONDS = 86400

# Observed flex restores finish about 50 s after Atlas's restoreScheduledDate (atlas/README.md §4):
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


def retry_delays(
    *,
    interval: float = POLL_INTERVAL_SECONDS,
    backoff_rate: float = POLL_BACKOFF_RATE,
    max_delay: float = POLL_MAX_DELAY_SECONDS,
    max_attempts: int = POLL_MAX_ATTEMPTS,
) -> Iterator[float]:
    """The waits between looks, exactly as Step Functions computes them for a retrier without jitter."""
    for attempt in range(max_attempts):
        yield min(interval * backoff_rate**attempt, max_delay)


def poll_offsets(first_poll_seconds: float, horizon_seconds: float) -> list[float]:
    """Seconds after the start of the execution at which the loop looks, up to ``horizon_seconds``."""
    offsets = [float(first_poll_seconds)]
    for delay in retry_delays():
        if offsets[-1] >= horizon_seconds:
            break
        offsets.append(offsets[-1] + delay)
    return offsets


def first_look_at_or_after(first_poll_seconds: float, finished_after_seconds: float) -> float:
    """When the loop first sees a job that finishes ``finished_after_seconds`` after the start."""
    for offset in poll_offsets(first_poll_seconds, finished_after_seconds):
        if offset >= finished_after_seconds:
            return offset
    raise ValueError("the retrier runs out of attempts before that time")  # pragma: no cover


def retries_needed(horizon_seconds: float, first_poll_seconds: float = 0.0) -> int:
    """Retries the loop makes to still be looking ``horizon_seconds`` after the start."""
    return len(poll_offsets(first_poll_seconds, horizon_seconds)) - 1


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


def deadline_from(requested_at: datetime, deadline_seconds: int) -> datetime:
    return requested_at + timedelta(seconds=deadline_seconds)
