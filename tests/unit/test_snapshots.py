"""Snapshot choice: the newest COMPLETED one, or a clear refusal before anything is created."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from flexrestore.contracts.plan import SnapshotChoice
from flexrestore.domain.snapshots import (
    SnapshotRefused,
    check_snapshot,
    choose_snapshot,
    choose_snapshot_for_run,
    run_seed,
)

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


# --- verification runs: LATEST or a random snapshot within a window ----------------------------------

LATEST_CHOICE = SnapshotChoice.model_validate({"choice": "LATEST"})
KEY = "65f1a2b3c4d5e6f708192a3b/orders-prod"


def window(days: int) -> SnapshotChoice:
    return SnapshotChoice.model_validate({"choice": "RANDOM_WITHIN_WINDOW", "windowDays": days})


def daily(count: int, *, prefix: str = "") -> list[Snap]:
    """One COMPLETED snapshot a day, the newest 0.1 days ago."""
    return [Snap(f"{prefix}{i:024x}"[-24:], finish_time=days_ago(i + 0.1)) for i in range(count)]


def test_latest_for_a_run_is_the_newest_completed() -> None:
    snapshots = daily(5)
    chosen, pick = choose_snapshot_for_run(snapshots, LATEST_CHOICE, "run-1", KEY, NOW)
    assert chosen == snapshots[0]
    assert (pick.choice, pick.candidates, pick.seed, pick.position) == ("LATEST", 5, None, None)
    with pytest.raises(SnapshotRefused) as caught:
        choose_snapshot_for_run([], LATEST_CHOICE, "run-1", KEY, NOW)
    assert caught.value.code == "NO_COMPLETED_SNAPSHOT"


def test_the_same_run_id_picks_the_same_snapshots() -> None:
    snapshots = daily(30)
    keys = [f"65f1a2b3c4d5e6f708192a3b/cluster-{i}" for i in range(50)]
    first = [choose_snapshot_for_run(snapshots, window(30), "run-a", key, NOW)[0].id for key in keys]
    again = [
        choose_snapshot_for_run(reversed(snapshots), window(30), "run-a", key, NOW)[0].id for key in keys
    ]
    assert first == again  # whatever order Atlas lists them in


def test_different_run_ids_pick_differently_over_many_sources() -> None:
    snapshots = daily(30)
    keys = [f"65f1a2b3c4d5e6f708192a3b/cluster-{i}" for i in range(50)]
    run_a = [choose_snapshot_for_run(snapshots, window(30), "run-a", key, NOW)[0].id for key in keys]
    run_b = [choose_snapshot_for_run(snapshots, window(30), "run-b", key, NOW)[0].id for key in keys]
    assert sum(a != b for a, b in zip(run_a, run_b, strict=True)) > 35
    assert len(set(run_a)) > 15  # and within a run, the sources do not all get one snapshot


def test_every_snapshot_in_the_window_can_be_picked() -> None:
    snapshots = daily(5)
    picked = {choose_snapshot_for_run(snapshots, window(7), f"run-{i}", KEY, NOW)[0].id for i in range(200)}
    assert picked == {s.id for s in snapshots}


def test_only_completed_unexpired_snapshots_inside_the_window_are_picked() -> None:
    good = [
        Snap("a" * 24, finish_time=days_ago(1)),
        Snap("b" * 24, start_time=days_ago(3)),  # no finish time: the start counts
        Snap("c" * 24, finish_time=days_ago(6.9), expiration=NOW + timedelta(days=1)),
    ]
    bad = [
        Snap("d" * 24, status="FAILED", finish_time=days_ago(2)),
        Snap("e" * 24, status="RUNNING", start_time=days_ago(0.1)),
        Snap("f" * 24, finish_time=days_ago(2), expiration=days_ago(0.5)),  # expired
        Snap("1" * 24, finish_time=days_ago(7.1)),  # outside the window
        Snap("2" * 24),  # no time at all
    ]
    picked = {choose_snapshot_for_run(bad + good, window(7), f"run-{i}", KEY, NOW)[0].id for i in range(100)}
    assert picked == {s.id for s in good}
    assert choose_snapshot_for_run(bad + good, window(7), "r", KEY, NOW)[1].candidates == 3


def test_the_pick_is_recorded_so_it_can_be_explained() -> None:
    snapshots = daily(10)
    chosen, pick = choose_snapshot_for_run(snapshots, window(30), "run-1", KEY, NOW)
    assert pick.seed == "8c3209368cf0d23d" == f"{run_seed('run-1', KEY):016x}"  # SHA-256, not hash()
    assert (pick.choice, pick.window_days, pick.candidates) == ("RANDOM_WITHIN_WINDOW", 30, 10)
    assert pick.window_start == NOW - timedelta(days=30)
    # Anyone can redo it: the candidates oldest first, then Random(seed).randrange(candidates).
    oldest_first = sorted(snapshots, key=lambda s: (s.finish_time, s.id))
    assert pick.position == random.Random(int(pick.seed, 16)).randrange(pick.candidates)
    assert chosen == oldest_first[pick.position]
    assert pick.to_json()["windowStart"] == "2026-10-02T02:00:00Z"


def test_no_snapshot_in_the_window_is_refused_naming_the_window() -> None:
    old = [Snap("a" * 24, finish_time=days_ago(40)), Snap("b" * 24, status="FAILED", finish_time=days_ago(1))]
    with pytest.raises(SnapshotRefused) as caught:
        choose_snapshot_for_run(old, window(30), "run-1", KEY, NOW)
    assert (caught.value.status, caught.value.code) == (404, "NO_SNAPSHOT_IN_WINDOW")
    assert "30 days before 2026-11-01T02:00:00Z" in caught.value.message and KEY in caught.value.message
    with pytest.raises(SnapshotRefused, match="in the day before"):
        choose_snapshot_for_run(old, window(1), "run-1", KEY, NOW)
