"""Restore records in RESTORES_TABLE, as the poll loop writes them: live status and timeline while the
restore runs, the final record at the end, the notification state after that. One adapter, one table.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flexrestore.aws.clients import client


def _is_condition_failure(exc: Exception) -> bool:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return False
    return bool(response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")


def _plain(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal: give JSON-friendly ints and floats."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | set):
        return [_plain(item) for item in value]
    return value


def _dynamo_ready(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {key: _dynamo_ready(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_dynamo_ready(item) for item in value]
    return value


def to_item(record: dict[str, Any]) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeSerializer

    serializer = TypeSerializer()
    return {key: serializer.serialize(_dynamo_ready(value)) for key, value in record.items()}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    return {key: _plain(deserializer.deserialize(value)) for key, value in item.items()}


class RestoreOutcomes:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    def get(self, restore_id: str) -> dict[str, Any] | None:
        answer = client("dynamodb").get_item(
            TableName=self.table_name, Key={"id": {"S": restore_id}}, ConsistentRead=True
        )
        item = answer.get("Item")
        return from_item(item) if item else None

    def record_status(self, restore_id: str, status: str, at: str) -> bool:
        """Append ``status`` to the record's timeline if it differs from the latest one. True if it did.

        Conditional, so two overlapping polls cannot append the same status twice, and a record the intake
        never wrote is not created half-empty here.
        """
        try:
            client("dynamodb").update_item(
                TableName=self.table_name,
                Key={"id": {"S": restore_id}},
                UpdateExpression=(
                    "SET #status = :status, #timeline = list_append(if_not_exists(#timeline, :empty), :entry)"
                ),
                ConditionExpression=(
                    "attribute_exists(id) AND attribute_not_exists(finalStatus) "
                    "AND (attribute_not_exists(#status) OR #status <> :status)"
                ),
                ExpressionAttributeNames={"#status": "status", "#timeline": "timeline"},
                ExpressionAttributeValues={
                    ":status": {"S": status},
                    ":empty": {"L": []},
                    ":entry": {"L": [{"M": {"status": {"S": status}, "at": {"S": at}}}]},
                },
            )
            return True
        except Exception as exc:
            if _is_condition_failure(exc):
                return False
            raise

    # Atlas outage tracking (the poll step): ``atlasUnreachableSince`` from the first fault of an outage,
    # ``atlasRetryNotBefore`` from Atlas's Retry-After, ``atlasFault`` the latest fault; all three go at
    # the next good read.
    _OUTAGE_NAMES = {
        "#since": "atlasUnreachableSince",
        "#notBefore": "atlasRetryNotBefore",
        "#fault": "atlasFault",
    }

    def atlas_outage(self, restore_id: str) -> dict[str, Any]:
        """The record's outage fields (empty when Atlas answered the last look, or there is no record)."""
        answer = client("dynamodb").get_item(
            TableName=self.table_name,
            Key={"id": {"S": restore_id}},
            ConsistentRead=True,
            ProjectionExpression="#since, #notBefore, #fault",
            ExpressionAttributeNames=self._OUTAGE_NAMES,
        )
        return from_item(answer.get("Item") or {})

    def note_atlas_fault(
        self, restore_id: str, *, at: str, not_before: str | None, fault: dict[str, Any]
    ) -> str | None:
        """Record a fault; returns when the outage began (``at`` if this is its first fault), or None if
        the restore has no record or has already ended."""
        update = "SET #since = if_not_exists(#since, :at), #fault = :fault"
        values: dict[str, Any] = {":at": {"S": at}, ":fault": to_item({"f": fault})["f"]}
        if not_before is not None:
            update += ", #notBefore = :notBefore"
            values[":notBefore"] = {"S": not_before}
        else:
            update += " REMOVE #notBefore"
        try:
            answer = client("dynamodb").update_item(
                TableName=self.table_name,
                Key={"id": {"S": restore_id}},
                UpdateExpression=update,
                ConditionExpression="attribute_exists(id) AND attribute_not_exists(finalStatus)",
                ExpressionAttributeNames=self._OUTAGE_NAMES,
                ExpressionAttributeValues=values,
                # Not UPDATED_NEW: an if_not_exists that keeps the old value may count as "not updated".
                ReturnValues="ALL_NEW",
            )
        except Exception as exc:
            if _is_condition_failure(exc):
                return None
            raise
        since = from_item(answer.get("Attributes") or {}).get("atlasUnreachableSince")
        return str(since) if since else None

    def clear_atlas_outage(self, restore_id: str) -> None:
        """Atlas answered: the outage is over (the next fault starts a new one)."""
        try:
            client("dynamodb").update_item(
                TableName=self.table_name,
                Key={"id": {"S": restore_id}},
                UpdateExpression="REMOVE #since, #notBefore, #fault",
                ConditionExpression="attribute_exists(id) AND attribute_not_exists(finalStatus)",
                ExpressionAttributeNames=self._OUTAGE_NAMES,
            )
        except Exception as exc:
            if not _is_condition_failure(exc):
                raise

    def save_final(self, record: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Write the final record once. Returns ``(record as stored, written by this call)``.

        A record that already has a final status is left as it is (a retried Record step, or a second
        execution for the same restore): the first ending wins and is what gets notified.
        """
        try:
            client("dynamodb").put_item(
                TableName=self.table_name,
                Item=to_item(record),
                ConditionExpression="attribute_not_exists(finalStatus)",
            )
            return record, True
        except Exception as exc:
            if not _is_condition_failure(exc):
                raise
        stored = self.get(str(record["id"]))
        return (stored or record), False

    def open_notification(self, restore_id: str) -> dict[str, Any]:
        """The record's ``notification`` map (what earlier Notify attempts sent), created empty if absent.

        One UpdateItem, whose returned item is strongly consistent, so a retried Notify step sees every
        channel an earlier attempt marked SENT. Raises if the record does not exist (nothing to track on).
        """
        answer = client("dynamodb").update_item(
            TableName=self.table_name,
            Key={"id": {"S": restore_id}},
            UpdateExpression="SET #notification = if_not_exists(#notification, :empty)",
            ConditionExpression="attribute_exists(id)",
            ExpressionAttributeNames={"#notification": "notification"},
            ExpressionAttributeValues={":empty": {"M": {}}},
            ReturnValues="ALL_NEW",
        )
        notification = from_item(answer.get("Attributes") or {}).get("notification")
        return notification if isinstance(notification, dict) else {}

    def mark_channel(self, restore_id: str, channel: str, delivery: dict[str, Any]) -> bool:
        """Set ``notification.<channel>`` unless that channel is already SENT. True if it was set.

        Needs the map :meth:`open_notification` creates. A SENT entry is never overwritten: not by a
        failure, nor by a second delivery (an overlapping attempt, which then knows it sent twice).
        """
        try:
            client("dynamodb").update_item(
                TableName=self.table_name,
                Key={"id": {"S": restore_id}},
                UpdateExpression="SET #notification.#channel = :delivery",
                ConditionExpression=(
                    "attribute_exists(#notification) AND "
                    "(attribute_not_exists(#notification.#channel.#status) "
                    "OR #notification.#channel.#status <> :sent)"
                ),
                ExpressionAttributeNames={
                    "#notification": "notification",
                    "#channel": channel,
                    "#status": "status",
                },
                ExpressionAttributeValues={
                    ":delivery": to_item({"d": delivery})["d"],
                    ":sent": {"S": "SENT"},
                },
            )
            return True
        except Exception as exc:
            if _is_condition_failure(exc):
                return False
            raise

    def mark_notification(self, restore_id: str, notification: dict[str, Any]) -> None:
        """Set the overall ``notification.status``/``at`` (and any other key given), keeping the
        per-channel entries; on a record without the map, write the map whole."""
        names = {"#notification": "notification"}
        values: dict[str, Any] = {}
        assignments = []
        for index, (key, value) in enumerate(notification.items()):
            names[f"#k{index}"] = key
            values[f":v{index}"] = to_item({"v": value})["v"]
            assignments.append(f"#notification.#k{index} = :v{index}")
        try:
            client("dynamodb").update_item(
                TableName=self.table_name,
                Key={"id": {"S": restore_id}},
                UpdateExpression="SET " + ", ".join(assignments),
                ConditionExpression="attribute_exists(#notification)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
            return
        except Exception as exc:
            if not _is_condition_failure(exc):
                raise
        client("dynamodb").update_item(
            TableName=self.table_name,
            Key={"id": {"S": restore_id}},
            UpdateExpression="SET #notification = :notification",
            ConditionExpression="attribute_exists(id)",
            ExpressionAttributeNames={"#notification": "notification"},
            ExpressionAttributeValues={":notification": to_item({"n": notification})["n"]},
        )

    def release_lock(self, lock_id: str, restore_id: str) -> bool:
        """Free the target for the next restore, only if this restore still holds it."""
        from flexrestore.aws.locks import TargetLocks

        return TargetLocks(self.table_name).release(lock_id, restore_id)
