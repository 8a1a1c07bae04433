"""Restore records and refusal audit records in RESTORES_TABLE (DynamoDB): the one adapter of that item.

Item kinds (aws/table_schema.py): ``restore`` (id = restoreId; ``contracts.RestoreRecord``), ``refusal``
(id = ``refusal#<uuid>``; ``contracts.RefusalRecord``), and ``lock`` (aws/locks.py).
Refusals and locks carry no ``source`` attribute, so the ``bySource`` index lists restores only.

Every write is conditional, so concurrent or retried steps cannot undo each other: the final record is
written once (``attribute_not_exists(finalStatus)``), a notification channel marked SENT stays SENT, and
the poll step never creates a record the intake did not write. The fields a record does not have yet are
left out of the item (never written as null), which is what those conditions test.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from flexrestore.aws.clients import client
from flexrestore.aws.codec import condition_failed, error_code, from_item, to_attribute, to_item
from flexrestore.aws.table_schema import BY_HANDOFF_INDEX, BY_KIND_INDEX, BY_SOURCE_INDEX
from flexrestore.clock import isoformat, parse_iso
from flexrestore.contracts import Delivery, Notification, RefusalRecord, RestoreRecord
from flexrestore.contracts.record import RESTORE_KIND
from flexrestore.domain.errors import DependencyUnavailable
from flexrestore.domain.ports import OutageState

MAX_PAGE = 100
_TOKEN_KEYS = {BY_KIND_INDEX: ("id", "kind", "requestedAt"), BY_SOURCE_INDEX: ("id", "source", "requestedAt")}
# DynamoDB's answers when it sheds load: a retry later is safe (boto3 already retried a few times).
_TRANSIENT = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
    }
)
_OUTAGE_NAMES = {
    "#since": "atlasUnreachableSince",
    "#notBefore": "atlasRetryNotBefore",
    "#fault": "atlasFault",
}


class RecordExists(Exception):
    """A restore record with that id is already there."""


class BadPageToken(ValueError):
    """``nextToken`` is not one this service handed out."""


@contextmanager
def translated() -> Iterator[None]:
    """DynamoDB throttling or outage as the domain's DependencyUnavailable (the API answers 503)."""
    try:
        yield
    except Exception as exc:
        if error_code(exc) in _TRANSIENT:
            raise DependencyUnavailable(
                "STORE_UNAVAILABLE", "the service could not read or write its records; retry later"
            ) from exc
        raise


