"""The intake flow, the same for every trigger: resolve the snapshot, run the target guards, then (exactly
once) lock the target, record the restore, create the Atlas job and start the poll loop.

Plain Python over the ports of domain/ports.py (Atlas, restore records, target locks, executions,
notifications, metrics, and an ``exactly_once`` runner): this module knows no AWS and no HTTP.

Status codes of the answers (the HTTP API sends them; schedules and alarms log and count them):

====  ========================================================================================
400   bad input (field-level), or a guard that needs a field set (self-restore, break-glass reason)
403   a guard refused the target (protected, project not allowed, break-glass caller not allowed)
404   Atlas does not know the project / cluster / snapshot / target; no COMPLETED snapshot at all
409   the target is busy or locked by a running restore; the snapshot is not COMPLETED; the same
      request is already being handled (retry later)
422   an Idempotency-Key reused with a different request
500   the service is misconfigured (e.g. the credentials secret is missing or malformed; the message
      names the secret id, never a value)
502   Atlas failed (refused our credentials, answered nonsense)
503   Atlas is rate-limiting or unavailable; ``Retry-After`` says when to come back
====  ========================================================================================
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flexrestore import clock
from flexrestore.clock import isoformat
from flexrestore.contracts import (
    BreakGlass,
    ExecutionInput,
    RefusalRecord,
    RequestedBy,
    RestoreRecord,
    RunLink,
    TimelineEntry,
)
from flexrestore.domain import polling
from flexrestore.domain.errors import (
    AtlasAuthError,
    AtlasBadRequest,
    AtlasConflict,
    AtlasCredentialsError,
    AtlasError,
    AtlasNotFound,
    AtlasRateLimited,
    AtlasUnavailable,
    DependencyUnavailable,
    IdempotencyKeyReused,
    RequestInProgress,
    ServiceMisconfigured,
    TargetBusy,
)
from flexrestore.domain.guards import (
    GuardConfig,
    TargetFacts,
    Verdict,
    break_glass_used,
    check_target,
    first_refusal,
    target_lock_verdict,
)
from flexrestore.domain.ports import (
    Atlas,
    ExactlyOnce,
    ExecutionMarks,
    Executions,
    IntakeRecords,
    Locks,
    Metrics,
    SnapshotInfo,
)
from flexrestore.domain.request import CLUSTER_NAME_PATTERN, RestoreRequest
from flexrestore.domain.snapshots import SnapshotRefused, check_snapshot, choose_snapshot

logger = logging.getLogger("flexrestore.intake")

NOT_FLEX = "CANNOT_USE_NON_FLEX_CLUSTER_IN_FLEX_API"
IN_PROGRESS_RETRY_AFTER = 5  # seconds: a duplicate in flight usually answers within that
_RESTORE_ID_NAMESPACE = uuid.UUID("6f0c1d2e-8a41-4d5b-9a5e-3c1f7e2b9d40")
_MAX_GENERATIONS = 1000


class IntakeError(Exception):
    """A request that ends without a restore. ``refusal`` is True when retrying the same request cannot
    help (bad input, a guard, a busy target); False for faults (Atlas down, misconfiguration)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        refusal: bool,
        errors: list[dict[str, str]] | None = None,
        retry_after: int | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.refusal = refusal
        self.errors = errors
        self.retry_after = retry_after
        self.extra = dict(extra or {})

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message, "errorCode": self.code}
        if self.errors:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


def misconfigured(problem: Exception) -> IntakeError:
    """A setting or the credentials secret is missing or malformed: a fault, named, never a value."""
    return IntakeError(500, "SERVICE_MISCONFIGURED", f"service misconfigured: {problem}", refusal=False)


def unavailable(problem: DependencyUnavailable) -> IntakeError:
    """An AWS dependency is throttling or failing for now: 503 with when to come back."""
    return IntakeError(503, problem.code, problem.message, refusal=False, retry_after=problem.retry_after)


