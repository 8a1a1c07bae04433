"""Snapshot choice: the newest COMPLETED one, or a clear refusal before anything is created."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from flexrestore.domain.snapshots import SnapshotRefused, check_snapshot, choose_snapshot

NOW = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Snap:
    id: str
    status: str = "COMPLETED"
    finish_time: datetime | None = None
    scheduled_time: datetime | None = None
    start_time: datetime | None = None
    expiration: datetime | None = None


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def test_newest_completed_wins_whatever_the_order() -> None:
    snapshots = [
        Snap("a" * 24, finish_time=days_ago(3)),
        Snap("b" * 24, finish_time=days_ago(1)),
        Snap("c" * 24, finish_time=days_ago(2)),
    ]
    assert choose_snapshot(snapshots, source="g/c", now=NOW).id == "b" * 24
    assert choose_snapshot(reversed(snapshots), source="g/c", now=NOW).id == "b" * 24


def test_failed_running_and_expired_snapshots_are_skipped() -> None:
    snapshots = [
        Snap("f" * 24, status="FAILED", finish_time=days_ago(0.1)),
        Snap("e" * 24, status="RUNNING", start_time=days_ago(0.05)),
        Snap("d" * 24, finish_time=days_ago(0.5), expiration=days_ago(0.01)),
        Snap("a" * 24, finish_time=days_ago(2), expiration=NOW + timedelta(days=6)),
    ]
    assert choose_snapshot(snapshots, source="g/c", now=NOW).id == "a" * 24


def test_missing_finish_time_falls_back_on_other_times() -> None:
    snapshots = [Snap("a" * 24, scheduled_time=days_ago(1)), Snap("b" * 24, start_time=days_ago(2))]
    assert choose_snapshot(snapshots, source="g/c", now=NOW).id == "a" * 24


def test_no_completed_snapshot_is_a_404() -> None:
    with pytest.raises(SnapshotRefused) as caught:
        choose_snapshot([Snap("f" * 24, status="FAILED")], source="g/orders-prod", now=NOW)
    assert (caught.value.status, caught.value.code) == (404, "NO_COMPLETED_SNAPSHOT")
    assert "g/orders-prod" in caught.value.message
    with pytest.raises(SnapshotRefused):
        choose_snapshot([], source="g/c", now=NOW)


@pytest.mark.parametrize("status", ["FAILED", "PENDING", "QUEUED", "RUNNING", "CLOSED"])
def test_explicit_snapshot_must_be_completed(status: str) -> None:
    with pytest.raises(SnapshotRefused) as caught:
        check_snapshot(Snap("a" * 24, status=status), now=NOW)
    assert (caught.value.status, caught.value.code) == (409, "SNAPSHOT_NOT_RESTORABLE")
    assert status in caught.value.message and "a" * 24 in caught.value.message


def test_explicit_expired_snapshot_is_refused() -> None:
    with pytest.raises(SnapshotRefused) as caught:
        check_snapshot(Snap("a" * 24, expiration=days_ago(1)), now=NOW)
    assert "expired at 2026-10-31T02:00:00Z" in caught.value.message


def test_explicit_completed_snapshot_is_used() -> None:
    snapshot = Snap("a" * 24, finish_time=days_ago(1), expiration=NOW + timedelta(days=1))
    assert check_snapshot(snapshot, now=NOW) is snapshot
