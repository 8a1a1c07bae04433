"""Verification runs through the executed state machines: plans saved and run through the HTTP API (the
real intake handler), each run the real run state machine (statemachine/run.asl.json), each of its
restores the real restore state machine, every Lambda the real handler, Atlas the simulator's FLEET."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from flexrestore.clock import VirtualClock, parse_iso
from flexrestore.local.harness import OfflineStack
from flexrestore.simulator import FLEET
from tests.api_events import answer, api_event
from tests.integration.intake_support import emf

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "plans"
EVENTS = Path(__file__).resolve().parents[2] / "events"
TAGGED = {
    "groupId": FLEET.group_id,
    "tag": {"key": "verify", "value": "nightly"},
    "targetDeploymentItemName": "{clusterName}-verify",
}


@pytest.fixture
def stack() -> Iterator[OfflineStack]:
    with OfflineStack(scenario="ok", clock=VirtualClock()) as s:
        yield s


def fleet_plan(**changes: Any) -> dict[str, Any]:
    plan: dict[str, Any] = json.loads((EXAMPLES / "nightly-fleet.json").read_text())
    plan.pop("schedule")
    plan.update(changes)
    return {k: v for k, v in plan.items() if v is not None}


def explicit(cluster: str) -> dict[str, str]:
    return {
        "groupId": FLEET.group_id,
        "clusterName": cluster,
        "targetDeploymentItemName": FLEET.target_of(cluster),
    }


def put_plan(stack: OfflineStack, plan: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    status, body, _ = answer(stack.invoke("intake", api_event("PUT", f"/plans/{plan['name']}", plan)))
    return status, body


def run(stack: OfflineStack, plan: str, *, key: str | None = None) -> dict[str, Any]:
    """POST /plans/{plan}/runs, then the run to its end; the run record as GET /runs/{runId} answers it."""
    headers = {"Idempotency-Key": key} if key else None
    status, started, _ = answer(
        stack.invoke("intake", api_event("POST", f"/plans/{plan}/runs", headers=headers))
    )
    assert status == 202, started
    assert stack.wait_for_execution(started["executionArn"], timeout_s=300)["status"] == "SUCCEEDED"
    status, record, _ = answer(stack.invoke("intake", api_event("GET", f"/runs/{started['runId']}")))
    assert status == 200
    return record


def by_cluster(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["clusterName"]: s for s in record["sources"]}


def most_in_flight(stack: OfflineStack) -> int:
    """The most restore jobs Atlas had running at once, from the simulator's own log: each job from its
    create request until Atlas's restoreFinishedDate."""
    creates = [c for c in stack.simulator.calls if c.operation == "createFlexRestoreJob" and c.status == 200]
    finished = {
        job["targetDeploymentItemName"]: parse_iso(job["restoreFinishedDate"]).timestamp()
        for job in stack.simulator.jobs.values()
        if job.get("restoreFinishedDate")
    }
    moments: list[tuple[float, int]] = []
    for call in creates:
        moments.append((call.at, 1))
        moments.append((finished.get(call.body["targetDeploymentItemName"], float("inf")), -1))
    running = peak = 0
    for _, change in sorted(moments, key=lambda m: (m[0], m[1])):  # an end before a start at one moment
        running += change
        peak = max(peak, running)
    return peak


def test_a_fleet_plan_under_atlas_rate_limits_restores_every_source_within_its_concurrency(
    stack: OfflineStack,
) -> None:
    stack.simulator.scenario = "rate-limited"  # a token bucket per endpoint, with Retry-After
    plan = fleet_plan(sources=[TAGGED, explicit("fleet-23"), explicit("fleet-24")], maxConcurrency=4)
    assert put_plan(stack, plan)[0] == 201

    record = run(stack, plan["name"])

    sources = by_cluster(record)
    assert sorted(sources) == list(FLEET.sources)  # 22 tagged + 2 explicit: one entry each
    summary = record["summary"]
    assert (summary["total"], summary["completed"], summary["refused"]) == (24, 22, 2)
    assert sources["fleet-05"]["finalStatus"] == "REFUSED"
    assert sources["fleet-05"]["error"]["code"] == "PROTECTED_TAG"
    assert sources["fleet-13"]["error"]["code"] == "NO_SNAPSHOT_IN_WINDOW"
    assert summary["objectiveMissed"] == 1 and sources["fleet-08"]["objectiveMet"] is False
    assert record["finalStatus"] == "PARTIAL"
    # One Atlas job per restored source, never more than maxConcurrency running at Atlas at once, and the
    # rate limit slowed the run down without failing any source.
    assert sorted(j["targetDeploymentItemName"] for j in stack.simulator.jobs.values()) == sorted(
        FLEET.target_of(c) for c, s in sources.items() if s["finalStatus"] == "COMPLETED"
    )
    assert any(c.status == 429 for c in stack.simulator.calls)
    assert most_in_flight(stack) <= 4
    assert stack.simulator.violations == []