def as_intake_error(exc: Exception) -> IntakeError | None:
    """The answer for an error the flow or its adapters raised, or None if it is a surprise (a bug)."""
    if isinstance(exc, IntakeError):
        return exc
    if isinstance(exc, ServiceMisconfigured):
        return misconfigured(exc)
    if isinstance(exc, DependencyUnavailable):
        return unavailable(exc)
    if isinstance(exc, AtlasError):
        return from_atlas(exc, "the request")
    if isinstance(exc, RequestInProgress):
        return IntakeError(
            409,
            "REQUEST_IN_PROGRESS",
            "the same request is already being handled; retry later to get its answer",
            refusal=False,
            retry_after=IN_PROGRESS_RETRY_AFTER,
        )
    if isinstance(exc, IdempotencyKeyReused):
        return IntakeError(
            422,
            "IDEMPOTENCY_KEY_REUSED",
            "this Idempotency-Key was already used with a different request; use a new key",
            refusal=True,
            errors=[{"field": "Idempotency-Key", "message": "was used before with a different body"}],
        )
    return None


def from_atlas(exc: AtlasError, what: str) -> IntakeError:
    """Atlas's failure as the intake's answer; Atlas's errorCode passes through."""
    code = exc.error_code
    detail = f": {_short(exc.detail)}" if exc.detail else ""
    if isinstance(exc, AtlasCredentialsError):
        return misconfigured(exc)
    if isinstance(exc, AtlasNotFound):
        return IntakeError(
            404, code or "RESOURCE_NOT_FOUND", f"Atlas does not know {what}{detail}", refusal=True
        )
    if isinstance(exc, AtlasBadRequest):
        errors = None
        if code == NOT_FLEX:
            errors = [
                {"field": "clusterName", "message": "must name a Flex cluster; Atlas says it is dedicated"}
            ]
        return IntakeError(
            400,
            code or "ATLAS_BAD_REQUEST",
            f"Atlas refused the request for {what}{detail}",
            refusal=True,
            errors=errors,
        )
    if isinstance(exc, AtlasConflict):
        return IntakeError(
            409, code or "CONFLICT", f"Atlas reports a conflict on {what}{detail}", refusal=True
        )
    if isinstance(exc, AtlasRateLimited | AtlasUnavailable):
        # Atlas's rate-limit buckets refill per minute; an outage is worth a look sooner.
        limited = isinstance(exc, AtlasRateLimited)
        wait = math.ceil(exc.retry_after) if exc.retry_after else (60 if limited else 30)
        state = "is rate-limiting requests" if limited else f"is unavailable ({_short(str(exc))})"
        return IntakeError(
            503,
            code or ("RATE_LIMITED" if limited else "ATLAS_UNAVAILABLE"),
            f"Atlas {state}; retry in {wait} s",
            refusal=False,
            retry_after=wait,
        )
    if isinstance(exc, AtlasAuthError):
        return IntakeError(
            502,
            code or "ATLAS_AUTH_FAILED",
            f"Atlas refused the service's credentials (HTTP {exc.status}){detail}",
            refusal=False,
        )
    return IntakeError(
        502, code or "ATLAS_FAILED", f"Atlas failed on {what}: {_short(str(exc))}", refusal=False
    )


def refusal_error(verdict: Verdict) -> IntakeError:
    """A guard's refusal as the answer: 400 with the field for input-shaped refusals, else 403/404/409."""
    errors = (
        [{"field": verdict.field, "message": verdict.message}]
        if verdict.status == 400 and verdict.field
        else None
    )
    return IntakeError(
        verdict.status,
        verdict.reason.upper().replace("-", "_"),
        verdict.message,
        refusal=True,
        errors=errors,
        extra={"guard": verdict.guard, "reason": verdict.reason},
    )


# --- pure helpers -----------------------------------------------------------------------------------


def idempotency_key(kind: str, *parts: str) -> str:
    """A stable key from its parts (hashed: header values and ARNs stay out of the key itself)."""
    digest = hashlib.sha256("\0".join((kind, *parts)).encode("utf-8")).hexdigest()
    return f"{kind}:{digest}"


