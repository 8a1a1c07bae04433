"""The intake flow's own decisions, over in-memory ports (no AWS, no HTTP, no mocks): which restoreId a key
gets on a retry, and which Atlas job a resumed attempt adopts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from flexrestore.atlas.models import RestoreJob
from flexrestore.domain.guards import GuardConfig
from flexrestore.domain.intake import Intake, IntakeConfig, IntakeError, restore_id_for
from flexrestore.domain.request import parse_request

NOW = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
GROUP = "65f1a2b3c4d5e6f708192a3b"
SNAPSHOT = "6723a1f0c4d5e6f708193b01"
KEY = "event:abc"
REQUEST = parse_request(
    {"groupId": GROUP, "clusterName": "orders-prod", "targetDeploymentItemName": "orders-verify"}
)


@dataclass
class MemoryRecords:
    items: dict[str, dict[str, Any]] = field(default_factory=dict)

    def get(self, restore_id: str) -> dict[str, Any] | None:
        return self.items.get(restore_id)

    def create(self, record: dict[str, Any]) -> None:
        self.items[record["id"]] = dict(record)

    def mark_job_created(self, restore_id: str, *, restore_job_id: str, status: str, at: str) -> None:
        self.items[restore_id].update(restoreJobId=restore_job_id, status=status)

    def set_execution(self, restore_id: str, execution_arn: str) -> None:
        self.items[restore_id]["executionArn"] = execution_arn

    def mark_create_failed(self, restore_id: str, *, code: str, message: str, at: str) -> None:
        self.items[restore_id].update(finalStatus="ERROR", error={"code": code, "message": message})


@dataclass
class FoundJob:
    """An Atlas that only answers find_restore_job (what adoption reads)."""

    job: RestoreJob | None

    def find_restore_job(self, group_id: str, name: str, **target: str) -> RestoreJob | None:
        return self.job


def intake(records: MemoryRecords, atlas: Any = None) -> Intake:
    def unused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("not part of this decision")

    class Unused:
        def __getattr__(self, name: str) -> Callable[..., Any]:
            return unused

    return Intake(
        atlas=lambda: atlas,
        records=records,
        locks=Unused(),  # type: ignore[arg-type]
        executions=Unused(),  # type: ignore[arg-type]
        refusals=unused,
        exactly_once=unused,
        count=unused,
        config=IntakeConfig(guards=GuardConfig(), poll_deadline_seconds=3600, idempotency_ttl_seconds=86400),
        now=lambda: NOW,
    )


def record(requested_at: datetime, **extra: Any) -> dict[str, Any]:
    return {"requestedAt": requested_at.strftime("%Y-%m-%dT%H:%M:%SZ"), "snapshotId": SNAPSHOT, **extra}


def test_a_new_key_gets_its_first_restore_id() -> None:
    assert intake(MemoryRecords())._claim_restore_id(KEY) == (restore_id_for(KEY, 0), None)


def test_a_retry_resumes_the_restore_a_crashed_attempt_left() -> None:
    left = record(NOW - timedelta(minutes=3), status="CREATING")
    records = MemoryRecords({restore_id_for(KEY, 0): left})
    assert intake(records)._claim_restore_id(KEY) == (restore_id_for(KEY, 0), left)


def test_an_ended_attempt_is_never_resumed() -> None:
    records = MemoryRecords(
        {
            restore_id_for(KEY, 0): record(NOW - timedelta(minutes=3), finalStatus="ERROR"),
            restore_id_for(KEY, 1): record(NOW - timedelta(minutes=1), finalStatus="ERROR"),
        }
    )
    assert intake(records)._claim_restore_id(KEY) == (restore_id_for(KEY, 2), None)


def test_a_record_older_than_the_idempotency_window_is_not_resumed() -> None:
    records = MemoryRecords({restore_id_for(KEY, 0): record(NOW - timedelta(days=2), status="PENDING")})
    assert intake(records)._claim_restore_id(KEY) == (restore_id_for(KEY, 1), None)


def job(status: str, scheduled: datetime | None) -> RestoreJob:
    return RestoreJob.model_validate(
        {
            "id": "6ae69d205e1a7c0d3f000001",
            "status": status,
            "snapshotId": SNAPSHOT,
            "targetDeploymentItemName": "orders-verify",
            "targetProjectId": GROUP,
            "restoreScheduledDate": scheduled.isoformat() if scheduled else None,
        }
    )


@pytest.mark.parametrize(
    ("found", "adopted"),
    [
        (
            job("PENDING", NOW - timedelta(days=3)),
            True,
        ),  # still running into the target: it is ours to follow
        (job("COMPLETED", NOW + timedelta(seconds=5)), True),  # made after the record: the crashed attempt's
        (job("COMPLETED", NOW - timedelta(minutes=4)), True),  # within the clock-skew tolerance
        (job("COMPLETED", NOW - timedelta(days=1)), False),  # yesterday's restore of the same snapshot
        (job("FAILED", None), False),
        (None, False),
    ],
)
def test_a_resumed_attempt_adopts_only_its_own_job(found: RestoreJob | None, adopted: bool) -> None:
    flow = intake(MemoryRecords(), FoundJob(found))
    result = flow._adopt(FoundJob(found), REQUEST, record(NOW))  # type: ignore[arg-type]
    assert (result is not None) == adopted


def test_errors_carry_their_answer() -> None:
    error = IntakeError(503, "RATE_LIMITED", "retry later", refusal=False, retry_after=7, extra={"x": 1})
    assert error.body() == {"message": "retry later", "errorCode": "RATE_LIMITED", "x": 1}
    assert (error.status, error.retry_after, error.refusal) == (503, 7, False)
