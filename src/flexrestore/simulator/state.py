"""What the simulated Atlas knows: projects, flex clusters, snapshots, restore jobs and the active scenario.

Nothing here runs in the background. A restore job stores the moment it was scheduled and the fate it was
given at creation; a flex cluster made through the API stores when it becomes IDLE and, once deleted, when
it is gone. States are computed from the simulator clock on every read, so a test that advances a
VirtualClock by 61 s sees a finished job, and one that advances it by 41 s after a delete gets a 404.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flexrestore.clock import isoformat
from flexrestore.simulator.problems import AtlasProblem

SCENARIOS = (
    "ok",
    "slow",
    "fail",
    "never-finishes",
    "not-found",
    "rate-limited",
    "rate-limited-no-header",
    "flaky",
    "token-expired",
    "job-vanishes",
    "garbage",
    "create-cluster-answer-lost",
    "cluster-never-idle",
    "delete-fails-twice",
)
ACTIVE_JOB_STATUSES = frozenset({"PENDING", "QUEUED", "RUNNING"})
SNAPSHOT_RETENTION_SECONDS = 8 * 24 * 3600  # observed: expiration = scheduledTime + 8 days
SNAPSHOT_TAKES_SECONDS = 134.0
JOB_EXPIRES_AFTER_SECONDS = 6 * 3600  # observed: expirationDate = restoreScheduledDate + 6 h
# Atlas runs new Flex clusters on MongoDB 8.0 or newer; the simulator makes them on this version.
NEW_CLUSTER_VERSION = "8.0.15"
BACKING_PROVIDERS = ("AWS", "AZURE", "GCP")  # the enum of providerSettings.backingProviderName
FLEX_DISK_SIZE_GB = 5.0
RESTORE_FATES = ("COMPLETED", "FAILED", "NEVER")


@dataclass
class Timings:
    """How long things take on the simulator clock (seconds)."""

    schedule_delay: float = 5.0  # create -> restoreScheduledDate
    queued_for: float = 10.0  # QUEUED after restoreScheduledDate, then RUNNING
    ok_duration: float = 60.0  # restoreScheduledDate -> COMPLETED (observed ~50 s on real Atlas)
    slow_duration: float = 1800.0
    fail_duration: float = 45.0  # restoreScheduledDate -> FAILED
    cluster_create: float = 10.0  # flex cluster create -> IDLE (observed: 8 s on real Atlas)
    cluster_delete: float = (
        40.0  # flex cluster delete -> gone, 404 (observed: 30 to 47 s; DELETING meanwhile)
    )


@dataclass(frozen=True)
class RateLimit:
    """The token buckets of the ``rate-limited`` scenario: one bucket per operation and project.

    A bucket holds at most ``capacity`` tokens and starts with ``initial_tokens`` (default 0: other
    callers of the project have just spent it, so the scenario shows even on a single restore). Every
    ``refill_seconds`` after the bucket's first use it gains ``refill_amount`` tokens, up to ``capacity``
    (Atlas's figures read "Request capacity: 10. Refill rate: 5 per 60 seconds."). A call takes one
    token; with none left it gets a 429 whose Retry-After is the time to the next refill, and takes none.

    The defaults (capacity 3, 1 token every 10 s) let a single restore through with a few 429s (one per
    operation's first call) whose Retry-After, 10 s, fits the service's 15 s client budget. A fleet of
    restores in one project shares each operation's 6 calls a minute and bursts of 3: at 5 restores at a
    time about one call in four is refused, on every operation. Atlas's own figures would refill too
    slowly for that budget (Retry-After up to 60 s).
    """

    capacity: int = 3
    refill_amount: int = 1
    refill_seconds: int = 10
    initial_tokens: int = 0

    def __post_init__(self) -> None:
        if self.capacity < 1 or self.refill_amount < 1 or self.refill_seconds < 1:
            raise ValueError("capacity, refill_amount and refill_seconds must be at least 1")
        if not 0 <= self.initial_tokens <= self.capacity:
            raise ValueError("initial_tokens must be between 0 and capacity")


# Outside rate-limited the buckets only count, for the RateLimit-* headers, and never refuse. Their figures
# are those real Atlas answers carried (RateLimit-Limit: 1200).
AMPLE_RATE_LIMIT = RateLimit(capacity=1200, refill_amount=100, refill_seconds=5, initial_tokens=1200)


@dataclass
class _Bucket:
    tokens: int
    started: float  # refills fall at started + k * refill_seconds
    refills: int = 0  # refills already credited

    def refill(self, now: float, limit: RateLimit) -> None:
        due = math.floor((now - self.started) / limit.refill_seconds + 1e-9)
        if due > self.refills:
            self.tokens = min(limit.capacity, self.tokens + (due - self.refills) * limit.refill_amount)
            self.refills = due

    def seconds_to_refill(self, now: float, limit: RateLimit) -> int:
        at = self.started + (self.refills + 1) * limit.refill_seconds
        return max(1, math.ceil(at - now - 1e-9))


@dataclass
class Cluster:
    group_id: str
    name: str
    id: str
    state_name: str  # the state once IDLE would be reached (seeded clusters may be UPDATING for good)
    mongodb_version: str
    tags: dict[str, str]
    dedicated: bool
    termination_protection: bool
    created: float
    provider: str = "AWS"
    region: str = "US_EAST_1"
    ready_at: float | None = None  # made through the API: CREATING until then (inf: never)
    deleted_at: float | None = None  # DELETING since then ...
    gone_at: float | None = None  # ... and gone (404) from then on

    def state(self, now: float) -> str:
        if self.deleted_at is not None:
            return "DELETING"
        if self.ready_at is not None and now < self.ready_at:
            return "CREATING"
        return self.state_name


@dataclass
class Snapshot:
    id: str
    group_id: str
    cluster: str
    status: str
    mongodb_version: str
    scheduled: float
    finished: float | None


@dataclass
class RestoreJob:
    id: str
    group_id: str
    cluster: str
    cluster_id: str  # the source's id: a later cluster of the same name does not list this job
    snapshot_id: str
    snapshot_finished: float | None
    target_name: str
    target_project_id: str
    created: float
    scheduled: float
    outcome: str | None  # COMPLETED / FAILED, or None: never finishes
    duration: float
    queued_for: float

    def status(self, now: float) -> str:
        if now < self.scheduled:
            return "PENDING"
        if self.outcome is not None and now >= self.scheduled + self.duration:
            return self.outcome
        if now < self.scheduled + self.queued_for:
            return "QUEUED"
        return "RUNNING"

    def finished_at(self, now: float) -> float | None:
        return self.scheduled + self.duration if self.status(now) in ("COMPLETED", "FAILED") else None


@dataclass
class Page:
    items_per_page: int = 100
    page_num: int = 1
    include_count: bool = True

    @classmethod
    def from_query(cls, query: Mapping[str, list[str]]) -> Page:
        # The spec check has already refused malformed values.
        page = cls()
        if "itemsPerPage" in query:
            page.items_per_page = int(query["itemsPerPage"][0])
        if "pageNum" in query:
            page.page_num = int(query["pageNum"][0])
        if "includeCount" in query:
            page.include_count = query["includeCount"][0] == "true"
        return page


@dataclass
class AtlasState:
    """All simulated Atlas data. Every public method takes the lock: the HTTP server is threaded."""

    now: Callable[[], float]
    timings: Timings = field(default_factory=Timings)
    rate_limit: RateLimit = field(default_factory=RateLimit)
    limited_calls: int = 2  # rate-limited-no-header: 429s per operation before it is served
    flaky_failures: int = 2  # flaky: failures per operation (503, 500, ...) before it is served
    deletes_that_fail: int = 2  # delete-fails-twice: 500s per cluster before its delete works
    max_clusters_per_project: int | None = None  # None: no limit on flex cluster creates
    lock: threading.RLock = field(default_factory=threading.RLock)
    groups: set[str] = field(default_factory=set)
    clusters: dict[tuple[str, str], Cluster] = field(default_factory=dict)
    snapshots: dict[str, Snapshot] = field(default_factory=dict)
    jobs: dict[str, RestoreJob] = field(default_factory=dict)
    busy_targets: set[tuple[str, str]] = field(default_factory=set)
    scenario: str = "ok"
    _calls_per_operation: dict[str, int] = field(default_factory=dict)
    _buckets: dict[tuple[str, str], _Bucket] = field(default_factory=dict)
    _deletes_per_cluster: dict[tuple[str, str], int] = field(default_factory=dict)
    _lost_create_answers: set[tuple[str, str]] = field(default_factory=set)
    # Knobs that combine with any scenario; a None group matches every project.
    _failing_deletes: dict[tuple[str | None, str], int] = field(default_factory=dict)
    _held_creating: set[tuple[str | None, str]] = field(default_factory=set)
    _fates: dict[tuple[str, str], tuple[str | None, float]] = field(default_factory=dict)
    _ids: int = 0

    # -- set-up ----------------------------------------------------------------------------------------

    def new_id(self) -> str:
        """An ObjectId-shaped 24-hex id: 4 bytes of clock time, 5 fixed bytes, a 3-byte counter."""
        with self.lock:
            self._ids += 1
            return f"{int(self.now()) & 0xFFFFFFFF:08x}5e1a7c0d3f{self._ids & 0xFFFFFF:06x}"

    def set_scenario(self, scenario: str) -> None:
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
        with self.lock:
            self.scenario = scenario
            self._calls_per_operation.clear()
            self._buckets.clear()
            self._deletes_per_cluster.clear()
            self._lost_create_answers.clear()

    def set_rate_limit(self, limit: RateLimit) -> None:
        """New bucket figures; every bucket starts again (with ``limit.initial_tokens``)."""
        with self.lock:
            self.rate_limit = limit
            self._buckets.clear()

    def set_restore_fate(
        self, group_id: str, cluster: str, fate: str | None, duration_seconds: float | None = None
    ) -> None:
        """How restore jobs created from this source from now on end, whatever the scenario.

        ``fate``: COMPLETED or FAILED, ``duration_seconds`` after restoreScheduledDate (default: the ok or
        fail timing), or NEVER (stays RUNNING). None forgets the source's fate: the scenario decides again.
        """
        if fate is not None and fate not in RESTORE_FATES:
            raise ValueError(f"unknown restore fate {fate!r}; known: {', '.join(RESTORE_FATES)}")
        if duration_seconds is not None and not 0 <= duration_seconds < math.inf:
            raise ValueError("duration_seconds must be a finite number of seconds, 0 or more")
        with self.lock:
            if fate is None:
                self._fates.pop((group_id, cluster), None)
            elif fate == "NEVER":
                self._fates[(group_id, cluster)] = (None, math.inf)
            elif fate == "FAILED":
                self._fates[(group_id, cluster)] = (
                    "FAILED",
                    _or(duration_seconds, self.timings.fail_duration),
                )
            else:
                self._fates[(group_id, cluster)] = (
                    "COMPLETED",
                    _or(duration_seconds, self.timings.ok_duration),
                )

    def restore_fate(self, group_id: str, cluster: str) -> tuple[str | None, float] | None:
        with self.lock:
            return self._fates.get((group_id, cluster))

    def fail_next_deletes(self, name: str, count: int = 1, group_id: str | None = None) -> None:
        """The next ``count`` deletes of cluster ``name`` answer 500 before anything is deleted."""
        with self.lock:
            if count > 0:
                self._failing_deletes[(group_id, name)] = count
            else:
                self._failing_deletes.pop((group_id, name), None)

    def keep_creating(self, name: str, *, group_id: str | None = None, keep: bool = True) -> None:
        """Clusters of that name made from now on (and one CREATING now) stay CREATING; ``keep=False``
        lets them go on: IDLE once their create time has passed (at once if it has)."""
        with self.lock:
            key = (group_id, name)
            if keep:
                self._held_creating.add(key)
            else:
                self._held_creating.discard(key)
            now = self.now()
            for cluster in self.clusters.values():
                if cluster.name != name or group_id not in (None, cluster.group_id):
                    continue
                if cluster.ready_at is None or now >= cluster.ready_at:
                    continue  # already IDLE (or never made through the API): nothing to hold
                if keep:
                    cluster.ready_at = math.inf
                elif not self._held(cluster.group_id, name):
                    cluster.ready_at = max(now, cluster.created + self.timings.cluster_create)

    def _held(self, group_id: str, name: str) -> bool:
        return (group_id, name) in self._held_creating or (None, name) in self._held_creating

    def add_group(self, group_id: str) -> None:
        with self.lock:
            self.groups.add(group_id)

    def add_cluster(
        self,
        group_id: str,
        name: str,
        *,
        state_name: str = "IDLE",
        mongodb_version: str = NEW_CLUSTER_VERSION,
        tags: Mapping[str, str] | None = None,
        dedicated: bool = False,
        termination_protection: bool = False,
        created: datetime | None = None,
        cluster_id: str | None = None,
    ) -> str:
        with self.lock:
            self.groups.add(group_id)
            cluster = Cluster(
                group_id=group_id,
                name=name,
                id=cluster_id or self.new_id(),
                state_name=state_name,
                mongodb_version=mongodb_version,
                tags=dict(tags or {}),
                dedicated=dedicated,
                termination_protection=termination_protection,
                created=created.timestamp() if created else self.now() - 30 * 86400,
            )
            self.clusters[(group_id, name)] = cluster
            return cluster.id

    def add_snapshot(
        self,
        group_id: str,
        cluster: str,
        *,
        status: str = "COMPLETED",
        finished: datetime | None = None,
        scheduled: datetime | None = None,
        mongodb_version: str | None = None,
        snapshot_id: str | None = None,
    ) -> str:
        with self.lock:
            owner = self.clusters[(group_id, cluster)]
            if scheduled is not None:
                start = scheduled.timestamp()
            elif finished is not None:
                start = finished.timestamp() - SNAPSHOT_TAKES_SECONDS
            else:
                start = self.now() - 3600
            done = finished.timestamp() if finished is not None else start + SNAPSHOT_TAKES_SECONDS
            snapshot = Snapshot(
                id=snapshot_id or self.new_id(),
                group_id=group_id,
                cluster=cluster,
                status=status,
                mongodb_version=mongodb_version or owner.mongodb_version,
                scheduled=start,
                finished=done if status in ("COMPLETED", "FAILED") else None,
            )
            self.snapshots[snapshot.id] = snapshot
            return snapshot.id

    # -- admission: rate limits and scenario faults (after auth and the spec, before the operation) -----

    def admit(
        self, operation_id: str, endpoint: str, group_id: str, name: str | None
    ) -> tuple[AtlasProblem | None, dict[str, str]]:
        """The error injected into this call, if any, and the RateLimit-* headers of its answer.

        rate-limited: the call takes a token from its (operation, project) bucket (see :class:`RateLimit`)
        or, with none left, gets a 429 with Retry-After. Other scenarios count the same buckets with
        :data:`AMPLE_RATE_LIMIT` for the headers and never refuse. rate-limited-no-header: the first
        ``limited_calls`` calls of each operation get a 429 without Retry-After. flaky: the first
        ``flaky_failures`` calls of each operation fail, alternately 503 and 500. delete-fails-twice and
        :meth:`fail_next_deletes`: a cluster's delete answers 500 and deletes nothing.
        """
        with self.lock:
            now = self.now()
            count = self._calls_per_operation.get(operation_id, 0) + 1
            self._calls_per_operation[operation_id] = count
            limited = self.scenario == "rate-limited"
            limit = self.rate_limit if limited else AMPLE_RATE_LIMIT
            bucket = self._buckets.get((operation_id, group_id))
            if bucket is None:
                bucket = self._buckets[(operation_id, group_id)] = _Bucket(limit.initial_tokens, now)
            bucket.refill(now, limit)
            if bucket.tokens < 1 and limited:
                return _rate_limited(endpoint, bucket.seconds_to_refill(now, limit), limit), {}
            bucket.tokens = max(0, bucket.tokens - 1)
            headers = {"RateLimit-Limit": str(limit.capacity), "RateLimit-Remaining": str(bucket.tokens)}
            if self.scenario == "rate-limited-no-header" and count <= self.limited_calls:
                return _rate_limited(operation_id, None, RateLimit(10, 5, 60)), {}
            if self.scenario == "flaky" and count <= self.flaky_failures:
                if count % 2:
                    return AtlasProblem(
                        503, "SERVICE_UNAVAILABLE", "Service temporarily unavailable."
                    ), headers
                return AtlasProblem(500, "UNEXPECTED_ERROR", "Unexpected error."), headers
            if (
                operation_id == "deleteFlexCluster"
                and name is not None
                and self._delete_fails(group_id, name)
            ):
                return AtlasProblem(500, "UNEXPECTED_ERROR", "Unexpected error."), headers
            return None, headers

    def _delete_fails(self, group_id: str, name: str) -> bool:
        for key in ((group_id, name), (None, name)):
            left = self._failing_deletes.get(key, 0)
            if left > 0:
                if left == 1:
                    del self._failing_deletes[key]
                else:
                    self._failing_deletes[key] = left - 1
                return True
        if self.scenario == "delete-fails-twice":
            done = self._deletes_per_cluster.get((group_id, name), 0) + 1
            self._deletes_per_cluster[(group_id, name)] = done
            return done <= self.deletes_that_fail
        return False

    def lose_create_answer(self, group_id: str, name: str) -> bool:
        """create-cluster-answer-lost: True the first time a cluster of this name is made."""
        with self.lock:
            if self.scenario != "create-cluster-answer-lost" or (group_id, name) in self._lost_create_answers:
                return False
            self._lost_create_answers.add((group_id, name))
            return True

    # -- lookups ---------------------------------------------------------------------------------------

    def _purge(self, now: float) -> None:
        """Forget the clusters whose delete has run its course (and their snapshots)."""
        gone = [key for key, c in self.clusters.items() if c.gone_at is not None and now >= c.gone_at]
        for key in gone:
            del self.clusters[key]
            for snapshot_id in [s.id for s in self.snapshots.values() if (s.group_id, s.cluster) == key]:
                del self.snapshots[snapshot_id]
            self.busy_targets.discard(key)

    def _require_group(self, group_id: str) -> None:
        if group_id not in self.groups:
            raise AtlasProblem(
                404, "RESOURCE_NOT_FOUND", f"No group with ID {group_id} exists.", parameters=[group_id]
            )

    def flex_cluster(self, group_id: str, name: str) -> Cluster:
        with self.lock:
            cluster = self._any_cluster(group_id, name, scenario_applies=True)
            if cluster.dedicated:
                raise AtlasProblem(
                    400,
                    "CANNOT_USE_NON_FLEX_CLUSTER_IN_FLEX_API",
                    f"Cluster {name} is not a flex cluster; use the cluster API instead of the flex API.",
                    parameters=[name],
                )
            return cluster

    def _any_cluster(self, group_id: str, name: str, *, scenario_applies: bool) -> Cluster:
        self._require_group(group_id)
        self._purge(self.now())
        cluster = self.clusters.get((group_id, name))
        if cluster is None or (scenario_applies and self.scenario == "not-found"):
            raise AtlasProblem(
                404,
                "CLUSTER_NOT_FOUND",
                f"No cluster named {name} exists in group {group_id}.",
                parameters=[name, group_id],
            )
        return cluster

    def snapshot(self, cluster: Cluster, snapshot_id: str) -> Snapshot:
        snapshot = self.snapshots.get(snapshot_id)
        if snapshot is None or (snapshot.group_id, snapshot.cluster) != (cluster.group_id, cluster.name):
            raise AtlasProblem(
                404,
                "RESOURCE_NOT_FOUND",
                f"No snapshot with ID {snapshot_id} exists for flex cluster {cluster.name}.",
                parameters=[snapshot_id, cluster.name],
            )
        return snapshot

    def _snapshots_of(self, cluster: Cluster) -> list[Snapshot]:
        mine = [
            s for s in self.snapshots.values() if (s.group_id, s.cluster) == (cluster.group_id, cluster.name)
        ]
        return sorted(mine, key=lambda s: s.scheduled, reverse=True)

    def _jobs_of(self, cluster: Cluster) -> list[RestoreJob]:
        mine = [j for j in self.jobs.values() if j.cluster_id == cluster.id]
        return sorted(mine, key=lambda j: (j.created, j.id), reverse=True)

    def target_busy(self, project_id: str, name: str) -> bool:
        with self.lock:
            if (project_id, name) in self.busy_targets:
                return True
            now = self.now()
            return any(
                (j.target_project_id, j.target_name) == (project_id, name)
                and j.status(now) in ACTIVE_JOB_STATUSES
                for j in self.jobs.values()
            )

    def cluster_state(self, group_id: str, name: str) -> str | None:
        """The stateName a GET would show now, or None if there is no such cluster (any more)."""
        with self.lock:
            now = self.now()
            self._purge(now)
            cluster = self.clusters.get((group_id, name))
            return None if cluster is None else cluster.state(now)

    def cluster_names(self, group_id: str) -> list[str]:
        """The names of the project's clusters Atlas would list now (any state but gone)."""
        with self.lock:
            now = self.now()
            self._purge(now)
            return sorted(c.name for c in self.clusters.values() if c.group_id == group_id)

    # -- flex cluster operations (bodies shaped as the spec's response schemas) ------------------------

    def list_clusters(self, base: str, group_id: str, page: Page) -> dict[str, Any]:
        with self.lock:
            self._require_group(group_id)
            now = self.now()
            self._purge(now)
            bodies = [
                _cluster_body(base, c, now)
                for c in self.clusters.values()
                if c.group_id == group_id and not c.dedicated
            ]
            return _paginated(f"{base}/api/atlas/v2/groups/{group_id}/flexClusters", bodies, page)

    def get_cluster(self, base: str, group_id: str, name: str) -> dict[str, Any]:
        with self.lock:
            return _cluster_body(base, self.flex_cluster(group_id, name), self.now())

    def create_cluster(self, base: str, group_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Make a flex cluster: CREATING, then IDLE ``timings.cluster_create`` seconds later (never under
        cluster-never-idle or :meth:`keep_creating`). Answers like Atlas: no ``tags`` key without tags."""
        with self.lock:
            self._require_group(group_id)
            now = self.now()
            self._purge(now)
            name = body["name"]
            settings = body["providerSettings"]
            provider = settings["backingProviderName"]
            if provider not in BACKING_PROVIDERS:
                # The shipped create schema has no enum here, but the cluster schema's backingProviderName
                # does (AWS, AZURE, GCP): any other value is a request Atlas cannot honour.
                raise AtlasProblem(
                    400,
                    "INVALID_ENUM_VALUE",
                    f"An invalid enumeration value {provider} was specified.",
                    parameters=[provider],
                    fields=[("providerSettings.backingProviderName", f"must be one of {BACKING_PROVIDERS}")],
                    violation=f"body.providerSettings.backingProviderName: {provider!r} is not one of "
                    f"{', '.join(BACKING_PROVIDERS)}",
                )
            if (group_id, name) in self.clusters:
                # Undocumented for flex clusters: modelled on the code Atlas uses for clusters in general
                # (its older error table lists DUPLICATE_CLUSTER_NAME as a 400; a 409 is modelled here).
                # A name stays taken while its cluster is DELETING.
                raise AtlasProblem(
                    409,
                    "DUPLICATE_CLUSTER_NAME",
                    f"A cluster named {name} is already present in group {group_id}.",
                    parameters=[name, group_id],
                )
            limit = self.max_clusters_per_project
            in_project = sum(1 for c in self.clusters.values() if c.group_id == group_id)
            if limit is not None and in_project >= limit:
                # Undocumented: Atlas limits the clusters of a project; the code here is the simulator's.
                raise AtlasProblem(
                    400,
                    "CLUSTER_LIMIT_REACHED",
                    f"Group {group_id} already has the most clusters it may have ({limit}).",
                    parameters=[group_id, limit],
                )
            never = self.scenario == "cluster-never-idle" or self._held(group_id, name)
            cluster = Cluster(
                group_id=group_id,
                name=name,
                id=self.new_id(),
                state_name="IDLE",
                mongodb_version=NEW_CLUSTER_VERSION,
                tags={tag["key"]: tag["value"] for tag in body.get("tags") or []},
                dedicated=False,
                termination_protection=bool(body.get("terminationProtectionEnabled", False)),
                created=now,
                provider=provider,
                region=settings["regionName"],
                ready_at=math.inf if never else now + self.timings.cluster_create,
            )
            self.clusters[(group_id, name)] = cluster
            return _cluster_body(base, cluster, now)

    def delete_cluster(self, group_id: str, name: str) -> None:
        """Start deleting a flex cluster: DELETING, gone ``timings.cluster_delete`` seconds later."""
        with self.lock:
            cluster = self.flex_cluster(group_id, name)
            if cluster.deleted_at is not None:
                # Undocumented for flex clusters: the code Atlas answers for a cluster already being deleted.
                raise AtlasProblem(
                    400,
                    "CLUSTER_ALREADY_REQUESTED_DELETION",
                    f"The cluster {name} has already been requested for deletion.",
                    parameters=[name],
                )
            if cluster.termination_protection:
                # The spec says such a cluster is not deleted; the answer's status and code are undocumented
                # for flex clusters (modelled on the code Atlas uses for clusters in general).
                raise AtlasProblem(
                    400,
                    "CANNOT_TERMINATE_CLUSTER_WHEN_TERMINATION_PROTECTION_ENABLED",
                    f"Cannot terminate cluster {name} while termination protection is enabled; disable it "
                    "first.",
                    parameters=[name],
                )
            now = self.now()
            cluster.deleted_at = now
            cluster.gone_at = now + self.timings.cluster_delete

    # -- backup operations -----------------------------------------------------------------------------

    def list_snapshots(self, base: str, group_id: str, name: str, page: Page) -> dict[str, Any]:
        with self.lock:
            cluster = self.flex_cluster(group_id, name)
            bodies = [_snapshot_body(base, s) for s in self._snapshots_of(cluster)]
            return _paginated(f"{base}{_cluster_path(cluster)}/backup/snapshots", bodies, page)

    def get_snapshot(self, base: str, group_id: str, name: str, snapshot_id: str) -> dict[str, Any]:
        with self.lock:
            return _snapshot_body(base, self.snapshot(self.flex_cluster(group_id, name), snapshot_id))

    def list_jobs(self, base: str, group_id: str, name: str, page: Page) -> dict[str, Any]:
        with self.lock:
            cluster = self.flex_cluster(group_id, name)
            now = self.now()
            bodies = [_job_body(base, j, now) for j in self._jobs_of(cluster)]
            return _paginated(f"{base}{_cluster_path(cluster)}/backup/restoreJobs", bodies, page)

    def get_job(self, base: str, group_id: str, name: str, job_id: str) -> dict[str, Any]:
        with self.lock:
            cluster = self.flex_cluster(group_id, name)
            job = self.jobs.get(job_id)
            vanished = self.scenario == "job-vanishes"
            if vanished or job is None or job.cluster_id != cluster.id:
                raise AtlasProblem(
                    404,
                    "RESOURCE_NOT_FOUND",
                    f"No restore job with ID {job_id} exists for flex cluster {cluster.name}.",
                    parameters=[job_id, cluster.name],
                )
            return _job_body(base, job, self.now())

    def create_job(self, base: str, group_id: str, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        with self.lock:
            cluster = self.flex_cluster(group_id, name)
            snapshot = self.snapshot(cluster, body["snapshotId"])
            if snapshot.status != "COMPLETED":
                # Modeled: Atlas only restores COMPLETED snapshots; the exact code is not documented.
                raise AtlasProblem(
                    400,
                    "SNAPSHOT_NOT_COMPLETED",
                    f"Snapshot {snapshot.id} is {snapshot.status}; only COMPLETED snapshots can be restored.",
                    parameters=[snapshot.id, snapshot.status],
                )
            target_project = body["targetProjectId"]
            target_name = body["targetDeploymentItemName"]
            target = self._any_cluster(target_project, target_name, scenario_applies=False)
            if not _version_can_restore(snapshot.mongodb_version, target.mongodb_version):
                # Modeled on the backup docs' rule: same major version or the next higher one.
                raise AtlasProblem(
                    400,
                    "INCOMPATIBLE_MONGODB_VERSION",
                    f"Cannot restore a {snapshot.mongodb_version} snapshot onto {target_name}, which runs "
                    f"{target.mongodb_version}.",
                    parameters=[snapshot.mongodb_version, target.mongodb_version],
                )
            if self.target_busy(target_project, target_name):
                # Modeled: Atlas refuses a second restore into a target that has one in progress; the flex
                # cluster's stateName stays IDLE meanwhile, so only this answer shows it.
                raise AtlasProblem(
                    409,
                    "CANNOT_RESTORE_TO_TARGET_WITH_RUNNING_RESTORE",
                    f"Cluster {target_name} in group {target_project} already has a restore in progress.",
                    parameters=[target_name, target_project],
                )
            now = self.now()
            target_state = target.state(now)
            if target_state != "IDLE":
                # Undocumented behaviour, modelled defensively: what Atlas answers a restore into a cluster
                # that is CREATING, UPDATING, DELETING or REPAIRING is not documented (clients are told to
                # wait for IDLE first); the simulator refuses it, so a client that does not wait is seen.
                raise AtlasProblem(
                    409,
                    "TARGET_CLUSTER_NOT_IDLE",
                    f"Cluster {target_name} in group {target_project} is {target_state}; a restore needs "
                    "an IDLE target.",
                    parameters=[target_name, target_project, target_state],
                )
            outcome, duration = self._fate(group_id, name)
            job = RestoreJob(
                id=self.new_id(),
                group_id=group_id,
                cluster=name,
                cluster_id=cluster.id,
                snapshot_id=snapshot.id,
                snapshot_finished=snapshot.finished,
                target_name=target_name,
                target_project_id=target_project,
                created=now,
                scheduled=now + self.timings.schedule_delay,
                outcome=outcome,
                duration=duration,
                queued_for=self.timings.queued_for,
            )
            self.jobs[job.id] = job
            return _job_body(base, job, now)

    def _fate(self, group_id: str, name: str) -> tuple[str | None, float]:
        """The end a new job will reach, fixed at creation: the source's own fate if one was set
        (:meth:`set_restore_fate`), else the scenario then in force."""
        own = self._fates.get((group_id, name))
        if own is not None:
            return own
        if self.scenario == "slow":
            return "COMPLETED", self.timings.slow_duration
        if self.scenario == "fail":
            return "FAILED", self.timings.fail_duration
        if self.scenario == "never-finishes":
            return None, math.inf
        return "COMPLETED", self.timings.ok_duration

    def job_bodies(self, base: str) -> dict[str, dict[str, Any]]:
        with self.lock:
            now = self.now()
            return {job_id: _job_body(base, job, now) for job_id, job in self.jobs.items()}


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


def _rate_limited(resource: str, retry_after: int | None, limit: RateLimit) -> AtlasProblem:
    """Atlas's token-bucket 429: detail and parameters [resource, wait, capacity, refill, per seconds]."""
    wait = f"Please retry after {retry_after} seconds. " if retry_after is not None else ""
    headers = {"RateLimit-Limit": str(limit.capacity), "RateLimit-Remaining": "0"}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return AtlasProblem(
        429,
        "RATE_LIMITED_TOKEN_BUCKET",
        f"Rate limit exceeded for {resource}. {wait}Request capacity: {limit.capacity}. "
        f"Refill rate: {limit.refill_amount} per {limit.refill_seconds} seconds.",
        parameters=[resource, retry_after or 0, limit.capacity, limit.refill_amount, limit.refill_seconds],
        headers=headers,
    )


def _version_can_restore(snapshot_version: str, target_version: str) -> bool:
    def major(version: str) -> tuple[int, int]:
        parts = version.split(".")
        return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0

    known_majors = [(4, 4), (5, 0), (6, 0), (7, 0), (8, 0), (8, 1), (8, 2)]
    source, target = major(snapshot_version), major(target_version)
    if source == target:
        return True
    if source in known_majors and target in known_majors:
        return known_majors.index(target) == known_majors.index(source) + 1
    return target > source


def _iso(epoch: float) -> str:
    return isoformat(datetime.fromtimestamp(epoch, tz=UTC))


def _cluster_path(cluster: Cluster) -> str:
    return f"/api/atlas/v2/groups/{cluster.group_id}/flexClusters/{cluster.name}"


def _cluster_body(base: str, cluster: Cluster, now: float) -> dict[str, Any]:
    """A FlexClusterDescription20241113. ``tags`` is left out when the cluster has none, as real Atlas
    answers (its create answer had no ``tags`` key)."""
    host = f"{cluster.name}.{cluster.id[-5:]}.mongodb.net"
    body: dict[str, Any] = {
        "backupSettings": {"enabled": True},
        "clusterType": "REPLICASET",
        "connectionStrings": {
            "standard": f"mongodb://{cluster.name}-shard-00-00.{cluster.id[-5:]}.mongodb.net:27017/?ssl=true",
            "standardSrv": f"mongodb+srv://{host}",
        },
        "createDate": _iso(cluster.created),
        "groupId": cluster.group_id,
        "id": cluster.id,
        "links": [
            {"href": f"{base}{_cluster_path(cluster)}", "rel": "self"},
            {
                "href": f"{base}{_cluster_path(cluster)}/backup/snapshots",
                "rel": "https://cloud.mongodb.com/snapshots",
            },
        ],
        "mongoDBVersion": cluster.mongodb_version,
        "name": cluster.name,
        "providerSettings": {
            "backingProviderName": cluster.provider,
            "diskSizeGB": FLEX_DISK_SIZE_GB,
            "providerName": "FLEX",
            "regionName": cluster.region,
        },
        "stateName": cluster.state(now),
        "terminationProtectionEnabled": cluster.termination_protection,
        "versionReleaseSystem": "LTS",
    }
    if cluster.tags:
        body["tags"] = [{"key": key, "value": value} for key, value in cluster.tags.items()]
    return body


def _snapshot_body(base: str, snapshot: Snapshot) -> dict[str, Any]:
    cluster = f"/api/atlas/v2/groups/{snapshot.group_id}/flexClusters/{snapshot.cluster}"
    path = f"{cluster}/backup/snapshots/{snapshot.id}"
    body: dict[str, Any] = {
        "expiration": _iso(snapshot.scheduled + SNAPSHOT_RETENTION_SECONDS),
        "id": snapshot.id,
        "links": [{"href": f"{base}{path}", "rel": "self"}],
        "mongoDBVersion": snapshot.mongodb_version,
        "scheduledTime": _iso(snapshot.scheduled),
        "startTime": _iso(snapshot.scheduled + 3),
        "status": snapshot.status,
    }
    if snapshot.finished is not None:
        body["finishTime"] = _iso(snapshot.finished)
    return body


def _job_body(base: str, job: RestoreJob, now: float) -> dict[str, Any]:
    path = f"/api/atlas/v2/groups/{job.group_id}/flexClusters/{job.cluster}/backup/restoreJobs/{job.id}"
    body: dict[str, Any] = {
        "deliveryType": "RESTORE",
        "expirationDate": _iso(job.scheduled + JOB_EXPIRES_AFTER_SECONDS),
        "id": job.id,
        "instanceName": job.cluster,
        "links": [{"href": f"{base}{path}", "rel": "self"}],
        "projectId": job.group_id,
        "restoreScheduledDate": _iso(job.scheduled),
        "snapshotId": job.snapshot_id,
        "status": job.status(now),
        "targetDeploymentItemName": job.target_name,
        "targetProjectId": job.target_project_id,
    }
    if job.snapshot_finished is not None:
        body["snapshotFinishedDate"] = _iso(job.snapshot_finished)
    finished = job.finished_at(now)
    if finished is not None:
        body["restoreFinishedDate"] = _iso(finished)
    return body


def _paginated(href: str, items: list[dict[str, Any]], page: Page) -> dict[str, Any]:
    start = (page.page_num - 1) * page.items_per_page
    results = items[start : start + page.items_per_page]

    def link(num: int, rel: str) -> dict[str, str]:
        return {"href": f"{href}?pageNum={num}&itemsPerPage={page.items_per_page}", "rel": rel}

    links = [link(page.page_num, "self")]
    if page.page_num > 1:
        links.insert(0, link(page.page_num - 1, "previous"))
    if start + page.items_per_page < len(items):
        links.append(link(page.page_num + 1, "next"))
    body: dict[str, Any] = {"links": links, "results": results}
    if page.include_count:
        body["totalCount"] = len(items)
    return body
