"""In-memory fakes of every port of the domain (flexrestore/domain/ports.py), for unit tests that test the
domain's decisions without AWS, HTTP or mocks. Each fake keeps what it was asked, so a test asserts what a
user would see (records, notifications, Atlas jobs), and can be told to fail once at a given call."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from flexrestore.contracts import (
    Delivery,
    ErrorInfo,
    ExecutionInput,
    Notification,
    RefusalRecord,
    RestoreRecord,
)
from flexrestore.contracts.events import OutcomeEvent
from flexrestore.contracts.plan import PlanEntry
from flexrestore.contracts.record import TimelineEntry
from flexrestore.domain.errors import (
    AtlasNotFound,
    AtlasUnavailable,
    PlanChanged,
    RequestInProgress,
    TargetBusy,
)
from flexrestore.domain.guards import GuardConfig
from flexrestore.domain.hand_off import CreateStep
from flexrestore.domain.intake import Intake, IntakeConfig
from flexrestore.domain.plan_catalog import PlanCatalog
from flexrestore.domain.ports import ExecutionState, LockHolder, OutageState
from flexrestore.domain.reconcile import Reconciler

NOW = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
GROUP = "65f1a2b3c4d5e6f708192a3b"
SOURCE = "orders-prod"
TARGET = "orders-verify"
SNAPSHOT = "6723a1f0c4d5e6f708193b01"


class Crash(BaseException):
    """A Lambda that dies mid-step: a BaseException, so no ``except Exception`` of the code under test can
    catch it (nothing gets to clean up)."""


@dataclass
class Faults:
    """Failures to raise at named calls: ``faults.once("create", Crash())`` fails the next ``create``."""

    planned: dict[str, list[BaseException]] = field(default_factory=dict)

    def once(self, call: str, error: BaseException) -> None:
        self.planned.setdefault(call, []).append(error)

    def always(self, call: str, error: BaseException, times: int = 1000) -> None:
        self.planned[call] = [error] * times

    def check(self, call: str) -> None:
        pending = self.planned.get(call)
        if pending:
            raise pending.pop(0)


class Clock:
    """``now`` that only moves when told."""

    def __init__(self, start: datetime = NOW) -> None:
        self.moment = start

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


# --- Atlas ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    id: str
    status: str = "COMPLETED"
    mongodb_version: str | None = "8.0.15"
    scheduled_time: datetime | None = None
    start_time: datetime | None = None
    finish_time: datetime | None = None
    expiration: datetime | None = None


@dataclass(frozen=True)
class Cluster:
    state_name: str | None = "IDLE"
    mongodb_version: str | None = "8.0.15"
    tag_map: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ListedCluster:
    """A flex cluster as listing a project gives it (what a plan's tag selector chooses from)."""

    name: str
    tag_map: dict[str, str] = field(default_factory=dict)
    state_name: str | None = "IDLE"
    mongodb_version: str | None = "8.0.15"


@dataclass(frozen=True)
class Job:
    id: str
    status: str = "PENDING"
    snapshot_id: str | None = SNAPSHOT
    target_deployment_item_name: str | None = TARGET
    target_project_id: str | None = GROUP
    delivery_type: str | None = "RESTORE"
    restore_scheduled_date: datetime | None = None
    restore_finished_date: datetime | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status in ("COMPLETED", "FAILED")


@dataclass
class FakeAtlas:
    """Atlas with one source cluster and its scratch target by default. ``creates`` counts create calls."""

    now: Callable[[], datetime]
    snapshots: dict[tuple[str, str], list[Snapshot]] = field(default_factory=dict)
    clusters: dict[tuple[str, str], Cluster] = field(default_factory=dict)
    jobs: dict[str, Job] = field(default_factory=dict)
    faults: Faults = field(default_factory=Faults)
    creates: int = 0
    calls: list[str] = field(default_factory=list)
    lose_next_create_answer: bool = False  # the job is made, the answer is lost (a 500 after the fact)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.snapshots.setdefault(
            (GROUP, SOURCE), [Snapshot(SNAPSHOT, finish_time=self.now() - timedelta(hours=1))]
        )
        self.clusters.setdefault((GROUP, SOURCE), Cluster(tag_map={"restore-protected": "true"}))
        self.clusters.setdefault((GROUP, TARGET), Cluster())

    def _call(self, name: str) -> None:
        self.calls.append(name)
        self.faults.check(name)

    def list_snapshots(self, group_id: str, name: str) -> Sequence[Snapshot]:
        self._call("list_snapshots")
        return list(self.snapshots.get((group_id, name), []))

    def get_snapshot(self, group_id: str, name: str, snapshot_id: str) -> Snapshot:
        self._call("get_snapshot")
        for snapshot in self.snapshots.get((group_id, name), []):
            if snapshot.id == snapshot_id:
                return snapshot
        raise AtlasNotFound("no such snapshot", status=404, error_code="RESOURCE_NOT_FOUND")

    def get_flex_cluster(self, group_id: str, name: str) -> Cluster:
        self._call("get_flex_cluster")
        cluster = self.clusters.get((group_id, name))
        if cluster is None:
            raise AtlasNotFound("no such cluster", status=404, error_code="CLUSTER_NOT_FOUND")
        return cluster

    def get_restore_job(self, group_id: str, name: str, job_id: str) -> Job:
        self._call("get_restore_job")
        if job_id not in self.jobs:
            raise AtlasNotFound("no such job", status=404, error_code="RESOURCE_NOT_FOUND")
        return self.jobs[job_id]

    def list_restore_jobs(self, group_id: str, name: str) -> Sequence[Job]:
        self._call("list_restore_jobs")
        return list(self.jobs.values())

    def create_restore_job(
        self, group_id: str, name: str, *, snapshot_id: str, target_name: str, target_project_id: str
    ) -> Job:
        self._call("create_restore_job")
        self.creates += 1
        job = Job(
            id=f"{next(self._ids):024x}",
            snapshot_id=snapshot_id,
            target_deployment_item_name=target_name,
            target_project_id=target_project_id,
            restore_scheduled_date=self.now() + timedelta(seconds=5),
        )
        self.jobs[job.id] = job
        if self.lose_next_create_answer:
            self.lose_next_create_answer = False
            raise AtlasUnavailable("HTTP 500 after the job was made", status=500)
        return job

    def finish(self, job_id: str, status: str = "COMPLETED", after_seconds: float = 65) -> None:
        job = self.jobs[job_id]
        scheduled = job.restore_scheduled_date or self.now()
        self.jobs[job_id] = Job(
            **{
                **job.__dict__,
                "status": status,
                "restore_finished_date": scheduled + timedelta(seconds=after_seconds - 5),
            }
        )


