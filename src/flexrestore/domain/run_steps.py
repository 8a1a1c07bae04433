"""The steps of a verification run (``statemachine/run.asl.json``): begin, start each source, finish. Plain
Python over the ports. The run's shape for Step Functions' limits: the Map state iterates over source
indexes only (a few bytes each), everything else lives in the runs table; each source costs its Map
iteration a handful of history events, since its restore runs in an execution of its own.

- **Begin** (:meth:`RunSteps.begin`): read the plan (as it is now; the run keeps that copy), list the Flex
  clusters of each tag selector's project, resolve the sources (``domain/plans.py``) and store them, the
  refused ones already ended. Repeated (a retried step, the same run id started again): the stored run is
  used as it is.
- **Start a source** (:meth:`RunSteps.start_source`, one Map iteration, which waits on its task token):
  pick the snapshot (``LATEST`` or ``RANDOM_WITHIN_WINDOW`` seeded by the run id, recorded), then the one
  intake flow with the idempotency key ``run:<runId>:<index>`` (validation, target guards, lock, record,
  hand-off: a retried run creates nothing twice). The token is kept with the source; the restore's Notify
  step answers it when the restore has ended (:func:`tell_run`). A refused source is answered at once.
  Atlas or AWS faults raise :class:`SourceDeferred` for the state machine to retry: a rate limit slows a
  run down and never fails a source.
- **Finish** (:meth:`RunSteps.finish`): each source's entry from its restore's final record, the summary,
  the run record (written once), the summary message and event (each once), the per-plan metrics.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Final

from pydantic import ValidationError

from flexrestore.contracts import ErrorInfo, RequestedBy, RestoreRecord, RunLink
from flexrestore.contracts.plan import Plan, SelectorTag, SnapshotChoice, TagSelector
from flexrestore.contracts.record import COMPLETED, ERROR
from flexrestore.contracts.run import (
    REFUSED,
    RunRecord,
    RunSource,
    ValidationCheck,
    ValidationResult,
    ValidationStatus,
)
from flexrestore.contracts.validator import (
    ValidatorConnectionStrings,
    ValidatorInput,
    ValidatorRestore,
    ValidatorRun,
    ValidatorSnapshot,
    ValidatorSource,
    ValidatorTarget,
)
from flexrestore.domain import notifying
from flexrestore.domain import validation as checks
from flexrestore.domain.errors import (
    AtlasError,
    AtlasNotFound,
    AtlasRateLimited,
    AtlasUnavailable,
    DependencyUnavailable,
)
from flexrestore.domain.guards import GuardConfig
from flexrestore.domain.intake import Intake, IntakeError, as_intake_error
from flexrestore.domain.plans import PlannedSource, Refusal, resolve_sources
from flexrestore.domain.ports import (
    Atlas,
    ClusterDetails,
    ListedCluster,
    Metrics,
    Notifier,
    PlanStore,
    RestoreRecordsRead,
    RunCallbacks,
    RunState,
    RunStore,
    Schedules,
    SourceState,
    Validators,
)
from flexrestore.domain.request import InvalidRequest, parse_request
from flexrestore.domain.run_targets import AtlasBusy, TargetLife, TargetStillDeleting
from flexrestore.domain.runs import (
    METRIC_RUN_NOT_SUCCEEDED,
    PLAN_DIMENSION,
    finish_run,
    refused_source,
    run_body,
    run_completed_event,
    run_metrics,
    run_status,
    run_subject,
    source_from_record,
    summarize,
)
from flexrestore.domain.snapshots import SnapshotRefused, choose_snapshot_for_run, snapshot_taken_at

logger = logging.getLogger("flexrestore.runs")

PLAN_NOT_FOUND: Final = "PLAN_NOT_FOUND"
PLAN_NOT_SCHEDULED: Final = "PLAN_NOT_SCHEDULED"
PLAN_INVALID: Final = "PLAN_INVALID"
RUN_BEGIN_FAILED: Final = "RUN_BEGIN_FAILED"
SOURCE_NOT_STARTED: Final = "SOURCE_NOT_STARTED"
VALIDATION_NOT_RUN: Final = "VALIDATION_NOT_RUN"
# What the Validate step keeps for itself after the validator's wait (the built-in checks, the records).
VALIDATE_MARGIN_SECONDS: Final = 20.0
# How long past the restore's own deadline a run waits for it (its record and notification come after).
SOURCE_WAIT_MARGIN_SECONDS: Final = 1800


class SourceDeferred(Exception):
    """A source could not be started for now (Atlas rate-limiting or unavailable, AWS throttling): the state
    machine retries it later. Its class name is matched by the run's ASL."""

    def __init__(self, code: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.retry_after = retry_after


class RestoreNotEnded(Exception):
    """The source's restore was started but has not ended yet, so there is nothing to validate yet (its
    RestoreSource step failed after the start, or its wait timed out early): the state machine asks again
    later, until the restore's own deadline and the run's margin have passed. Matched by the run's ASL."""


@dataclass(frozen=True)
class Begun:
    run_id: str
    max_concurrency: int
    indexes: list[int]
    source_timeout_seconds: int

    def to_state(self) -> dict[str, Any]:
        return {
            "runId": self.run_id,
            "maxConcurrency": self.max_concurrency,
            "sourceTimeoutSeconds": self.source_timeout_seconds,
            "sources": [{"index": index} for index in self.indexes],
        }


def planned_from(stored: Mapping[str, Any]) -> PlannedSource:
    """A :class:`PlannedSource` back from the runs table."""
    refusal = stored.get("refusal")
    tag = stored.get("tag")
    return PlannedSource(
        index=int(stored["index"]),
        origin=str(stored["origin"]),
        group_id=str(stored["group_id"]),
        cluster_name=stored.get("cluster_name"),
        target_deployment_item_name=stored.get("target_deployment_item_name"),
        target_project_id=str(stored["target_project_id"]),
        snapshot=SnapshotChoice.model_validate(stored["snapshot"]),
        tag=SelectorTag.model_validate(tag) if tag else None,
        refusal=Refusal(**refusal) if refusal else None,
    )


def planned_to_stored(planned: PlannedSource) -> dict[str, Any]:
    stored = asdict(planned)
    stored["snapshot"] = planned.snapshot.to_stored()
    stored["tag"] = planned.tag.to_stored() if planned.tag else None
    return stored


def tell_run(record: RestoreRecord, *, runs: RunStore, callbacks: RunCallbacks) -> bool:
    """Tell the run waiting for this restore that it has ended (the Notify step, after the notification).
    False when there is nobody to tell: not a run's restore, or the run no longer waits."""
    link = record.run
    if link is None or not record.ended:
        return False
    token = runs.task_token(link.run_id, link.index)
    if token is None:
        return False  # the source step has not stored its token yet: it looks at the record after it does
    return callbacks.restore_ended(token, _ended(record.restore_id, record.final_status))


def _ended(restore_id: str | None, final_status: str | None) -> dict[str, Any]:
    return {"restoreId": restore_id, "finalStatus": final_status}


def _unwired(what: str) -> Any:
    raise LookupError(f"this step of a verification run was not given its {what}")


@dataclass
class RunSteps:
    atlas: Callable[[], Atlas]
    plans: PlanStore
    runs: RunStore
    restores: RestoreRecordsRead
    intake: Callable[[], Intake]
    callbacks: Callable[[], RunCallbacks]
    notifier: Callable[[], Notifier]
    metrics: Metrics
    schedules: Callable[[], Schedules]
    poll_deadline_seconds: int
    now: Callable[[], datetime]
    targets: Callable[[], TargetLife] = lambda: _unwired("targets")
    validators: Callable[[], Validators] = lambda: _unwired("validators")
    guards: Callable[[], GuardConfig] = GuardConfig

    # --- begin ------------------------------------------------------------------------------------------

    def begin(
        self, run_id: str, plan_name: str, requested_by: RequestedBy, *, execution_arn: str | None
    ) -> Begun:
        state = self.runs.run_state(run_id)
        if state is None:
            state = self._begin_new(run_id, plan_name, requested_by, execution_arn)
        indexes = [s.index for s in self.runs.sources(run_id) if s.outcome is None]
        plan_doc = state.plan
        concurrency = int(plan_doc.get("maxConcurrency") or 1) if plan_doc else 1
        logger.info(
            "run begun",
            extra={
                "runId": run_id,
                "plan": plan_name,
                "sources": state.source_count,
                "toRestore": len(indexes),
            },
        )
        return Begun(
            run_id=run_id,
            max_concurrency=concurrency,
            indexes=indexes,
            source_timeout_seconds=self.poll_deadline_seconds + SOURCE_WAIT_MARGIN_SECONDS,
        )

    def _begin_new(
        self, run_id: str, plan_name: str, requested_by: RequestedBy, execution_arn: str | None
    ) -> RunState:
        head = RunRecord(
            run_id=run_id,
            plan=plan_name,
            requested_by=requested_by,
            started_at=self.now(),
            execution_arn=execution_arn,
        )
        entry = self.plans.get_plan(plan_name)
        scheduled = requested_by.trigger == "schedule"
        if entry is None or (scheduled and entry.schedule_name is None):
            code = PLAN_NOT_FOUND if entry is None else PLAN_NOT_SCHEDULED
            message = (
                f"plan {plan_name!r} does not exist (deleted after the run was asked for)"
                if entry is None
                else f"plan {plan_name!r} no longer has a schedule"
            )
            if scheduled:
                self.schedules().delete_schedule(plan_name)  # the schedule outlived its plan: it goes now
            return self.runs.begin_run(
                RunState(
                    record=head.model_copy(update={"error": ErrorInfo(code=code, message=message)}),
                    plan={},
                    source_count=0,
                ),
                [],
            )
        try:
            plan = Plan.model_validate(entry.plan)
        except ValidationError:
            error = ErrorInfo(
                code=PLAN_INVALID, message=f"the saved plan {plan_name!r} is not valid any more"
            )
            return self.runs.begin_run(
                RunState(record=head.model_copy(update={"error": error}), plan={}, source_count=0), []
            )
        head = head.model_copy(
            update={"rto_objective_seconds": plan.rto_objective_seconds, "notify": plan.notify}
        )
        listed, unlisted = self._list_selected_projects(plan)
        planned = resolve_sources(plan, listed, unlisted=unlisted)
        sources = [
            SourceState(
                index=p.index,
                planned=planned_to_stored(p),
                outcome=refused_source(p) if p.refused else None,
            )
            for p in planned
        ]
        in_target_project = (
            tuple(
                sorted(
                    {
                        p.cluster_name
                        for p in planned
                        if p.cluster_name and p.group_id == plan.targets.project_id
                    }
                )
            )
            if plan.targets is not None
            else ()
        )
        return self.runs.begin_run(
            RunState(
                record=head,
                plan=entry.plan,
                source_count=len(sources),
                target_project_sources=in_target_project,
            ),
            sources,
        )

    def _list_selected_projects(self, plan: Plan) -> tuple[dict[str, list[ListedCluster]], dict[str, str]]:
        projects = sorted({s.group_id for s in plan.sources if isinstance(s, TagSelector)})
        listed: dict[str, list[ListedCluster]] = {}
        unlisted: dict[str, str] = {}
        for project in projects:
            try:
                listed[project] = list(self.atlas().list_flex_clusters(project))
            except (AtlasRateLimited, AtlasUnavailable) as exc:
                raise SourceDeferred("ATLAS_UNAVAILABLE", str(exc), exc.retry_after) from None
            except AtlasError as exc:
                unlisted[project] = str(exc)
        return listed, unlisted

    # --- one source -------------------------------------------------------------------------------------

    def start_source(self, run_id: str, index: int, task_token: str, *, wait_seconds: float = 0.0) -> str:
        """Start the restore of one source (or end the source); returns what happened, for the log. With
        ephemeral targets the source's cluster is created (or adopted) first and waited for until IDLE, at
        most ``wait_seconds`` here: :class:`TargetNotReady` asks the state machine to look again later."""
        state = self.runs.run_state(run_id)
        source = self.runs.source(run_id, index)
        if state is None or source is None:
            raise LookupError(f"run {run_id} has no source {index}")
        if source.outcome is not None:
            self.callbacks().restore_ended(task_token, _ended(None, source.outcome.final_status))
            return f"already ended {source.outcome.final_status}"
        planned = planned_from(source.planned)
        restore_id = source.restore_id or self._restore(state, source, planned, wait_seconds)
        if restore_id is None:
            self.callbacks().restore_ended(task_token, _ended(None, "REFUSED"))
            return "refused"
        self.runs.attach_token(run_id, index, task_token)
        # The restore may have ended before the token was kept: then nobody else would answer it.
        record = self.restores.get(restore_id)
        if record is not None and record.ended:
            self.callbacks().restore_ended(task_token, _ended(restore_id, record.final_status))
            return f"restore {restore_id} had ended {record.final_status}"
        return f"restore {restore_id} started"

    def _restore(
        self, state: RunState, source: SourceState, planned: PlannedSource, wait_seconds: float
    ) -> str | None:
        run_id = state.record.run_id
        plan = Plan.model_validate(state.plan)
        try:
            snapshots = self.atlas().list_snapshots(planned.group_id, planned.cluster_name or "")
            snapshot, pick = choose_snapshot_for_run(
                snapshots, plan.snapshot, run_id, planned.key, state.record.started_at
            )
        except SnapshotRefused as refused:
            self._end_source(state, planned, refused.code, refused.message)
            return None
        except AtlasNotFound as exc:
            self._end_source(
                state,
                planned,
                exc.error_code or "RESOURCE_NOT_FOUND",
                f"Atlas does not know {planned.key}: {exc}",
            )
            return None
        except AtlasError as exc:
            known = as_intake_error(exc)
            raise SourceDeferred(known.code if known else "ATLAS_FAILED", str(exc), exc.retry_after) from None
        self.runs.set_snapshot(
            run_id,
            planned.index,
            snapshot_id=snapshot.id,
            taken_at=snapshot_taken_at(snapshot),
            choice=pick,
            mongodb_version=snapshot.mongodb_version,
        )
        target_name: str | None = None
        if plan.targets is not None:
            try:
                prepared = self.targets().prepare(state, source, plan, wait_seconds=wait_seconds)
            except AtlasBusy as busy:
                raise SourceDeferred(busy.code, str(busy), busy.retry_after) from None
            if prepared.error is not None:
                self._end_source(
                    state,
                    planned,
                    prepared.error.code,
                    prepared.error.message,
                    snapshot_id=snapshot.id,
                    status=prepared.status,
                )
                return None
            target_name = prepared.name
        link = RunLink(run_id=run_id, plan=plan.name, index=planned.index, notify=plan.notify)
        try:
            request = parse_request(
                planned.restore_request(
                    snapshot_id=snapshot.id,
                    reason=f"verification run {run_id} of plan {plan.name}",
                    target_name=target_name,
                )
            )
            _, answer = self.intake().submit(
                request,
                state.record.requested_by or RequestedBy(trigger="schedule"),
                f"run:{run_id}:{planned.index}",
                snapshot=snapshot,
                run=link,
            )
        except InvalidRequest as exc:
            self._end_source(state, planned, "INVALID_REQUEST", f"{exc.message}: {exc.errors}")
            return None
        except Exception as exc:
            known = as_intake_error(exc)
            if known is None:
                raise
            if known.refusal:
                self._end_source(state, planned, known.code, known.message, snapshot_id=snapshot.id)
                return None
            if (
                known.status == 503
                or isinstance(exc, DependencyUnavailable)
                or known.code == "REQUEST_IN_PROGRESS"
            ):
                raise SourceDeferred(known.code, known.message, known.retry_after) from None
            raise IntakeError(known.status, known.code, known.message, refusal=False) from None
        restore_id = str(answer["restoreId"])
        self.runs.set_restore(run_id, planned.index, restore_id)
        return restore_id

    def _end_source(
        self,
        state: RunState,
        planned: PlannedSource,
        code: str,
        message: str,
        *,
        snapshot_id: str | None = None,
        status: str = REFUSED,
    ) -> None:
        source = self.runs.source(state.record.run_id, planned.index)
        outcome = refused_source(
            planned,
            code=code,
            message=message,
            status=status,
            snapshot_id=snapshot_id or (source.snapshot_id if source else None),
            snapshot_taken_at=source.snapshot_taken_at if source else None,
            snapshot_choice=source.snapshot_choice if source else None,
        )
        self.runs.set_outcome(state.record.run_id, planned.index, outcome)
        logger.warning(
            "run source ended without a restore",
            extra={"runId": state.record.run_id, "index": planned.index, "errorCode": code, "status": status},
        )

    # --- validate -----------------------------------------------------------------------------------------

    def validate(self, run_id: str, index: int, *, budget_seconds: float) -> ValidationResult:
        """The source's validation verdict (recorded once on its item; a repeat answers the recorded one):
        SKIPPED when its restore did not complete; else the built-in checks, then the plan's validator,
        given at most ``budget_seconds`` less a margin (and never more than its timeoutSeconds)."""
        state = self.runs.run_state(run_id)
        source = self.runs.source(run_id, index)
        if state is None or source is None:
            raise LookupError(f"run {run_id} has no source {index}")
        if source.validation is not None:
            return source.validation
        plan = Plan.model_validate(state.plan)
        validator = plan.validation.lambda_arn if plan.validation else None
        record = self.restores.get(source.restore_id) if source.restore_id else None
        if record is not None and not record.ended and self._may_still_end(record):
            # Validating now would record SKIPPED for a restore that may yet complete.
            raise RestoreNotEnded(f"restore {record.restore_id} of source {index} has not ended yet")
        if record is None or record.final_status != COMPLETED:
            status = (
                record.final_status or "not ended"
                if record is not None
                else (source.outcome.final_status if source.outcome else "not started")
            )
            result = checks.skipped(
                f"nothing to validate: the restore did not complete ({status})",
                at=self.now(),
                validator=validator,
            )
        else:
            try:
                result = self._validated(state, source, plan, record, budget_seconds)
            except AtlasBusy as busy:
                raise SourceDeferred(busy.code, str(busy), busy.retry_after) from None
        self.runs.set_validation(run_id, index, result)
        logger.info(
            "run source validated",
            extra={"runId": run_id, "index": index, "validation": result.status, "because": result.message},
        )
        return result

    def _may_still_end(self, record: RestoreRecord) -> bool:
        """Until its deadline (and the margin its record and notification take), a restore may still end."""
        waited = (self.now() - record.requested_at).total_seconds()
        return waited < self.poll_deadline_seconds + SOURCE_WAIT_MARGIN_SECONDS

    def _validated(
        self, state: RunState, source: SourceState, plan: Plan, record: RestoreRecord, budget_seconds: float
    ) -> ValidationResult:
        atlas = self.atlas()
        target, project = record.target_deployment_item_name, record.target_project_id
        cluster = None
        target_problem = job_problem = None
        try:
            cluster = atlas.get_flex_cluster(project, target)
        except (AtlasRateLimited, AtlasUnavailable) as exc:
            raise AtlasBusy("ATLAS_UNAVAILABLE", str(exc), exc.retry_after) from None
        except AtlasError as exc:
            target_problem = f"Atlas could not show the target {target!r}: {exc}"
        job = None
        if record.restore_job_id is None:
            job_problem = "the restore has no Atlas job"
        else:
            try:
                job = atlas.get_restore_job(record.group_id, record.cluster_name, record.restore_job_id)
            except (AtlasRateLimited, AtlasUnavailable) as exc:
                raise AtlasBusy("ATLAS_UNAVAILABLE", str(exc), exc.retry_after) from None
            except AtlasError as exc:
                job_problem = f"Atlas could not show the restore job {record.restore_job_id}: {exc}"
        built_in = checks.built_in_checks(
            checks.BuiltInFacts(
                target=target,
                target_state=cluster.state_name if cluster is not None else None,
                target_version=cluster.mongodb_version if cluster is not None else None,
                snapshot_version=source.snapshot_version,
                job_status=job.status if job is not None else None,
                job_finished_at=job.restore_finished_date if job is not None else None,
                snapshot_taken_at=source.snapshot_taken_at,
                run_started_at=state.record.started_at,
                max_age_hours=checks.max_age_hours(plan.snapshot.to_stored()),
                target_problem=target_problem,
                job_problem=job_problem,
            )
        )
        judged: tuple[ValidationStatus, str, list[ValidationCheck]] | None = None
        failed = any(c.status == checks.FAILED for c in built_in)
        if plan.validation is not None and not failed:
            arn = plan.validation.lambda_arn
            if arn not in self.guards().allowed_validators:
                message = (
                    f"the validator {arn} is not in this deployment's VALIDATOR_FUNCTION_ARNS (any more); "
                    "it was not invoked"
                )
                judged = (
                    checks.FAILED,
                    message,
                    [ValidationCheck(name=checks.VALIDATOR_CHECK, status="FAILED", message=message)],
                )
            else:
                allowed = plan.validation.timeout_seconds
                wait = max(1.0, min(float(allowed), budget_seconds - VALIDATE_MARGIN_SECONDS))
                document = self._validator_input(state, source, record, cluster, allowed)
                call = self.validators().invoke(arn, document, timeout_seconds=wait)
                judged = checks.judge_validator(call, timeout_seconds=int(min(allowed, wait)))
        return checks.verdict(
            built_in,
            validator=plan.validation.lambda_arn if plan.validation else None,
            validator_verdict=judged,
            at=self.now(),
        )

    def _validator_input(
        self,
        state: RunState,
        source: SourceState,
        record: RestoreRecord,
        cluster: ClusterDetails | None,
        timeout_seconds: int,
    ) -> dict[str, Any]:
        strings = cluster.connection_strings if cluster is not None else None
        document = ValidatorInput(
            run=ValidatorRun(run_id=state.record.run_id, plan=state.record.plan, index=source.index),
            source=ValidatorSource(group_id=record.group_id, cluster_name=record.cluster_name),
            snapshot=ValidatorSnapshot(
                id=record.snapshot_id or source.snapshot_id or "",
                taken_at=source.snapshot_taken_at,
                mongodb_version=source.snapshot_version,
            ),
            restore=ValidatorRestore(
                restore_id=record.restore_id,
                restore_job_id=record.restore_job_id,
                final_status=record.final_status or "",
                requested_at=record.requested_at,
                finished_at=record.finished_at,
                duration_seconds=record.duration_seconds,
            ),
            target=ValidatorTarget(
                name=record.target_deployment_item_name,
                project_id=record.target_project_id,
                ephemeral=source.target is not None and source.target.ephemeral,
                state_name=cluster.state_name if cluster is not None else None,
                mongodb_version=cluster.mongodb_version if cluster is not None else None,
                connection_strings=ValidatorConnectionStrings(
                    standard=strings.standard if strings is not None else None,
                    standard_srv=strings.standard_srv if strings is not None else None,
                ),
            ),
            timeout_seconds=timeout_seconds,
        )
        return document.to_json()

    # --- clean up -------------------------------------------------------------------------------------

    def cleanup(self, run_id: str, index: int, *, wait_seconds: float) -> str:
        """Delete the source's ephemeral cluster (unless its retention runs; the sweeper deletes it then)
        and wait up to ``wait_seconds`` for Atlas to no longer have it; :class:`TargetStillDeleting` when
        it still does. Nothing to do for a source without an ephemeral target."""
        state = self.runs.run_state(run_id)
        source = self.runs.source(run_id, index)
        if state is None or source is None:
            raise LookupError(f"run {run_id} has no source {index}")
        if source.target is None:
            return "nothing"
        plan = Plan.model_validate(state.plan)
        try:
            what, _ = self.targets().clean(state, source, plan, wait_seconds=wait_seconds)
        except AtlasBusy as busy:
            raise SourceDeferred(busy.code, str(busy), busy.retry_after) from None
        if what == "deleting":
            raise TargetStillDeleting(f"the cluster of source {index} is being deleted; looking again later")
        return what

    # --- finish -----------------------------------------------------------------------------------------

    def finish(
        self,
        run_id: str,
        plan_name: str,
        *,
        failure: Mapping[str, Any] | None = None,
        aborted: ErrorInfo | None = None,
    ) -> RunRecord:
        """The run record, written once, then the summary message, event and metrics (each once).
        ``aborted``: why a run whose execution ended early is finished by someone else (the sweeper)."""
        state = self.runs.run_state(run_id)
        if state is None:  # Begin never got as far as storing the run
            cause = str((failure or {}).get("Cause") or (failure or {}).get("Error") or "unknown")
            head = RunRecord(
                run_id=run_id,
                plan=plan_name,
                started_at=self.now(),
                error=notifying.error_info(RUN_BEGIN_FAILED, f"the run could not begin: {cause}"),
            )
            state = self.runs.begin_run(RunState(record=head, plan={}, source_count=0), [])
        record = self._ended_run(state)
        if aborted is not None and record.error is None:
            record = record.model_copy(update={"error": aborted})
        saved, first = self.runs.finish_run(record)
        if first:
            self._count(saved)
        self._tell(saved)
        return saved

    def _ended_run(self, state: RunState) -> RunRecord:
        head = state.record
        if not state.plan:  # the run could not begin: nothing was restored
            summary = summarize([])
            return head.model_copy(
                update={"finished_at": self.now(), "final_status": run_status(summary), "summary": summary}
            )
        plan = Plan.model_validate(state.plan)
        sources = self.runs.sources(head.run_id)
        records = self.restores.get_many([s.restore_id for s in sources if s.restore_id])
        entries: list[RunSource] = []
        for source in sources:
            planned = planned_from(source.planned)
            record = records.get(source.restore_id) if source.restore_id else None
            if source.outcome is not None:
                entries.append(
                    source.outcome.model_copy(
                        update={
                            "target": source.target or source.outcome.target,
                            "validation": source.validation,
                        }
                    )
                )
            elif record is not None:
                entries.append(
                    source_from_record(
                        planned,
                        record,
                        rto_objective_seconds=plan.rto_objective_seconds,
                        snapshot_taken_at=source.snapshot_taken_at,
                        snapshot_choice=source.snapshot_choice,
                        target=source.target,
                        validation=source.validation or self._not_validated(record),
                    )
                )
            else:
                entries.append(
                    refused_source(
                        planned,
                        code=SOURCE_NOT_STARTED,
                        message="the run could not start this source's restore (Atlas or AWS kept failing; "
                        "see the run's execution history)",
                        status=ERROR,
                        snapshot_id=source.snapshot_id,
                        snapshot_taken_at=source.snapshot_taken_at,
                        snapshot_choice=source.snapshot_choice,
                    ).model_copy(update={"target": source.target})
                )
        return finish_run(
            run_id=head.run_id,
            plan=plan,
            started_at=head.started_at,
            finished_at=self.now(),
            sources=entries,
            requested_by=head.requested_by,
        ).model_copy(update={"error": head.error, "execution_arn": head.execution_arn})

    def _not_validated(self, record: RestoreRecord) -> ValidationResult | None:
        """A completed restore whose Validate step never recorded a verdict is not verified."""
        if record.final_status != COMPLETED:
            return None
        return ValidationResult(
            status="FAILED",
            message=f"{VALIDATION_NOT_RUN}: the validation step did not finish (see the run's execution "
            "history)",
            at=self.now(),
        )

    def _count(self, record: RunRecord) -> None:
        for name, amount in run_metrics(record).items():
            unit = "Seconds" if name.endswith("Seconds") else "Count"
            self.metrics.value(name, amount, unit=unit, dimension=PLAN_DIMENSION, dimension_value=record.plan)
        # The alarm watches the service-wide series: any plan's run that did not succeed.
        self.metrics.value(METRIC_RUN_NOT_SUCCEEDED, run_metrics(record)[METRIC_RUN_NOT_SUCCEEDED])

    def _tell(self, record: RunRecord) -> None:
        notifier = self.notifier()
        senders: dict[str, Callable[[], str]] = {
            notifying.SNS_CHANNEL: lambda: notifier.publish(run_subject(record), run_body(record)),
            notifying.EVENTS_CHANNEL: lambda: notifier.put_event(
                run_completed_event(record, resources=(record.execution_arn,) if record.execution_arn else ())
            ),
        }
        earlier = self.runs.open_run_notification(record.run_id)
        failures: list[Exception] = []
        for channel, send in senders.items():
            if notifying.earlier_delivery(earlier, channel) is not None:
                continue
            try:
                delivery_id = send()
            except Exception as exc:
                failures.append(exc)
                continue
            self.runs.mark_run_channel(
                record.run_id, channel, notifying.delivered(channel, self.now(), delivery_id)
            )
        if failures:
            raise failures[0]
