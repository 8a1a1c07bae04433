"""Saved verification plans in PLANS_TABLE (DynamoDB), key ``name``: the one adapter of that table.

A save is conditional on the revision it replaces, so two concurrent saves of one plan cannot silently
undo each other (the second gets ``PlanChanged``).
"""

from __future__ import annotations

from typing import Any

from flexrestore.aws.clients import client
from flexrestore.aws.codec import condition_failed, from_item, to_item
from flexrestore.aws.store import translated
from flexrestore.contracts.plan import PlanEntry
from flexrestore.domain.errors import PlanChanged


class PlanTable:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    def get_plan(self, name: str) -> PlanEntry | None:
        with translated():
            answer = client("dynamodb").get_item(
                TableName=self.table_name, Key={"name": {"S": name}}, ConsistentRead=True
            )
        item = answer.get("Item")
        return PlanEntry.model_validate(from_item(item)) if item else None

    def put_plan(self, entry: PlanEntry, *, replaces: int | None) -> None:
        arguments: dict[str, Any] = {"TableName": self.table_name, "Item": to_item(entry.to_stored())}
        if replaces is None:
            arguments["ConditionExpression"] = "attribute_not_exists(#name)"
            arguments["ExpressionAttributeNames"] = {"#name": "name"}
        else:
            arguments["ConditionExpression"] = "revision = :replaces"
            arguments["ExpressionAttributeValues"] = {":replaces": {"N": str(replaces)}}
        try:
            with translated():
                client("dynamodb").put_item(**arguments)
        except Exception as exc:
            if condition_failed(exc):
                raise PlanChanged(f"plan {entry.name!r} was changed by another request; retry") from None
            raise

    def delete_plan(self, name: str) -> bool:
        with translated():
            answer = client("dynamodb").delete_item(
                TableName=self.table_name, Key={"name": {"S": name}}, ReturnValues="ALL_OLD"
            )
        return bool(answer.get("Attributes"))

    def list_plans(self) -> list[PlanEntry]:
        """Every plan (a deployment keeps tens of plans, not thousands: one paginated scan)."""
        entries: list[PlanEntry] = []
        arguments: dict[str, Any] = {"TableName": self.table_name, "ConsistentRead": True}
        while True:
            with translated():
                answer = client("dynamodb").scan(**arguments)
            entries += [PlanEntry.model_validate(from_item(item)) for item in answer.get("Items", [])]
            last = answer.get("LastEvaluatedKey")
            if not last:
                return entries
            arguments["ExclusiveStartKey"] = last