def test_a_failing_a_refused_and_a_timed_out_source_do_not_stop_the_others(stack: OfflineStack) -> None:
    stack.simulator.set_restore_fate(FLEET.group_id, "fleet-02", "FAILED")
    stack.simulator.set_restore_fate(FLEET.group_id, "fleet-03", "NEVER")
    clusters = ["fleet-01", "fleet-02", "fleet-03", "fleet-04", "fleet-05", "fleet-06"]
    plan = fleet_plan(name="mixed", sources=[explicit(c) for c in clusters], snapshot={"choice": "LATEST"})
    assert put_plan(stack, plan)[0] == 201

    record = run(stack, "mixed")

    statuses = {c: s["finalStatus"] for c, s in by_cluster(record).items()}
    assert statuses == {
        "fleet-01": "COMPLETED",
        "fleet-02": "FAILED",
        "fleet-03": "TIMED_OUT",
        "fleet-04": "COMPLETED",
        "fleet-05": "REFUSED",  # its target carries the protected tag
        "fleet-06": "COMPLETED",
    }
    assert record["finalStatus"] == "PARTIAL"
    summary = record["summary"]
    assert (summary["completed"], summary["failed"], summary["timedOut"], summary["refused"]) == (3, 1, 1, 1)
    # Each restore that ran has its own final record, and its target lock is free again.
    for source in record["sources"]:
        if source["restoreId"]:
            restore = stack.record(source["restoreId"])
            assert restore is not None and restore["finalStatus"] == source["finalStatus"]
            assert restore["run"]["runId"] == record["runId"]


@pytest.mark.parametrize("failures", [1, 99], ids=["once", "every-attempt"])
def test_a_source_step_that_fails_after_its_restore_started_still_waits_and_validates_it(
    stack: OfflineStack, monkeypatch: pytest.MonkeyPatch, failures: int
) -> None:
    """The RestoreSource step dies after it started the restore (a crash, a bug, a lost answer). Once, its
    retry picks the started restore up again; on every attempt, the Validate step waits for the restore's
    end instead of recording SKIPPED for a restore that then completes. Either way: one restore job, the
    source COMPLETED and validated, the run SUCCEEDED."""
    from flexrestore.domain.run_steps import RunSteps

    real = RunSteps.start_source
    crashes: list[int] = []

    def start_then_crash(self: RunSteps, run_id: str, index: int, *args: Any, **kwargs: Any) -> str:
        happened = real(self, run_id, index, *args, **kwargs)
        if index == 0 and len(crashes) < failures:
            crashes.append(index)
            raise RuntimeError("the step died after it started the restore")
        return happened

    monkeypatch.setattr(RunSteps, "start_source", start_then_crash)
    plan = fleet_plan(name="crashing", sources=[explicit("fleet-01"), explicit("fleet-02")])
    assert put_plan(stack, plan)[0] == 201

    record = run(stack, "crashing")

    assert len(crashes) == (1 if failures == 1 else 4)  # the first attempt and 3 retries of States.TaskFailed
    assert len(stack.simulator.jobs) == 2
    assert record["finalStatus"] == "SUCCEEDED", record
    for source in record["sources"]:
        assert source["finalStatus"] == "COMPLETED"
        assert source["validation"]["status"] == "SUCCEEDED", source["validation"]
    assert record["summary"]["verified"] == 2 and record["summary"]["validationFailed"] == 0


def test_a_run_started_twice_with_one_id_creates_no_second_restore(stack: OfflineStack) -> None:
    plan = fleet_plan(name="twice", sources=[explicit("fleet-01"), explicit("fleet-02")])
    assert put_plan(stack, plan)[0] == 201

    first = run(stack, "twice", key="nightly-2026-11-01")
    again = run(stack, "twice", key="nightly-2026-11-01")  # the same POST retried: the same run id

    assert again["runId"] == first["runId"]
    assert [s["restoreId"] for s in again["sources"]] == [s["restoreId"] for s in first["sources"]]
    assert len(stack.simulator.jobs) == 2
    # The same run started again in another execution (as a redrive would): its sources find their
    # restores (idempotency key run id + source index) and nothing is created twice.
    arn = stack.start_run("twice", run_id=first["runId"], execution_name="redrive-of-" + first["runId"])
    assert stack.wait_for_execution(arn)["status"] == "SUCCEEDED"
    assert len(stack.simulator.jobs) == 2
    record = stack.run_record(first["runId"])
    assert record is not None and [s["restoreId"] for s in record["sources"]] == [
        s["restoreId"] for s in first["sources"]
    ]


