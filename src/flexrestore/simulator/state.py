"""What the simulated Atlas knows: projects, flex clusters, snapshots, restore jobs and the active scenario.

Nothing here runs in the background. A restore job stores the moment it was scheduled and the fate the
scenario gave it at creation; its status is computed from the simulator clock on every read, so a test that
advances a VirtualClock by 61 s sees a finished job.
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
)
ACTIVE_JOB_STATUSES = frozenset({"PENDING", "QUEUED", "RUNNING"})
SNAPSHOT_RETENTION_SECONDS = 8 * 24 * 3600  # observed: expiration = scheduledTime + 8 days
SNAPSHOT_TAKES_SECONDS = 134.0
JOB_EXPIRES_AFTER_SECONDS = 6 * 3600  # observed: expirationDate = restoreScheduledDate + 6 h


@dataclass
class Timings:
    """How long things take on the simulator clock (seconds)."""

    schedule_delay: float = 5.0  # create -> restoreScheduledDate
    queued_for: float = 10.0  # QUEUED after restoreScheduledDate, then RUNNING
    ok_duration: float = 60.0  # restoreScheduledDate -> COMPLETED (observed ~50 s on real Atlas)
    slow_duration: float = 1800.0
    fail_duration: float = 45.0  # restoreScheduledDate -> FAILED


@dataclass
class Cluster:
    group_id: str
    name: str
    id: str
    state_name: str
    mongodb_version: str
    tags: dict[str, str]
    dedicated: bool
    termination_protection: bool
    created: float


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
    retry_after_seconds: int = 7
    limited_calls: int = 2  # rate-limited-no-header: 429s per operation before it is served
    flaky_failures: int = 2  # flaky: failures per operation (503, 500, ...) before it is served
    lock: threading.RLock = field(default_factory=threading.RLock)
    groups: set[str] = field(default_factory=set)
    clusters: dict[tuple[str, str], Cluster] = field(default_factory=dict)
    snapshots: dict[str, Snapshot] = field(default_factory=dict)
    jobs: dict[str, RestoreJob] = field(default_factory=dict)
    busy_targets: set[tuple[str, str]] = field(default_factory=set)
    scenario: str = "ok"
    _calls_per_operation: dict[str, int] = field(default_factory=dict)
    _limited_until: dict[str, float] = field(default_factory=dict)
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
            self._limited_until.clear()

    def add_group(self, group_id: str) -> None:
        with self.lock:
            self.groups.add(group_id)

    def add_cluster(
        self,
        group_id: str,
        name: str,
        *,
        state_name: str = "IDLE",
        mongodb_version: str = "8.0.15",
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

    # -- scenario faults (checked after auth and the spec, before the operation) -----------------------

    def fault(self, operation_id: str) -> AtlasProblem | None:
        """The error the active scenario injects into this call, if any.

        rate-limited: each operation is refused from its first call for ``retry_after_seconds`` on the
        simulator clock (Retry-After counts down), then always served: a client that honours Retry-After
        succeeds on its first retry. rate-limited-no-header: the first ``limited_calls`` calls of each
        operation get a 429 without Retry-After. flaky: the first ``flaky_failures`` calls of each operation
        fail, alternately 503 and 500.
        """
        with self.lock:
            now = self.now()
            count = self._calls_per_operation.get(operation_id, 0) + 1
            self._calls_per_operation[operation_id] = count
            if self.scenario == "rate-limited":
                until = self._limited_until.setdefault(operation_id, now + self.retry_after_seconds)
                if now < until:
                    return _rate_limited(operation_id, max(1, math.ceil(until - now)))
            elif self.scenario == "rate-limited-no-header" and count <= self.limited_calls:
                return _rate_limited(operation_id, None)
            elif self.scenario == "flaky" and count <= self.flaky_failures:
                if count % 2:
                    return AtlasProblem(503, "SERVICE_UNAVAILABLE", "Service temporarily unavailable.")
                return AtlasProblem(500, "UNEXPECTED_ERROR", "Unexpected error.")
            return None

    # -- lookups ---------------------------------------------------------------------------------------

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
        if group_id not in self.groups:
            raise AtlasProblem(
                404, "RESOURCE_NOT_FOUND", f"No group with ID {group_id} exists.", parameters=[group_id]
            )
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
        mine = [j for j in self.jobs.values() if (j.group_id, j.cluster) == (cluster.group_id, cluster.name)]
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

    # -- operations (bodies shaped as the spec's response schemas) -------------------------------------

    def get_cluster(self, base: str, group_id: str, name: str) -> dict[str, Any]:
        with self.lock:
            return _cluster_body(base, self.flex_cluster(group_id, name))

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
            if vanished or job is None or (job.group_id, job.cluster) != (group_id, name):
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
            outcome, duration = self._fate()
            job = RestoreJob(
                id=self.new_id(),
                group_id=group_id,
                cluster=name,
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

    def _fate(self) -> tuple[str | None, float]:
        """The end a new job will reach, fixed at creation by the scenario then in force."""
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


def _rate_limited(operation_id: str, retry_after: int | None) -> AtlasProblem:
    wait = f"Please retry after {retry_after} seconds. " if retry_after is not None else ""
    headers = {"RateLimit-Limit": "10", "RateLimit-Remaining": "0"}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return AtlasProblem(
        429,
        "RATE_LIMITED_TOKEN_BUCKET",
        f"Rate limit exceeded for {operation_id}. {wait}Request capacity: 10. Refill rate: 5 per 60 seconds.",
        parameters=[operation_id, retry_after or 0, 10, 5, 60],
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


def _cluster_body(base: str, cluster: Cluster) -> dict[str, Any]:
    host = f"{cluster.name}.{cluster.id[-5:]}.mongodb.net"
    return {
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
            "backingProviderName": "AWS",
            "diskSizeGB": 5.0,
            "providerName": "FLEX",
            "regionName": "US_EAST_1",
        },
        "stateName": cluster.state_name,
        "tags": [{"key": key, "value": value} for key, value in cluster.tags.items()],
        "terminationProtectionEnabled": cluster.termination_protection,
        "versionReleaseSystem": "LTS",
    }


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
