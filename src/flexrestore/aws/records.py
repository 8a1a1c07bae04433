"""Restore records and refusal audit records in RESTORES_TABLE (DynamoDB).

Item kinds (aws/table_schema.py): ``restore`` (id = restoreId; shape in CONTRACTS.md, "Restore record") and
``refusal`` (id = ``refusal#<uuid>``: who asked, what for, which guard refused and why, when). Refusals carry
no ``source`` attribute, so the ``bySource`` index lists restores only.

Values are plain JSON-like Python (str, int, float, bool, None, list, dict); numbers come back as int or
float, never Decimal.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from flexrestore.aws.clients import client
from flexrestore.aws.table_schema import BY_KIND_INDEX, BY_SOURCE_INDEX

if TYPE_CHECKING:
    from flexrestore.domain.request import RestoreRequest
    from flexrestore.domain.triggers import RequestedBy

RESTORE_KIND = "restore"
REFUSAL_KIND = "refusal"
MAX_PAGE = 100
_TOKEN_KEYS = {BY_KIND_INDEX: ("id", "kind", "requestedAt"), BY_SOURCE_INDEX: ("id", "source", "requestedAt")}


class RecordExists(Exception):
    """A restore record with that id is already there."""


class BadPageToken(ValueError):
    """``nextToken`` is not one this service handed out."""


class RestoreRecords:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    # --- writes ---------------------------------------------------------------------------------

    def create(self, record: Mapping[str, Any]) -> None:
        """Write a new record; :class:`RecordExists` if the id is taken."""
        try:
            client("dynamodb").put_item(
                TableName=self.table_name,
                Item=to_item(record),
                ConditionExpression="attribute_not_exists(id)",
            )
        except Exception as exc:
            if _condition_failed(exc):
                raise RecordExists(str(record["id"])) from None
            raise

    def mark_job_created(self, restore_id: str, *, restore_job_id: str, status: str, at: str) -> None:
        """Atlas accepted the job: keep its id and first status, and add that status to the timeline."""
        self._update(
            restore_id,
            "SET restoreJobId = :job, #status = :status, timeline = list_append(timeline, :entry)",
            {":job": restore_job_id, ":status": status, ":entry": [{"status": status, "at": at}]},
        )

    def set_execution(self, restore_id: str, execution_arn: str) -> None:
        self._update(restore_id, "SET executionArn = :arn", {":arn": execution_arn}, names=False)

    def mark_create_failed(self, restore_id: str, *, code: str, message: str, at: str) -> None:
        """The Atlas job could not be created: the record ends here as ERROR (no poll loop will run)."""
        self._update(
            restore_id,
            "SET #status = :status, finalStatus = :final, finishedAt = :at, #error = :error, "
            "timeline = list_append(timeline, :entry)",
            {
                ":status": "CREATE_FAILED",
                ":final": "ERROR",
                ":at": at,
                ":error": {"code": code, "message": message},
                ":entry": [{"status": "CREATE_FAILED", "at": at}],
            },
            extra_names={"#error": "error"},
        )

    def set_notification(self, restore_id: str, notification: Mapping[str, Any]) -> None:
        """How the ending was told (same shape as the poll loop's: ``{"sns": {...}, "events": {...}}``)."""
        self._update(
            restore_id,
            "SET #notification = :n",
            {":n": dict(notification)},
            names=False,
            extra_names={"#notification": "notification"},
        )

    def _update(
        self,
        restore_id: str,
        expression: str,
        values: Mapping[str, Any],
        *,
        names: bool = True,
        extra_names: Mapping[str, str] | None = None,
    ) -> None:
        attribute_names = {"#status": "status"} if names else {}
        attribute_names.update(extra_names or {})
        arguments: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": {"id": {"S": restore_id}},
            "UpdateExpression": expression,
            "ConditionExpression": "attribute_exists(id)",
            "ExpressionAttributeValues": {k: _serialize(v) for k, v in values.items()},
        }
        if attribute_names:
            arguments["ExpressionAttributeNames"] = attribute_names
        client("dynamodb").update_item(**arguments)

    # --- reads ----------------------------------------------------------------------------------

    def get(self, restore_id: str) -> dict[str, Any] | None:
        """The restore record (never a lock or refusal item that shares the table)."""
        answer = client("dynamodb").get_item(
            TableName=self.table_name, Key={"id": {"S": restore_id}}, ConsistentRead=True
        )
        item = answer.get("Item")
        if not item:
            return None
        record = from_item(item)
        return record if record.get("kind") == RESTORE_KIND else None

    def list_restores(
        self,
        *,
        group_id: str | None = None,
        cluster_name: str | None = None,
        limit: int = 20,
        next_token: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
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
            query["ExclusiveStartKey"] = _decode_token(next_token, index, partition, partition_value)
        answer = client("dynamodb").query(**query)
        records = [from_item(item) for item in answer.get("Items", [])]
        last = answer.get("LastEvaluatedKey")
        return records, _encode_token(last, index) if last else None


def record_refusal(
    table_name: str,
    *,
    requested_by: RequestedBy,
    request: RestoreRequest,
    verdict: Mapping[str, Any],
    at: str,
) -> str:
    """Keep an audit record of a refused request: who asked, what for, which guard refused, why, when.

    ``verdict`` holds ``guard``, ``reason`` (machine code), ``status`` and ``message``. Returns the id.
    """
    refusal_id = f"refusal#{uuid.uuid4().hex}"
    item = {
        "id": refusal_id,
        "kind": REFUSAL_KIND,
        "requestedAt": at,
        "requestedBy": requested_by.to_record(),
        "request": request.to_wire(),
        "groupId": request.group_id,
        "clusterName": request.cluster_name,
        "targetDeploymentItemName": request.target_deployment_item_name,
        "targetProjectId": request.target_project_id,
        "breakGlass": request.break_glass,
        "guard": verdict.get("guard"),
        "reason": verdict.get("reason"),
        "status": verdict.get("status"),
        "message": verdict.get("message"),
    }
    client("dynamodb").put_item(TableName=table_name, Item=to_item(item))
    return refusal_id


# --- (de)serialization --------------------------------------------------------------------------------


def to_item(record: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _serialize(value) for key, value in record.items()}


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    return {key: _plain(deserializer.deserialize(value)) for key, value in item.items()}


def _serialize(value: Any) -> Any:
    from boto3.dynamodb.types import TypeSerializer

    return TypeSerializer().serialize(_dynamo_safe(value))


def _dynamo_safe(value: Any) -> Any:
    # DynamoDB numbers are Decimals; floats are refused by boto3's serializer.
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, Mapping):
        return {str(k): _dynamo_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_dynamo_safe(v) for v in value]
    raise TypeError(f"cannot store a {type(value).__name__} in a record")


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | set):
        return [_plain(v) for v in value]
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    return value


def _encode_token(last_key: Mapping[str, Any], index: str) -> str:
    plain = {k: v["S"] for k, v in last_key.items() if isinstance(v, dict) and "S" in v}
    raw = json.dumps({"i": index, "k": plain}, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _decode_token(token: str, index: str, partition: str, value: str) -> dict[str, Any]:
    """The page key inside a token we handed out for the same listing; anything else is refused."""
    if len(token) > 2048:
        raise BadPageToken("nextToken is too long")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError):
        raise BadPageToken("nextToken is not a token this API handed out") from None
    expected = _TOKEN_KEYS[index]
    if (
        not isinstance(data, dict)
        or data.get("i") != index
        or not isinstance(data.get("k"), dict)
        or set(data["k"]) != set(expected)
        or not all(isinstance(v, str) and 0 < len(v) <= 512 for v in data["k"].values())
        or data["k"].get(partition) != value  # DynamoDB refuses a start key outside the queried partition
    ):
        raise BadPageToken("nextToken does not belong to this listing (use it with the same filters)")
    return {k: {"S": v} for k, v in data["k"].items()}


def _condition_failed(exc: Exception) -> bool:
    response = getattr(exc, "response", None)
    return (
        isinstance(response, dict)
        and response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"
    )