# --- the restores table -----------------------------------------------------------------------------


@dataclass
class MemoryStore:
    """Restore records and refusals (every record port); updates follow the DynamoDB adapter's conditions."""

    records: dict[str, RestoreRecord] = field(default_factory=dict)
    refusals: list[RefusalRecord] = field(default_factory=list)
    outages: dict[str, OutageState] = field(default_factory=dict)
    faults: Faults = field(default_factory=Faults)

    def _update(self, restore_id: str, **changes: Any) -> None:
        self.records[restore_id] = self.records[restore_id].model_copy(update=changes)

    # intake
    def get(self, restore_id: str) -> RestoreRecord | None:
        self.faults.check("get")
        return self.records.get(restore_id)

    def create(self, record: RestoreRecord) -> None:
        self.faults.check("create")
        if record.id in self.records:
            raise KeyError(record.id)
        self.records[record.id] = record

    def mark_job_created(self, restore_id: str, *, restore_job_id: str, status: str, at: datetime) -> None:
        self.faults.check("mark_job_created")
        timeline = [*self.records[restore_id].timeline, TimelineEntry(status=status, at=at)]
        self._update(restore_id, restore_job_id=restore_job_id, status=status, timeline=timeline)

    def set_execution(self, restore_id: str, execution_arn: str) -> None:
        self.faults.check("set_execution")
        self._update(restore_id, execution_arn=execution_arn, handoff=None)

    def claim_create(self, restore_id: str, *, at: datetime) -> bool:
        self.faults.check("claim_create")
        record = self.records.get(restore_id)
        if record is None or record.ended:
            return False
        if record.create_attempted_at is None:
            timeline = [*record.timeline, TimelineEntry(status="CREATING", at=at)]
            self._update(restore_id, create_attempted_at=at, status="CREATING", timeline=timeline)
        return True

    def pending_handoffs(self, *, before: datetime, limit: int = 100) -> list[RestoreRecord]:
        pending = [r for r in self.records.values() if r.handoff == "PENDING" and r.requested_at < before]
        return sorted(pending, key=lambda r: r.requested_at)[:limit]

    def end_unsent(self, restore_id: str, *, code: str, message: str, at: datetime) -> bool:
        record = self.records.get(restore_id)
        if record is None or record.ended or record.create_attempted_at is not None:
            return False
        timeline = [*record.timeline, TimelineEntry(status="HANDOFF_FAILED", at=at)]
        self._update(
            restore_id,
            status="HANDOFF_FAILED",
            final_status="ERROR",
            finished_at=at,
            noticed_at=at,
            error=ErrorInfo(code=code, message=message),
            timeline=timeline,
            handoff=None,
        )
        return True

    def unsettled(self, *, since: datetime, limit: int = 100) -> list[RestoreRecord]:
        found = [
            r
            for r in self.records.values()
            if r.requested_at >= since
            and (not r.ended or (r.notification or Notification()).status != "SENT")
        ]
        return sorted(found, key=lambda r: r.requested_at)[:limit]

    def end_as(self, record: RestoreRecord) -> bool:
        self.faults.check("end_as")
        stored = self.records.get(record.id)
        if stored is None or stored.ended:
            return False
        self.records[record.id] = record.model_copy(update={"notification": stored.notification})
        return True

    def record_refusal(self, refusal: RefusalRecord) -> None:
        self.faults.check("record_refusal")
        self.refusals.append(refusal)

    # poll
    def record_status(self, restore_id: str, status: str, at: datetime) -> bool:
        record = self.records.get(restore_id)
        if record is None or record.ended or record.status == status:
            return False
        self._update(
            restore_id, status=status, timeline=[*record.timeline, TimelineEntry(status=status, at=at)]
        )
        return True

    def atlas_outage(self, restore_id: str) -> OutageState:
        self.faults.check("atlas_outage")
        return self.outages.get(restore_id, OutageState())

    def note_atlas_fault(
        self, restore_id: str, *, at: datetime, not_before: datetime | None, code: str, message: str
    ) -> datetime | None:
        record = self.records.get(restore_id)
        if record is None or record.ended:
            return None
        since = self.outages.get(restore_id, OutageState()).since or at
        self.outages[restore_id] = OutageState(since=since, not_before=not_before)
        return since

    def clear_atlas_outage(self, restore_id: str) -> None:
        self.outages.pop(restore_id, None)

    # ending
    def save_final(self, record: RestoreRecord) -> tuple[RestoreRecord, bool]:
        self.faults.check("save_final")
        stored = self.records.get(record.id)
        if stored is not None and stored.ended:
            return stored, False
        self.records[record.id] = record
        return record, True

    # deliveries
    def open_notification(self, restore_id: str) -> Notification:
        self.faults.check("open_notification")
        record = self.records[restore_id]
        if record.notification is None:
            self._update(restore_id, notification=Notification())
        return self.records[restore_id].notification or Notification()

    def mark_channel(self, restore_id: str, channel: str, delivery: Delivery) -> bool:
        notification = self.records[restore_id].notification or Notification()
        current: Delivery | None = getattr(notification, channel)
        if current is not None and current.status == "SENT":
            return False
        self._update(restore_id, notification=notification.model_copy(update={channel: delivery}))
        return True

    def mark_notification(self, restore_id: str, notification: Notification) -> None:
        current = self.records[restore_id].notification or Notification()
        changes = {k: v for k, v in notification.model_dump(by_alias=False).items() if v is not None}
        self._update(restore_id, notification=current.model_copy(update=changes))


