"""One restore per target: a per-target lease in RESTORES_TABLE, taken with a DynamoDB conditional write.

Item: ``id = lock#<targetProjectId>#<targetName>``, ``kind = "lock"``, ``restoreId`` (the holder),
``expiresAt`` (epoch seconds), ``acquiredAt`` and ``requestedAt`` (ISO Z; ``requestedAt`` puts the
lock in the ``byKind`` index under ``kind = "lock"`` so operators can list held locks), plus the target.
The item has no ``source``, so it never shows up in the ``bySource`` index next to restore records.

Correctness comes from the condition expressions, never from DynamoDB TTL: TTL deletion is lazy (it
can lag for days), so an expired lease is taken over by the condition ``expiresAt < :now`` while the
stale item is still there. ``expiresAt`` is nevertheless a valid TTL attribute, so the table may use
it to clean up leases that nobody released.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from flexrestore import clock
from flexrestore.aws.clients import client
from flexrestore.aws.codec import condition_failed
from flexrestore.aws.store import translated
from flexrestore.aws.table_schema import BY_KIND_INDEX
from flexrestore.domain.errors import TargetBusy
from flexrestore.domain.ports import LockHolder

__all__ = ["LOCK_KIND", "LockHolder", "TargetBusy", "TargetLocks", "lock_id_for"]

LOCK_KIND = "lock"
_ACQUIRE_ATTEMPTS = 3  # a holder that releases between our write and our read just means: try again


def lock_id_for(target_project_id: str, target_name: str) -> str:
    """The lock item's key for one target (Atlas names a target by project and name)."""
    return f"lock#{target_project_id}#{target_name}"


class TargetLocks:
    """Leases on restore targets. ``now`` defaults to the process clock (a VirtualClock in tests)."""

    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    def acquire(
        self,
        target_project_id: str,
        target_name: str,
        *,
        restore_id: str,
        lease_seconds: int,
        now: float | None = None,
    ) -> str:
        """Take the target's lease for ``restore_id`` and return the lock id.

        Idempotent for the same restore (a retried intake renews its own lease). Raises
        :class:`TargetBusy` naming the holder when another restore's lease has not expired.
        """
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        lock_id = lock_id_for(target_project_id, target_name)
        for _ in range(_ACQUIRE_ATTEMPTS):
            at = clock.current().now() if now is None else now
            acquired_at = _iso(at)
            item = {
                "id": {"S": lock_id},
                "kind": {"S": LOCK_KIND},
                "restoreId": {"S": restore_id},
                "targetProjectId": {"S": target_project_id},
                "targetDeploymentItemName": {"S": target_name},
                "acquiredAt": {"S": acquired_at},
                "requestedAt": {"S": acquired_at},
                "expiresAt": {"N": str(math.ceil(at + lease_seconds))},
            }
            try:
                with translated():
                    client("dynamodb").put_item(
                        TableName=self.table_name,
                        Item=item,
                        # Free, already ours (a retry), or the holder's lease ran out (its loop crashed).
                        ConditionExpression=(
                            "attribute_not_exists(id) OR restoreId = :rid OR expiresAt < :now"
                        ),
                        ExpressionAttributeValues={
                            ":rid": {"S": restore_id},
                            ":now": {"N": str(math.floor(at))},
                        },
                        ReturnValuesOnConditionCheckFailure="ALL_OLD",
                    )
                return lock_id
            except Exception as exc:
                if not condition_failed(exc):
                    raise
                holder = _holder_from(exc, lock_id) or self._read_holder(lock_id)
                if holder is not None:
                    raise TargetBusy(holder.restore_id, lock_id, holder.expires_at) from None
                # The holder released between our write and our read: the target is free, try again.
        raise TargetBusy("unknown", lock_id, None)

    def release(self, lock_id: str, restore_id: str) -> bool:
        """Drop the lease if ``restore_id`` still holds it. True if this call released it.

        A lease already gone (released before, or expired and taken over by another restore) is left
        alone: releasing must never free a target that a newer restore is writing into.
        """
        try:
            client("dynamodb").delete_item(
                TableName=self.table_name,
                Key={"id": {"S": lock_id}},
                ConditionExpression="restoreId = :rid",
                ExpressionAttributeValues={":rid": {"S": restore_id}},
            )
            return True
        except Exception as exc:
            if condition_failed(exc):
                return False
            raise

    def holder(
        self, target_project_id: str, target_name: str, *, now: float | None = None
    ) -> LockHolder | None:
        """Who holds the target's lease now (None if free or expired). For dryRun: reads, never writes."""
        at = clock.current().now() if now is None else now
        holder = self._read_holder(lock_id_for(target_project_id, target_name))
        if holder is None or holder.expires_at < math.floor(at):
            return None
        return holder

    def held_since(self, *, before: datetime, limit: int = 100) -> list[LockHolder]:
        """Leases taken before ``before`` that are still there (expired or not), oldest first: the
        reconciler frees those whose restore has ended or was never recorded."""
        with translated():
            answer = client("dynamodb").query(
                TableName=self.table_name,
                IndexName=BY_KIND_INDEX,
                KeyConditionExpression="#kind = :lock AND requestedAt < :before",
                ExpressionAttributeNames={"#kind": "kind"},
                ExpressionAttributeValues={
                    ":lock": {"S": LOCK_KIND},
                    ":before": {"S": clock.isoformat(before)},
                },
                Limit=limit,
            )
        holders = (_parse_holder(item, item["id"]["S"]) for item in answer.get("Items", []))
        return [holder for holder in holders if holder is not None]

    def _read_holder(self, lock_id: str) -> LockHolder | None:
        with translated():
            answer = client("dynamodb").get_item(
                TableName=self.table_name, Key={"id": {"S": lock_id}}, ConsistentRead=True
            )
        return _parse_holder(answer.get("Item"), lock_id)


def _holder_from(exc: Exception, lock_id: str) -> LockHolder | None:
    # With ReturnValuesOnConditionCheckFailure=ALL_OLD the error carries the item that won.
    response: dict[str, Any] = getattr(exc, "response", {})
    return _parse_holder(response.get("Item"), lock_id)


def _parse_holder(item: dict[str, Any] | None, lock_id: str) -> LockHolder | None:
    if not item or "restoreId" not in item:
        return None
    expires = item.get("expiresAt", {}).get("N")
    return LockHolder(
        restore_id=item["restoreId"]["S"],
        lock_id=lock_id,
        expires_at=int(float(expires)) if expires is not None else 0,
    )


def _iso(epoch: float) -> str:
    return clock.isoformat(clock.from_epoch(epoch))
