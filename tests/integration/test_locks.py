"""TargetLocks on moto's DynamoDB: one restore per target; a lease a crashed loop cannot hold forever."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from flexrestore import clock
from flexrestore.aws import locks as locks_module
from flexrestore.aws.clients import client
from flexrestore.aws.locks import TargetBusy, TargetLocks, lock_id_for
from flexrestore.aws.table_schema import BY_KIND_INDEX, BY_SOURCE_INDEX, restores_table_definition
from flexrestore.clock import VirtualClock
from flexrestore.domain.guards import target_lock_verdict
from flexrestore.local.harness import atomic_dynamodb_writes

TABLE = "restores"
PROJECT = "65f1a2b3c4d5e6f708192a3b"
TARGET = "orders-verify"
LEASE = 7200


@pytest.fixture
def virtual_clock() -> VirtualClock:
    c = VirtualClock()
    clock.use(c)
    return c


@pytest.fixture
def locks(virtual_clock: VirtualClock) -> Iterator[TargetLocks]:
    with mock_aws(), atomic_dynamodb_writes():  # DynamoDB's conditional writes are atomic; moto's are not
        client("dynamodb").create_table(**restores_table_definition(TABLE))
        yield TargetLocks(TABLE)


def lock_item(lock_id: str) -> dict[str, Any] | None:
    item: dict[str, Any] | None = (
        client("dynamodb").get_item(TableName=TABLE, Key={"id": {"S": lock_id}}).get("Item")
    )
    return item


def test_acquire_writes_a_lease_item_and_release_removes_it(
    locks: TargetLocks, virtual_clock: VirtualClock
) -> None:
    lock_id = locks.acquire(PROJECT, TARGET, restore_id="r-1", lease_seconds=LEASE)

    assert lock_id == f"lock#{PROJECT}#{TARGET}" == lock_id_for(PROJECT, TARGET)
    item = lock_item(lock_id)
    assert item is not None
    assert item["kind"] == {"S": "lock"}
    assert item["restoreId"] == {"S": "r-1"}
    assert int(item["expiresAt"]["N"]) == int(virtual_clock.now()) + LEASE
    assert item["acquiredAt"] == {"S": "2026-11-01T02:00:00Z"}
    assert "source" not in item  # never listed among a cluster's restores

    assert locks.release(lock_id, "r-1") is True
    assert lock_item(lock_id) is None
    assert locks.release(lock_id, "r-1") is False  # already gone: no error


def test_lock_is_listed_under_kind_lock_and_not_by_source(locks: TargetLocks) -> None:
    locks.acquire(PROJECT, TARGET, restore_id="r-1", lease_seconds=LEASE)
    dynamodb = client("dynamodb")

    def of_kind(kind: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = dynamodb.query(
            TableName=TABLE,
            IndexName=BY_KIND_INDEX,
            KeyConditionExpression="kind = :k",
            ExpressionAttributeValues={":k": {"S": kind}},
        )["Items"]
        return items

    assert [i["id"]["S"] for i in of_kind("lock")] == [lock_id_for(PROJECT, TARGET)]
    assert of_kind("restore") == []
    by_source = dynamodb.scan(TableName=TABLE, IndexName=BY_SOURCE_INDEX)["Items"]
    assert by_source == []


def test_reacquire_by_the_same_restore_is_idempotent_and_renews_the_lease(
    locks: TargetLocks, virtual_clock: VirtualClock
) -> None:
    first = locks.acquire(PROJECT, TARGET, restore_id="r-1", lease_seconds=LEASE)
    virtual_clock.advance(600)
    second = locks.acquire(PROJECT, TARGET, restore_id="r-1", lease_seconds=LEASE)

    assert second == first
    item = lock_item(first)
    assert item is not None
    assert item["restoreId"] == {"S": "r-1"}
    assert int(item["expiresAt"]["N"]) == int(virtual_clock.now()) + LEASE


def test_a_second_restore_is_refused_naming_the_first(
    locks: TargetLocks, virtual_clock: VirtualClock
) -> None:
    lock_id = locks.acquire(PROJECT, TARGET, restore_id="r-1", lease_seconds=LEASE)

    with pytest.raises(TargetBusy) as refused:
        locks.acquire(PROJECT, TARGET, restore_id="r-2", lease_seconds=LEASE)

    busy = refused.value
    assert busy.running_restore_id == "r-1"
    assert busy.lock_id == lock_id
    assert busy.expires_at == int(virtual_clock.now()) + LEASE
    assert "r-1" in str(busy)
    verdict = target_lock_verdict(busy.lock_id, busy.running_restore_id, busy.expires_at)
    assert (verdict.guard, verdict.allowed, verdict.reason, verdict.status) == (
        "target-lock",
        False,
        "target-locked",
        409,
    )
    assert "restore r-1 is already running into this target" in verdict.message
    assert "2026-11-01T04:00:00Z" in verdict.message
    # The loser changed nothing.
    item = lock_item(lock_id)
    assert item is not None and item["restoreId"] == {"S": "r-1"}


def test_other_targets_are_independent(locks: TargetLocks) -> None:
    locks.acquire(PROJECT, TARGET, restore_id="r-1", lease_seconds=LEASE)
    other_project = "65f1a2b3c4d5e6f708192a3c"

    assert locks.acquire(PROJECT, "orders-dr", restore_id="r-2", lease_seconds=LEASE) == lock_id_for(
        PROJECT, "orders-dr"
    )
    assert locks.acquire(other_project, TARGET, restore_id="r-3", lease_seconds=LEASE) == lock_id_for(
        other_project, TARGET
    )


def test_an_expired_lease_is_taken_over(locks: TargetLocks, virtual_clock: VirtualClock) -> None:
    lock_id = locks.acquire(PROJECT, TARGET, restore_id="crashed", lease_seconds=LEASE)

    virtual_clock.advance(LEASE)  # the lease ends exactly now: still held
    with pytest.raises(TargetBusy):
        locks.acquire(PROJECT, TARGET, restore_id="r-2", lease_seconds=LEASE)
    assert locks.holder(PROJECT, TARGET) is not None

    virtual_clock.advance(1)  # one second past the lease: the crashed loop no longer holds it
    assert locks.holder(PROJECT, TARGET) is None
    assert locks.acquire(PROJECT, TARGET, restore_id="r-2", lease_seconds=LEASE) == lock_id
    item = lock_item(lock_id)
    assert item is not None and item["restoreId"] == {"S": "r-2"}

    # The crashed restore's late release must not free the target the new restore writes into.
    assert locks.release(lock_id, "crashed") is False
    item = lock_item(lock_id)
    assert item is not None and item["restoreId"] == {"S": "r-2"}


def test_explicit_now_overrides_the_process_clock(locks: TargetLocks, virtual_clock: VirtualClock) -> None:
    start = virtual_clock.now()
    locks.acquire(PROJECT, TARGET, restore_id="r-1", lease_seconds=60, now=start)
    with pytest.raises(TargetBusy):
        locks.acquire(PROJECT, TARGET, restore_id="r-2", lease_seconds=60, now=start + 30)
    locks.acquire(PROJECT, TARGET, restore_id="r-2", lease_seconds=60, now=start + 61)
    holder = locks.holder(PROJECT, TARGET, now=start + 61)
    assert holder is not None and holder.restore_id == "r-2"


def test_release_by_a_non_holder_does_nothing(locks: TargetLocks) -> None:
    lock_id = locks.acquire(PROJECT, TARGET, restore_id="r-1", lease_seconds=LEASE)

    assert locks.release(lock_id, "r-2") is False

    item = lock_item(lock_id)
    assert item is not None and item["restoreId"] == {"S": "r-1"}
    with pytest.raises(TargetBusy):
        locks.acquire(PROJECT, TARGET, restore_id="r-2", lease_seconds=LEASE)


def test_release_of_a_lock_that_never_existed_is_not_an_error(locks: TargetLocks) -> None:
    assert locks.release(lock_id_for(PROJECT, "never-locked"), "r-1") is False


def test_holder_reports_the_running_restore(locks: TargetLocks) -> None:
    assert locks.holder(PROJECT, TARGET) is None
    locks.acquire(PROJECT, TARGET, restore_id="r-1", lease_seconds=LEASE)
    holder = locks.holder(PROJECT, TARGET)
    assert holder is not None
    assert (holder.restore_id, holder.lock_id) == ("r-1", lock_id_for(PROJECT, TARGET))


@pytest.mark.parametrize("contenders", [2, 8])
def test_simultaneous_acquires_exactly_one_wins(locks: TargetLocks, contenders: int) -> None:
    client("dynamodb")  # build the shared client before the threads race for it
    start = threading.Barrier(contenders)
    winners: list[str] = []
    refusals: list[TargetBusy] = []
    errors: list[BaseException] = []

    def contend(restore_id: str) -> None:
        start.wait()
        try:
            locks.acquire(PROJECT, TARGET, restore_id=restore_id, lease_seconds=LEASE)
            winners.append(restore_id)
        except TargetBusy as busy:
            refusals.append(busy)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=contend, args=(f"r-{n}",)) for n in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(winners) == 1
    assert len(refusals) == contenders - 1
    assert {busy.running_restore_id for busy in refusals} == set(winners)
    item = lock_item(lock_id_for(PROJECT, TARGET))
    assert item is not None and item["restoreId"] == {"S": winners[0]}


def test_holder_is_read_back_when_the_error_does_not_carry_the_item(
    locks: TargetLocks, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Older DynamoDB-compatible stores ignore ReturnValuesOnConditionCheckFailure: read the holder instead.
    monkeypatch.setattr(locks_module, "_holder_from", lambda exc, lock_id: None)
    locks.acquire(PROJECT, TARGET, restore_id="r-1", lease_seconds=LEASE)
    with pytest.raises(TargetBusy) as refused:
        locks.acquire(PROJECT, TARGET, restore_id="r-2", lease_seconds=LEASE)
    assert refused.value.running_restore_id == "r-1"


def test_a_holder_that_releases_between_write_and_read_lets_the_retry_win(
    locks: TargetLocks, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock_id = locks.acquire(PROJECT, TARGET, restore_id="r-1", lease_seconds=LEASE)
    monkeypatch.setattr(locks_module, "_holder_from", lambda exc, lock_id: None)
    read_holder = TargetLocks._read_holder

    def released_just_before_the_read(self: TargetLocks, lock_id: str) -> Any:
        TargetLocks.release(self, lock_id, "r-1")  # the first restore finishes right now
        return read_holder(self, lock_id)

    monkeypatch.setattr(TargetLocks, "_read_holder", released_just_before_the_read)

    assert locks.acquire(PROJECT, TARGET, restore_id="r-2", lease_seconds=LEASE) == lock_id
    item = lock_item(lock_id)
    assert item is not None and item["restoreId"] == {"S": "r-2"}
