"""Wires the adapters into the domain: the one place that knows which adapter serves which port.

Every adapter is built on first use and kept for the container's life (boto3 clients, the Atlas client
with its OAuth token, the DynamoDB persistence layer), so a warm Lambda builds nothing twice and a cold
start builds only what its first event needs. ``forget_adapters()`` forgets them all (tests, local mode).

Outside failures that happen while wiring leave as the domain's errors: a missing setting or a malformed
secret is ``ServiceMisconfigured``, a throttled Secrets Manager ``DependencyUnavailable``.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from functools import cache
from typing import TYPE_CHECKING, Any

from flexrestore import clock
from flexrestore.domain.errors import DependencyUnavailable, ServiceMisconfigured
from flexrestore.settings import Settings, SettingsError, get_settings

if TYPE_CHECKING:
    from flexrestore.atlas.client import AtlasClient
    from flexrestore.aws.locks import TargetLocks
    from flexrestore.aws.metrics import CloudWatchMetrics
    from flexrestore.aws.notifier import Notifier
    from flexrestore.aws.plans import PlanTable
    from flexrestore.aws.runs import RunTable
    from flexrestore.aws.schedules import PlanSchedules
    from flexrestore.aws.store import RestoreStore
    from flexrestore.aws.validators import LambdaValidators
    from flexrestore.contracts import RestoreRecord
    from flexrestore.domain.guards import GuardConfig
    from flexrestore.domain.hand_off import CreateStep
    from flexrestore.domain.intake import Intake, IntakeConfig
    from flexrestore.domain.plan_catalog import PlanCatalog
    from flexrestore.domain.poll import Poller
    from flexrestore.domain.reconcile import Reconciler
    from flexrestore.domain.request import RestoreRequest
    from flexrestore.domain.run_steps import RunSteps
    from flexrestore.domain.run_targets import TargetLife
    from flexrestore.domain.sweeper import Sweeper

# What an invocation keeps for itself after its last Atlas call: answering, writing the outcome, logging.
INVOCATION_MARGIN_SECONDS = 3.0
# Secrets Manager answers after which a retry later can work (anything else is a configuration problem).
_TRANSIENT_SECRET_FAILURES = ("Throttling", "InternalServiceError", "Timeout", "EndpointConnectionError")


def settings() -> Settings:
    try:
        return get_settings()
    except SettingsError as exc:
        raise ServiceMisconfigured(str(exc)) from None


def require(name: str) -> str:
    try:
        return settings().require(name)
    except SettingsError as exc:
        raise ServiceMisconfigured(str(exc)) from None


@cache
def _store(table: str) -> RestoreStore:
    from flexrestore.aws.store import RestoreStore

    return RestoreStore(table)


def store() -> RestoreStore:
    return _store(require("restores_table"))


@cache
def _locks(table: str) -> TargetLocks:
    from flexrestore.aws.locks import TargetLocks

    return TargetLocks(table)


def locks() -> TargetLocks:
    return _locks(require("restores_table"))


@cache
def metrics() -> CloudWatchMetrics:
    from flexrestore.aws.metrics import CloudWatchMetrics

    return CloudWatchMetrics()


@cache
def _notifier(topic_arn: str, bus: str) -> Notifier:
    from flexrestore.aws.notifier import Notifier

    return Notifier(topic_arn, bus)


def notifier() -> Notifier:
    return _notifier(require("notification_topic_arn"), settings().event_bus_name)


def optional_notifier() -> Notifier | None:
    """The notifier where this function has a topic (the intake tells endings and refusals if it does)."""
    return notifier() if settings().notification_topic_arn else None


def atlas() -> AtlasClient:
    """The container's Atlas client; a missing or malformed secret is named, never shown."""
    from flexrestore.atlas.factory import get_atlas_client
    from flexrestore.aws.secrets import SecretUnavailable

    try:
        return get_atlas_client()
    except SecretUnavailable as exc:
        if any(word in str(exc) for word in _TRANSIENT_SECRET_FAILURES):
            raise DependencyUnavailable("SECRET_UNAVAILABLE", f"{exc}; retry later", retry_after=30) from None
        raise ServiceMisconfigured(str(exc)) from None
    except SettingsError as exc:
        raise ServiceMisconfigured(str(exc)) from None


