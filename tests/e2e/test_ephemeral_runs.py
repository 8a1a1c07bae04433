"""Ephemeral targets and validation through the executed state machines: plans saved and run through the
HTTP API (the real intake handler), each run the real run state machine, each restore the real restore
state machine, every Lambda the real handler, Atlas the simulator's FLEET and its verification project
(which holds a decoy cluster ``frv-decoy0-001`` that the service never made). Validators are in-process
Lambda functions registered on the stack (``OfflineStack.register_validator``)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from flexrestore import clock
from flexrestore.clock import VirtualClock, parse_iso
from flexrestore.domain.ephemeral import RUN_TAG, SERVICE_TAG, ephemeral_name
from flexrestore.local.harness import OfflineStack
from flexrestore.simulator import FLEET
from tests.api_events import answer, api_event

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "plans" / "ephemeral-fleet.json"
PROJECT = FLEET.verification_group_id
VALIDATOR = "fleet-validator"


def ok_validator(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"status": "SUCCEEDED", "message": f"{event['target']['name']} holds the data"}


@pytest.fixture
def stack() -> Iterator[OfflineStack]:
    with OfflineStack(
        scenario="ok", clock=VirtualClock(), env_overrides={"ALLOWED_TARGET_PROJECTS": PROJECT}
    ) as s:
        yield s


def ephemeral_plan(*clusters: str, **changes: Any) -> dict[str, Any]:
    plan: dict[str, Any] = json.loads(EXAMPLE.read_text())
    plan.pop("schedule")
    plan["sources"] = [{"groupId": FLEET.group_id, "clusterName": c} for c in clusters]
    plan.update(changes)
    return {k: v for k, v in plan.items() if v is not None}


def put_plan(stack: OfflineStack, plan: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    status, body, _ = answer(stack.invoke("intake", api_event("PUT", f"/plans/{plan['name']}", plan)))
    return status, body


def run(stack: OfflineStack, plan: str) -> dict[str, Any]:
    status, started, _ = answer(stack.invoke("intake", api_event("POST", f"/plans/{plan}/runs")))
    assert status == 202, started
    assert stack.wait_for_execution(started["executionArn"], timeout_s=300)["status"] == "SUCCEEDED"
    return fetch(stack, started["runId"])


def fetch(stack: OfflineStack, run_id: str) -> dict[str, Any]:
    status, record, _ = answer(stack.invoke("intake", api_event("GET", f"/runs/{run_id}")))
    assert status == 200
    return record


def clusters_left(stack: OfflineStack) -> list[str]:
    """The Flex clusters of the verification project Atlas still has, whatever their state."""
    state = stack.simulator.state
    with state.lock:
        names = [c.name for (group, _), c in state.clusters.items() if group == PROJECT]
    return sorted(n for n in names if stack.simulator.cluster_state(PROJECT, n) is not None)


def by_cluster(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["clusterName"]: s for s in record["sources"]}


def with_validator(stack: OfflineStack, handler: Callable[..., Any] = ok_validator, **kwargs: Any) -> str:
    return stack.register_validator(VALIDATOR, handler, **kwargs)


def fails_one(cluster: str) -> Callable[..., Any]:
    def validator(event: dict[str, Any], context: Any) -> dict[str, Any]:
        if event["source"]["clusterName"] == cluster:
            return {
                "status": "FAILED",
                "message": "collection orders has 0 documents, expected at least 1000",
            }
        return ok_validator(event, context)

    return validator


def creates(stack: OfflineStack) -> list[Any]:
    return [c for c in stack.simulator.calls if c.operation == "createFlexCluster"]


# --- a whole run ---------------------------------------------------------------------------------------


def test_an_ephemeral_run_of_ten_sources_ends_with_ten_verdicts_and_no_cluster_left(
    stack: OfflineStack,
) -> None:
    with_validator(stack, fails_one("fleet-04"))
    clusters = [f"fleet-{n:02d}" for n in (1, 2, 3, 4, 6, 7, 9, 10, 11, 12)]
    plan = ephemeral_plan(*clusters, name="ten")
    assert put_plan(stack, plan)[0] == 201

    record = run(stack, "ten")

    sources = by_cluster(record)
    assert sorted(sources) == clusters
    verdicts = {c: s["validation"]["status"] for c, s in sources.items()}
    assert verdicts == {c: "FAILED" if c == "fleet-04" else "SUCCEEDED" for c in clusters}
    assert all(s["finalStatus"] == "COMPLETED" for s in sources.values())
    summary = record["summary"]
    assert (summary["total"], summary["completed"], summary["verified"], summary["validationFailed"]) == (
        10,
        10,
        9,
        1,
    )
    assert record["finalStatus"] == "PARTIAL"
    assert "collection orders has 0 documents" in sources["fleet-04"]["validation"]["message"]
    names = set()
    for source in record["sources"]:
        target = source["target"]
        assert target["ephemeral"] is True and target["projectId"] == PROJECT
        assert target["name"] == ephemeral_name(record["runId"], source["index"])
        assert source["targetDeploymentItemName"] == target["name"]
        created, idle, deleted = (parse_iso(target[k]) for k in ("createdAt", "idleAt", "deletedAt"))
        assert created <= idle <= deleted and target["deletionRefused"] is None
        assert target["existedSeconds"] == round((deleted - created).total_seconds()) > 0
        names.add(target["name"])
    assert len(names) == 10
    assert summary["clusterHours"] == round(
        sum(s["target"]["existedSeconds"] for s in record["sources"]) / 3600, 2
    )
    # One create per source, with the run's tags, termination protection off; nothing left but the decoy.
    made = creates(stack)
    assert sorted(c.body["name"] for c in made) == sorted(names) and all(c.status == 201 for c in made)
    for call in made:
        tags = {t["key"]: t["value"] for t in call.body["tags"]}
        assert tags[SERVICE_TAG] == "flexrestore" and tags[RUN_TAG] == record["runId"]
        assert call.body["terminationProtectionEnabled"] is False
    assert clusters_left(stack) == [FLEET.decoy_cluster]
    assert stack.simulator.violations == []
    # Step Functions' limit: a 500-source run must stay within 25,000 history events of one execution.
    history = stack.history(record["executionArn"])
    per_source = len(history) / len(clusters)
    assert per_source * 500 + 50 < 25_000, per_source


def test_a_standing_target_plan_is_validated_too_and_creates_no_cluster(stack: OfflineStack) -> None:
    plan = ephemeral_plan("fleet-01", name="standing", targets=None, validation=None)
    plan["sources"] = [
        {**s, "targetDeploymentItemName": FLEET.target_of(s["clusterName"])} for s in plan["sources"]
    ]
    assert put_plan(stack, plan)[0] == 201

    (source,) = run(stack, "standing")["sources"]

    assert source["validation"]["status"] == "SUCCEEDED" and source["target"] is None
    assert [c["name"] for c in source["validation"]["checks"]] == [
        "target-idle",
        "target-version",
        "restore-job",
        "snapshot-age",
    ]
    assert creates(stack) == []


# --- every way a source can end, and no cluster left ---------------------------------------------------


def test_failed_timed_out_and_invalid_restores_leave_no_cluster_once_retention_passes(
    stack: OfflineStack,
) -> None:
    with_validator(stack, fails_one("fleet-03"))
    stack.simulator.set_restore_fate(FLEET.group_id, "fleet-01", "FAILED")
    stack.simulator.set_restore_fate(FLEET.group_id, "fleet-02", "NEVER")
    # Kept 2 h: longer than the run (its timed-out source waits for the restore's 60-minute deadline).
    targets = {**json.loads(EXAMPLE.read_text())["targets"], "retainMinutes": 120}
    plan = ephemeral_plan("fleet-01", "fleet-02", "fleet-03", "fleet-04", name="paths", targets=targets)
    assert put_plan(stack, plan)[0] == 201

    record = run(stack, "paths")

    sources = by_cluster(record)
    assert {c: s["finalStatus"] for c, s in sources.items()} == {
        "fleet-01": "FAILED",
        "fleet-02": "TIMED_OUT",
        "fleet-03": "COMPLETED",
        "fleet-04": "COMPLETED",
    }
    assert {c: s["validation"]["status"] for c, s in sources.items()} == {
        "fleet-01": "SKIPPED",
        "fleet-02": "SKIPPED",
        "fleet-03": "FAILED",
        "fleet-04": "SUCCEEDED",
    }
    # The failed and timed-out restores' clusters are gone; the one that failed validation is kept.
    kept = sources["fleet-03"]["target"]
    assert kept["deletedAt"] is None and kept["retainUntil"] is not None
    for cluster in ("fleet-01", "fleet-02", "fleet-04"):
        assert sources[cluster]["target"]["deletedAt"] is not None
    assert clusters_left(stack) == sorted([FLEET.decoy_cluster, kept["name"]])

    early = stack.invoke("sweep", {})  # retention not over: kept
    assert early["clustersRetained"] == [kept["name"]] and clusters_left(stack) != [FLEET.decoy_cluster]
    clock.sleep((parse_iso(kept["retainUntil"]) - clock.utcnow()).total_seconds() + 1)
    swept = stack.invoke("sweep", {})

    assert swept["clustersDeleted"] == [kept["name"]]
    assert clusters_left(stack) == [FLEET.decoy_cluster]
    after = by_cluster(fetch(stack, record["runId"]))["fleet-03"]["target"]
    assert after["deletedAt"] is not None and after["existedSeconds"] > 120 * 60
    assert fetch(stack, record["runId"])["summary"]["clusterHours"] > record["summary"]["clusterHours"]
    assert stack.invoke("sweep", {})["clustersDeleted"] == []  # nothing left to sweep


def test_a_run_that_crashes_mid_way_leaves_its_clusters_to_the_sweeper(stack: OfflineStack) -> None:
    plan = ephemeral_plan("fleet-01", "fleet-02", "fleet-03", name="crash", validation=None)
    assert put_plan(stack, plan)[0] == 201
    status, started, _ = answer(stack.invoke("intake", api_event("POST", "/plans/crash/runs")))
    assert status == 202
    deadline = time.monotonic() + 60
    while len(stack.simulator.jobs) < 3:  # every source's cluster made and its restore under way
        assert time.monotonic() < deadline
        time.sleep(0.01)
    stack._client("stepfunctions").stop_execution(executionArn=started["executionArn"], error="Crash")
    for arn in stack.executions():
        stack.wait_for_execution(arn, timeout_s=120)
    assert len([c for c in clusters_left(stack) if c != FLEET.decoy_cluster]) == 3
    assert stack.run_record(started["runId"])["finalStatus"] is None  # nobody finished the run

    report = stack.invoke("sweep", {})

    assert len(report["clustersDeleted"]) == 3 and report["runsFinished"] == [started["runId"]]
    assert clusters_left(stack) == [FLEET.decoy_cluster]
    record = fetch(stack, started["runId"])
    assert record["error"]["code"] == "RUN_ABORTED" and record["finalStatus"] is not None
    assert all(s["target"]["deletedAt"] is not None for s in record["sources"])


def test_a_lost_create_answer_makes_exactly_one_cluster(stack: OfflineStack) -> None:
    stack.simulator.scenario = "create-cluster-answer-lost"  # every create is made, its answer cut
    plan = ephemeral_plan("fleet-01", "fleet-02", name="lost", validation=None)
    assert put_plan(stack, plan)[0] == 201

    record = run(stack, "lost")

    assert [s["finalStatus"] for s in record["sources"]] == ["COMPLETED", "COMPLETED"]
    made = creates(stack)
    assert len(made) == 2 and all(c.status == 0 for c in made)  # each sent once, its answer lost, adopted
    assert len({c.body["name"] for c in made}) == 2
    assert clusters_left(stack) == [FLEET.decoy_cluster]


def test_a_cluster_that_never_becomes_idle_ends_its_source_and_is_deleted(stack: OfflineStack) -> None:
    stack.simulator.scenario = "cluster-never-idle"
    plan = ephemeral_plan("fleet-01", name="stuck", validation=None)
    assert put_plan(stack, plan)[0] == 201

    (source,) = run(stack, "stuck")["sources"]

    assert (source["finalStatus"], source["error"]["code"]) == ("ERROR", "TARGET_NOT_READY")
    assert "still CREATING" in source["error"]["message"]
    assert source["restoreId"] is None and stack.simulator.jobs == {}
    assert source["target"]["deletedAt"] is not None and source["target"]["idleAt"] is None
    assert clusters_left(stack) == [FLEET.decoy_cluster]


def test_a_delete_that_fails_twice_still_ends_deleted(stack: OfflineStack) -> None:
    stack.simulator.scenario = "delete-fails-twice"
    plan = ephemeral_plan("fleet-01", name="stubborn", validation=None)
    assert put_plan(stack, plan)[0] == 201

    (source,) = run(stack, "stubborn")["sources"]

    deletes = [c.status for c in stack.simulator.calls if c.operation == "deleteFlexCluster"]
    assert deletes == [500, 500, 204]
    assert source["target"]["deletedAt"] is not None
    assert clusters_left(stack) == [FLEET.decoy_cluster]


def test_the_decoy_is_never_deleted_even_when_a_record_points_at_it(stack: OfflineStack) -> None:
    from flexrestore.aws.runs import RunTable
    from flexrestore.contracts.run import RunTarget

    plan = ephemeral_plan("fleet-01", name="decoy", validation=None)
    assert put_plan(stack, plan)[0] == 201
    record = run(stack, "decoy")
    # A record that claims the decoy (a bug, a hand edit): the sweeper must still refuse to delete it.
    forged = RunTarget(
        ephemeral=True,
        name=FLEET.decoy_cluster,
        project_id=PROJECT,
        create_requested_at=clock.utcnow(),
        created_at=clock.utcnow(),
    )
    RunTable("flexrestore-runs").set_target(record["runId"], 0, forged, live=True)

    report = stack.invoke("sweep", {})

    assert report["deletionsRefused"] == [FLEET.decoy_cluster] and report["clustersDeleted"] == []
    assert clusters_left(stack) == [FLEET.decoy_cluster]
    refused = fetch(stack, record["runId"])["sources"][0]["target"]["deletionRefused"]
    assert "NOT_CREATED_BY_SERVICE" in refused["message"] and "TAGS_MISMATCH" in refused["message"]
    assert not [
        c
        for c in stack.simulator.calls
        if c.operation == "deleteFlexCluster" and FLEET.decoy_cluster in c.path
    ]
    assert stack.invoke("sweep", {})["deletionsRefused"] == []  # refused once, then left to people


# --- validators that misbehave -------------------------------------------------------------------------


def misbehaving(event: dict[str, Any], context: Any) -> Any:
    cluster = event["source"]["clusterName"]
    if cluster == "fleet-01":
        raise RuntimeError("cannot connect to the restored cluster")
    if cluster == "fleet-02":
        clock.sleep(45)  # later than the plan's 30 s
        return {"status": "SUCCEEDED", "message": "late"}
    if cluster == "fleet-03":
        return {"status": "OK", "message": "looks fine"}
    if cluster == "fleet-04":
        return "SUCCEEDED"
    clock.sleep(120)  # past its own Lambda timeout: Lambda stops it
    return {"status": "SUCCEEDED", "message": "never seen"}


def test_a_validator_that_errors_times_out_or_answers_garbage_is_recorded_as_such(
    stack: OfflineStack,
) -> None:
    with_validator(stack, misbehaving, timeout_seconds=60)
    validation = {**json.loads(EXAMPLE.read_text())["validation"], "timeoutSeconds": 30}
    plan = ephemeral_plan(
        "fleet-01", "fleet-02", "fleet-03", "fleet-04", "fleet-06", name="bad", validation=validation
    )
    assert put_plan(stack, plan)[0] == 201

    record = run(stack, "bad")

    got = {c: (s["validation"]["status"], s["validation"]["message"]) for c, s in by_cluster(record).items()}
    assert got["fleet-01"][0] == "FAILED" and "cannot connect to the restored cluster" in got["fleet-01"][1]
    assert got["fleet-02"][0] == "TIMED_OUT" and "within 30 s" in got["fleet-02"][1]
    assert got["fleet-03"][0] == "FAILED" and "status must be SUCCEEDED or FAILED" in got["fleet-03"][1]
    assert got["fleet-04"][0] == "FAILED" and "expected a JSON object" in got["fleet-04"][1]
    assert got["fleet-06"][0] == "TIMED_OUT" and "Lambda stopped it" in got["fleet-06"][1]
    assert record["summary"]["verified"] == 0 and record["summary"]["validationFailed"] == 5
    assert clusters_left(stack) == [FLEET.decoy_cluster]


def test_the_validator_gets_the_documented_input(stack: OfflineStack) -> None:
    seen: list[dict[str, Any]] = []

    def recording(event: dict[str, Any], context: Any) -> dict[str, Any]:
        seen.append(event)
        return ok_validator(event, context)

    with_validator(stack, recording)
    assert put_plan(stack, ephemeral_plan("fleet-01", name="input"))[0] == 201
    (source,) = run(stack, "input")["sources"]

    (document,) = seen
    from flexrestore.contracts.validator import ValidatorInput

    parsed = ValidatorInput.model_validate(document)
    assert parsed.version == "1" and parsed.run.plan == "input" and parsed.source.cluster_name == "fleet-01"
    assert parsed.target.name == source["target"]["name"] and parsed.target.ephemeral
    assert parsed.target.connection_strings.standard_srv and parsed.target.state_name == "IDLE"
    assert parsed.restore.restore_id == source["restoreId"] and parsed.restore.final_status == "COMPLETED"
    assert parsed.snapshot.id == source["snapshotId"] and parsed.snapshot.mongodb_version
    assert "password" not in json.dumps(document).lower()


def test_a_plan_naming_a_validator_or_project_the_deployment_does_not_allow_is_refused() -> None:
    plan = ephemeral_plan("fleet-01", name="refused")
    with OfflineStack(clock=VirtualClock()) as bare:
        status, body = put_plan(bare, plan)
    assert status == 400
    assert [e["field"] for e in body["errors"]] == ["validation.lambdaArn", "targets.projectId"]
