"""Saving, replacing, deleting and running plans, and keeping each plan's schedule in line with it
(domain/plan_catalog.py), on the fakes: no schedule is ever left without its plan."""

from __future__ import annotations

from typing import Any

import pytest

from flexrestore.contracts import RequestedBy
from flexrestore.domain.errors import DependencyUnavailable, PlanChanged, PlanNotFound
from flexrestore.domain.guards import GuardConfig, ProtectedTarget
from flexrestore.domain.plan_catalog import run_id_for
from flexrestore.domain.request import InvalidRequest
from tests.fakes import GROUP, World

CALLER = "arn:aws:iam::123456789012:user/operator"


def plan(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "name": "nightly-orders",
        "schedule": {"expression": "cron(0 2 * * ? *)", "timezone": "Europe/Berlin"},
        "sources": [
            {"groupId": GROUP, "clusterName": "orders-prod", "targetDeploymentItemName": "orders-verify"}
        ],
    }
    document.update(changes)
    return {k: v for k, v in document.items() if v is not None}


def test_a_new_plan_is_saved_with_its_schedule() -> None:
    world = World()
    saved = world.catalog.save("nightly-orders", plan(), caller=CALLER)
    assert (saved.created, saved.changes, saved.entry.revision) == (True, ["created"], 1)
    assert saved.entry.updated_by == CALLER and saved.entry.schedule_name == "nightly-orders"
    assert world.schedules.schedules == {"nightly-orders": ("cron(0 2 * * ? *)", "Europe/Berlin")}
    # Defaults are filled in: what is saved is what a run uses.
    assert saved.entry.plan["maxConcurrency"] == 5 and saved.entry.plan["notify"] == "FAILURES"


def test_saving_the_same_plan_again_changes_nothing() -> None:
    world = World()
    world.catalog.save("nightly-orders", plan(), caller=CALLER)
    again = world.catalog.save("nightly-orders", plan(), caller="someone-else")
    assert (again.created, again.changes, again.entry.revision, again.entry.updated_by) == (
        False,
        [],
        1,
        CALLER,
    )


def test_a_change_is_a_new_revision_naming_what_changed_and_moves_the_schedule() -> None:
    world = World()
    world.catalog.save("nightly-orders", plan(), caller=CALLER)
    changed = world.catalog.save(
        "nightly-orders", plan(schedule={"expression": "rate(12 hours)"}, maxConcurrency=2), caller=CALLER
    )
    assert (changed.entry.revision, changed.changes) == (2, ["maxConcurrency", "schedule"])
    assert world.schedules.schedules == {"nightly-orders": ("rate(12 hours)", "UTC")}

    unscheduled = world.catalog.save("nightly-orders", plan(schedule=None, maxConcurrency=2), caller=CALLER)
    assert unscheduled.entry.schedule_name is None and world.schedules.schedules == {}


def test_a_bad_plan_is_refused_before_anything_is_written() -> None:
    world = World()
    with pytest.raises(InvalidRequest) as refused:
        world.catalog.save("other-name", plan(maxConcurrency=0), caller=CALLER)
    assert [e["field"] for e in refused.value.errors] == ["maxConcurrency"]
    with pytest.raises(InvalidRequest) as misnamed:
        world.catalog.save("other-name", plan(), caller=CALLER)
    assert [e["field"] for e in misnamed.value.errors] == ["name"]
    assert world.plans.plans == {} and world.schedules.schedules == {}


def test_a_protected_target_refuses_the_plan() -> None:
    world = World(guards=GuardConfig(protected_targets=(ProtectedTarget("orders-verify", "orders-verify"),)))
    with pytest.raises(InvalidRequest) as refused:
        world.catalog.save("nightly-orders", plan(), caller=CALLER)
    assert [e["field"] for e in refused.value.errors] == ["sources[0].targetDeploymentItemName"]


def test_a_failed_schedule_call_fails_the_save_and_the_reconciler_repairs_it() -> None:
    world = World()
    world.schedules.faults.once("put_schedule", DependencyUnavailable("SCHEDULER_UNAVAILABLE", "throttled"))
    with pytest.raises(DependencyUnavailable):
        world.catalog.save("nightly-orders", plan(), caller=CALLER)
    assert "nightly-orders" in world.plans.plans and world.schedules.schedules == {}  # saved, not scheduled

    assert world.catalog.sync_schedules() == {"schedulesDeleted": [], "schedulesCreated": ["nightly-orders"]}
    assert "nightly-orders" in world.schedules.schedules
    # A retry of the same PUT would have done it too (the plan unchanged, its schedule aligned).
    world.schedules.schedules.clear()
    world.catalog.save("nightly-orders", plan(), caller=CALLER)
    assert "nightly-orders" in world.schedules.schedules


def test_deleting_deletes_the_schedule_first_so_no_schedule_outlives_its_plan() -> None:
    world = World()
    world.catalog.save("nightly-orders", plan(), caller=CALLER)
    world.schedules.faults.once(
        "delete_schedule", DependencyUnavailable("SCHEDULER_UNAVAILABLE", "throttled")
    )
    with pytest.raises(DependencyUnavailable):
        world.catalog.delete("nightly-orders")
    assert "nightly-orders" in world.plans.plans  # the plan stays while its schedule does

    world.plans.faults.once("delete_plan", DependencyUnavailable("STORE_UNAVAILABLE", "throttled"))
    with pytest.raises(DependencyUnavailable):
        world.catalog.delete("nightly-orders")
    assert world.schedules.schedules == {}  # a plan without a schedule is harmless; the retry deletes it
    world.catalog.delete("nightly-orders")
    assert world.plans.plans == {}
    with pytest.raises(PlanNotFound):
        world.catalog.delete("nightly-orders")


def test_the_reconciler_removes_a_schedule_whose_plan_is_gone() -> None:
    world = World()
    world.schedules.schedules["gone"] = ("rate(1 day)", "UTC")
    assert world.catalog.sync_schedules() == {"schedulesDeleted": ["gone"], "schedulesCreated": []}
    assert world.schedules.schedules == {}


def test_two_saves_racing_on_one_plan_do_not_undo_each_other() -> None:
    world = World()
    world.catalog.save("nightly-orders", plan(), caller=CALLER)
    real_get = world.plans.get_plan
    stale = real_get("nightly-orders")
    world.catalog.save("nightly-orders", plan(maxConcurrency=3), caller=CALLER)  # the other writer, first
    world.plans.get_plan = lambda name: stale  # type: ignore[method-assign]
    with pytest.raises(PlanChanged):
        world.catalog.save("nightly-orders", plan(maxConcurrency=4), caller=CALLER)
    assert real_get("nightly-orders").plan["maxConcurrency"] == 3  # type: ignore[union-attr]


def test_a_run_started_with_an_idempotency_key_is_the_same_run_when_retried() -> None:
    world = World()
    world.catalog.save("nightly-orders", plan(), caller=CALLER)
    who = RequestedBy(trigger="api", caller=CALLER)
    first = world.catalog.start_run("nightly-orders", who, key="k")
    again = world.catalog.start_run("nightly-orders", who, key="k")
    other = world.catalog.start_run("nightly-orders", who, key=None)
    assert first.run_id == again.run_id == run_id_for("k") != other.run_id
    assert world.run_starts.started[first.run_id] == {
        "plan": "nightly-orders",
        "requestedBy": who.to_json(),
        "runId": first.run_id,
    }
    with pytest.raises(PlanNotFound):
        world.catalog.start_run("no-such-plan", who, key=None)