def guard_config() -> GuardConfig:
    from flexrestore.domain.guards import GuardConfig

    try:
        return GuardConfig.from_settings(settings())
    except SettingsError as exc:
        raise ServiceMisconfigured(str(exc)) from None


def checked_recovery_plans() -> dict[str, RestoreRequest]:
    """RECOVERY_PLANS, validated with the request model and the static target guards."""
    return _recovery_plans(settings())


@cache
def _recovery_plans(current: Settings) -> dict[str, RestoreRequest]:
    from flexrestore.domain.guards import GuardConfig, validate_recovery_plans
    from flexrestore.domain.recovery import RecoveryPlanError, load_recovery_plans

    plans = load_recovery_plans(current.recovery_plans)
    problems = validate_recovery_plans(plans, GuardConfig.from_settings(current))
    if problems:
        raise RecoveryPlanError("RECOVERY_PLANS: " + "; ".join(problems))
    return plans


def intake(context: Any, *, expires_after: int | None = None) -> Intake:
    """The intake flow over the real adapters."""
    from flexrestore.aws.executions import Executions
    from flexrestore.aws.idempotency import exactly_once
    from flexrestore.domain.intake import Intake

    current = settings()
    return Intake(
        atlas=atlas,
        records=store(),
        locks=locks(),
        executions=Executions(require("state_machine_arn")),
        exactly_once=exactly_once(
            require("idempotency_table"), context, expires_after or current.idempotency_ttl_seconds
        ),
        metrics=metrics(),
        config=intake_config(),
        now=clock.utcnow,
    )


def atlas_budget(context: Any, *, cap_seconds: float | None = None) -> AbstractContextManager[None]:
    """For the block, every Atlas call draws its waits and timeouts from what is left of this invocation
    (the Lambda context's remaining time less a margin, and never more than ``cap_seconds``)."""
    from flexrestore.atlas.client import invocation_budget

    remaining = getattr(context, "get_remaining_time_in_millis", None)
    seconds = remaining() / 1000 - INVOCATION_MARGIN_SECONDS if callable(remaining) else None
    if cap_seconds is not None:
        seconds = cap_seconds if seconds is None else min(seconds, cap_seconds)
    return invocation_budget(None if seconds is None else clock.current().now() + seconds)


