"""Local mode as a user runs it: `flexrestore-local` and the demo, on the sample events in events/ and the
sample plans in examples/plans/."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from flexrestore.local import cli, demo
from flexrestore.local.flow import run_flow
from flexrestore.local.inputs import load_event
from tests.infrastructure.checks import REPO

EVENTS = REPO / "events"
PLANS = REPO / "examples" / "plans"
FLEET_PLAN = PLANS / "nightly-fleet.json"
ORDERS_PLAN = PLANS / "nightly-orders.yaml"


@pytest.fixture(autouse=True)
def logs_in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tools write their log to the temporary directory; a test's log goes with its tmp_path."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))


def run_json(capfd: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    code = cli.main([*args, "--json"])
    out, err = capfd.readouterr()
    assert code == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 1, f"--json must print exactly one line of JSON, got {len(lines)}: {out[:500]}"
    result: dict[str, Any] = json.loads(lines[0])
    return result


def test_api_restore_runs_to_completed_and_reports_every_key(capfd: pytest.CaptureFixture[str]) -> None:
    result = run_json(capfd, "--event", str(EVENTS / "api-post-restore.json"))

    assert tuple(result) == cli.RESULT_KEYS
    assert result["trigger"] == "api"
    assert result["http_status"] == 202
    assert result["final_status"] == "COMPLETED"
    assert result["response"]["body"]["restoreId"] == result["restore_id"]
    record = result["record"]
    assert record["restoreId"] == result["restore_id"]
    assert record["restoreJobId"] == result["restore_job_id"]
    assert record["finalStatus"] == "COMPLETED"
    assert [n["record"]["finalStatus"] for n in result["notifications"]] == ["COMPLETED"]
    assert [e["detail-type"] for e in result["events"]] == ["Flex Restore Succeeded"]
    assert all(set(call) == {"method", "path", "status"} for call in result["atlas_calls"])
    creates = [
        c for c in result["atlas_calls"] if c["method"] == "POST" and c["path"].endswith("/restoreJobs")
    ]
    assert len(creates) == 1
    assert isinstance(result["state_transitions"], int) and result["state_transitions"] > 0
    # The virtual clock ran the restore's minute and more without anyone waiting for it.
    assert result["virtual_seconds"] >= record["durationSeconds"] > 0


def test_a_bad_request_is_refused_without_any_atlas_call(capfd: pytest.CaptureFixture[str]) -> None:
    result = run_json(capfd, "--event", str(EVENTS / "api-post-restore-bad.json"))

    assert result["final_status"] == "REFUSED"
    assert result["http_status"] == 400
    assert {e["field"] for e in result["response"]["body"]["errors"]} >= {"groupId", "clusterName"}
    assert result["atlas_calls"] == []
    assert result["record"] is None and result["notifications"] == [] and result["state_transitions"] is None


def test_a_failed_restore_is_a_flow_that_ran(capfd: pytest.CaptureFixture[str]) -> None:
    result = run_json(capfd, "--event", str(EVENTS / "api-post-restore.json"), "--scenario", "fail")

    assert result["final_status"] == "FAILED"
    assert [e["detail-type"] for e in result["events"]] == ["Flex Restore Failed"]
    assert result["record"]["error"]["code"]


def test_the_alarm_sample_uses_the_demo_plan_unless_recovery_plans_is_set(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_json(capfd, "--event", str(EVENTS / "alarm-into-alarm.json"))
    assert result["final_status"] == "COMPLETED"
    assert result["record"]["targetDeploymentItemName"] == "orders-dr"

    monkeypatch.setenv("RECOVERY_PLANS", "{}")
    result = run_json(capfd, "--event", str(EVENTS / "alarm-into-alarm.json"))
    assert result["final_status"] == "REFUSED"
    assert result["response"]["reason"] == "no-plan"


def test_the_human_view_tells_the_story(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    log = tmp_path / "handlers.log"
    code = cli.main(["--event", str(EVENTS / "api-post-restore.json"), "--log", str(log)])
    out, _ = capfd.readouterr()

    assert code == 0
    assert "Request  (api) POST /restores" in out
    assert "Intake   HTTP 202: restore " in out
    assert "poll loop" in out
    assert "Outcome  COMPLETED  RTO 1 min 05 s" in out
    assert "Notified SNS: Restore COMPLETED" in out
    assert '"finalStatus": "COMPLETED"' in out  # the final record
    # The handlers' JSON logs went to the log file, not the terminal.
    assert '"level"' not in out
    assert '"level":"INFO"' in log.read_text()


def test_the_get_sample_alone_is_a_clear_404(capfd: pytest.CaptureFixture[str]) -> None:
    result = run_json(capfd, "--event", str(EVENTS / "api-get-restore.json"))
    assert (result["final_status"], result["http_status"]) == ("REFUSED", 404)
    assert result["response"]["body"]["errorCode"] == "RESTORE_NOT_FOUND"
    assert result["atlas_calls"] == [] and result["record"] is None

    assert cli.main(["--event", str(EVENTS / "api-get-restore.json")]) == 0
    out, _ = capfd.readouterr()
    assert "Intake   HTTP 404: " in out and "no restore ba63986f866c54f0808366df32f41d81" in out
    assert "each run starts on an empty stack" in out


def test_the_get_sample_after_the_post_sample_reads_its_final_record() -> None:
    get = load_event(EVENTS / "api-get-restore.json")
    result = run_flow(get, first=[load_event(EVENTS / "api-post-restore.json")])

    assert result.http_status == 200
    body = result.response["body"]
    assert body["restoreId"] == get["pathParameters"]["restoreId"] == result.restore_id
    assert body["finalStatus"] == result.final_status == "COMPLETED"
    assert body == result.record
    # Only what the GET itself did: no Atlas call, no execution, nothing notified.
    assert result.atlas_calls == [] and result.state_transitions is None
    assert result.notifications == [] and result.events == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--event", "no/such/event.json"], "cannot read the event file no/such/event.json"),
        (["--event", str(REPO / "pyproject.toml")], "is not JSON"),
        (
            ["--event", str(EVENTS / "api-post-restore.json"), "--atlas-url", "https://example.invalid"],
            "ATLAS_CLIENT_ID",
        ),
        (
            ["--event", str(EVENTS / "api-post-restore.json"), "--secret-file", "s.json"],
            "only applies with --atlas-url",
        ),
    ],
)
def test_usage_errors_say_what_to_fix(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    for name in ("ATLAS_CLIENT_ID", "ATLAS_CLIENT_SECRET", "ATLAS_PUBLIC_KEY", "ATLAS_PRIVATE_KEY"):
        monkeypatch.delenv(name, raising=False)
    code = cli.main(args)
    out, err = capfd.readouterr()
    assert code == 2
    assert message in err
    assert "Traceback" not in err and out == ""


def test_another_atlas_with_a_secret_file_never_shows_the_secret(
    capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from flexrestore.clock import SystemClock
    from flexrestore.simulator import DEMO, AtlasSimulator

    secret_file = tmp_path / "secret.json"
    secret_file.write_text(json.dumps({"clientId": DEMO.client_id, "clientSecret": DEMO.client_secret}))
    # "not-found" answers at once, so the real clock costs nothing here.
    with AtlasSimulator(clock=SystemClock(), scenario="not-found") as simulator:
        base_url = simulator.start() if not getattr(simulator, "base_url", None) else simulator.base_url
        code = cli.main(
            [
                "--event",
                str(EVENTS / "api-post-restore.json"),
                "--atlas-url",
                base_url,
                "--secret-file",
                str(secret_file),
                "--json",
                "--log",
                str(tmp_path / "log"),
            ]
        )
        calls = list(simulator.calls)
    out, err = capfd.readouterr()
    assert code == 0, err
    result = json.loads(out)
    assert result["final_status"] == "REFUSED" and result["http_status"] == 404
    assert any(call.path == "/api/oauth/token" for call in calls)  # it did go to that Atlas
    for text in (out, err, (tmp_path / "log").read_text()):
        assert DEMO.client_secret not in text


def test_the_demo_runs_every_sample_and_ends_with_one_line_each(
    capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    names = ("alarm-into-alarm.json", "alarm-into-ok.json", "api-post-restore-bad.json")
    for name in names:
        shutil.copy(EVENTS / name, tmp_path / name)

    code = demo.main(["--events", str(tmp_path), "--plans", str(tmp_path / "no-plans")])
    out, _ = capfd.readouterr()

    assert code == 0
    summary = out.split("== Summary:")[1].strip().splitlines()[1:]
    assert [line.split()[:2] for line in summary] == [
        ["alarm-into-alarm.json", "COMPLETED"],
        ["alarm-into-ok.json", "REFUSED"],
        ["api-post-restore-bad.json", "REFUSED"],
    ]
    assert re.search(r"  RTO 1 min 05 s  \d+ Atlas calls  \d+ state transitions  ", summary[0])
    assert "  not-into-alarm  0 Atlas calls  " in summary[1]


def test_the_demo_runs_the_get_sample_after_the_post_sample(
    capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for name in ("api-get-restore.json", "api-post-restore.json"):
        shutil.copy(EVENTS / name, tmp_path / name)

    assert demo.main(["--events", str(tmp_path), "--plans", str(tmp_path / "no-plans")]) == 0
    out, _ = capfd.readouterr()

    assert "right after api-post-restore.json ran to its end on the same stack" in out
    summary = out.split("== Summary:")[1].strip().splitlines()[1:]
    assert [line.split()[:4] for line in summary[:2]] == [
        ["api-get-restore.json", "COMPLETED", "HTTP", "200"],
        ["api-post-restore.json", "COMPLETED", "HTTP", "202"],
    ]


def test_an_intake_fault_on_an_event_is_shown_as_the_error_lambda_would_retry(
    capfd: pytest.CaptureFixture[str],
) -> None:
    code = cli.main(["--event", str(EVENTS / "alarm-into-alarm.json"), "--scenario", "garbage"])
    out, _ = capfd.readouterr()

    assert code == 0  # the flow ran; the event would be retried, then dead-lettered
    assert "Intake   raised IntakeFailed: 502 ATLAS_FAILED" in out
    assert "dead-letter queue" in out
    assert "Outcome  REFUSED" in out


def test_the_json_keeps_the_api_answers_multi_value_headers(capfd: pytest.CaptureFixture[str]) -> None:
    result = run_json(capfd, "--event", str(EVENTS / "api-post-restore.json"))

    assert tuple(result) == cli.RESULT_KEYS  # the documented keys, unchanged
    response = result["response"]
    assert tuple(response) == ("statusCode", "headers", "multiValueHeaders", "body")
    # API Gateway's REST proxy answer carries its headers in multiValueHeaders: the Location is kept.
    assert response["multiValueHeaders"]["Location"] == [f"/restores/{result['restore_id']}"]
    assert response["multiValueHeaders"]["Content-Type"] == ["application/json"]
    assert response["body"]["location"] == f"/restores/{result['restore_id']}"


def test_the_flow_result_is_typed_and_its_json_is_the_documented_object() -> None:
    result = run_flow(load_event(EVENTS / "api-post-restore.json"))

    assert result.location == f"/restores/{result.restore_id}"
    data = result.to_json()
    assert tuple(data) == cli.RESULT_KEYS
    assert json.loads(json.dumps(data)) == data  # plain JSON all the way down
    with pytest.raises(AttributeError):
        result.final_status = "FAILED"  # type: ignore[misc]  # frozen


@pytest.mark.parametrize(
    ("event", "scenario", "code"),
    [
        ("api-post-restore.json", "ok", 0),
        ("api-post-restore.json", "fail", 3),
        ("api-post-restore-bad.json", "ok", 6),
        ("alarm-into-ok.json", "ok", 6),
    ],
)
def test_fail_on_outcome_exits_with_the_restores_ending(
    capfd: pytest.CaptureFixture[str], event: str, scenario: str, code: int
) -> None:
    args = ["--event", str(EVENTS / event), "--scenario", scenario]
    assert cli.main([*args, "--json"]) == 0  # without it: the flow ran, whatever the outcome
    capfd.readouterr()

    assert cli.main([*args, "--json", "--fail-on-outcome"]) == code
    out, _ = capfd.readouterr()
    assert len(out.strip().splitlines()) == 1  # the JSON is printed all the same


def test_fail_on_outcome_codes_are_in_the_help(capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    out, _ = capfd.readouterr()
    assert exit_info.value.code == 0
    assert "--fail-on-outcome" in out
    for line in ("3   FAILED", "4   TIMED_OUT", "5   ERROR", "6   REFUSED", "8   PARTIAL", "9   FAILED"):
        assert line in out
    assert "--plan FILE" in out and "schedule-plan-run.json" in out


# --- --plan: one run of a verification plan ------------------------------------------------------------


def run_plan_json(capfd: pytest.CaptureFixture[str], *args: str, code: int = 0) -> dict[str, Any]:
    assert cli.main([*args, "--json"]) == code
    out, err = capfd.readouterr()
    lines = out.strip().splitlines()
    assert len(lines) == 1, f"--json must print exactly one line of JSON, got {len(lines)}: {out[:500]} {err}"
    result: dict[str, Any] = json.loads(lines[0])
    return result


def by_cluster(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {source["clusterName"]: source for source in result["sources"]}


def test_the_fleet_plan_runs_once_and_answers_its_run_record(capfd: pytest.CaptureFixture[str]) -> None:
    from flexrestore.clock import parse_iso
    from flexrestore.simulator import FLEET

    # --fail-on-outcome: the run ended PARTIAL (one source over its RTO objective, two refused): 8.
    result = run_plan_json(capfd, "--plan", str(FLEET_PLAN), "--fail-on-outcome", code=8)

    # The run record's keys, exactly as GET /runs/{runId} answers them, then what the tool adds.
    assert tuple(result) == cli.PLAN_RESULT_KEYS
    assert cli.PLAN_RESULT_KEYS[-8:] == (
        "notifications",
        "events",
        "atlas_calls",
        "state_transitions",
        "restore_state_transitions",
        "history_events",
        "virtual_seconds",
        "clusters_left",
    )
    assert result["clusters_left"] is None  # standing targets: no ephemeral project to look at
    assert (result["plan"], result["finalStatus"], result["rtoObjectiveSeconds"]) == (
        "nightly-fleet",
        "PARTIAL",
        600,
    )
    assert result["requestedBy"]["trigger"] == "api"  # POST /plans/nightly-fleet/runs
    assert result["requestedBy"]["caller"].endswith(":user/flexrestore-local")
    not_validated = {
        source["clusterName"]: source["validation"]
        for source in result["sources"]
        if source["validation"] and source["validation"]["status"] not in ("SUCCEEDED", "SKIPPED")
    }
    assert not not_validated
    assert result["summary"] == {
        "total": 22,
        "verified": 19,
        "completed": 20,
        "failed": 0,
        "timedOut": 0,
        "error": 0,
        "refused": 2,
        "objectiveMissed": 1,
        "rtoMedianSeconds": 65,
        "rtoMaxSeconds": 905,
        "validationFailed": 0,
        "clusterHours": None,
    }

    sources = by_cluster(result)
    assert sorted(sources) == sorted(FLEET.nightly_sources)  # the tag selector, resolved at run time
    assert [s["index"] for s in result["sources"]] == list(range(22))
    slow = sources["fleet-08"]
    assert (slow["finalStatus"], slow["durationSeconds"], slow["objectiveMet"]) == ("COMPLETED", 905, False)
    protected = sources["fleet-05"]
    assert (protected["finalStatus"], protected["error"]["code"]) == ("REFUSED", "PROTECTED_TAG")
    assert protected["restoreId"] is None
    no_snapshot = sources["fleet-13"]
    assert (no_snapshot["finalStatus"], no_snapshot["error"]["code"]) == ("REFUSED", "NO_SNAPSHOT_IN_WINDOW")
    started = parse_iso(result["startedAt"])
    completed = [s for s in result["sources"] if s["finalStatus"] == "COMPLETED"]
    assert len(completed) == 20
    for source in completed:
        assert source["targetDeploymentItemName"] == f"{source['clusterName']}-verify"
        assert source["snapshotChoice"]["choice"] == "RANDOM_WITHIN_WINDOW"
        assert 0 < (started - parse_iso(source["snapshotTakenAt"])).total_seconds() <= 7 * 86400
        assert source["objectiveMet"] is (source["clusterName"] != "fleet-08")

    # notify FAILURES: every restore made completed, so the summary is the one message.
    assert [n["subject"] for n in result["notifications"]] == [
        "Verification PARTIAL: nightly-fleet 20/22 restored, 1 over RTO"
    ]
    assert "fleet-08  fleet-08-verify" in result["notifications"][0]["message"]
    runs = [e for e in result["events"] if e["source"] == "flexrestore.runs"]
    assert [e["detail-type"] for e in runs] == ["Flex Verification Run Completed"]
    assert runs[0]["detail"]["runId"] == result["runId"]
    assert [e["detail-type"] for e in result["events"] if e["source"] == "flexrestore.restores"] == [
        "Flex Restore Succeeded"
    ] * 20

    creates = [
        c for c in result["atlas_calls"] if c["method"] == "POST" and c["path"].endswith("/restoreJobs")
    ]
    assert len(creates) == 20
    assert all(set(call) == {"method", "path", "status"} for call in result["atlas_calls"])
    assert result["state_transitions"] > 0 and result["restore_state_transitions"] > 0
    assert 0 < result["history_events"] < 25_000
    # Five at a time, the slow source's 15 minutes included: longer than any one restore on the clock.
    assert result["virtual_seconds"] >= 905


def test_the_human_view_of_a_plan_run_follows_each_source_and_ends_with_the_table(
    capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    log = tmp_path / "handlers.log"
    code = cli.main(["--plan", str(ORDERS_PLAN), "--log", str(log)])  # YAML, as people keep plans
    out, _ = capfd.readouterr()

    assert code == 0
    assert "Plan     nightly-orders: snapshot LATEST, RTO objective 10 min 00 s, at most 2 at once" in out
    assert (
        "Saved    PUT /plans/nightly-orders -> HTTP 201: created, revision 1, schedule nightly-orders" in out
    )
    run_id = re.search(r"Run      POST /plans/nightly-orders/runs -> HTTP 202: run (\w+)\n", out)
    assert run_id is not None
    # Not a terminal: a line each time a source's status changes (as often as it is looked at), the last
    # with its RTO once it has ended.
    assert "   #00 orders-prod  -> orders-verify   COMPLETED  RTO 1 min 05 s\n" in out
    assert "   #01 billing-prod -> billing-verify  COMPLETED  RTO 1 min 05 s\n" in out
    # The summary message's report: its table of sources, status and RTO.
    assert "Report   Verification SUCCEEDED: nightly-orders 2/2 restored\n" in out
    assert re.search(r"#  SOURCE +TARGET +SNAPSHOT \(UTC\) +STATUS +RTO +OBJECTIVE", out)
    assert re.search(r"0  orders-prod +orders-verify +\S+ \S+ +COMPLETED  65 s  met", out)
    assert f"Outcome  SUCCEEDED  2/2 restored  (run {run_id.group(1)})\n" in out
    assert "Notified SNS: Verification SUCCEEDED: nightly-orders 2/2 restored\n" in out
    assert "Event    EventBridge: Flex Verification Run Completed (flexrestore.runs)\n" in out
    assert "Event    EventBridge: 2 x Flex Restore Succeeded (flexrestore.restores)\n" in out
    assert f"Logs     {log}" in out
    assert '"level"' not in out and '"level":"INFO"' in log.read_text()


def test_on_a_terminal_the_sources_lines_rewrite_themselves_in_place() -> None:
    import io

    from flexrestore.local.plan_flow import RunProgress, SourceProgress
    from flexrestore.local.view import RunView

    screen = io.StringIO()
    view = RunView(screen, live=True, size=(100, 40))
    running = SourceProgress(7, "fleet-08", "fleet-08-verify", "RUNNING", 250.0, ended=False, error=None)
    done = SourceProgress(7, "fleet-08", "fleet-08-verify", "COMPLETED", 905.0, ended=True, error=None)
    view.progress(RunProgress("r1", 250.0, (running,), 12))
    view.progress(RunProgress("r1", 905.0, (done,), 20))

    text = screen.getvalue()
    assert "   #07 fleet-08 -> fleet-08-verify  RUNNING  4 min 10 s\n" in text
    assert "\x1b[2A" in text  # back over the block (its head line and the source), then drawn again
    assert text.rstrip("\n").endswith("   #07 fleet-08 -> fleet-08-verify  COMPLETED  RTO 15 min 05 s")


def test_a_schedule_sample_with_its_plan_runs_as_the_schedule_would(
    capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    event = json.loads((EVENTS / "schedule-plan-run.json").read_text())
    event["plan"] = event["requestedBy"]["schedule"] = "nightly-orders"
    schedule_input = tmp_path / "schedule-orders.json"
    schedule_input.write_text(json.dumps(event))

    result = run_plan_json(capfd, "--plan", str(ORDERS_PLAN), "--event", str(schedule_input))

    assert result["requestedBy"]["trigger"] == "schedule"
    assert result["requestedBy"]["schedule"] == "nightly-orders"
    # Started by EventBridge Scheduler, not the API: the run is named after its execution.
    assert result["executionArn"].endswith(f":{result['runId']}")
    assert (result["finalStatus"], result["summary"]["completed"]) == ("SUCCEEDED", 2)

    assert cli.main(["--plan", str(ORDERS_PLAN), "--event", str(schedule_input)]) == 0
    out, _ = capfd.readouterr()
    assert f"run by its schedule, with {schedule_input} as the schedule's input" in out
    assert re.search(r"Run      schedule nightly-orders fired: run \w+\n", out)


def test_a_bad_plan_gets_the_apis_400_naming_each_field(
    capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    plan = json.loads(FLEET_PLAN.read_text())
    plan["maxConcurrency"] = 50
    plan["snapshot"] = {"choice": "RANDOM_WITHIN_WINDOW", "windowDays": 0}
    plan["sources"].append({"groupId": "not-a-project", "clusterName": "orders-prod"})
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(plan))

    refused = run_plan_json(capfd, "--plan", str(bad), code=6)  # refused: nothing was saved, nothing ran
    assert tuple(refused) == cli.PLAN_REFUSED_KEYS
    assert (refused["plan"], refused["http_status"]) == ("nightly-fleet", 400)
    assert refused["response"]["errorCode"] == "INVALID_REQUEST"
    fields = {error["field"] for error in refused["response"]["errors"]}
    assert fields >= {"maxConcurrency", "snapshot.windowDays", "sources[1].groupId"}

    assert cli.main(["--plan", str(bad)]) == 6
    out, err = capfd.readouterr()
    assert "Refused  PUT /plans/nightly-fleet -> HTTP 400 INVALID_REQUEST: the plan is not valid" in out
    for error in refused["response"]["errors"]:
        assert f"           {error['field']}: {error['message']}\n" in out
    assert "nothing was saved and nothing ran" in out
    assert err == ""


@pytest.mark.parametrize(
    ("plan", "code"),
    [
        # every source completed within the objective
        ({"snapshot": {"choice": "LATEST"}}, 0),
        # no source completed: the only one has no COMPLETED snapshot in the window
        (
            {
                "snapshot": {"choice": "RANDOM_WITHIN_WINDOW", "windowDays": 7},
                "sources": [
                    {
                        "groupId": "6700f1eea10000000000a001",
                        "clusterName": "fleet-13",
                        "targetDeploymentItemName": "fleet-13-verify",
                    }
                ],
            },
            9,
        ),
    ],
)
def test_fail_on_outcome_exits_with_the_runs_ending(
    capfd: pytest.CaptureFixture[str], tmp_path: Path, plan: dict[str, Any], code: int
) -> None:
    document = {
        "name": "local-check",
        "sources": [
            {
                "groupId": "65f1a2b3c4d5e6f708192a3b",
                "clusterName": "orders-prod",
                "targetDeploymentItemName": "orders-verify",
            }
        ],
        **plan,
    }
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(document))

    result = run_plan_json(capfd, "--plan", str(path))  # without it: the flow ran, whatever the outcome
    assert result["finalStatus"] == {0: "SUCCEEDED", 9: "FAILED"}[code]
    run_plan_json(capfd, "--plan", str(path), "--fail-on-outcome", code=code)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--event", str(EVENTS / "schedule-plan-run.json")],
            "is what a plan's schedule sends to the run state machine",
        ),
        (
            ["--plan", str(FLEET_PLAN), "--event", str(EVENTS / "api-post-restore.json")],
            "with --plan, --event must be what the plan's schedule sends",
        ),
        (
            ["--plan", str(ORDERS_PLAN), "--event", str(EVENTS / "schedule-plan-run.json")],
            "runs the plan 'nightly-fleet', but",
        ),
        (["--plan", "no/such/plan.yaml"], "cannot read the plan file no/such/plan.yaml"),
        (["--plan", str(REPO / "README.md")], "is not JSON"),
        (["--plan", str(EVENTS / "alarm-into-ok.json")], "has no name: a plan is saved as PUT /plans/{name}"),
    ],
)
def test_plan_usage_errors_say_what_to_fix(
    capfd: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code = cli.main(args)
    out, err = capfd.readouterr()
    assert code == 2
    assert message in err
    assert "Traceback" not in err and out == ""


def test_a_plan_file_that_is_not_yaml_says_where(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    plan = tmp_path / "broken.yml"
    plan.write_text("name: broken\nsources: [\n  - groupId: x\n")

    assert cli.main(["--plan", str(plan)]) == 2
    out, err = capfd.readouterr()
    assert f"flexrestore-local: {plan} is not YAML (" in err and "at line 3, column " in err
    assert out == ""


def test_a_schedule_sample_needs_a_plan_with_a_schedule(
    capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    plan = json.loads(FLEET_PLAN.read_text())
    del plan["schedule"]
    path = tmp_path / "unscheduled.json"
    path.write_text(json.dumps(plan))

    assert cli.main(["--plan", str(path), "--event", str(EVENTS / "schedule-plan-run.json")]) == 2
    _, err = capfd.readouterr()
    assert "has no schedule to fire" in err


# --- the demo's plans -------------------------------------------------------------------------------------


def test_the_demo_runs_the_fleet_plan_and_the_schedule_sample_with_it(
    capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from flexrestore.simulator import FLEET

    events, plans = tmp_path / "events", tmp_path / "plans"
    events.mkdir()
    plans.mkdir()
    shutil.copy(EVENTS / "schedule-plan-run.json", events)
    # The fleet plan with three of its sources (one on time, one over its RTO, one refused): the whole fleet
    # runs in test_the_fleet_plan_runs_once_and_answers_its_run_record; here the demo runs it twice.
    plan = json.loads(FLEET_PLAN.read_text())
    plan["sources"] = [
        {"groupId": FLEET.group_id, "clusterName": name, "targetDeploymentItemName": FLEET.target_of(name)}
        for name in ("fleet-07", FLEET.slow_source, FLEET.protected_target_source)
    ]
    (plans / FLEET_PLAN.name).write_text(json.dumps(plan))

    assert demo.main(["--events", str(events), "--plans", str(plans)]) == 0
    out, _ = capfd.readouterr()

    assert "run by its schedule, with " in out and "schedule-plan-run.json as the schedule's input" in out
    assert "Run      schedule nightly-fleet fired: run " in out
    assert "Run      POST /plans/nightly-fleet/runs -> HTTP 202: run " in out
    assert out.count("Report   Verification PARTIAL: nightly-fleet 2/3 restored, 1 over RTO\n") == 2
    header, *summary = out.split("== Summary:")[1].strip().splitlines()
    assert header.startswith("2 runs in ")
    tail = (
        r"PARTIAL    2/3 restored, 1 over RTO, 1 refused  RTO median 8 min 05 s, longest 15 min 05 s  "
        r"\d+ Atlas calls  \d+ state transitions \(\+\d+ in restores\)  \d+ min \d\d s on the clock"
    )
    assert re.fullmatch(r"schedule-plan-run\.json \(nightly-fleet\) +" + tail, summary[0])
    assert re.fullmatch(r"plan nightly-fleet +" + tail, summary[1])


def test_the_demo_says_when_a_plan_is_refused_or_missing(
    capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    events, plans = tmp_path / "events", tmp_path / "plans"
    events.mkdir()
    plans.mkdir()
    shutil.copy(EVENTS / "alarm-into-ok.json", events)
    (plans / "bad.yaml").write_text("name: bad\nmaxConcurrency: 50\nsources: []\n")

    assert demo.main(["--events", str(events), "--plans", str(plans)]) == 0
    out, _ = capfd.readouterr()
    summary = out.split("== Summary:")[1].strip().splitlines()[1:]
    assert re.fullmatch(
        r"plan bad +REFUSED    HTTP 400  INVALID_REQUEST  maxConcurrency, sources  nothing ran", summary[1]
    )

    shutil.copy(EVENTS / "schedule-plan-run.json", events)  # its plan, nightly-fleet, is not in plans/
    assert demo.main(["--events", str(events), "--plans", str(plans)]) == 2
    _, err = capfd.readouterr()
    assert "schedule-plan-run.json runs the plan 'nightly-fleet', which is not in " in err


def test_an_ephemeral_plan_leaves_no_cluster_of_its_own_and_shows_a_failed_validation(
    capfd: pytest.CaptureFixture[str],
) -> None:
    from flexrestore.simulator import FLEET

    # examples/plans/ephemeral-fleet.json: local mode's stand-in for its validator finds fleet-07 empty.
    plan = PLANS / "ephemeral-fleet.json"
    result = run_plan_json(capfd, "--plan", str(plan), "--fail-on-outcome", code=8)

    assert result["finalStatus"] == "PARTIAL"
    assert result["summary"]["validationFailed"] == 1 and result["summary"]["clusterHours"] > 0
    verdicts = {s["clusterName"]: s["validation"]["status"] for s in result["sources"]}
    assert len(verdicts) == 12 and [c for c, v in verdicts.items() if v != "SUCCEEDED"] == ["fleet-07"]
    for source in result["sources"]:
        target = source["target"]
        assert target["ephemeral"] is True and target["name"].startswith(FLEET.ephemeral_prefix)
        assert target["deletedAt"] is not None
    # Every cluster the run made is gone; the decoy it did not make is still there.
    assert result["clusters_left"] == [FLEET.decoy_cluster]