@dataclass
class MemoryLocks:
    """One lease per target; ``now`` in epoch seconds from the test's clock."""

    now: Callable[[], datetime]
    held: dict[str, LockHolder] = field(default_factory=dict)
    taken_at: dict[str, datetime] = field(default_factory=dict)
    faults: Faults = field(default_factory=Faults)

    def acquire(self, project_id: str, target: str, /, *, restore_id: str, lease_seconds: int) -> str:
        self.faults.check("acquire")
        lock_id = f"lock#{project_id}#{target}"
        holder = self.held.get(lock_id)
        epoch = int(self.now().timestamp())
        if holder is not None and holder.restore_id != restore_id and holder.expires_at >= epoch:
            raise TargetBusy(holder.restore_id, lock_id, holder.expires_at)
        self.held[lock_id] = LockHolder(restore_id, lock_id, epoch + lease_seconds)
        self.taken_at[lock_id] = self.now()
        return lock_id

    def release(self, lock_id: str, restore_id: str) -> bool:
        holder = self.held.get(lock_id)
        if holder is None or holder.restore_id != restore_id:
            return False
        del self.held[lock_id]
        return True

    def held_since(self, *, before: datetime, limit: int = 100) -> list[LockHolder]:
        return [h for lock_id, h in self.held.items() if self.taken_at[lock_id] < before][:limit]

    def holder(self, project_id: str, target: str, /) -> LockHolder | None:
        holder = self.held.get(f"lock#{project_id}#{target}")
        if holder is None or holder.expires_at < int(self.now().timestamp()):
            return None
        return holder


