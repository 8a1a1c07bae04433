"""Verification runs in RUNS_TABLE (DynamoDB): the one adapter of that table (aws/table_schema.py).

A run is a head item (``item`` = ``run``: the run record without its sources, the plan as the run began,
the source count, internal notification marks) and one item per source (``item`` = ``source#00042``: the
planned source, the snapshot picked, the restore, an outcome when it ended without a restore, and the
run's task token while the run waits for the restore). Answers never carry the task token.

Writes a retried step repeats are idempotent: the head is written last and only once
(``attribute_not_exists``), so a run's sources are fixed from then on; the finished run is written once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from flexrestore.aws.clients import client
from flexrestore.aws.codec import condition_failed, from_item, to_attribute, to_item
from flexrestore.aws.store import (
    MAX_PAGE,
    channel_unless_sent,
    decode_page_token,
    encode_page_token,
    translated,
)
from flexrestore.aws.table_schema import (
    BY_LIVE_CLUSTER_INDEX,
    BY_PLAN_INDEX,
    BY_START_INDEX,
    LIVE_CLUSTER_ATTRIBUTE,
)
from flexrestore.clock import isoformat, parse_iso
from flexrestore.contracts import Delivery, Notification
from flexrestore.contracts.run import (
    RUN_KIND,
    RunRecord,
    RunSource,
    RunTarget,
    SnapshotPick,
    ValidationResult,
)
from flexrestore.domain.errors import DependencyUnavailable
from flexrestore.domain.ports import RunState, SourceState

HEAD = "run"
_BATCH = 25  # BatchWriteItem's limit
# Internal attributes of a head item (never part of the run record's answer).
_HEAD_INTERNAL = (
    "runId",
    "item",
    "planDocument",
    "sourceCount",
    "notification",
    "kind",
    "id",
    "targetProjectSources",
)


def _source_key(index: int) -> str:
    return f"source#{index:05d}"


class RunTable:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    # --- the run -----------------------------------------------------------------------------------

    def begin_run(self, state: RunState, sources: Sequence[SourceState]) -> RunState:
        """Store the sources, then the head (once). If the head is there already, the stored run stands."""
        existing = self.run_state(state.record.run_id)
        if existing is not None:
            return existing
        run_id = state.record.run_id
        items = [self._source_item(run_id, source) for source in sources]
        for start in range(0, len(items), _BATCH):
            self._batch_put(items[start : start + _BATCH])
        head = {
            **state.record.to_stored(),
            "runId": run_id,
            "item": HEAD,
            "kind": RUN_KIND,
            "planDocument": dict(state.plan),
            "sourceCount": state.source_count,
        }
        if state.target_project_sources:
            head["targetProjectSources"] = list(state.target_project_sources)
        head.pop("sources", None)
        try:
            with translated():
                client("dynamodb").put_item(
                    TableName=self.table_name,
                    Item=to_item(head),
                    ConditionExpression="attribute_not_exists(runId)",
                )
        except Exception as exc:
            if not condition_failed(exc):
                raise
            stored = self.run_state(run_id)
            if stored is not None:
                return stored
            raise
        return state

    def run_state(self, run_id: str) -> RunState | None:
        values = self._get(run_id, HEAD)
        if values is None:
            return None
        return RunState(
            record=self._record(values),
            plan=values.get("planDocument") or {},
            source_count=int(values.get("sourceCount") or 0),
            target_project_sources=tuple(str(n) for n in values.get("targetProjectSources") or ()),
        )

    def finish_run(self, record: RunRecord) -> tuple[RunRecord, bool]:
        """Write the ended run (once): ``(the stored run record, True if this call wrote it)``. The sources
        go to their items; the head keeps the summary."""
        run_id = record.run_id
        for start in range(0, len(record.sources), _BATCH):
            chunk = record.sources[start : start + _BATCH]
            self._batch_update_outcomes(run_id, chunk)
        values = {
            ":finishedAt": to_attribute(isoformat(record.finished_at)) if record.finished_at else None,
            ":finalStatus": to_attribute(record.final_status),
            ":summary": to_attribute(record.summary.to_stored() if record.summary else {}),
        }
        expression = "SET finishedAt = :finishedAt, finalStatus = :finalStatus, summary = :summary"
        if record.error is not None:
            expression += ", #error = :error"
            values[":error"] = to_attribute(record.error.to_stored())
        try:
            with translated():
                client("dynamodb").update_item(
                    TableName=self.table_name,
                    Key=self._key(run_id, HEAD),
                    UpdateExpression=expression,
                    ConditionExpression="attribute_exists(runId) AND attribute_not_exists(finalStatus)",
                    ExpressionAttributeValues={k: v for k, v in values.items() if v is not None},
                    **({"ExpressionAttributeNames": {"#error": "error"}} if record.error is not None else {}),
                )
            wrote = True
        except Exception as exc:
            if not condition_failed(exc):
                raise
            wrote = False
        stored = self.get_run(run_id)
        return (stored or record), wrote

    def get_run(self, run_id: str) -> RunRecord | None:
        """The run record with its sources (those that have ended, in order)."""
        items = self._query(run_id)
        head = next((v for v in items if v.get("item") == HEAD), None)
        if head is None:
            return None
        sources = [
            RunSource.model_validate(v["outcome"])
            for v in sorted(items, key=lambda v: str(v.get("item")))
            if v.get("item") != HEAD and v.get("outcome")
        ]
        return self._record(head).model_copy(update={"sources": sources})

    def list_runs(
        self, *, plan: str | None, limit: int, next_token: str | None
    ) -> tuple[list[RunRecord], str | None]:
        """Runs newest first (of one plan, or all); their sources are left out (``GET /runs/{runId}``)."""
        index, partition, value = (
            (BY_PLAN_INDEX, "plan", plan) if plan else (BY_START_INDEX, "kind", RUN_KIND)
        )
        query: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": index,
            "KeyConditionExpression": "#p = :p",
            "ExpressionAttributeNames": {"#p": partition},
            "ExpressionAttributeValues": {":p": {"S": value}},
            "ScanIndexForward": False,
            "Limit": max(1, min(limit, MAX_PAGE)),
        }
        if next_token:
            keys = ("runId", "item", partition, "startedAt")
            query["ExclusiveStartKey"] = decode_page_token(next_token, index, keys, partition, str(value))
        with translated():
            answer = client("dynamodb").query(**query)
        records = [self._record(from_item(item)) for item in answer.get("Items", [])]
        last = answer.get("LastEvaluatedKey")
        return records, encode_page_token(last, index) if last else None

    # --- the sources ---------------------------------------------------------------------------------

    def source(self, run_id: str, index: int) -> SourceState | None:
        values = self._get(run_id, _source_key(index))
        return self._source(values) if values is not None else None

    def sources(self, run_id: str) -> list[SourceState]:
        items = self._query(run_id)
        return [
            self._source(v)
            for v in sorted(items, key=lambda v: str(v.get("item")))
            if str(v.get("item", "")).startswith("source#")
        ]

    def set_snapshot(
        self,
        run_id: str,
        index: int,
        *,
        snapshot_id: str,
        taken_at: datetime | None,
        choice: SnapshotPick,
        mongodb_version: str | None = None,
    ) -> None:
        values: dict[str, Any] = {":id": snapshot_id, ":choice": choice.to_stored()}
        expression = "SET snapshotId = :id, snapshotChoice = :choice"
        if taken_at is not None:
            expression += ", snapshotTakenAt = :taken"
            values[":taken"] = isoformat(taken_at)
        if mongodb_version is not None:
            expression += ", snapshotVersion = :version"
            values[":version"] = mongodb_version
        self._update(run_id, index, expression, values)

    def set_target(self, run_id: str, index: int, target: RunTarget, *, live: bool) -> None:
        values: dict[str, Any] = {":target": target.to_stored()}
        if live:
            expression = f"SET target = :target, {LIVE_CLUSTER_ATTRIBUTE} = :live"
            values[":live"] = f"{target.project_id}/{target.name}"
        else:
            expression = f"SET target = :target REMOVE {LIVE_CLUSTER_ATTRIBUTE}"
        self._update(run_id, index, expression, values)

    def set_validation(self, run_id: str, index: int, validation: ValidationResult) -> None:
        self._update(run_id, index, "SET validation = :v", {":v": validation.to_stored()})

    def live_targets(self) -> list[SourceState]:
        """The sparse index of source items whose ephemeral cluster may exist, whole (a scan: it holds only
        the clusters alive now, a few runs' worth at most)."""
        found: list[SourceState] = []
        arguments: dict[str, Any] = {"TableName": self.table_name, "IndexName": BY_LIVE_CLUSTER_INDEX}
        while True:
            with translated():
                answer = client("dynamodb").scan(**arguments)
            found += [self._source(from_item(item)) for item in answer.get("Items", [])]
            last = answer.get("LastEvaluatedKey")
            if not last:
                return found
            arguments["ExclusiveStartKey"] = last

    def update_ended_source(self, run_id: str, index: int, target: RunTarget) -> bool:
        try:
            with translated():
                client("dynamodb").update_item(
                    TableName=self.table_name,
                    Key=self._key(run_id, _source_key(index)),
                    UpdateExpression="SET outcome.target = :target",
                    ConditionExpression="attribute_exists(outcome)",
                    ExpressionAttributeValues={":target": to_attribute(target.to_stored())},
                )
        except Exception as exc:
            if condition_failed(exc):
                return False
            raise
        return True

    def set_cluster_hours(self, run_id: str, cluster_hours: float | None) -> None:
        """The ended run's summary gets the cluster-hours of its targets as they stand now."""
        try:
            with translated():
                client("dynamodb").update_item(
                    TableName=self.table_name,
                    Key=self._key(run_id, HEAD),
                    UpdateExpression="SET summary.clusterHours = :hours",
                    ConditionExpression="attribute_exists(summary)",
                    ExpressionAttributeValues={":hours": to_attribute(cluster_hours)},
                )
        except Exception as exc:
            if not condition_failed(exc):
                raise

    def set_restore(self, run_id: str, index: int, restore_id: str) -> None:
        self._update(run_id, index, "SET restoreId = :restore", {":restore": restore_id})

    def set_outcome(self, run_id: str, index: int, outcome: RunSource) -> None:
        self._update(run_id, index, "SET outcome = :outcome", {":outcome": outcome.to_stored()})

    def attach_token(self, run_id: str, index: int, task_token: str) -> None:
        self._update(run_id, index, "SET taskToken = :token", {":token": task_token})

    def task_token(self, run_id: str, index: int) -> str | None:
        values = self._get(run_id, _source_key(index))
        token = (values or {}).get("taskToken")
        return str(token) if token else None

    # --- the run's own notification ------------------------------------------------------------------

    def open_run_notification(self, run_id: str) -> Notification:
        values = self._get(run_id, HEAD) or {}
        return Notification.model_validate(values.get("notification") or {})

    def mark_run_channel(self, run_id: str, channel: str, delivery: Delivery) -> bool:
        with translated():
            client("dynamodb").update_item(
                TableName=self.table_name,
                Key=self._key(run_id, HEAD),
                UpdateExpression="SET #n = if_not_exists(#n, :empty)",
                ExpressionAttributeNames={"#n": "notification"},
                ExpressionAttributeValues={":empty": {"M": {}}},
            )
        try:
            with translated():
                client("dynamodb").update_item(
                    TableName=self.table_name,
                    **channel_unless_sent(self._key(run_id, HEAD), channel, delivery),
                )
            return True
        except Exception as exc:
            if condition_failed(exc):
                return False
            raise

    # --- helpers -------------------------------------------------------------------------------------

    def _key(self, run_id: str, item: str) -> dict[str, Any]:
        return {"runId": {"S": run_id}, "item": {"S": item}}

    def _get(self, run_id: str, item: str) -> dict[str, Any] | None:
        with translated():
            answer = client("dynamodb").get_item(
                TableName=self.table_name, Key=self._key(run_id, item), ConsistentRead=True
            )
        found = answer.get("Item")
        return from_item(found) if found else None

    def _query(self, run_id: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        arguments: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "runId = :run",
            "ExpressionAttributeValues": {":run": {"S": run_id}},
            "ConsistentRead": True,
        }
        while True:
            with translated():
                answer = client("dynamodb").query(**arguments)
            items += [from_item(item) for item in answer.get("Items", [])]
            last = answer.get("LastEvaluatedKey")
            if not last:
                return items
            arguments["ExclusiveStartKey"] = last

    def _update(self, run_id: str, index: int, expression: str, values: Mapping[str, Any]) -> None:
        with translated():
            client("dynamodb").update_item(
                TableName=self.table_name,
                Key=self._key(run_id, _source_key(index)),
                UpdateExpression=expression,
                ConditionExpression="attribute_exists(runId)",
                ExpressionAttributeValues={k: to_attribute(v) for k, v in values.items()},
            )

    def _batch_put(self, items: list[dict[str, Any]]) -> None:
        requests = [{"PutRequest": {"Item": to_item(item)}} for item in items]
        self._batch_write(requests)

    def _batch_update_outcomes(self, run_id: str, sources: Sequence[RunSource]) -> None:
        # Each source item keeps its planned fields and gains its final entry; one update each (a batch
        # write would replace the items). Cheap: finishing a run of 500 sources makes 500 small writes.
        for source in sources:
            self._update(run_id, source.index, "SET outcome = :outcome", {":outcome": source.to_stored()})

    def _batch_write(self, requests: list[dict[str, Any]]) -> None:
        for _ in range(10):
            if not requests:
                return
            with translated():
                answer = client("dynamodb").batch_write_item(RequestItems={self.table_name: requests})
            requests = answer.get("UnprocessedItems", {}).get(self.table_name, [])
        if requests:
            raise DependencyUnavailable(
                "STORE_UNAVAILABLE", "the service could not write the run; retry later"
            )

    def _source_item(self, run_id: str, source: SourceState) -> dict[str, Any]:
        item: dict[str, Any] = {
            "runId": run_id,
            "item": _source_key(source.index),
            "planned": dict(source.planned),
        }
        if source.outcome is not None:
            item["outcome"] = source.outcome.to_stored()
        cleaned: dict[str, Any] = _without_none(item)
        return cleaned

    def _source(self, values: Mapping[str, Any]) -> SourceState:
        taken = values.get("snapshotTakenAt")
        choice = values.get("snapshotChoice")
        outcome = values.get("outcome")
        target = values.get("target")
        validation = values.get("validation")
        return SourceState(
            run_id=str(values["runId"]),
            snapshot_version=values.get("snapshotVersion"),
            target=RunTarget.model_validate(target) if target else None,
            validation=ValidationResult.model_validate(validation) if validation else None,
            index=int(str(values["item"]).removeprefix("source#")),
            planned=values.get("planned") or {},
            snapshot_id=values.get("snapshotId"),
            snapshot_taken_at=parse_iso(taken) if isinstance(taken, str) else None,
            snapshot_choice=SnapshotPick.model_validate(choice) if choice else None,
            restore_id=values.get("restoreId"),
            outcome=RunSource.model_validate(outcome) if outcome else None,
        )

    def _record(self, values: Mapping[str, Any]) -> RunRecord:
        public = {k: v for k, v in values.items() if k not in _HEAD_INTERNAL}
        return RunRecord.model_validate({**public, "runId": values["runId"]})


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value
