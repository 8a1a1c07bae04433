"""The saved verification plans, their schedules and starting a run: what ``/plans`` does. Plain Python
over the ports (``PlanStore``, ``Schedules``, ``RunExecutions``).

A plan's schedule lives and dies with the plan:

- saving a plan writes it first, then creates, updates or deletes its schedule; a schedule call that fails
  fails the request (503) and leaves the plan saved, and a retry (or the reconciler's
  :meth:`PlanCatalog.sync_schedules`, every few minutes) brings the schedule in line;
- deleting a plan deletes its schedule first, then the plan: a failure in between leaves a plan without
  its schedule (the retry finishes), never a schedule without its plan;
- a run started by a schedule whose plan is gone, or no longer scheduled, ends at once and deletes that
  schedule (``domain/run_steps.py``). So no schedule runs a plan that no longer exists.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flexrestore.clock import isoformat
from flexrestore.contracts import RequestedBy
from flexrestore.contracts.plan import Plan, PlanEntry
from flexrestore.domain.errors import PlanNotFound
from flexrestore.domain.guards import GuardConfig
from flexrestore.domain.plans import validate_plan
from flexrestore.domain.ports import PlanStore, RunExecutions, Schedules

logger = logging.getLogger("flexrestore.plans")

_RUN_ID_NAMESPACE = uuid.UUID("0d7c5a9e-41b3-4f6e-8c2a-5e9b1f3d7a60")


@dataclass(frozen=True)
class Saved:
    entry: PlanEntry
    created: bool
    changes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RunStarted:
    run_id: str
    plan: str
    execution_arn: str


def run_id_for(key: str) -> str:
    """The run id of an idempotency key: the same POST retried names the same run."""
    return uuid.uuid5(_RUN_ID_NAMESPACE, key).hex


def run_input(run_id: str | None, plan: str, requested_by: RequestedBy) -> dict[str, Any]:
    """What a run's execution starts with (a schedule sends the same without ``runId``: the run is then
    named after its execution)."""
    document: dict[str, Any] = {"plan": plan, "requestedBy": requested_by.to_json()}
    if run_id is not None:
        document["runId"] = run_id
    return document


def changes_between(before: dict[str, Any] | None, after: dict[str, Any]) -> list[str]:
    """The top-level fields of a plan that a save changes (``sources`` counted), for the answer and the
    ``flexrestore plan apply`` output."""
    if before is None:
        return ["created"]
    changed: list[str] = []
    for name in sorted(set(before) | set(after)):
        if before.get(name) == after.get(name):
            continue
        if name == "sources":
            old, new = before.get(name) or [], after.get(name) or []
            added = sum(1 for s in new if s not in old)
            removed = sum(1 for s in old if s not in new)
            changed.append(f"sources (+{added} -{removed})")
        else:
            changed.append(name)
    return changed


@dataclass
class PlanCatalog:
    plans: PlanStore
    schedules: Callable[[], Schedules]
    runs: Callable[[], RunExecutions]
    guards: Callable[[], GuardConfig]
    now: Callable[[], datetime]

    def save(self, name: str, document: Any, *, caller: str | None) -> Saved:
        """Create or replace the plan ``name`` (validated: ``InvalidRequest`` names each bad field, a target
        the guards refuse included), then bring its schedule in line."""
        plan = validate_plan(document, self.guards(), name=name)
        stored = plan.to_stored()
        existing = self.plans.get_plan(name)
        now = self.now()
        if existing is not None and existing.plan == stored:
            self._align_schedule(plan)  # unchanged, but a schedule call may have failed last time
            return Saved(existing, created=False, changes=[])
        entry = PlanEntry(
            name=name,
            plan=stored,
            revision=existing.revision + 1 if existing else 1,
            created_at=existing.created_at if existing else now,
            updated_at=now,
            updated_by=caller,
            schedule_name=name if plan.schedule is not None else None,
        )
        self.plans.put_plan(entry, replaces=existing.revision if existing else None)
        self._align_schedule(plan)
        logger.info(
            "plan saved",
            extra={"plan": name, "revision": entry.revision, "scheduled": plan.schedule is not None},
        )
        return Saved(
            entry,
            created=existing is None,
            changes=changes_between(existing.plan if existing else None, stored),
        )

    def get(self, name: str) -> PlanEntry:
        entry = self.plans.get_plan(name)
        if entry is None:
            raise PlanNotFound(name)
        return entry

    def all(self) -> list[PlanEntry]:
        return sorted(self.plans.list_plans(), key=lambda e: e.name)

    def delete(self, name: str) -> PlanEntry:
        """Delete the plan and its schedule (the schedule first: never a schedule without its plan)."""
        entry = self.get(name)
        self.schedules().delete_schedule(name)
        self.plans.delete_plan(name)
        logger.info("plan deleted", extra={"plan": name})
        return entry

    def start_run(self, name: str, requested_by: RequestedBy, *, key: str | None) -> RunStarted:
        """Start a run of the plan now. With an idempotency key the same request starts the same run."""
        self.get(name)
        run_id = run_id_for(key) if key else uuid.uuid4().hex
        arn = self.runs().start_run(run_id, run_input(run_id, name, requested_by))
        logger.info("run started", extra={"plan": name, "runId": run_id})
        return RunStarted(run_id=run_id, plan=name, execution_arn=arn)

    def sync_schedules(self) -> dict[str, list[str]]:
        """Every scheduled plan has its schedule, and no schedule is left without a scheduled plan (the
        reconciler calls this: a failed schedule call is repaired within minutes)."""
        wanted = {e.name: Plan.model_validate(e.plan) for e in self.plans.list_plans() if e.schedule_name}
        present = set(self.schedules().scheduled_plans())
        removed = sorted(present - set(wanted))
        for name in removed:
            self.schedules().delete_schedule(name)
            logger.warning("schedule without a scheduled plan deleted", extra={"plan": name})
        created = sorted(set(wanted) - present)
        for name in created:
            self._align_schedule(wanted[name])
            logger.warning("missing schedule of a plan created", extra={"plan": name})
        return {"schedulesDeleted": removed, "schedulesCreated": created}

    def _align_schedule(self, plan: Plan) -> None:
        if plan.schedule is None:
            self.schedules().delete_schedule(plan.name)
        else:
            self.schedules().put_schedule(plan.name, plan.schedule.expression, plan.schedule.timezone)


def plan_answer(entry: PlanEntry) -> dict[str, Any]:
    """``GET /plans/{name}``: the saved document with its bookkeeping."""
    return {
        "name": entry.name,
        "revision": entry.revision,
        "createdAt": isoformat(entry.created_at),
        "updatedAt": isoformat(entry.updated_at),
        "updatedBy": entry.updated_by,
        "scheduleName": entry.schedule_name,
        "plan": entry.plan,
    }
