"""The life of an ephemeral target (``domain/ephemeral.py`` names it and holds the deletion rule): created
for one source of a run, waited for until IDLE, and, whatever happened to the source, deleted and waited
for until Atlas no longer has it. Plain Python over the ports; the run's steps (``domain/run_steps.py``)
and the sweeper (``domain/sweeper.py``) both use :class:`TargetLife`.

What is written where, in order (the source item in the runs table; ``live`` = in the sweeper's index):

1. ``target.createRequestedAt`` (live) **before** the create is sent. A later attempt that finds it reads
   the cluster by name first and adopts it when it carries the run's tags; it creates only when Atlas has
   no such cluster (a flex cluster's name is unique in its project, so two creates can never make two
   clusters). The Atlas client itself adopts, by the same read, a cluster whose create answer was lost.
2. ``target.createdAt`` (Atlas's createDate) once the cluster is known to exist, ``target.idleAt`` once
   it is IDLE. Waiting for IDLE happens inside the invocation for short delays (a few seconds on Atlas);
   beyond the invocation's budget :class:`TargetNotReady` is raised and the state machine's Retry waits
   (one history event triple per look). A cluster not IDLE ``TARGET_READY_TIMEOUT_SECONDS`` after its
   create ends the source (``TARGET_NOT_READY``); the cluster is then deleted like any other.
3. ``target.retainUntil`` when the source's validation did not succeed and the plan keeps such clusters
   (``retainMinutes`` > 0): nothing is deleted before then (the sweeper deletes it after).
4. ``target.deleteRequestedAt`` before the delete is sent, after :func:`deletion_verdict` allowed it;
   ``target.deletionRefused`` (no longer live) when it did not.
5. ``target.deletedAt`` and ``existedSeconds`` (no longer live) when a read answers 404.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal

from flexrestore import clock
from flexrestore.contracts import ErrorInfo
from flexrestore.contracts.plan import Plan
from flexrestore.contracts.run import RunTarget, ValidationResult
from flexrestore.domain.ephemeral import (
    DELETION_REFUSED,
    TARGET_READY_TIMEOUT_SECONDS,
    ClusterFacts,
    DeletionCandidate,
    deletion_verdict,
    ephemeral_name,
    existed_seconds,
    run_tags,
)
from flexrestore.domain.errors import (
    AtlasAuthError,
    AtlasConflict,
    AtlasError,
    AtlasNotFound,
    AtlasRateLimited,
    AtlasUnavailable,
)
from flexrestore.domain.guards import PROJECT_NOT_ALLOWED, PROTECTED_TARGET, GuardConfig
from flexrestore.domain.ports import Atlas, ClusterDetails, Metrics, RunState, RunStore, SourceState

logger = logging.getLogger("flexrestore.targets")

# Source error codes (the run record's source ``error.code``).
TARGET_NOT_READY: Final = "TARGET_NOT_READY"
TARGET_NOT_CREATED: Final = "TARGET_NOT_CREATED"
TARGET_NAME_TAKEN: Final = "TARGET_NAME_TAKEN"
TARGET_GONE: Final = "TARGET_GONE"
ATLAS_REFUSED_DELETE: Final = "ATLAS_REFUSED_DELETE"
METRIC_DELETION_REFUSED: Final = "EphemeralDeletionRefused"
METRIC_CLUSTER_DELETED: Final = "EphemeralClusterDeleted"
IDLE_LOOK_SECONDS: Final = 3.0  # Terraform's flex resource looks every 3 s
GONE_LOOK_SECONDS: Final = 10.0  # a delete takes 30 to 47 s on Atlas


class TargetNotReady(Exception):
    """The source's cluster is not IDLE yet: the state machine's Retry looks again later (matched by name)."""


class TargetStillDeleting(Exception):
    """The cluster's delete was sent but Atlas still has it: Retry looks again later (matched by name)."""