def seconds_left(context: Any, *, default: float = 60.0) -> float:
    """What is left of this invocation, less the margin it keeps for itself (``default`` without a
    Lambda context)."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(remaining):
        return default
    return max(0.0, float(remaining()) / 1000 - INVOCATION_MARGIN_SECONDS)


def create_step() -> CreateStep:
    from flexrestore.domain.hand_off import CreateStep

    return CreateStep(atlas=atlas, records=store(), now=clock.utcnow)


def reconciler() -> Reconciler:
    from flexrestore.aws.executions import Executions
    from flexrestore.domain.reconcile import Reconciler

    return Reconciler(
        records=store(),
        locks=locks(),
        executions=Executions(require("state_machine_arn")),
        notifier=optional_notifier(),
        metrics=metrics(),
        poll_deadline_seconds=settings().poll_deadline_seconds,
        now=clock.utcnow,
        tell_run=tell_run if settings().runs_table else None,
    )


# --- verification plans and runs -------------------------------------------------------------------


@cache
def _plan_table(table: str) -> PlanTable:
    from flexrestore.aws.plans import PlanTable

    return PlanTable(table)


@cache
def _run_table(table: str) -> RunTable:
    from flexrestore.aws.runs import RunTable

    return RunTable(table)


def run_table() -> RunTable:
    return _run_table(require("runs_table"))


def schedules() -> PlanSchedules:
    from flexrestore.aws.schedules import PlanSchedules

    current = settings()
    return PlanSchedules(
        require("schedule_group"),
        current.run_state_machine_arn,
        current.scheduler_role_arn,
        current.schedule_dead_letter_arn,
    )


def plan_catalog() -> PlanCatalog:
    from flexrestore.aws.executions import RunStarts
    from flexrestore.domain.plan_catalog import PlanCatalog

    return PlanCatalog(
        plans=_plan_table(require("plans_table")),
        schedules=schedules,
        runs=lambda: RunStarts(require("run_state_machine_arn")),
        guards=guard_config,
        now=clock.utcnow,
    )


def _not_this_step() -> Any:
    raise ServiceMisconfigured("this step of a verification run does not use that adapter")


def _run_steps(**adapters: Any) -> RunSteps:
    """A run's steps with the adapters one step uses (the others refuse to be built: each function's role
    allows what its own step does, no more)."""
    from flexrestore.domain.run_steps import RunSteps

    wiring: dict[str, Any] = {
        "atlas": _not_this_step,
        "plans": None,
        "runs": run_table(),
        "restores": None,
        "intake": _not_this_step,
        "callbacks": _not_this_step,
        "notifier": _not_this_step,
        "metrics": metrics(),
        "schedules": _not_this_step,
        "poll_deadline_seconds": settings().poll_deadline_seconds,
        "now": clock.utcnow,
    }
    wiring.update(adapters)
    return RunSteps(**wiring)


def run_begin_steps() -> RunSteps:
    return _run_steps(atlas=atlas, plans=_plan_table(require("plans_table")), schedules=schedules)


def run_source_steps(context: Any) -> RunSteps:
    from flexrestore.aws.executions import TaskCallbacks

    return _run_steps(
        atlas=atlas,
        restores=store(),
        intake=lambda: intake(context),
        callbacks=TaskCallbacks,
        targets=target_life,
        guards=guard_config,
    )


def run_validate_steps() -> RunSteps:
    return _run_steps(atlas=atlas, restores=store(), validators=_validators, guards=guard_config)


def run_cleanup_steps() -> RunSteps:
    return _run_steps(atlas=atlas, targets=target_life, guards=guard_config)


def run_finish_steps() -> RunSteps:
    return _run_steps(restores=store(), notifier=notifier)


def target_life() -> TargetLife:
    """Ephemeral targets: create, wait for IDLE, delete under the deletion guard (domain/run_targets.py)."""
    from flexrestore.domain.run_targets import TargetLife

    return TargetLife(atlas=atlas, runs=run_table(), guards=guard_config, metrics=metrics(), now=clock.utcnow)


@cache
def _validators() -> LambdaValidators:
    from flexrestore.aws.validators import LambdaValidators

    return LambdaValidators()


def sweeper() -> Sweeper:
    """The sweeper: deletes the ephemeral clusters of ended runs (domain/sweeper.py), and finishes runs
    whose execution ended before they did."""
    from flexrestore.aws.executions import RunStatus
    from flexrestore.domain.sweeper import Sweeper

    finishing = _run_steps(restores=store(), notifier=notifier)
    return Sweeper(
        runs=run_table(),
        targets=target_life,
        restores=store(),
        executions=lambda: RunStatus(require("run_state_machine_arn")),
        finish_run=lambda run_id, plan, error: finishing.finish(run_id, plan, aborted=error),
        now=clock.utcnow,
    )


def tell_run(record: RestoreRecord) -> bool:
    """Tell the verification run waiting for ``record``'s restore that it has ended."""
    from flexrestore.aws.executions import TaskCallbacks
    from flexrestore.domain.run_steps import tell_run as tell

    return tell(record, runs=run_table(), callbacks=TaskCallbacks())


def intake_config() -> IntakeConfig:
    from flexrestore.domain.intake import IntakeConfig

    current = settings()
    return IntakeConfig(
        guards=guard_config(),
        poll_deadline_seconds=current.poll_deadline_seconds,
        idempotency_ttl_seconds=current.idempotency_ttl_seconds,
    )


def poller() -> Poller:
    from flexrestore.domain.poll import Poller

    return Poller(
        atlas=atlas,
        records=store(),
        outage_tolerance_seconds=settings().atlas_outage_tolerance_seconds,
        now=clock.utcnow,
    )


def forget_adapters() -> None:
    """Forget every adapter and cached setting (what a fresh container would not have)."""
    from flexrestore.atlas import factory
    from flexrestore.atlas.auth import reset_token_cache
    from flexrestore.aws import clients, secrets

    get_settings.cache_clear()
    for cached in (_store, _locks, metrics, _notifier, _recovery_plans, _plan_table, _run_table, _validators):
        cached.cache_clear()
    clients.reset()
    secrets.reset()
    factory.reset()
    reset_token_cache()
