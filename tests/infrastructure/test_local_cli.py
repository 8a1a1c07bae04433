"""Local mode as a user runs it: `flexrestore-local` and the demo, on the sample events in events/."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from flexrestore.local import cli, demo
from flexrestore.local.flow import run_flow
from flexrestore.local.inputs import load_event
from tests.infrastructure.checks import REPO

EVENTS = REPO / "events"


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

    code = demo.main(["--events", str(tmp_path)])
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

    assert demo.main(["--events", str(tmp_path)]) == 0
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
    for line in ("3   FAILED", "4   TIMED_OUT", "5   ERROR", "6   REFUSED"):
        assert line in out