@dataclass
class FakeExecutions:
    """Step Functions: one execution per name (a repeated start answers the same ARN)."""

    started: dict[str, ExecutionInput] = field(default_factory=dict)
    states: dict[str, ExecutionState] = field(default_factory=dict)  # by name; RUNNING once started
    faults: Faults = field(default_factory=Faults)

    def start_execution(self, name: str, execution_input: ExecutionInput) -> str:
        self.faults.check("start_execution")
        self.started.setdefault(name, execution_input)
        self.states.setdefault(name, ExecutionState(status="RUNNING"))
        return f"arn:aws:states:us-east-1:123456789012:execution:flexrestore-restore-poll:{name}"

    def describe(self, execution_arn: str) -> ExecutionState:
        self.faults.check("describe")
        return self.states[execution_arn.rpartition(":")[2]]

    def end(
        self, name: str, status: str, output: dict[str, Any] | None = None, error: str | None = None
    ) -> None:
        """The execution of that name ends (SUCCEEDED with its output, or FAILED/ABORTED with an error)."""
        self.states[name] = ExecutionState(status=status, output=output, error=error)


@dataclass
class FakeNotifier:
    messages: list[tuple[str, str]] = field(default_factory=list)
    events: list[OutcomeEvent] = field(default_factory=list)
    faults: Faults = field(default_factory=Faults)

    def publish(self, subject: str, message: str) -> str:
        self.faults.check("publish")
        self.messages.append((subject, message))
        return f"message-{len(self.messages)}"

    def put_event(self, event: OutcomeEvent) -> str:
        self.faults.check("put_event")
        self.events.append(event)
        return f"event-{len(self.events)}"


@dataclass
class FakeMetrics:
    counted: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    durations: list[tuple[str, float]] = field(default_factory=list)
    values: list[tuple[str, float, str | None, str | None]] = field(default_factory=list)

    def count(self, name: str, dimension: str | None = None, value: str | None = None) -> None:
        self.counted.append((name, dimension, value))

    def duration(self, name: str, seconds: float) -> None:
        self.durations.append((name, seconds))

    def value(
        self,
        name: str,
        amount: float,
        *,
        unit: str = "Count",
        dimension: str | None = None,
        dimension_value: str | None = None,
    ) -> None:
        self.values.append((name, amount, dimension, dimension_value))

    def names(self) -> list[str]:
        return [name for name, _, _ in self.counted]


# --- plans, their schedules, runs ----------------------------------------------------------------------


