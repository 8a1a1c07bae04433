"""How a verification run ends: per-source entries, objective and summary arithmetic, the final status,
which restores get their own message, and the summary people and machines are told."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

import pytest

from flexrestore.contracts import ErrorInfo, RequestedBy, RestoreRecord
from flexrestore.contracts.run import RunRecord, RunSource, RunTarget, SnapshotPick, ValidationResult
from flexrestore.domain.plans import PlannedSource, Refusal, parse_plan, resolve_sources
from flexrestore.domain.runs import (
    METRIC_OBJECTIVES_MISSED,
    METRIC_RTO_MAX,
    METRIC_RTO_MEDIAN,
    METRIC_RUN_NOT_SUCCEEDED,
    METRIC_SOURCES_FAILED,
    METRIC_SOURCES_VERIFIED,
    PLAN_DIMENSION,
    RESTORE_NOT_ENDED,
    RUN_DETAIL_TYPE,
    RUN_METRICS,
    RUNS_SOURCE,
    finish_run,
    is_verified,
    notify_per_restore,
    objective_met,
    refused_source,
    run_body,
    run_completed_event,
    run_event_detail,
    run_metrics,
    run_status,
    run_subject,
    source_from_record,
    summarize,
)
from tests.fakes import GROUP, NOW, ListedCluster
from tests.published import assert_published_event

PLAN = parse_plan(
    {
        "name": "nightly-orders",
        "rtoObjectiveSeconds": 600,
        "sources": [
            {"groupId": GROUP, "clusterName": "orders-prod", "targetDeploymentItemName": "orders-verify"},
            {
                "groupId": GROUP,
                "tag": {"key": "verify", "value": "nightly"},
                "targetDeploymentItemName": "{clusterName}-v",
            },
        ],
    }
)
SNAPSHOT = "6723a1f0c4d5e6f708193b01"


def planned(
    index: int = 0, cluster: str | None = "orders-prod", refusal: Refusal | None = None
) -> PlannedSource:
    return PlannedSource(
        index=index,
        origin="sources[0]",
        group_id=GROUP,
        cluster_name=cluster,
        target_deployment_item_name=f"{cluster or 'x'}-verify",
        target_project_id=GROUP,
        snapshot=PLAN.snapshot,
        refusal=refusal,
    )


def record(
    status: str | None = "COMPLETED", duration: int | None = 65, cluster: str = "orders-prod", **extra: Any
) -> RestoreRecord:
    restore_id = hashlib.sha256(f"{cluster}/{status}/{duration}".encode()).hexdigest()[:32]
    return RestoreRecord(
        id=restore_id,
        restore_id=restore_id,
        source=f"{GROUP}/{cluster}",
        requested_at=NOW,
        group_id=GROUP,
        cluster_name=cluster,
        snapshot_id=SNAPSHOT,
        target_deployment_item_name=f"{cluster}-verify",
        target_project_id=GROUP,
        restore_job_id="6ae69d205e1a7c0d3f000001",
        final_status=status,  # type: ignore[arg-type]
        duration_seconds=duration,
        **extra,
    )


def entry(
    index: int,
    status: str | None = "COMPLETED",
    duration: int | None = 65,
    objective: int | None = 600,
    **kw: Any,
) -> RunSource:
    cluster = f"db{index}"
    return source_from_record(
        planned(index, cluster), record(status, duration, cluster), rto_objective_seconds=objective, **kw
    )


def run_of(sources: list[RunSource], objective: int | None = 600) -> RunRecord:
    plan = PLAN.model_copy(update={"rto_objective_seconds": objective})
    return finish_run(
        run_id="run-1", plan=plan, started_at=NOW, finished_at=NOW + timedelta(minutes=14), sources=sources
    )


# --- one source -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("duration", "objective", "met"),
    [
        (None, 600, None),
        (600, None, None),
        (None, None, None),
        (599, 600, True),
        (600, 600, True),
        (601, 600, False),
    ],
)
def test_objective_met(duration: int | None, objective: int | None, met: bool | None) -> None:
    assert objective_met(duration, objective) is met


def test_a_completed_restore_becomes_its_entry() -> None:
    taken = NOW - timedelta(days=3)
    pick = SnapshotPick(
        choice="RANDOM_WITHIN_WINDOW", candidates=7, window_days=30, position=2, seed="0" * 16
    )
    source = source_from_record(
        planned(),
        record(duration=700),
        rto_objective_seconds=600,
        snapshot_taken_at=taken,
        snapshot_choice=pick,
    )
    assert (source.final_status, source.duration_seconds, source.objective_met) == ("COMPLETED", 700, False)
    assert (source.snapshot_id, source.snapshot_taken_at, source.snapshot_choice) == (SNAPSHOT, taken, pick)
    assert source.to_json()["snapshotTakenAt"] == "2026-10-29T02:00:00Z"
    assert source.restore_id is not None and source.error is None and not is_verified(source)


def test_a_failed_restore_has_no_objective_to_meet() -> None:
    error = ErrorInfo(code="ATLAS_FAILED", message="Atlas reported FAILED")
    source = source_from_record(planned(), record("FAILED", 30, error=error), rto_objective_seconds=600)
    assert (source.final_status, source.objective_met, source.error) == ("FAILED", None, error)


def test_a_restore_that_had_not_ended_counts_as_an_error() -> None:
    source = source_from_record(planned(), record(None, None), rto_objective_seconds=600)
    assert source.final_status == "ERROR" and source.error is not None
    assert source.error.code == RESTORE_NOT_ENDED


def test_refused_sources_keep_the_reason() -> None:
    resolved = planned(
        3, None, Refusal("NO_MATCHING_CLUSTER", "no Flex cluster carries the tag verify=nightly")
    )
    source = refused_source(resolved)
    assert (source.index, source.final_status, source.cluster_name) == (3, "REFUSED", None)
    assert source.error == ErrorInfo(
        code="NO_MATCHING_CLUSTER", message="no Flex cluster carries the tag verify=nightly"
    )
    by_intake = refused_source(planned(1), code="PROTECTED_TARGET", message="target is protected")
    assert by_intake.error is not None and by_intake.error.code == "PROTECTED_TARGET"
    crashed = refused_source(
        planned(2), code="ATLAS_UNAVAILABLE", message="Atlas answered 503", status="ERROR"
    )
    assert crashed.final_status == "ERROR"


# --- the summary and the final status ----------------------------------------------------------------


def test_median_of_an_odd_count() -> None:
    summary = summarize([entry(0, duration=60), entry(1, duration=300), entry(2, duration=90)])
    assert (summary.rto_median_seconds, summary.rto_max_seconds) == (90, 300)


def test_median_of_an_even_count() -> None:
    summary = summarize([entry(i, duration=d) for i, d in enumerate([60, 90, 61, 300])])
    assert (summary.rto_median_seconds, summary.rto_max_seconds) == (75.5, 300)
    assert summarize([entry(0, duration=60), entry(1, duration=80)]).rto_median_seconds == 70


def test_rto_is_over_completed_sources_only() -> None:
    summary = summarize([entry(0, duration=60), entry(1, "FAILED", duration=3000), entry(2, duration=None)])
    assert (summary.rto_median_seconds, summary.rto_max_seconds) == (60, 60)
    nothing = summarize([entry(0, "FAILED", duration=30)])
    assert (nothing.rto_median_seconds, nothing.rto_max_seconds) == (None, None)


def test_counts() -> None:
    sources = [
        entry(0, duration=60),
        entry(1, duration=900),  # over the objective
        entry(2, "FAILED", duration=50),
        entry(3, "TIMED_OUT", duration=None),
        entry(4, "ERROR", duration=None),
        refused_source(planned(5), code="PROTECTED_TARGET", message="protected"),
        refused_source(planned(6), code="NO_SNAPSHOT_IN_WINDOW", message="none"),
    ]
    summary = summarize(sources)
    assert summary.to_json() == {
        "total": 7,
        "verified": 1,
        "completed": 2,
        "failed": 1,
        "timedOut": 1,
        "error": 1,
        "refused": 2,
        "objectiveMissed": 1,
        "rtoMedianSeconds": 480,
        "rtoMaxSeconds": 900,
        "validationFailed": 0,
        "clusterHours": None,
    }
    assert run_status(summary) == "PARTIAL"


def test_every_source_completed_within_its_objective_succeeds() -> None:
    assert run_of([entry(0), entry(1, duration=600)]).final_status == "SUCCEEDED"
    assert run_of([entry(0, objective=None, duration=5000)], objective=None).final_status == "SUCCEEDED"


def test_one_source_over_its_objective_is_partial() -> None:
    assert run_of([entry(0), entry(1, duration=601)]).final_status == "PARTIAL"


def test_one_refused_source_is_partial() -> None:
    assert run_of([entry(0), refused_source(planned(1), code="X", message="y")]).final_status == "PARTIAL"


def test_no_completed_source_fails() -> None:
    assert (
        run_of([entry(0, "FAILED"), refused_source(planned(1), code="X", message="y")]).final_status
        == "FAILED"
    )
    assert run_of([]).final_status == "FAILED"


def test_all_completed_but_every_one_over_the_objective_is_partial_not_failed() -> None:
    assert run_of([entry(0, duration=700), entry(1, duration=800)]).final_status == "PARTIAL"


def test_a_source_whose_validation_did_not_succeed_is_not_verified() -> None:
    ok = ValidationResult(status="SUCCEEDED", checks=[{"name": "count", "status": "PASSED"}])
    bad = ValidationResult(status="FAILED", message="orders collection is empty")
    good_run = run_of([entry(0, validation=ok), entry(1)])
    assert good_run.final_status == "SUCCEEDED"
    bad_run = run_of([entry(0, validation=ok), entry(1, validation=bad)])
    assert bad_run.final_status == "PARTIAL"
    assert bad_run.summary is not None and bad_run.summary.validation_failed == 1
    assert "1 failed validation" in run_subject(bad_run)


def test_cluster_hours_of_ephemeral_targets() -> None:
    target = RunTarget(ephemeral=True, name="verify-db0-1a2b", existed_seconds=5400)
    summary = summarize([entry(0, target=target), entry(1, target=target), entry(2)])
    assert summary.cluster_hours == 3.0
    assert summarize([entry(0)]).cluster_hours is None


def test_the_run_record_is_in_the_runs_order_and_reads_back() -> None:
    asked = RequestedBy(trigger="schedule", schedule="flexrestore-plan-nightly-orders", event_id="e-1")
    run = finish_run(
        run_id="run-1",
        plan=PLAN,
        started_at=NOW,
        finished_at=NOW + timedelta(minutes=3),
        sources=[entry(2), entry(0), refused_source(planned(1), code="X", message="y")],
        requested_by=asked,
    )
    assert [s.index for s in run.sources] == [0, 1, 2]
    assert (run.id, run.kind, run.plan, run.rto_objective_seconds, run.notify) == (
        "run#run-1",
        "run",
        "nightly-orders",
        600,
        "FAILURES",
    )
    document = run.to_json()
    assert {"runId", "plan", "startedAt", "finishedAt", "finalStatus", "sources", "summary"} <= set(document)
    assert set(document["sources"][0]) >= {
        "groupId",
        "clusterName",
        "targetDeploymentItemName",
        "targetProjectId",
        "snapshotId",
        "snapshotTakenAt",
        "restoreId",
        "finalStatus",
        "durationSeconds",
        "objectiveMet",
        "error",
    }
    assert set(document["summary"]) >= {
        "total",
        "completed",
        "failed",
        "timedOut",
        "error",
        "refused",
        "objectiveMissed",
        "rtoMedianSeconds",
        "rtoMaxSeconds",
    }
    assert RunRecord.model_validate(document) == run
    assert RunRecord.model_validate(json.loads(json.dumps(run.to_stored()))) == run


def test_a_run_from_resolution_to_record() -> None:
    resolved = resolve_sources(PLAN, {GROUP: [ListedCluster("billing", {"verify": "nightly"})]}, unlisted={})
    sources = [
        source_from_record(
            p, record(cluster=p.cluster_name or ""), rto_objective_seconds=PLAN.rto_objective_seconds
        )
        for p in resolved
    ]
    run = finish_run(run_id="r", plan=PLAN, started_at=NOW, finished_at=NOW, sources=sources)
    assert [(s.index, s.cluster_name, s.final_status) for s in run.sources] == [
        (0, "orders-prod", "COMPLETED"),
        (1, "billing", "COMPLETED"),
    ]
    assert run.final_status == "SUCCEEDED"


# --- which restores get their own message -------------------------------------------------------------


@pytest.mark.parametrize(
    ("notify", "status", "told"),
    [
        ("ALL", "COMPLETED", True),
        ("ALL", "FAILED", True),
        ("FAILURES", "COMPLETED", False),
        ("FAILURES", "FAILED", True),
        ("FAILURES", "TIMED_OUT", True),
        ("FAILURES", "ERROR", True),
        ("FAILURES", None, True),
        ("SUMMARY", "COMPLETED", False),
        ("SUMMARY", "FAILED", False),
        ("SUMMARY", "ERROR", False),
    ],
)
def test_notify_policy(notify: str, status: str | None, told: bool) -> None:
    assert notify_per_restore(notify, status) is told


# --- the summary message, the event, the metrics -------------------------------------------------------


def eighteen_of_twenty() -> RunRecord:
    sources = [entry(i, duration=60 + i) for i in range(17)]
    sources += [entry(17, duration=700)]
    sources += [
        entry(18, "FAILED", duration=40),
        refused_source(planned(19), code="PROTECTED_TARGET", message="no"),
    ]
    return run_of(sources)


def test_the_subject_says_the_result_at_a_glance() -> None:
    assert (
        run_subject(eighteen_of_twenty()) == "Verification PARTIAL: nightly-orders 18/20 restored, 1 over RTO"
    )
    assert run_subject(run_of([entry(0)])) == "Verification SUCCEEDED: nightly-orders 1/1 restored"


def test_the_subject_stays_under_100_characters_and_keeps_the_counts() -> None:
    sources = [entry(i, duration=900) for i in range(500)]
    run = run_of(sources).model_copy(update={"plan": "p" * 64})
    subject = run_subject(run)
    assert len(subject) < 100
    assert subject.endswith(" 500/500 restored, 500 over RTO") and "…" in subject


def test_the_body_has_a_table_then_the_problems_then_the_record() -> None:
    run = eighteen_of_twenty()
    body = run_body(run)
    lines = body.splitlines()
    assert lines[0] == run_subject(run)
    header = next(line for line in lines if line.startswith("#  "))
    assert header.split() == ["#", "SOURCE", "TARGET", "SNAPSHOT", "(UTC)", "STATUS", "RTO", "OBJECTIVE"]
    rows = lines[lines.index(header) + 1 : lines.index(header) + 21]
    assert rows[0].split()[:3] == ["0", "db0", "db0-verify"]
    assert rows[17].split()[-1] == "MISSED" and "COMPLETED  11 min 40 s  MISSED" in rows[17]
    assert "REFUSED" in rows[19] and rows[19].rstrip().endswith("-")
    # fixed width: every column starts at the same place in every row
    status_at = header.index("STATUS")
    assert all(row[status_at:].split()[0] in {"COMPLETED", "FAILED", "REFUSED"} for row in rows)
    assert "Problems:" in lines and any("PROTECTED_TARGET: no" in line for line in lines)
    assert "Result:       PARTIAL: 17 of 20 sources verified (18 completed, 1 failed, 1 refused" in body
    assert "RTO:          median 68.5 s, longest 11 min 40 s; objective 10 min" in lines
    assert "  #19 orders-prod → orders-prod-verify: PROTECTED_TARGET: no" in lines
    document = json.loads(body[body.index("\n{") :])
    assert document == run.to_json()


def test_the_table_shows_when_the_snapshot_was_taken() -> None:
    run = run_of([entry(0, snapshot_taken_at=NOW - timedelta(days=3, minutes=5))])
    assert "0  db0     db0-verify  2026-10-29 01:55  COMPLETED  65 s  met" in run_body(run).splitlines()


def test_the_body_keeps_atlas_messages_on_one_line() -> None:
    error = ErrorInfo(code="ATLAS_FAILED", message="line one\nline two\x1b[31m")
    run = run_of(
        [source_from_record(planned(), record("FAILED", 30, error=error), rto_objective_seconds=600)]
    )
    problem = next(line for line in run_body(run).splitlines() if "ATLAS_FAILED" in line)
    assert problem.endswith("line one line two [31m")


def test_a_body_too_large_for_sns_leaves_the_sources_out_of_the_json() -> None:
    run = run_of([entry(i, duration=60) for i in range(500)])
    body = run_body(run, max_bytes=50_000)
    assert "sources are left out of this message" in body
    document = json.loads(body[body.index("\n{") :])
    assert (document["sources"], document["sourcesOmitted"], document["summary"]["total"]) == ([], 500, 500)
    assert len(run_body(run).encode()) <= 250_000  # the real limit holds too


def test_the_event_is_the_published_run_contract_built_from_the_run_record() -> None:
    run = eighteen_of_twenty()
    event = run_completed_event(
        run, resources=("arn:aws:states:us-east-1:123456789012:execution:runs:run-1",)
    )
    assert (event.source, event.detail_type) == (RUNS_SOURCE, RUN_DETAIL_TYPE)
    assert (RUNS_SOURCE, RUN_DETAIL_TYPE) == ("flexrestore.runs", "Flex Verification Run Completed")
    detail = event.detail_json()
    record = run.to_json()
    assert detail["version"] == "1" and detail["sourcesOmitted"] == 0
    assert {k: v for k, v in detail.items() if k not in ("version", "sourcesOmitted")} == {
        k: v
        for k, v in record.items()
        if k not in ("id", "kind", "executionArn")  # the table's key and kind stay home; the execution is
        # the event's resources
    }
    delivered = {
        "version": "0",
        "id": "e-1",
        "detail-type": event.detail_type,
        "source": event.source,
        "account": "123456789012",
        "time": "2026-11-01T02:14:00Z",
        "region": "us-east-1",
        "resources": list(event.resources),
        "detail": detail,
    }
    assert assert_published_event(delivered) == detail


def test_an_event_too_large_keeps_the_sources_that_were_not_verified() -> None:
    run = eighteen_of_twenty()
    detail = run_event_detail(run, max_bytes=len(json.dumps(run.to_json())) // 2).to_json()
    assert [s["index"] for s in detail["sources"]] == [17, 18, 19] and detail["sourcesOmitted"] == 17
    tiny = run_event_detail(run, max_bytes=100).to_json()
    assert (tiny["sources"], tiny["sourcesOmitted"], tiny["finalStatus"]) == ([], 20, "PARTIAL")


def test_metrics_per_plan() -> None:
    run = eighteen_of_twenty()
    assert PLAN_DIMENSION == "plan" and len(set(RUN_METRICS)) == len(RUN_METRICS) == 6
    assert run_metrics(run) == {
        METRIC_SOURCES_VERIFIED: 17,
        METRIC_SOURCES_FAILED: 2,
        METRIC_OBJECTIVES_MISSED: 1,
        METRIC_RUN_NOT_SUCCEEDED: 1,
        METRIC_RTO_MEDIAN: 68.5,
        METRIC_RTO_MAX: 700,
    }
    assert run_metrics(run_of([entry(0)]))[METRIC_RUN_NOT_SUCCEEDED] == 0
    assert METRIC_RTO_MAX not in run_metrics(run_of([entry(0, "FAILED")]))
