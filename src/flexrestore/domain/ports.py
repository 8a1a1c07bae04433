"""What the domain needs from the outside world, as ``typing.Protocol`` ports. The adapters in
``flexrestore.atlas`` and ``flexrestore.aws`` implement them (wired in ``flexrestore.bootstrap``);
``tests/fakes.py`` holds an in-memory fake of each. Ports raise the types of ``domain/errors.py`` only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from flexrestore.contracts import Delivery, ExecutionInput, Notification, RefusalRecord, RestoreRecord

# --- Atlas ------------------------------------------------------------------------------------------


class SnapshotInfo(Protocol):
    """An Atlas flex backup snapshot, as far as the domain reads it."""

    @property
    def id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def mongodb_version(self) -> str | None: ...
    @property
    def scheduled_time(self) -> datetime | None: ...
    @property
    def start_time(self) -> datetime | None: ...
    @property
    def finish_time(self) -> datetime | None: ...
    @property
    def expiration(self) -> datetime | None: ...


class ClusterInfo(Protocol):
    """An Atlas flex cluster (a restore target), as far as the guards read it."""

    @property
    def state_name(self) -> str | None: ...
    @property
    def mongodb_version(self) -> str | None: ...
    @property
    def tag_map(self) -> dict[str, str]: ...


class ListedCluster(ClusterInfo, Protocol):
    """A flex cluster as the listing of a project gives it (what a plan's tag selector chooses from)."""

    @property
    def name(self) -> str: ...


class JobInfo(Protocol):
    """An Atlas flex restore job."""

    @property
    def id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def snapshot_id(self) -> str | None: ...
    @property
    def target_deployment_item_name(self) -> str | None: ...
    @property
    def target_project_id(self) -> str | None: ...
    @property
    def delivery_type(self) -> str | None: ...
    @property
    def restore_scheduled_date(self) -> datetime | None: ...
    @property
    def restore_finished_date(self) -> datetime | None: ...
    @property
    def is_terminal(self) -> bool: ...


class Atlas(Protocol):
    """The Atlas Admin API operations the domain calls (flexrestore.atlas.client.AtlasClient)."""

    def list_snapshots(self, group_id: str, name: str) -> Sequence[SnapshotInfo]: ...
    def get_snapshot(self, group_id: str, name: str, snapshot_id: str) -> SnapshotInfo: ...
    def get_flex_cluster(self, group_id: str, name: str) -> ClusterInfo: ...
    def get_restore_job(self, group_id: str, name: str, job_id: str) -> JobInfo: ...
    def list_restore_jobs(self, group_id: str, name: str) -> Sequence[JobInfo]: ...
    def create_restore_job(
        self, group_id: str, name: str, *, snapshot_id: str, target_name: str, target_project_id: str
    ) -> JobInfo: ...


# --- the restores table ------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutageState:
    """The record's view of an ongoing Atlas outage (all None when Atlas answered the last look)."""

    since: datetime | None = None
    not_before: datetime | None = None


class Deliveries(Protocol):
    """Which notification channels took the outcome (``notification.<channel>`` on the record)."""

    def open_notification(self, restore_id: str) -> Notification: ...
    def mark_channel(self, restore_id: str, channel: str, delivery: Delivery) -> bool: ...
    def mark_notification(self, restore_id: str, notification: Notification) -> None: ...


class ExecutionMarks(Protocol):
    def set_execution(self, restore_id: str, execution_arn: str) -> None: ...


class IntakeRecords(Protocol):
    """Restore records as the intake writes them."""

    def get(self, restore_id: str) -> RestoreRecord | None: ...
    def create(self, record: RestoreRecord) -> None: ...
    def set_execution(self, restore_id: str, execution_arn: str) -> None: ...
    def record_refusal(self, refusal: RefusalRecord) -> None: ...


class ReconcileRecords(Deliveries, Protocol):
    """What the reconciler reads and writes: restores whose hand-off never happened, and restores whose
    execution ended without recording or telling their end."""

    def get(self, restore_id: str) -> RestoreRecord | None: ...
    def set_execution(self, restore_id: str, execution_arn: str) -> None: ...
    def pending_handoffs(self, *, before: datetime, limit: int = 100) -> list[RestoreRecord]: ...
    def end_unsent(self, restore_id: str, *, code: str, message: str, at: datetime) -> bool: ...
    def unsettled(self, *, since: datetime, limit: int = 100) -> list[RestoreRecord]: ...
    def end_as(self, record: RestoreRecord) -> bool: ...


class HandOffRecords(Protocol):
    """What the create step reads and writes on the record."""

    def get(self, restore_id: str) -> RestoreRecord | None: ...
    def claim_create(self, restore_id: str, *, at: datetime) -> bool: ...
    def mark_job_created(
        self, restore_id: str, *, restore_job_id: str, status: str, at: datetime
    ) -> None: ...


class PollRecords(Protocol):
    """What the poll step keeps on the record while a restore runs."""

    def record_status(self, restore_id: str, status: str, at: datetime) -> bool: ...
    def atlas_outage(self, restore_id: str) -> OutageState: ...
    def note_atlas_fault(
        self, restore_id: str, *, at: datetime, not_before: datetime | None, code: str, message: str
    ) -> datetime | None: ...
    def clear_atlas_outage(self, restore_id: str) -> None: ...


class OutcomeRecords(Protocol):
    """The final record, written once."""

    def get(self, restore_id: str) -> RestoreRecord | None: ...
    def save_final(self, record: RestoreRecord) -> tuple[RestoreRecord, bool]: ...


# --- the others ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LockHolder:
    restore_id: str
    lock_id: str
    expires_at: int


class Locks(Protocol):
    """One lease per target (project id, target name). ``acquire`` raises ``TargetBusy``."""

    def acquire(self, project_id: str, target: str, /, *, restore_id: str, lease_seconds: int) -> str: ...
    def release(self, lock_id: str, restore_id: str) -> bool: ...
    def holder(self, project_id: str, target: str, /) -> LockHolder | None: ...
    def held_since(self, *, before: datetime, limit: int = 100) -> list[LockHolder]: ...


@dataclass(frozen=True)
class ExecutionState:
    """Where a restore's execution is: RUNNING, SUCCEEDED, FAILED, TIMED_OUT or ABORTED, and what it ended
    with (its output, or its error and cause)."""

    status: str
    output: Mapping[str, Any] | None = None
    error: str | None = None
    cause: str | None = None

    @property
    def running(self) -> bool:
        return self.status in ("RUNNING", "PENDING_REDRIVE")

    @property
    def told(self) -> bool:
        """The execution's Notify step told the ending (its output is the notification, SENT)."""
        return self.status == "SUCCEEDED" and (self.output or {}).get("status") == "SENT"


class Executions(Protocol):
    """The poll loop (Step Functions). ``start`` is idempotent per name."""

    def start_execution(self, name: str, execution_input: ExecutionInput) -> str: ...
    def describe(self, execution_arn: str) -> ExecutionState: ...


class Notifier(Protocol):
    """People (SNS) and machines (EventBridge)."""

    def publish(self, subject: str, message: str) -> str: ...
    def put_outcome_event(self, detail_type: str, detail: Mapping[str, Any]) -> str: ...


class Metrics(Protocol):
    """CloudWatch metrics; every one carries the service dimension the alarms select on."""

    def count(self, name: str, dimension: str | None = None, value: str | None = None) -> None:
        """One count of ``name``, with one extra dimension when given (e.g. ``reason``)."""
        ...

    def duration(self, name: str, seconds: float) -> None: ...


# (key, what must match on a replay, the work) -> the first answer for that key
ExactlyOnce = Callable[[str, Mapping[str, Any], Callable[[], dict[str, Any]]], dict[str, Any]]
Now = Callable[[], datetime]