@dataclass
class MemoryPlans:
    """The plans table: a put is conditional on the revision it replaces, like the adapter's."""

    plans: dict[str, PlanEntry] = field(default_factory=dict)
    faults: Faults = field(default_factory=Faults)

    def get_plan(self, name: str) -> PlanEntry | None:
        self.faults.check("get_plan")
        return self.plans.get(name)

    def put_plan(self, entry: PlanEntry, *, replaces: int | None) -> None:
        self.faults.check("put_plan")
        current = self.plans.get(entry.name)
        if (current.revision if current else None) != replaces:
            raise PlanChanged(f"plan {entry.name!r} was changed by another request; retry")
        self.plans[entry.name] = entry

    def delete_plan(self, name: str) -> bool:
        self.faults.check("delete_plan")
        return self.plans.pop(name, None) is not None

    def list_plans(self) -> list[PlanEntry]:
        return list(self.plans.values())


@dataclass
class FakeSchedules:
    """EventBridge Scheduler: one schedule per plan name, as (expression, timezone)."""

    schedules: dict[str, tuple[str, str]] = field(default_factory=dict)
    faults: Faults = field(default_factory=Faults)

    def put_schedule(self, plan_name: str, expression: str, timezone: str) -> str:
        self.faults.check("put_schedule")
        self.schedules[plan_name] = (expression, timezone)
        return plan_name

    def delete_schedule(self, plan_name: str) -> bool:
        self.faults.check("delete_schedule")
        return self.schedules.pop(plan_name, None) is not None

    def scheduled_plans(self) -> list[str]:
        return sorted(self.schedules)


@dataclass
class FakeRunStarts:
    """The run state machine: one execution per run id."""

    started: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    faults: Faults = field(default_factory=Faults)

    def start_run(self, run_id: str, execution_input: Mapping[str, Any]) -> str:
        self.faults.check("start_run")
        self.started.setdefault(run_id, execution_input)
        return f"arn:aws:states:us-east-1:123456789012:execution:flexrestore-verification-run:{run_id}"


@dataclass
class MemoryExactlyOnce:
    """powertools idempotency's behaviour: the first answer per key is replayed; a key in flight is
    RequestInProgress; a failed attempt leaves no answer, so a retry runs the work again."""

    answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    in_flight: set[str] = field(default_factory=set)

    def __call__(
        self, key: str, validation: Mapping[str, Any], work: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        if key in self.answers:
            return self.answers[key]
        if key in self.in_flight:
            raise RequestInProgress(key)
        self.in_flight.add(key)
        try:
            answer = work()
        finally:
            self.in_flight.discard(key)
        self.answers[key] = answer
        return answer


@dataclass
class World:
    """Every fake, wired into one intake flow (``world.intake``)."""

    clock: Clock = field(default_factory=Clock)
    guards: GuardConfig = field(default_factory=GuardConfig)

    def __post_init__(self) -> None:
        self.atlas = FakeAtlas(now=self.clock)
        self.store = MemoryStore()
        self.locks = MemoryLocks(now=self.clock)
        self.executions = FakeExecutions()
        self.notifier = FakeNotifier()
        self.metrics = FakeMetrics()
        self.exactly_once = MemoryExactlyOnce()
        self.intake = Intake(
            atlas=lambda: self.atlas,
            records=self.store,
            locks=self.locks,
            executions=self.executions,
            exactly_once=self.exactly_once,
            metrics=self.metrics,
            config=IntakeConfig(
                guards=self.guards, poll_deadline_seconds=3600, idempotency_ttl_seconds=86400
            ),
            now=self.clock,
            pause=lambda seconds: None,
        )
        self.create_step = CreateStep(atlas=lambda: self.atlas, records=self.store, now=self.clock)
        self.plans = MemoryPlans()
        self.schedules = FakeSchedules()
        self.run_starts = FakeRunStarts()
        self.catalog = PlanCatalog(
            plans=self.plans,
            schedules=lambda: self.schedules,
            runs=lambda: self.run_starts,
            guards=lambda: self.guards,
            now=self.clock,
        )
        self.reconciler = Reconciler(
            records=self.store,
            locks=self.locks,
            executions=self.executions,
            notifier=self.notifier,
            metrics=self.metrics,
            poll_deadline_seconds=3600,
            now=self.clock,
        )
