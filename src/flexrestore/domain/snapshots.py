"""Which snapshot a restore uses. Plain Python: takes what Atlas listed, answers or refuses.

- No ``snapshotId`` (or ``"latest"``): the newest ``COMPLETED`` snapshot that has not expired. None at all is
  refused with ``404 NO_COMPLETED_SNAPSHOT`` (there is nothing restorable; a new one appears within a day).
- An explicit ``snapshotId`` Atlas does not know: ``404`` with Atlas's own errorCode (decided by the caller,
  which sees Atlas's answer).
- An explicit snapshot that is not ``COMPLETED`` (``FAILED``, still ``RUNNING`` ...) or has expired:
  ``409 SNAPSHOT_NOT_RESTORABLE``, the snapshot's state conflicts with restoring it. Nothing is created.
- A verification run (:func:`choose_snapshot_for_run`): ``LATEST`` as above, or ``RANDOM_WITHIN_WINDOW``, a
  random COMPLETED snapshot of the last ``windowDays`` (so old backups are proven too), seeded by the run id
  and recorded; none in the window is ``404 NO_SNAPSHOT_IN_WINDOW``.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from flexrestore.clock import isoformat
from flexrestore.contracts.plan import LATEST, RANDOM_WITHIN_WINDOW, SnapshotChoice
from flexrestore.contracts.run import SnapshotPick
from flexrestore.domain.ports import SnapshotInfo

COMPLETED = "COMPLETED"
NO_SNAPSHOT_IN_WINDOW = "NO_SNAPSHOT_IN_WINDOW"
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
    return (snapshot_taken_at(snapshot) or _NEVER, snapshot.id)


def _iso(moment: datetime | None) -> str:
    return isoformat(moment) if moment else "an unknown time"


# --- verification runs -------------------------------------------------------------------------------


def run_seed(run_id: str, source_key: str) -> int:
    """The seed of a run's random choice for one source: the first 8 bytes of SHA-256 over
    ``<run_id>\\n<source_key>`` (stable across processes and Python versions, unlike ``hash()``)."""
    digest = hashlib.sha256(f"{run_id}\n{source_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def choose_snapshot_for_run(
    snapshots: Iterable[S], choice: SnapshotChoice, run_id: str, source_key: str, now: datetime
) -> tuple[S, SnapshotPick]:
    """The snapshot a verification run restores for ``source_key`` (``<groupId>/<clusterName>``), and how
    it was chosen (recorded in the run record).

    ``LATEST``: as :func:`choose_snapshot`. ``RANDOM_WITHIN_WINDOW``: uniformly among the COMPLETED,
    unexpired snapshots taken (finished) since ``now`` - ``windowDays``, ordered oldest first, with
    ``random.Random(run_seed(run_id, source_key))``: the same run id picks the same snapshot from the same
    list. Pass the run's start as ``now`` so a retried step sees the same window. None in the window:
    ``404 NO_SNAPSHOT_IN_WINDOW``.
    """
    listed = list(snapshots)
    usable = [s for s in listed if s.status == COMPLETED and not _expired(s, now)]
    if choice.choice == RANDOM_WITHIN_WINDOW and choice.window_days is not None:
        return _random_within_window(usable, choice.window_days, run_id, source_key, now)
    snapshot = choose_snapshot(listed, source=source_key, now=now)
    return snapshot, SnapshotPick(choice=LATEST, candidates=len(usable))


def snapshot_taken_at(snapshot: SnapshotInfo) -> datetime | None:
    """When the snapshot's data was taken, as far as Atlas says (finish, else start, else scheduled time)."""
    return snapshot.finish_time or snapshot.start_time or snapshot.scheduled_time


def _random_within_window(
    usable: list[S], days: int, run_id: str, source_key: str, now: datetime
) -> tuple[S, SnapshotPick]:
    start = now - timedelta(days=days)
    candidates = sorted(
        (s for s in usable if (taken := snapshot_taken_at(s)) is not None and taken >= start), key=_taken_at
    )
    if not candidates:
        plural = "day" if days == 1 else f"{days} days"
        raise SnapshotRefused(
            404,
            NO_SNAPSHOT_IN_WINDOW,
            f"cluster {source_key} has no COMPLETED, unexpired snapshot taken in the {plural} before "
            f"{isoformat(now)} (since {isoformat(start)}); widen snapshot.windowDays or use LATEST",
        )
    seed = run_seed(run_id, source_key)
    position = random.Random(seed).randrange(len(candidates))  # noqa: S311 (a reproducible pick, not a secret)
    return candidates[position], SnapshotPick(
        choice=RANDOM_WITHIN_WINDOW,
        candidates=len(candidates),
        window_days=days,
        window_start=start,
        position=position,
        seed=f"{seed:016x}",
    )