def test_random_within_window_picks_completed_snapshots_of_the_window_and_the_same_run_the_same(
    stack: OfflineStack,
) -> None:
    clusters = [f"fleet-{n:02d}" for n in (1, 2, 3, 4, 6, 7)]
    plan = fleet_plan(
        name="random",
        sources=[explicit(c) for c in clusters],
        snapshot={"choice": "RANDOM_WITHIN_WINDOW", "windowDays": 3},
    )
    assert put_plan(stack, plan)[0] == 201
    first = run(stack, "random", key="k1")

    started = parse_iso(first["startedAt"])
    for source in first["sources"]:
        snapshot = source["snapshotId"]
        assert snapshot in FLEET.snapshot_ids(source["clusterName"])
        taken = parse_iso(source["snapshotTakenAt"])
        assert started - timedelta(days=3) <= taken <= started
        listed = stack.atlas_client().list_snapshots(FLEET.group_id, source["clusterName"])
        in_window = [
            s
            for s in listed
            if s.status == "COMPLETED" and s.finish_time and s.finish_time >= started - timedelta(days=3)
        ]
        assert snapshot in {s.id for s in in_window}
        pick = source["snapshotChoice"]
        assert pick["choice"] == "RANDOM_WITHIN_WINDOW" and pick["seed"]
        assert pick["candidates"] == len(in_window) >= 2

    # Another run id picks again (with six sources, some differently); the same run id the same.
    other = run(stack, "random", key="k2")
    assert [s["snapshotId"] for s in other["sources"]] != [s["snapshotId"] for s in first["sources"]]
    replay = run(stack, "random", key="k1")
    assert [s["snapshotId"] for s in replay["sources"]] == [s["snapshotId"] for s in first["sources"]]