def request_fingerprint(request: RestoreRequest) -> str:
    return json.dumps(request.to_wire(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def restore_id_for(key: str, generation: int = 0) -> str:
    """The restoreId of an idempotency key: a retry after a crash finds the same restore.

    ``generation`` moves on when the key's earlier restore ended without a job (a failed create, which
    the caller may retry with the same key) or is older than the idempotency window.
    """
    return uuid.uuid5(_RESTORE_ID_NAMESPACE, f"{key}#{generation}").hex


def first_poll_within_deadline(now: datetime, scheduled: datetime | None, *, deadline_seconds: int) -> int:
    """The poll loop's first wait (``polling.first_poll_seconds``), never past the restore's deadline: a
    first look after it would report the TIMED_OUT late."""
    return min(polling.first_poll_seconds(now, scheduled), deadline_seconds)


# --- the flow ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IntakeConfig:
    guards: GuardConfig
    poll_deadline_seconds: int
    idempotency_ttl_seconds: int


@dataclass
class Evaluation:
    snapshot: SnapshotInfo
    facts: TargetFacts
    verdicts: list[Verdict] = field(default_factory=list)


@dataclass
class Intake:
    atlas: Callable[[], Atlas]
    records: IntakeRecords
    locks: Locks
    executions: Executions
    exactly_once: ExactlyOnce
    metrics: Metrics
    config: IntakeConfig
    now: Callable[[], datetime]
    # The short wait on the execution's create step, on the clock (offline, the execution's thread works
    # meanwhile and the clock moves only when it waits too).
    monotonic: Callable[[], float] = clock.seconds
    pause: Callable[[float], None] = clock.sleep

    def submit(
        self,
        request: RestoreRequest,
        requested_by: RequestedBy,
        key: str,
        *,
        wait_for_job_seconds: float = 0.0,
        snapshot: SnapshotInfo | None = None,
        run: RunLink | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """``(200, what would be done)`` for a dry run, else ``(202, the accepted restore)``; the answer
        carries the Atlas job if the execution has it within ``wait_for_job_seconds``. A verification run
        passes the ``snapshot`` it chose (the request names it) and its ``run``."""
        if request.dry_run:
            return 200, self.dry_run(request, requested_by)
        # The first answer, with the Atlas job when the execution has it in time, is what a repeat gets.
        answer = self.exactly_once(
            key,
            {"request": request.to_wire(), "requestedBy": requested_by.trigger},
            lambda: self.settled(
                self._accept(request, requested_by, key, snapshot=snapshot, run=run),
                wait_seconds=wait_for_job_seconds,
            ),
        )
        return 202, answer

    # --- dry run ------------------------------------------------------------------------------------

    def dry_run(self, request: RestoreRequest, requested_by: RequestedBy) -> dict[str, Any]:
        evaluation = self._evaluate(request, requested_by)
        holder = self.locks.holder(request.target_project_id, request.target_deployment_item_name)
        lock = (
            target_lock_verdict(holder.lock_id, holder.restore_id, holder.expires_at)
            if holder is not None
            else target_lock_verdict("", None, None)
        )
        verdicts = [*evaluation.verdicts, lock]
        refusal = first_refusal(verdicts)
        snapshot = evaluation.snapshot
        return {
            "dryRun": True,
            "allowed": refusal is None,
            "message": (
                "a restore would be created"
                if refusal is None
                else f"the restore would be refused ({refusal.status} {refusal.reason}): {refusal.message}"
            ),
            "wouldRestore": {
                "source": request.source,
                "groupId": request.group_id,
                "clusterName": request.cluster_name,
                "snapshotId": snapshot.id,
                "snapshotFinishedAt": isoformat(snapshot.finish_time) if snapshot.finish_time else None,
                "snapshotMongoDBVersion": snapshot.mongodb_version,
                "targetDeploymentItemName": request.target_deployment_item_name,
                "targetProjectId": request.target_project_id,
                "requestedBy": requested_by.to_record(),
            },
            "verdicts": [v.to_dict() for v in verdicts],
        }

    # --- the checks before anything is created -------------------------------------------------------

    def _evaluate(
        self, request: RestoreRequest, requested_by: RequestedBy, chosen: SnapshotInfo | None = None
    ) -> Evaluation:
        atlas = self.atlas()
        snapshot = self._snapshot(atlas, request, requested_by, chosen)
        facts = self._target_facts(atlas, request)
        verdicts = check_target(
            request, facts, snapshot.mongodb_version, self.config.guards, requested_by.caller
        )
        return Evaluation(snapshot=snapshot, facts=facts, verdicts=verdicts)

    def _snapshot(
        self,
        atlas: Atlas,
        request: RestoreRequest,
        requested_by: RequestedBy,
        chosen: SnapshotInfo | None = None,
    ) -> SnapshotInfo:
        source = f"cluster {request.cluster_name!r} in project {request.group_id}"
        explicit = request.explicit_snapshot_id
        try:
            if chosen is not None and chosen.id == explicit:
                return check_snapshot(chosen, now=self.now())  # read from Atlas a moment ago
            if explicit is None:
                return choose_snapshot(
                    atlas.list_snapshots(request.group_id, request.cluster_name),
                    source=request.source,
                    now=self.now(),
                )
            found = atlas.get_snapshot(request.group_id, request.cluster_name, explicit)
            return check_snapshot(found, now=self.now())
        except AtlasNotFound as exc:
            what = f"snapshot {explicit} of {source}" if explicit else source
            raise from_atlas(exc, what) from None
        except AtlasError as exc:
            raise from_atlas(exc, f"the snapshots of {source}") from None
        except SnapshotRefused as refused:
            self._refused(
                request,
                requested_by,
                reason=refused.code.lower().replace("_", "-"),
                status=refused.status,
                message=refused.message,
                guard="snapshot",
            )
            raise IntakeError(
                refused.status, refused.code, refused.message, refusal=True, extra={"field": "snapshotId"}
            ) from None

    def _target_facts(self, atlas: Atlas, request: RestoreRequest) -> TargetFacts:
        if not re.fullmatch(CLUSTER_NAME_PATTERN, request.target_deployment_item_name):
            # Atlas allows Unicode target names, but a flex cluster's name is ^[a-zA-Z0-9][a-zA-Z0-9-]*$:
            # no flex cluster can have this name, and asking the flex API for it would break its spec.
            return TargetFacts(exists=False)
        try:
            cluster = atlas.get_flex_cluster(request.target_project_id, request.target_deployment_item_name)
        except AtlasNotFound:
            return TargetFacts(exists=False)
        except AtlasBadRequest as exc:
            if exc.error_code == NOT_FLEX:
                return TargetFacts(exists=True, dedicated=True)
            raise from_atlas(exc, f"target {request.target_deployment_item_name!r}") from None
        except AtlasError as exc:
            raise from_atlas(exc, f"target {request.target_deployment_item_name!r}") from None
        return TargetFacts(
            exists=True,
            dedicated=False,
            state_name=cluster.state_name,
            mongodb_version=cluster.mongodb_version,
            tags=cluster.tag_map,
        )

    def _refused(
        self,
        request: RestoreRequest,
        requested_by: RequestedBy,
        *,
        reason: str,
        status: int,
        message: str,
        guard: str,
    ) -> None:
        """Every refusal is logged, counted and kept as an audit record."""
        logger.warning(
            "restore refused (%s %s): %s",
            status,
            reason,
            message,
            extra={"refusalReason": reason, "trigger": requested_by.trigger},
        )
        self.metrics.count("RestoreRefused", "reason", reason)
        try:
            self.records.record_refusal(
                RefusalRecord(
                    id=f"refusal#{uuid.uuid4().hex}",
                    requested_at=self.now(),
                    requested_by=requested_by,
                    request=request.to_wire(),
                    group_id=request.group_id,
                    cluster_name=request.cluster_name,
                    target_deployment_item_name=request.target_deployment_item_name,
                    target_project_id=request.target_project_id,
                    break_glass=request.break_glass,
                    guard=guard,
                    reason=reason,
                    status=status,
                    message=message,
                )
            )
        except Exception:  # the refusal stands even if its audit write fails; the log line above keeps it
            logger.exception("could not write the refusal audit record")

    def _refused_by(
        self, request: RestoreRequest, requested_by: RequestedBy, verdict: Verdict
    ) -> IntakeError:
        """A guard's refusal, logged, counted and audited; the answer to raise."""
        self._refused(
            request,
            requested_by,
            reason=verdict.reason,
            status=verdict.status,
            message=verdict.message,
            guard=verdict.guard,
        )
        return refusal_error(verdict)

    # --- exactly once ----------------------------------------------------------------------------------

    def _accept(
        self,
        request: RestoreRequest,
        requested_by: RequestedBy,
        key: str,
        *,
        snapshot: SnapshotInfo | None = None,
        run: RunLink | None = None,
    ) -> dict[str, Any]:
        """Guard, lock, record, hand over: from the record on, the restore's execution owns it."""
        evaluation = self._evaluate(request, requested_by, snapshot)
        refusal = first_refusal(evaluation.verdicts)
        if refusal is not None:
            raise self._refused_by(request, requested_by, refusal)

        restore_id, existing = self._claim_restore_id(key)
        try:
            lock_id = self.locks.acquire(
                request.target_project_id,
                request.target_deployment_item_name,
                restore_id=restore_id,
                lease_seconds=self.config.guards.lock_lease_seconds,
            )
        except TargetBusy as busy:
            verdict = target_lock_verdict(busy.lock_id, busy.running_restore_id, busy.expires_at)
            raise self._refused_by(request, requested_by, verdict) from None

        if existing is None:
            existing = new_record(
                restore_id,
                request,
                requested_by,
                snapshot_id=evaluation.snapshot.id,
                requested_at=self.now(),
                break_glass=(
                    BreakGlass(reason=request.reason, principal=requested_by.caller)
                    if break_glass_used(evaluation.verdicts)
                    else None
                ),
                lock_id=lock_id,
                run=run,
            )
            try:
                self.records.create(existing)
            except BaseException:
                # Nothing was handed over yet: do not leave the target locked by a restore that has no
                # record (a retry takes the lock again).
                self.locks.release(lock_id, restore_id)
                raise
            logger.info("restore %s accepted", restore_id, extra={"restoreId": restore_id})
            self.metrics.count("RestoreRequested", "trigger", requested_by.trigger)
        else:
            logger.info(
                "resuming restore %s left by an earlier attempt", restore_id, extra={"restoreId": restore_id}
            )
        execution_arn = self.hand_over(existing)
        return {
            "restoreId": restore_id,
            "restoreJobId": existing.restore_job_id,
            "status": existing.status,
            "executionArn": execution_arn,
            "location": f"/restores/{restore_id}",
            "source": request.source,
            "snapshotId": existing.snapshot_id,
            "targetDeploymentItemName": request.target_deployment_item_name,
            "targetProjectId": request.target_project_id,
            "requestedAt": isoformat(existing.requested_at),
            "requestedBy": requested_by.to_record(),
            "breakGlass": existing.break_glass is not None,
        }

    def hand_over(self, record: RestoreRecord) -> str | None:
        return hand_over(
            record,
            executions=self.executions,
            records=self.records,
            deadline_seconds=self.config.poll_deadline_seconds,
            metrics=self.metrics,
        )

    def settled(self, answer: dict[str, Any], *, wait_seconds: float) -> dict[str, Any]:
        """The answer with the Atlas job once the execution's create step has it, waiting up to
        ``wait_seconds`` for it; best-effort: the restore is accepted whatever this read says."""
        until = self.monotonic() + wait_seconds
        while True:
            try:
                record = self.records.get(str(answer["restoreId"]))
            except Exception as exc:
                logger.warning("could not read the accepted restore back: %s", type(exc).__name__)
                return answer
            if record is not None:
                answer = {
                    **answer,
                    "restoreJobId": record.restore_job_id,
                    "status": record.final_status or record.status,
                    "executionArn": record.execution_arn or answer.get("executionArn"),
                }
                if record.restore_job_id or record.ended:
                    answer.pop("message", None)
                    return answer
            if self.monotonic() >= until:
                return {
                    **answer,
                    "message": "accepted; the Atlas restore job is being created (GET the location for it)",
                }
            self.pause(min(0.05, max(0.0, until - self.monotonic())))

    def _claim_restore_id(self, key: str) -> tuple[str, RestoreRecord | None]:
        """The restoreId for this key, and the record an earlier crashed attempt left (if any)."""
        window = timedelta(seconds=self.config.idempotency_ttl_seconds)
        now = self.now()
        for generation in range(_MAX_GENERATIONS):
            restore_id = restore_id_for(key, generation)
            record = self.records.get(restore_id)
            if record is None:
                return restore_id, None
            if not record.ended and now - record.requested_at < window:
                return restore_id, record
        raise IntakeError(500, "TOO_MANY_ATTEMPTS", "this request key was used too many times", refusal=False)


def new_record(
    restore_id: str,
    request: RestoreRequest,
    requested_by: RequestedBy,
    *,
    snapshot_id: str,
    requested_at: datetime,
    break_glass: BreakGlass | None,
    lock_id: str | None,
    run: RunLink | None = None,
) -> RestoreRecord:
    """The restore record as first written: ACCEPTED, its hand-off pending. The fields that only exist later
    (restoreJobId, executionArn, finalStatus, ...) are left empty: the item leaves them out, and the later
    writes are conditional on ``attribute_not_exists(finalStatus)``."""
    return RestoreRecord(
        id=restore_id,
        restore_id=restore_id,
        source=request.source,
        requested_at=requested_at,
        requested_by=requested_by,
        reason=request.reason,
        group_id=request.group_id,
        cluster_name=request.cluster_name,
        snapshot_id=snapshot_id,
        target_deployment_item_name=request.target_deployment_item_name,
        target_project_id=request.target_project_id,
        break_glass=break_glass,
        lock_id=lock_id,
        run=run,
        status="ACCEPTED",
        timeline=[TimelineEntry(status="ACCEPTED", at=requested_at)],
        handoff="PENDING",
    )


def hand_over(
    record: RestoreRecord,
    *,
    executions: Executions,
    records: ExecutionMarks,
    deadline_seconds: int,
    metrics: Metrics,
) -> str | None:
    """Start the restore's execution (named after it, so a repeat finds the first); its ARN, or None when
    Step Functions could not be reached: the record stays ``handoff: PENDING`` and the reconciler starts it
    within minutes. Either way the restore is accepted and will end with a record and a message."""
    if record.execution_arn:
        return record.execution_arn
    try:
        execution_arn = executions.start_execution(
            record.restore_id, execution_input_for(record, deadline_seconds)
        )
    except Exception as exc:  # left to the reconciler: the restore is recorded, nothing was sent to Atlas
        logger.error(
            "could not start the execution of restore %s; the reconciler will: %s",
            record.restore_id,
            type(exc).__name__,
            extra={"restoreId": record.restore_id},
        )
        metrics.count("HandOffDeferred")
        return None
    try:
        records.set_execution(record.restore_id, execution_arn)
    except Exception as exc:  # the execution runs; the reconciler clears the marker
        logger.error("could not note the execution on the record: %s", type(exc).__name__)
    logger.info(
        "restore %s handed over to %s",
        record.restore_id,
        execution_arn,
        extra={"restoreId": record.restore_id},
    )
    return execution_arn


def execution_input_for(record: RestoreRecord, deadline_seconds: int) -> ExecutionInput:
    """The execution input of a recorded restore (the intake's and the reconciler's start)."""
    return ExecutionInput(
        restore_id=record.restore_id,
        group_id=record.group_id,
        cluster_name=record.cluster_name,
        snapshot_id=record.snapshot_id,
        restore_job_id=record.restore_job_id,
        target_deployment_item_name=record.target_deployment_item_name,
        target_project_id=record.target_project_id,
        requested_at=record.requested_at,
        deadline=record.requested_at + timedelta(seconds=deadline_seconds),
        lock_id=record.lock_id,
    )


def _short(text: str | None, limit: int = 300) -> str:
    text = text or ""
    return text if len(text) <= limit else text[: limit - 3] + "..."
