"""What the domain needs from the outside world, as ``typing.Protocol`` ports. The adapters in
``flexrestore.atlas`` and ``flexrestore.aws`` implement them (wired in ``flexrestore.bootstrap``);
``tests/fakes.py`` holds an in-memory fake of each. Ports raise the types of ``domain/errors.py`` only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # types of the ports' signatures only: a handler loads the models it uses, no more
    from flexrestore.contracts import (
        Delivery,
        ExecutionInput,
        Notification,
        RefusalRecord,
        RestoreRecord,
    )
    from flexrestore.contracts.events import OutcomeEvent
    from flexrestore.contracts.plan import PlanEntry
    from flexrestore.contracts.run import RunRecord, RunSource, RunTarget, SnapshotPick, ValidationResult
    from flexrestore.domain.validation import ValidatorCall

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


class ConnectionInfo(Protocol):
    @property
    def standard(self) -> str | None: ...
    @property
    def standard_srv(self) -> str | None: ...


class ClusterDetails(ListedCluster, Protocol):
    """A flex cluster as a GET or a create answers it (what ephemeral targets and validation read)."""

    @property
    def group_id(self) -> str | None: ...
    @property
    def termination_protection_enabled(self) -> bool | None: ...
    @property
    def create_date(self) -> datetime | None: ...
    @property
    def connection_strings(self) -> ConnectionInfo | None: ...


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
    def get_flex_cluster(self, group_id: str, name: str) -> ClusterDetails: ...
    def get_restore_job(self, group_id: str, name: str, job_id: str) -> JobInfo: ...
    def list_restore_jobs(self, group_id: str, name: str) -> Sequence[JobInfo]: ...
    def create_restore_job(
        self, group_id: str, name: str, *, snapshot_id: str, target_name: str, target_project_id: str
    ) -> JobInfo: ...
    def list_flex_clusters(self, group_id: str) -> Sequence[ListedCluster]: ...
    def create_flex_cluster(
        self,
        group_id: str,
        name: str,
        *,
        provider: str,
        region: str,
        tags: Mapping[str, str],
        termination_protection: bool = False,
    ) -> ClusterDetails: ...
    def delete_flex_cluster(self, group_id: str, name: str) -> None: ...


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


class ExecutionStatus(Protocol):
    def status(self, execution_arn: str) -> str | None: ...


class Notifier(Protocol):
    """People (SNS) and machines (EventBridge). Each returns the id the channel gave (MessageId, EventId)."""

    def publish(self, subject: str, message: str) -> str: ...
    def put_event(self, event: OutcomeEvent) -> str: ...


class Metrics(Protocol):
    """CloudWatch metrics; every one carries the service dimension the alarms select on."""

    def count(self, name: str, dimension: str | None = None, value: str | None = None) -> None:
        """One count of ``name``, with one extra dimension when given (e.g. ``reason``)."""
        ...

    def duration(self, name: str, seconds: float) -> None: ...

    def value(
        self,
        name: str,
        amount: float,
        *,
        unit: str = "Count",
        dimension: str | None = None,
        dimension_value: str | None = None,
    ) -> None:
        """Any value (a run's counts and RTOs), with one extra dimension when given (e.g. ``plan``)."""
        ...


# (key, what must match on a replay, the work) -> the first answer for that key
ExactlyOnce = Callable[[str, Mapping[str, Any], Callable[[], dict[str, Any]]], dict[str, Any]]
Now = Callable[[], datetime]


# --- verification plans and runs -------------------------------------------------------------------


class PlanStore(Protocol):
    """Saved plans, by name. ``put`` is conditional on the revision it replaces (None: a new plan) and
    raises ``PlanChanged`` when another writer got there first."""

    def get_plan(self, name: str) -> PlanEntry | None: ...
    def put_plan(self, entry: PlanEntry, *, replaces: int | None) -> None: ...
    def delete_plan(self, name: str) -> bool: ...
    def list_plans(self) -> list[PlanEntry]: ...


class Schedules(Protocol):
    """EventBridge Scheduler: one schedule per scheduled plan, which starts a run of it."""

    def put_schedule(self, plan_name: str, expression: str, timezone: str) -> str: ...
    def delete_schedule(self, plan_name: str) -> bool: ...
    def scheduled_plans(self) -> list[str]: ...


class RunExecutions(Protocol):
    """The verification-run state machine. ``start_run`` is idempotent per run id (the execution's name)."""

    def start_run(self, run_id: str, execution_input: Mapping[str, Any]) -> str: ...


class RunCallbacks(Protocol):
    """Tells a waiting run that one of its restores has ended (Step Functions task tokens). False when the
    run no longer waits for it (the token timed out or was answered already)."""

    def restore_ended(self, task_token: str, output: Mapping[str, Any]) -> bool: ...


@dataclass(frozen=True)
class RunState:
    """A run as its steps see it while it goes on: the run record's head (no sources, no ending yet), the
    plan as it was when the run began, and how many sources it has."""

    record: RunRecord
    plan: Mapping[str, Any]
    source_count: int
    # The names of the run's source clusters in its ephemeral project (the deletion guard's IS_SOURCE).
    target_project_sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class SourceState:
    """One source of a run while the run goes on: where it comes from and what has happened to it."""

    index: int
    planned: Mapping[str, Any]  # domain/plans.py PlannedSource, as stored
    snapshot_id: str | None = None
    snapshot_taken_at: datetime | None = None
    snapshot_choice: SnapshotPick | None = None
    restore_id: str | None = None
    outcome: RunSource | None = None  # set when the source ended without a restore (refused)
    snapshot_version: str | None = None  # the picked snapshot's MongoDB version
    target: RunTarget | None = None  # an ephemeral target's life (domain/ephemeral.py)
    validation: ValidationResult | None = None  # the Validate step's verdict
    run_id: str | None = None  # set where sources of several runs are read together (the sweeper)


class RunStore(Protocol):
    """Runs and their sources. Writes that a retried step repeats are idempotent."""

    def begin_run(self, state: RunState, sources: Sequence[SourceState]) -> RunState: ...
    def run_state(self, run_id: str) -> RunState | None: ...
    def source(self, run_id: str, index: int) -> SourceState | None: ...
    def sources(self, run_id: str) -> list[SourceState]: ...
    def set_snapshot(
        self,
        run_id: str,
        index: int,
        *,
        snapshot_id: str,
        taken_at: datetime | None,
        choice: SnapshotPick,
        mongodb_version: str | None = None,
    ) -> None: ...
    def set_restore(self, run_id: str, index: int, restore_id: str) -> None: ...
    def set_target(self, run_id: str, index: int, target: RunTarget, *, live: bool) -> None:
        """Keep the source's target; ``live``: its cluster may exist (the sweeper's index holds it)."""
        ...

    def set_validation(self, run_id: str, index: int, validation: ValidationResult) -> None: ...
    def live_targets(self) -> list[SourceState]:
        """Every source, of any run, whose ephemeral cluster may still exist (``run_id`` set)."""
        ...

    def update_ended_source(self, run_id: str, index: int, target: RunTarget) -> bool:
        """An ended run's source entry gets its target's later life (a deletion by the sweeper); False
        when the source has no entry (its run has not ended)."""
        ...

    def set_cluster_hours(self, run_id: str, cluster_hours: float | None) -> None: ...
    def set_outcome(self, run_id: str, index: int, outcome: RunSource) -> None: ...
    def attach_token(self, run_id: str, index: int, task_token: str) -> None: ...
    def task_token(self, run_id: str, index: int) -> str | None: ...
    def finish_run(self, record: RunRecord) -> tuple[RunRecord, bool]: ...
    def get_run(self, run_id: str) -> RunRecord | None: ...
    def list_runs(
        self, *, plan: str | None, limit: int, next_token: str | None
    ) -> tuple[list[RunRecord], str | None]: ...
    def open_run_notification(self, run_id: str) -> Notification: ...
    def mark_run_channel(self, run_id: str, channel: str, delivery: Delivery) -> bool: ...


class Validators(Protocol):
    """Plans' own validators (Lambda functions), invoked synchronously; never raises for what the function
    did (an error or a timeout is in the answer), only ``DependencyUnavailable`` when Lambda throttles."""

    def invoke(
        self, function_arn: str, document: Mapping[str, Any], *, timeout_seconds: float
    ) -> ValidatorCall: ...


class RestoreRecordsRead(Protocol):
    def get(self, restore_id: str) -> RestoreRecord | None: ...
    def get_many(self, restore_ids: Sequence[str]) -> dict[str, RestoreRecord]: ...