def test_a_missed_objective_shows_in_the_record_summary_metric_and_message(
    stack: OfflineStack, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = fleet_plan(
        name="objective", sources=[explicit("fleet-07"), explicit("fleet-08")], notify="SUMMARY"
    )
    assert put_plan(stack, plan)[0] == 201

    record = run(stack, "objective")

    slow = by_cluster(record)["fleet-08"]
    assert slow["finalStatus"] == "COMPLETED" and slow["objectiveMet"] is False
    assert slow["durationSeconds"] > plan["rtoObjectiveSeconds"]
    assert record["summary"]["objectiveMissed"] == 1 and record["finalStatus"] == "PARTIAL"
    (missed,) = [m for m in emf(capsys.readouterr().out, "VerificationObjectivesMissed") if "plan" in m]
    assert (missed["plan"], missed["VerificationObjectivesMissed"]) == ("objective", [1.0])
    # notify SUMMARY: the run's summary is the only message, and it says so at a glance.
    (message,) = stack.notifications()
    assert message["subject"] == "Verification PARTIAL: objective 2/2 restored, 1 over RTO"
    assert "MISSED" in message["message"] and "fleet-08" in message["message"]
    (event,) = [e for e in stack.events() if e["source"] == "flexrestore.runs"]
    assert event["detail-type"] == "Flex Verification Run Completed"
    assert event["detail"]["summary"]["objectiveMissed"] == 1


def test_a_plan_deleted_while_scheduled_leaves_no_schedule_and_its_schedule_cannot_run_it(
    stack: OfflineStack,
) -> None:
    plan = fleet_plan(name="scheduled", sources=[explicit("fleet-01")])
    plan["schedule"] = {"expression": "cron(0 2 * * ? *)", "timezone": "Europe/Berlin"}
    assert put_plan(stack, plan)[0] == 201
    (schedule,) = stack.schedules()
    assert (schedule["name"], schedule["expression"], schedule["timezone"]) == (
        "scheduled",
        "cron(0 2 * * ? *)",
        "Europe/Berlin",
    )
    # What the schedule starts is a run of that plan, like the sample event.
    sample = json.loads(
        (Path(__file__).resolve().parents[2] / "events" / "schedule-plan-run.json").read_text()
    )
    assert set(schedule["input"]) == set(sample) and schedule["input"]["plan"] == "scheduled"
    fired = stack.fire_schedule("scheduled")
    assert stack.wait_for_execution(fired)["status"] == "SUCCEEDED"
    assert len(stack.simulator.jobs) == 1

    # A change that drops the schedule deletes it; putting it back creates it again.
    unscheduled = {k: v for k, v in plan.items() if k != "schedule"}
    status, body = put_plan(stack, unscheduled)
    assert (status, body["changes"], body["scheduleName"]) == (200, ["schedule"], None)
    assert stack.schedules() == []
    assert put_plan(stack, plan)[1]["scheduleName"] == "scheduled" and len(stack.schedules()) == 1

    status, body, _ = answer(stack.invoke("intake", api_event("DELETE", "/plans/scheduled")))
    assert (status, body["scheduleDeleted"]) == (200, "scheduled")
    assert stack.schedules() == []


def test_a_schedule_left_behind_runs_nothing_and_is_removed(stack: OfflineStack) -> None:
    plan = fleet_plan(name="orphan", sources=[explicit("fleet-01")])
    plan["schedule"] = {"expression": "rate(1 day)"}
    assert put_plan(stack, plan)[0] == 201
    # The plan disappears behind the API's back (a restore of the table, a hand-made delete).
    stack._client("dynamodb").delete_item(TableName="flexrestore-plans", Key={"name": {"S": "orphan"}})
    assert len(stack.schedules()) == 1

    fired = stack.fire_schedule("orphan")
    assert stack.wait_for_execution(fired)["status"] == "SUCCEEDED"

    assert stack.simulator.jobs == {} and stack.schedules() == []
    run_id = fired.rsplit(":", 1)[-1]
    record = stack.run_record(run_id)
    assert record is not None
    assert (record["finalStatus"], record["error"]["code"]) == ("FAILED", "PLAN_NOT_FOUND")


def test_the_reconciler_deletes_schedules_without_a_plan_and_creates_missing_ones(
    stack: OfflineStack,
) -> None:
    plan = fleet_plan(name="kept", sources=[explicit("fleet-01")])
    plan["schedule"] = {"expression": "rate(1 day)"}
    assert put_plan(stack, plan)[0] == 201
    scheduler = stack._client("scheduler")
    scheduler.delete_schedule(Name="kept", GroupName="flexrestore")  # a schedule call that failed
    stack._client("dynamodb").delete_item(TableName="flexrestore-plans", Key={"name": {"S": "gone"}})
    scheduler.create_schedule(
        Name="gone",
        GroupName="flexrestore",
        ScheduleExpression="rate(1 day)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={
            "Arn": stack.run_state_machine_arn,
            "RoleArn": "arn:aws:iam::123456789012:role/x",
            "Input": "{}",
        },
    )

    report = stack.invoke("reconcile", {})

    assert (report["schedulesCreated"], report["schedulesDeleted"]) == (["kept"], ["gone"])
    assert [s["name"] for s in stack.schedules()] == ["kept"]


@pytest.mark.parametrize(
    ("change", "fields"),
    [
        (
            {"maxConcurrency": 50, "notify": "SOMETIMES"},
            ["maxConcurrency", "notify"],
        ),
        (
            {"sources": [{"groupId": "nope", "clusterName": "fleet 01", "targetDeploymentItemName": "x"}]},
            ["sources[0].groupId", "sources[0].clusterName"],
        ),
        (
            {"sources": [explicit("fleet-01"), explicit("fleet-01")]},
            ["sources[1].clusterName", "sources[1].targetDeploymentItemName"],
        ),
        (
            {"snapshot": {"choice": "RANDOM_WITHIN_WINDOW"}},
            ["snapshot.windowDays"],
        ),
    ],
)
def test_a_bad_plan_is_refused_naming_each_field(
    stack: OfflineStack, change: dict[str, Any], fields: list[str]
) -> None:
    plan = fleet_plan(name="bad", **change)
    status, body = put_plan(stack, plan)
    assert (status, body["errorCode"]) == (400, "INVALID_REQUEST")
    assert [e["field"] for e in body["errors"]] == fields
    assert all(e["message"] for e in body["errors"])
    assert stack.simulator.calls == [] and stack.schedules() == []
    assert answer(stack.invoke("intake", api_event("GET", "/plans/bad")))[0] == 404


def test_a_plan_aiming_at_a_protected_target_is_refused() -> None:
    protected = copy.deepcopy(explicit("fleet-01"))
    with OfflineStack(
        clock=VirtualClock(), env_overrides={"PROTECTED_TARGETS": "fleet-01-verify"}
    ) as guarded:
        status, body = put_plan(guarded, fleet_plan(name="guarded", sources=[protected]))
    assert status == 400
    assert [e["field"] for e in body["errors"]] == ["sources[0].targetDeploymentItemName"]
    assert "protected by PROTECTED_TARGETS" in body["errors"][0]["message"]
