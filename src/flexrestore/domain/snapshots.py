"""Which snapshot a restore uses. Plain Python: takes what Atlas listed, answers or refuses.

- No ``snapshotId`` (or ``"latest"``): the newest ``COMPLETED`` snapshot that has not expired. None at all is
  refused with ``404 NO_COMPLETED_SNAPSHOT`` (there is nothing restorable; a new one appears within a day).
- An explicit ``snapshotId`` Atlas does not know: ``404`` with Atlas's own errorCode (decided by the caller,
  which sees Atlas's answer).
- An explicit snapshot that is not ``COMPLETED`` (``FAILED``, still ``RUNNING`` ...) or has expired:
  ``409 SNAPSHOT_NOT_RESTORABLE``, the snapshot's state conflicts with restoring it. Nothing is created.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TypeVar

from flexrestore.clock import isoformat
from flexrestore.domain.ports import SnapshotInfo

COMPLETED = "COMPLETED"
_NEVER = datetime.min.replace(tzinfo=UTC)


S = TypeVar("S", bound=SnapshotInfo)


class SnapshotRefused(Exception):
    """The snapshot cannot be used; ``status`` and ``code`` are the HTTP answer."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def choose_snapshot(snapshots: Iterable[S], *, source: str, now: datetime) -> S:
    """The newest restorable snapshot of ``source`` (``<groupId>/<clusterName>``, for messages)."""
    usable = [s for s in snapshots if s.status == COMPLETED and not _expired(s, now)]
    if not usable:
        raise SnapshotRefused(
            404,
            "NO_COMPLETED_SNAPSHOT",
            f"cluster {source} has no COMPLETED snapshot to restore; Atlas takes one a day, starting "
            "24 hours after the cluster was created",
        )
    return max(usable, key=_taken_at)


def check_snapshot(snapshot: S, *, now: datetime) -> S:
    """An explicitly requested snapshot, if it can be restored."""
    if snapshot.status != COMPLETED:
        raise SnapshotRefused(
            409,
            "SNAPSHOT_NOT_RESTORABLE",
            f"snapshot {snapshot.id} is {snapshot.status}; only a COMPLETED snapshot can be restored "
            '(leave snapshotId out or use "latest" for the newest COMPLETED one)',
        )
    if _expired(snapshot, now):
        raise SnapshotRefused(
            409,
            "SNAPSHOT_NOT_RESTORABLE",
            f"snapshot {snapshot.id} expired at {_iso(snapshot.expiration)}; Atlas deletes expired snapshots",
        )
    return snapshot


def _expired(snapshot: SnapshotInfo, now: datetime) -> bool:
    return snapshot.expiration is not None and snapshot.expiration <= now


def _taken_at(snapshot: SnapshotInfo) -> tuple[datetime, str]:
    # finishTime is when the data was captured completely; fall back on the other times Atlas gives,
    # and on the id so the choice is deterministic.
    moment = snapshot.finish_time or snapshot.start_time or snapshot.scheduled_time
    return (moment or _NEVER, snapshot.id)


def _iso(moment: datetime | None) -> str:
    return isoformat(moment) if moment else "an unknown time"