class RestoreStore:
    """Restore and refusal records of one table (implements the domain's record ports)."""

    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    # --- reads --------------------------------------------------------------------------------------

    def get(self, restore_id: str) -> RestoreRecord | None:
        """The restore record (never a lock or refusal item that shares the table)."""
        with translated():
            answer = client("dynamodb").get_item(
                TableName=self.table_name, Key={"id": {"S": restore_id}}, ConsistentRead=True
            )
        item = answer.get("Item")
        if not item:
            return None
        values = from_item(item)
        return RestoreRecord.model_validate(values) if values.get("kind") == RESTORE_KIND else None

    def get_many(self, restore_ids: Sequence[str]) -> dict[str, RestoreRecord]:
        """The restore records of ``restore_ids`` that exist, by id (BatchGetItem, 100 keys a call, strongly
        consistent; keys DynamoDB leaves unprocessed are asked for again)."""
        found: dict[str, RestoreRecord] = {}
        wanted = list(dict.fromkeys(restore_ids))
        for start in range(0, len(wanted), 100):
            keys: list[dict[str, Any]] = [
                {"id": {"S": restore_id}} for restore_id in wanted[start : start + 100]
            ]
            for _ in range(10):
                if not keys:
                    break
                with translated():
                    answer = client("dynamodb").batch_get_item(
                        RequestItems={self.table_name: {"Keys": keys, "ConsistentRead": True}}
                    )
                for item in answer.get("Responses", {}).get(self.table_name, []):
                    values = from_item(item)
                    if values.get("kind") == RESTORE_KIND:
                        found[str(values["id"])] = RestoreRecord.model_validate(values)
                keys = answer.get("UnprocessedKeys", {}).get(self.table_name, {}).get("Keys", [])
            if keys:
                raise DependencyUnavailable(
                    "STORE_UNAVAILABLE", "the service could not read its records; retry later"
                )
        return found

    def list_restores(
        self,
        *,
        group_id: str | None = None,
        cluster_name: str | None = None,
        limit: int = 20,
        next_token: str | None = None,
    ) -> tuple[list[RestoreRecord], str | None]:
        """Restore records, newest first, optionally of one source cluster; ``(records, nextToken)``.

        With both ``group_id`` and ``cluster_name`` the ``bySource`` index answers exactly; with only one
        of them the ``byKind`` index is filtered (a page may then hold fewer than ``limit`` records, and
        a ``nextToken`` still means "there may be more").
        """
        limit = max(1, min(limit, MAX_PAGE))
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        filters = []
        if group_id and cluster_name:
            index, partition, partition_value = BY_SOURCE_INDEX, "source", f"{group_id}/{cluster_name}"
        else:
            index, partition, partition_value = BY_KIND_INDEX, "kind", RESTORE_KIND
            for attribute, wanted in (("groupId", group_id), ("clusterName", cluster_name)):
                if wanted:
                    names[f"#{attribute}"] = attribute
                    values[f":{attribute}"] = {"S": wanted}
                    filters.append(f"#{attribute} = :{attribute}")
        names["#partition"] = partition
        values[":partition"] = {"S": partition_value}
        query: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": index,
            "KeyConditionExpression": "#partition = :partition",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,  # newest first (the index's sort key is requestedAt)
            "Limit": limit,
        }
        if filters:
            query["FilterExpression"] = " AND ".join(filters)
        if next_token:
            query["ExclusiveStartKey"] = decode_page_token(
                next_token, index, _TOKEN_KEYS[index], partition, partition_value
            )
        with translated():
            answer = client("dynamodb").query(**query)
        records = [RestoreRecord.model_validate(from_item(item)) for item in answer.get("Items", [])]
        last = answer.get("LastEvaluatedKey")
        return records, encode_page_token(last, index) if last else None

    # --- the intake's writes ------------------------------------------------------------------------

    def create(self, record: RestoreRecord) -> None:
        """Write a new record; :class:`RecordExists` if the id is taken."""
        try:
            with translated():
                client("dynamodb").put_item(
                    TableName=self.table_name,
                    Item=to_item(record.to_stored()),
                    ConditionExpression="attribute_not_exists(id)",
                )
        except Exception as exc:
            if condition_failed(exc):
                raise RecordExists(record.id) from None
            raise

    def mark_job_created(self, restore_id: str, *, restore_job_id: str, status: str, at: datetime) -> None:
        """Atlas accepted the job: keep its id and first status, and add that status to the timeline."""
        self._update(
            restore_id,
            "SET restoreJobId = :job, #status = :status, timeline = list_append(timeline, :entry)",
            {":job": restore_job_id, ":status": status, ":entry": [{"status": status, "at": isoformat(at)}]},
            names={"#status": "status"},
        )

    def set_execution(self, restore_id: str, execution_arn: str) -> None:
        """The restore's execution has started: note it, and take the restore off the reconciler's list."""
        self._update(
            restore_id,
            "SET executionArn = :arn REMOVE #handoff",
            {":arn": execution_arn},
            names={"#handoff": "handoff"},
        )

    def claim_create(self, restore_id: str, *, at: datetime) -> bool:
        """The create step is about to send the Atlas create: note when (the first time), status CREATING.
        False when the restore has ended (then nothing may be sent)."""
        moment = isoformat(at)
        try:
            with translated():
                client("dynamodb").update_item(
                    TableName=self.table_name,
                    Key={"id": {"S": restore_id}},
                    UpdateExpression=(
                        "SET createAttemptedAt = :at, #status = :creating, "
                        "timeline = list_append(timeline, :entry)"
                    ),
                    ConditionExpression=(
                        "attribute_exists(id) AND attribute_not_exists(finalStatus) "
                        "AND attribute_not_exists(createAttemptedAt)"
                    ),
                    ExpressionAttributeNames={"#status": "status"},
                    ExpressionAttributeValues={
                        ":at": {"S": moment},
                        ":creating": {"S": "CREATING"},
                        ":entry": to_attribute([{"status": "CREATING", "at": moment}]),
                    },
                )
            return True
        except Exception as exc:
            if not condition_failed(exc):
                raise
        record = self.get(restore_id)  # claimed by an earlier attempt, or ended?
        return record is not None and not record.ended

    def pending_handoffs(self, *, before: datetime, limit: int = 100) -> list[RestoreRecord]:
        """Restores whose execution has not started, recorded before ``before``, oldest first."""
        with translated():
            answer = client("dynamodb").query(
                TableName=self.table_name,
                IndexName=BY_HANDOFF_INDEX,
                KeyConditionExpression="#handoff = :pending AND requestedAt < :before",
                ExpressionAttributeNames={"#handoff": "handoff"},
                ExpressionAttributeValues={":pending": {"S": "PENDING"}, ":before": {"S": isoformat(before)}},
                Limit=limit,
            )
        return [RestoreRecord.model_validate(from_item(item)) for item in answer.get("Items", [])]

    def end_unsent(self, restore_id: str, *, code: str, message: str, at: datetime) -> bool:
        """End a restore whose execution never started and whose create was never sent (ERROR); False when it
        has ended already or a create step has claimed it (then that execution owns its end)."""
        moment = isoformat(at)
        try:
            with translated():
                client("dynamodb").update_item(
                    TableName=self.table_name,
                    Key={"id": {"S": restore_id}},
                    UpdateExpression=(
                        "SET #status = :status, finalStatus = :final, finishedAt = :at, noticedAt = :at, "
                        "#error = :error, timeline = list_append(timeline, :entry) REMOVE #handoff"
                    ),
                    ConditionExpression=(
                        "attribute_exists(id) AND attribute_not_exists(finalStatus) "
                        "AND attribute_not_exists(createAttemptedAt)"
                    ),
                    ExpressionAttributeNames={"#status": "status", "#error": "error", "#handoff": "handoff"},
                    ExpressionAttributeValues={
                        ":status": {"S": "HANDOFF_FAILED"},
                        ":final": {"S": "ERROR"},
                        ":at": {"S": moment},
                        ":error": to_attribute({"code": code, "message": message}),
                        ":entry": to_attribute([{"status": "HANDOFF_FAILED", "at": moment}]),
                    },
                )
            return True
        except Exception as exc:
            if condition_failed(exc):
                return False
            raise

    def unsettled(self, *, since: datetime, limit: int = 100) -> list[RestoreRecord]:
        """Restores requested since ``since`` that have not ended, or have ended without being told (their
        ``notification.status`` is not SENT), oldest first; at most ``limit``."""
        found: list[RestoreRecord] = []
        query: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": BY_KIND_INDEX,
            "KeyConditionExpression": "#kind = :restore AND requestedAt >= :since",
            "FilterExpression": (
                "attribute_not_exists(finalStatus) OR attribute_not_exists(#notification.#status) "
                "OR #notification.#status <> :sent"
            ),
            "ExpressionAttributeNames": {
                "#kind": "kind",
                "#notification": "notification",
                "#status": "status",
            },
            "ExpressionAttributeValues": {
                ":restore": {"S": RESTORE_KIND},
                ":since": {"S": isoformat(since)},
                ":sent": {"S": "SENT"},
            },
        }
        while len(found) < limit:
            with translated():
                answer = client("dynamodb").query(**query)
            found += [RestoreRecord.model_validate(from_item(item)) for item in answer.get("Items", [])]
            if not answer.get("LastEvaluatedKey"):
                break
            query["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
        return found[:limit]

    def end_as(self, record: RestoreRecord) -> bool:
        """Write ``record`` as the final record of a restore that has not ended: the same item the Record step
        would put (a field without a value is removed), except that the ``notification`` map is kept, and in
        one conditional UpdateItem. False when the restore has ended meanwhile (or has no record)."""
        stored = {name: value for name, value in record.to_stored().items() if name != "id"}
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        assignments: list[str] = []
        for index, (name, value) in enumerate(stored.items()):
            names[f"#s{index}"], values[f":s{index}"] = name, to_attribute(value)
            assignments.append(f"#s{index} = :s{index}")
        removed: list[str] = []
        for index, name in enumerate(record.to_json()):  # every field, those without a value included
            if name not in stored and name not in ("id", "notification"):
                names[f"#r{index}"] = name
                removed.append(f"#r{index}")
        expression = "SET " + ", ".join(assignments) + (" REMOVE " + ", ".join(removed) if removed else "")
        try:
            with translated():
                client("dynamodb").update_item(
                    TableName=self.table_name,
                    Key={"id": {"S": record.id}},
                    UpdateExpression=expression,
                    ConditionExpression="attribute_exists(id) AND attribute_not_exists(finalStatus)",
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                )
            return True
        except Exception as exc:
            if condition_failed(exc):
                return False
            raise

    def record_refusal(self, refusal: RefusalRecord) -> None:
        with translated():
            client("dynamodb").put_item(TableName=self.table_name, Item=to_item(refusal.to_stored()))

    # --- the poll step's writes ---------------------------------------------------------------------

    def record_status(self, restore_id: str, status: str, at: datetime) -> bool:
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
                    ":entry": to_attribute([{"status": status, "at": isoformat(at)}]),
                },
            )
            return True
        except Exception as exc:
            if condition_failed(exc):
                return False
            raise

    def atlas_outage(self, restore_id: str) -> OutageState:
        """The record's outage fields (empty when Atlas answered the last look, or there is no record)."""
        answer = client("dynamodb").get_item(
            TableName=self.table_name,
            Key={"id": {"S": restore_id}},
            ConsistentRead=True,
            ProjectionExpression="#since, #notBefore, #fault",
            ExpressionAttributeNames=_OUTAGE_NAMES,
        )
        stored = from_item(answer.get("Item") or {})
        return OutageState(
            since=_moment(stored.get("atlasUnreachableSince")),
            not_before=_moment(stored.get("atlasRetryNotBefore")),
        )

    def note_atlas_fault(
        self, restore_id: str, *, at: datetime, not_before: datetime | None, code: str, message: str
    ) -> datetime | None:
        """Record a fault; returns when the outage began (``at`` if this is its first fault), or None if
        the restore has no record or has already ended."""
        moment = isoformat(at)
        update = "SET #since = if_not_exists(#since, :at), #fault = :fault"
        values: dict[str, Any] = {
            ":at": {"S": moment},
            ":fault": to_attribute({"code": code, "message": message, "at": moment}),
        }
        if not_before is not None:
            update += ", #notBefore = :notBefore"
            values[":notBefore"] = {"S": isoformat(not_before)}
        else:
            update += " REMOVE #notBefore"
        try:
            answer = client("dynamodb").update_item(
                TableName=self.table_name,
                Key={"id": {"S": restore_id}},
                UpdateExpression=update,
                ConditionExpression="attribute_exists(id) AND attribute_not_exists(finalStatus)",
                ExpressionAttributeNames=_OUTAGE_NAMES,
                ExpressionAttributeValues=values,
                # Not UPDATED_NEW: an if_not_exists that keeps the old value may count as "not updated".
                ReturnValues="ALL_NEW",
            )
        except Exception as exc:
            if condition_failed(exc):
                return None
            raise
        return _moment(from_item(answer.get("Attributes") or {}).get("atlasUnreachableSince"))

    def clear_atlas_outage(self, restore_id: str) -> None:
        """Atlas answered: the outage is over (the next fault starts a new one)."""
        try:
            client("dynamodb").update_item(
                TableName=self.table_name,
                Key={"id": {"S": restore_id}},
                UpdateExpression="REMOVE #since, #notBefore, #fault",
                ConditionExpression="attribute_exists(id) AND attribute_not_exists(finalStatus)",
                ExpressionAttributeNames=_OUTAGE_NAMES,
            )
        except Exception as exc:
            if not condition_failed(exc):
                raise

    # --- the ending ---------------------------------------------------------------------------------

    def save_final(self, record: RestoreRecord) -> tuple[RestoreRecord, bool]:
        """Write the final record once. Returns ``(record as stored, written by this call)``.

        A record that already has a final status is left as it is (a retried Record step, or a second
        execution for the same restore): the first ending wins and is what gets notified.
        """
        try:
            client("dynamodb").put_item(
                TableName=self.table_name,
                Item=to_item(record.to_stored()),
                ConditionExpression="attribute_not_exists(finalStatus)",
            )
            return record, True
        except Exception as exc:
            if not condition_failed(exc):
                raise
        stored = self.get(record.id)
        return (stored or record), False

    def open_notification(self, restore_id: str) -> Notification:
        """The record's ``notification`` map (what earlier attempts sent), created empty if absent.

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
        return Notification.model_validate(notification if isinstance(notification, dict) else {})

    def mark_channel(self, restore_id: str, channel: str, delivery: Delivery) -> bool:
        """Set ``notification.<channel>`` unless that channel is already SENT. True if it was set.

        Needs the map :meth:`open_notification` creates. A SENT entry is never overwritten: not by a
        failure, nor by a second delivery (an overlapping attempt, which then knows it sent twice).
        """
        try:
            client("dynamodb").update_item(
                TableName=self.table_name, **channel_unless_sent({"id": {"S": restore_id}}, channel, delivery)
            )
            return True
        except Exception as exc:
            if condition_failed(exc):
                return False
            raise

    def mark_notification(self, restore_id: str, notification: Notification) -> None:
        """Set the overall ``notification.status``/``at``/``error`` given, keeping the per-channel entries;
        on a record without the map, write the map whole."""
        overall = {k: v for k, v in notification.to_stored().items() if k not in ("sns", "events")}
        names = {"#notification": "notification"}
        values: dict[str, Any] = {}
        assignments = []
        for index, (key, value) in enumerate(overall.items()):
            names[f"#k{index}"] = key
            values[f":v{index}"] = to_attribute(value)
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
            if not condition_failed(exc):
                raise
        client("dynamodb").update_item(
            TableName=self.table_name,
            Key={"id": {"S": restore_id}},
            UpdateExpression="SET #notification = :notification",
            ConditionExpression="attribute_exists(id)",
            ExpressionAttributeNames={"#notification": "notification"},
            ExpressionAttributeValues={":notification": to_attribute(notification.to_stored())},
        )

    # --- helpers ------------------------------------------------------------------------------------

    def _update(
        self,
        restore_id: str,
        expression: str,
        values: Mapping[str, Any],
        *,
        names: Mapping[str, str] | None = None,
    ) -> None:
        arguments: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": {"id": {"S": restore_id}},
            "UpdateExpression": expression,
            "ConditionExpression": "attribute_exists(id)",
            "ExpressionAttributeValues": {k: to_attribute(v) for k, v in values.items()},
        }
        if names:
            arguments["ExpressionAttributeNames"] = dict(names)
        with translated():
            client("dynamodb").update_item(**arguments)


def channel_unless_sent(key: Mapping[str, Any], channel: str, delivery: Delivery) -> dict[str, Any]:
    """The UpdateItem that sets ``notification.<channel>`` on the item at ``key`` unless that channel is
    already SENT (the item's ``notification`` map must exist); restores and runs keep their deliveries so.
    Each adapter sends it itself, on its own table."""
    return {
        "Key": dict(key),
        "UpdateExpression": "SET #notification.#channel = :delivery",
        "ConditionExpression": (
            "attribute_exists(#notification) AND "
            "(attribute_not_exists(#notification.#channel.#status) "
            "OR #notification.#channel.#status <> :sent)"
        ),
        "ExpressionAttributeNames": {
            "#notification": "notification",
            "#channel": channel,
            "#status": "status",
        },
        "ExpressionAttributeValues": {
            ":delivery": to_attribute(delivery.to_stored()),
            ":sent": {"S": "SENT"},
        },
    }


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_iso(value)
    except ValueError:
        return None


def encode_page_token(last_key: Mapping[str, Any], index: str) -> str:
    """The ``nextToken`` of a listing on ``index``: its last key, opaque to callers."""
    plain = {k: v["S"] for k, v in last_key.items() if isinstance(v, dict) and "S" in v}
    raw = json.dumps({"i": index, "k": plain}, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_page_token(
    token: str, index: str, keys: Iterable[str], partition: str, value: str
) -> dict[str, Any]:
    """The page key (of ``keys``) inside a token we handed out for the same listing; anything else is
    refused."""
    if len(token) > 2048:
        raise BadPageToken("nextToken is too long")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError):
        raise BadPageToken("nextToken is not a token this API handed out") from None
    if (
        not isinstance(data, dict)
        or data.get("i") != index
        or not isinstance(data.get("k"), dict)
        or set(data["k"]) != set(keys)
        or not all(isinstance(v, str) and 0 < len(v) <= 512 for v in data["k"].values())
        or data["k"].get(partition) != value  # DynamoDB refuses a start key outside the queried partition
    ):
        raise BadPageToken("nextToken does not belong to this listing (use it with the same filters)")
    return {k: {"S": v} for k, v in data["k"].items()}