class AtlasBusy(Exception):
    """Atlas rate-limited or unavailable while working on a target: retried later (the caller re-raises
    it as its own deferral)."""

    def __init__(self, code: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.retry_after = retry_after


@dataclass(frozen=True)
class Prepared:
    """The source's ephemeral target is IDLE (``name``), or the source ends with ``error``
    (``status`` REFUSED: nothing was created; ERROR: something went wrong with the cluster)."""

    name: str
    error: ErrorInfo | None = None
    status: str = "ERROR"


Cleaned = Literal["nothing", "retained", "refused", "deleting", "gone"]


@dataclass
class TargetLife:
    atlas: Callable[[], Atlas]
    runs: RunStore
    guards: Callable[[], GuardConfig]
    metrics: Metrics
    now: Callable[[], datetime]
    seconds: Callable[[], float] = clock.seconds
    sleep: Callable[[float], None] = clock.sleep

    # --- create and wait for IDLE --------------------------------------------------------------------

    def prepare(self, state: RunState, source: SourceState, plan: Plan, *, wait_seconds: float) -> Prepared:
        """The source's cluster, created (or adopted) and IDLE; raises :class:`TargetNotReady` when it is
        still CREATING after ``wait_seconds``, :class:`AtlasBusy` when Atlas could not be asked."""
        assert plan.targets is not None
        run_id, index = state.record.run_id, source.index
        project = plan.targets.project_id
        name = ephemeral_name(run_id, index)
        refused = self._static_refusal(state, source, name, project)
        if refused is not None:
            return Prepared(name, refused, status="REFUSED")
        target = source.target or RunTarget(ephemeral=True, name=name, project_id=project)
        if target.idle_at is not None:
            return Prepared(name)
        cluster: ClusterDetails | None = None
        if target.created_at is None:
            if target.create_requested_at is not None:
                # An earlier attempt sent (or may have sent) the create: read before creating again.
                cluster = self._read(project, name)
                tags = run_tags(plan.name, run_id, index)
                if cluster is not None and any(cluster.tag_map.get(k) != v for k, v in tags.items()):
                    return self._not_ours(run_id, index, target, name, project)
            if cluster is None:
                if target.create_requested_at is None:
                    target = target.model_copy(update={"create_requested_at": self.now()})
                    self.runs.set_target(run_id, index, target, live=True)  # before the call: see above
                try:
                    cluster = self.atlas().create_flex_cluster(
                        project,
                        name,
                        provider=plan.targets.provider,
                        region=plan.targets.region,
                        tags=run_tags(plan.name, run_id, index),
                        termination_protection=False,
                    )
                except (AtlasRateLimited, AtlasUnavailable) as exc:
                    raise AtlasBusy("ATLAS_UNAVAILABLE", str(exc), exc.retry_after) from None
                except AtlasConflict as exc:
                    return self._not_ours(run_id, index, target, name, project, str(exc))
                except AtlasError as exc:
                    # Atlas refused the create (a 4xx: no Project Owner role, a region Flex does not run in,
                    # the project's cluster limit): nothing was made. The cluster stays in the sweeper's
                    # index anyway, so a read proves it absent before the source's target is closed.
                    why = "the service account may not create clusters there (it needs Project Owner)"
                    detail = why if isinstance(exc, AtlasAuthError) else "Atlas refused the create"
                    return Prepared(
                        name,
                        ErrorInfo(
                            code=exc.error_code or TARGET_NOT_CREATED,
                            message=f"cluster {name!r} could not be created in project {project}: "
                            f"{detail}: {exc}",
                        ),
                    )
            target = target.model_copy(update={"created_at": cluster.create_date or self.now()})
            self.runs.set_target(run_id, index, target, live=True)
            logger.info("ephemeral cluster created", extra={"runId": run_id, "index": index, "cluster": name})
        return self._wait_until_idle(run_id, index, target, cluster, wait_seconds)

    def _wait_until_idle(
        self,
        run_id: str,
        index: int,
        target: RunTarget,
        cluster: ClusterDetails | None,
        wait_seconds: float,
    ) -> Prepared:
        name, project = str(target.name), str(target.project_id)
        until = self.seconds() + wait_seconds
        state_name = cluster.state_name if cluster is not None else None
        while state_name != "IDLE":
            if state_name is not None or cluster is not None:
                if state_name == "DELETING":
                    return Prepared(
                        name, ErrorInfo(code=TARGET_GONE, message=f"cluster {name!r} is being deleted")
                    )
                created = target.created_at or target.create_requested_at or self.now()
                if self.now() - created > timedelta(seconds=TARGET_READY_TIMEOUT_SECONDS):
                    return Prepared(
                        name,
                        ErrorInfo(
                            code=TARGET_NOT_READY,
                            message=f"cluster {name!r} in project {project} was still {state_name} "
                            f"{TARGET_READY_TIMEOUT_SECONDS // 60} minutes after its create; it is deleted",
                        ),
                    )
                if self.seconds() + IDLE_LOOK_SECONDS > until:
                    raise TargetNotReady(f"cluster {name!r} is {state_name}; looking again later")
                self.sleep(IDLE_LOOK_SECONDS)
            cluster = self._read(project, name)
            if cluster is None:
                return Prepared(
                    name,
                    ErrorInfo(
                        code=TARGET_GONE, message=f"cluster {name!r} is no longer in project {project}"
                    ),
                )
            state_name = cluster.state_name or "UNKNOWN"
        target = target.model_copy(update={"idle_at": self.now()})
        self.runs.set_target(run_id, index, target, live=True)
        return Prepared(name)

    def _not_ours(
        self, run_id: str, index: int, target: RunTarget, name: str, project: str, detail: str = ""
    ) -> Prepared:
        """A cluster of that name exists without this run's tags: this run made nothing (names are unique in
        a project), so there is nothing of ours to delete, and that cluster is never touched."""
        self.runs.set_target(run_id, index, target, live=False)
        return Prepared(
            name,
            ErrorInfo(
                code=TARGET_NAME_TAKEN,
                message=f"a cluster named {name!r} already exists in project {project} and was not created "
                f"by this run; it is left alone{': ' + detail if detail else ''}",
            ),
        )

    def _static_refusal(
        self, state: RunState, source: SourceState, name: str, project: str
    ) -> ErrorInfo | None:
        """The guards that need no Atlas, before anything is created (the intake runs them all again)."""
        group = str(source.planned.get("group_id") or "")
        config = self.guards()
        if project != group and project not in config.allowed_target_projects:
            return ErrorInfo(
                code=PROJECT_NOT_ALLOWED.upper().replace("-", "_"),
                message=f"targets.projectId {project} is not the source project and not in "
                "ALLOWED_TARGET_PROJECTS; no cluster was created",
            )
        protected = config.protected_by(project, name)
        if protected is not None:
            return ErrorInfo(
                code=PROTECTED_TARGET.upper().replace("-", "_"),
                message=f"the ephemeral name {name!r} is protected by PROTECTED_TARGETS entry "
                f"{protected.entry!r}; no cluster was created (it could never be deleted)",
            )
        return None

    # --- delete and wait until gone ------------------------------------------------------------------

    def clean(
        self,
        state: RunState,
        source: SourceState,
        plan: Plan,
        *,
        wait_seconds: float,
        validation: ValidationResult | None = None,
    ) -> tuple[Cleaned, RunTarget | None]:
        """Delete the source's cluster when the rules allow and its retention has passed, then wait up to
        ``wait_seconds`` for Atlas to no longer have it. What happened, and the target as recorded now."""
        target = source.target
        run_id, index = state.record.run_id, source.index
        if target is None or not target.ephemeral or target.create_requested_at is None:
            return "nothing", target
        if target.deleted_at is not None:
            return "gone", target
        if target.deletion_refused is not None:
            return "refused", target
        project, name = str(target.project_id), str(target.name)
        validation = validation or source.validation
        if target.delete_requested_at is None:
            target = self._retention(run_id, index, target, plan, validation)
            if target.retain_until is not None and self.now() < target.retain_until:
                return "retained", target
        cluster = self._read(project, name)
        if cluster is None:
            return "gone", self._gone(run_id, index, target)
        if target.delete_requested_at is None or cluster.state_name != "DELETING":
            verdict = deletion_verdict(
                DeletionCandidate(
                    project_id=project,
                    name=name,
                    run_id=run_id,
                    index=index,
                    plan=plan.name,
                    ephemeral_project_id=plan.targets.project_id if plan.targets else None,
                    recorded=target,
                    source_clusters=[(project, n) for n in state.target_project_sources],
                ),
                ClusterFacts(
                    project_id=cluster.group_id or project,
                    name=cluster.name,
                    tags=cluster.tag_map,
                    termination_protection=cluster.termination_protection_enabled,
                ),
                self.guards(),
            )
            if not verdict.allowed:
                return "refused", self._refused(run_id, index, target, verdict.message)
            if target.delete_requested_at is None:
                target = target.model_copy(update={"delete_requested_at": self.now()})
                self.runs.set_target(run_id, index, target, live=True)  # before the call
            try:
                self.atlas().delete_flex_cluster(project, name)
            except (AtlasRateLimited, AtlasUnavailable) as exc:
                raise AtlasBusy("ATLAS_UNAVAILABLE", str(exc), exc.retry_after) from None
            except AtlasError as exc:
                return "refused", self._refused(
                    run_id, index, target, f"Atlas refused the delete: {exc}", code=ATLAS_REFUSED_DELETE
                )
            logger.info(
                "ephemeral cluster deletion sent", extra={"runId": run_id, "index": index, "cluster": name}
            )
        return self.wait_until_gone(run_id, index, target, wait_seconds=wait_seconds)

    def wait_until_gone(
        self, run_id: str, index: int, target: RunTarget, *, wait_seconds: float
    ) -> tuple[Cleaned, RunTarget]:
        until = self.seconds() + wait_seconds
        project, name = str(target.project_id), str(target.name)
        while True:
            if self.seconds() + GONE_LOOK_SECONDS > until:
                return "deleting", target
            self.sleep(GONE_LOOK_SECONDS)
            if self._read(project, name) is None:
                return "gone", self._gone(run_id, index, target)

    def look_gone(self, run_id: str, index: int, target: RunTarget) -> RunTarget | None:
        """One look: the target as recorded gone, or None while Atlas still has the cluster."""
        if self._read(str(target.project_id), str(target.name)) is not None:
            return None
        return self._gone(run_id, index, target)

    def _retention(
        self, run_id: str, index: int, target: RunTarget, plan: Plan, validation: ValidationResult | None
    ) -> RunTarget:
        keep = plan.targets.retain_minutes if plan.targets else 0
        failed = validation is not None and validation.status in ("FAILED", "TIMED_OUT")
        if not keep or not failed or target.retain_until is not None:
            return target
        start = (validation.at if validation is not None else None) or self.now()
        target = target.model_copy(update={"retain_until": start + timedelta(minutes=keep)})
        self.runs.set_target(run_id, index, target, live=True)
        logger.info(
            "ephemeral cluster kept for people to look at",
            extra={"runId": run_id, "index": index, "cluster": target.name, "retainMinutes": keep},
        )
        return target

    def _gone(self, run_id: str, index: int, target: RunTarget) -> RunTarget:
        now = self.now()
        target = target.model_copy(
            update={"deleted_at": now, "existed_seconds": existed_seconds(target.created_at, now)}
        )
        self.runs.set_target(run_id, index, target, live=False)
        if target.created_at is not None:
            self.metrics.count(METRIC_CLUSTER_DELETED)
        logger.info(
            "ephemeral cluster gone",
            extra={
                "runId": run_id,
                "index": index,
                "cluster": target.name,
                "existedSeconds": target.existed_seconds,
            },
        )
        return target

    def _refused(
        self, run_id: str, index: int, target: RunTarget, message: str, *, code: str = DELETION_REFUSED
    ) -> RunTarget:
        target = target.model_copy(update={"deletion_refused": ErrorInfo(code=code, message=message)})
        self.runs.set_target(run_id, index, target, live=False)
        self.metrics.count(METRIC_DELETION_REFUSED)
        logger.error(
            "ephemeral cluster NOT deleted: %s",
            message,
            extra={"runId": run_id, "index": index, "cluster": target.name},
        )
        return target

    def _read(self, project: str, name: str) -> ClusterDetails | None:
        try:
            return self.atlas().get_flex_cluster(project, name)
        except AtlasNotFound:
            return None
        except (AtlasRateLimited, AtlasUnavailable) as exc:
            raise AtlasBusy("ATLAS_UNAVAILABLE", str(exc), exc.retry_after) from None
