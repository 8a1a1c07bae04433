"""Cold start (configuration checks, what gets imported) and the intake's last-resort behaviours."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from flexrestore.local.harness import OfflineStack
from flexrestore.simulator import DEMO
from tests.integration.intake_support import (
    RECOVERY_PLANS,
    answer,
    creates,
    emf,
    load,
    restore_items,
)


def import_handler(**env: str) -> subprocess.CompletedProcess[str]:
    """Import the handler in a fresh interpreter (a Lambda cold start) with this environment."""
    code = (
        "import sys, flexrestore.handlers.intake\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('aws_xray_sdk', 'boto3', 'httpx')))\n"
        "print('aws_lambda_powertools.event_handler' in sys.modules)\n"
    )
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("RECOVERY_", "PROTECTED_", "POWERTOOLS_"))
    }
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cold_start_imports_no_aws_sdk_http_client_tracer_or_resolver() -> None:
    # aws_xray_sdk (~300 ms) only when tracing is on; boto3, httpx and the API resolver on first use.
    started = import_handler(POWERTOOLS_TRACE_DISABLED="true", RECOVERY_PLANS=RECOVERY_PLANS)
    assert started.returncode == 0, started.stderr
    assert started.stdout.splitlines() == ["[]", "False"]


def test_broken_recovery_plan_fails_the_cold_start_naming_the_alarm() -> None:
    plans = json.dumps({"orders-prod-data-loss": {"groupId": DEMO.group_id, "clusterName": "orders prod"}})
    started = import_handler(RECOVERY_PLANS=plans)
    assert started.returncode != 0
    assert "RecoveryPlanError" in started.stderr
    assert "alarm 'orders-prod-data-loss'" in started.stderr
    assert "clusterName must be a Flex cluster name" in started.stderr
    assert "targetDeploymentItemName is required" in started.stderr


def test_recovery_plan_into_a_protected_target_fails_the_cold_start() -> None:
    started = import_handler(RECOVERY_PLANS=RECOVERY_PLANS, PROTECTED_TARGETS="orders-dr")
    assert started.returncode != 0
    assert "recovery plan 'orders-prod-data-loss'" in started.stderr
    assert "PROTECTED_TARGETS" in started.stderr


def test_unexpected_error_is_a_500_with_the_request_id_and_no_trace(
    stack: OfflineStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flexrestore.aws.store import RestoreStore

    def broken(self: Any, record: Any) -> None:
        raise RuntimeError("internal detail that must stay in the logs")

    monkeypatch.setattr(RestoreStore, "create", broken)
    event = load("api-post-restore.json")
    status, body, _ = answer(stack.invoke("intake", event))
    assert (status, body["errorCode"]) == (500, "INTERNAL_ERROR")
    assert event["requestContext"]["requestId"] in body["message"]
    assert "internal detail" not in json.dumps(body) and "Traceback" not in json.dumps(body)
    # The failed attempt released nothing it did not hold and left a retry possible.
    monkeypatch.undo()
    assert answer(stack.invoke("intake", event))[0] in (202, 409)


class HardCrash(BaseException):
    """Not an Exception: like a Lambda killed mid-flight, nothing gets to clean up."""


def test_a_hard_crash_holds_the_event_only_as_long_as_its_invocation_could_have_run(
    stack: OfflineStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from flexrestore.aws.clients import client
    from flexrestore.aws.executions import Executions
    from flexrestore.triggers.eventbridge import IntakeFailed

    event = load("alarm-into-alarm.json")
    real_start = Executions.start_execution

    def crash(self: Any, name: str, execution_input: Any) -> str:
        raise HardCrash

    # A crash after the record, before the start: Lambda killed it (nothing cleaned up) ...
    monkeypatch.setattr(Executions, "start_execution", crash)
    before = time.time()
    with pytest.raises(HardCrash):
        stack.invoke("intake", event)
    monkeypatch.setattr(Executions, "start_execution", real_start)
    # ... its claim on the event holds for as long as that invocation could have run (the intake's 28 s
    # timeout, from template.yaml), so a duplicate right now is told to retry later;
    (claim,) = client("dynamodb").scan(TableName="flexrestore-idempotency")["Items"]
    expires_ms = int(claim["in_progress_expiration"]["N"])
    assert before * 1000 + 25_000 <= expires_ms <= time.time() * 1000 + 28_000
    with pytest.raises(IntakeFailed, match="already being handled"):
        stack.invoke("intake", event)
    assert creates(stack) == [] and stack.executions() == []

    # once the claim has lapsed (DynamoDB's TTL removes it), Lambda's retry goes on with the same restore.
    client("dynamodb").delete_item(TableName="flexrestore-idempotency", Key={"id": claim["id"]})
    result = stack.invoke("intake", event)

    assert result["statusCode"] == 202
    (record,) = restore_items(stack)
    assert record["restoreId"] == result["restoreId"]
    assert stack.wait_for_execution(result["executionArn"])["status"] == "SUCCEEDED"
    assert len(creates(stack)) == 1 and len(stack.executions()) == 1


def test_accepted_restores_are_counted_once_by_trigger(
    stack: OfflineStack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.invoke("intake", load("alarm-into-alarm.json"))
    stack.invoke("intake", load("alarm-into-alarm.json"))  # a duplicate delivery: not counted
    stack.invoke("intake", load("api-post-restore.json"))
    counted = sorted(m["trigger"] for m in emf(capsys.readouterr().out, "RestoreRequested"))
    assert counted == ["alarm", "api"]


def test_log_lines_carry_the_correlation_id(stack: OfflineStack, capsys: pytest.CaptureFixture[str]) -> None:
    from flexrestore.handlers import intake

    # The powertools handler writes to the stream it was given at import: point it at this test's stdout.
    handler = intake.logger.registered_handler
    previous = handler.setStream(sys.stdout)  # type: ignore[attr-defined]
    try:
        event = load("alarm-into-alarm.json")
        stack.invoke("intake", event)
    finally:
        handler.setStream(previous)  # type: ignore[attr-defined]
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"level"')]
    intake_lines = [line for line in lines if line.get("function_name") == "flexrestore-intake"]
    assert intake_lines
    assert {line["correlation_id"] for line in intake_lines} == {event["id"]}
    assert any(line["message"].endswith(" accepted") for line in intake_lines)


def test_idempotency_store_outage_is_503_and_creates_nothing(stack: OfflineStack) -> None:
    from flexrestore.aws.clients import client

    client("dynamodb").delete_table(TableName="flexrestore-idempotency")
    status, body, headers = answer(stack.invoke("intake", load("api-post-restore.json")))
    assert (status, body["errorCode"]) == (503, "STORE_UNAVAILABLE") and headers["Retry-After"]
    assert creates(stack) == [] and restore_items(stack) == []


@pytest.mark.parametrize(
    ("disabled", "installed", "expected"),
    [
        ("1", True, False),
        ("true", True, False),
        ("false", True, True),
        (None, True, True),
        (None, False, False),
    ],
)
def test_tracing_only_when_enabled_and_installed(
    monkeypatch: pytest.MonkeyPatch, disabled: str | None, installed: bool, expected: bool
) -> None:
    from flexrestore import tracing

    if disabled is None:
        monkeypatch.delenv("POWERTOOLS_TRACE_DISABLED", raising=False)
    else:
        monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", disabled)
    monkeypatch.setattr(tracing.importlib.util, "find_spec", lambda name: object() if installed else None)
    assert tracing.enabled() is expected
