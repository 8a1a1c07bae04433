"""The ``flexrestore`` command end to end, without AWS: it finds the (moto) CloudFormation stack by name,
reads its ApiUrl output, signs with the profile's credentials, and the offline front verifies the signature
and hands the request to the real intake; the restore runs to its end on the virtual clock in the
background."""

from __future__ import annotations

import ast
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from flexrestore.cli import exit_codes
from flexrestore.cli.main import main
from flexrestore.local.front import ASSUMED_OPERATOR, AUDITOR, OPERATOR
from flexrestore.simulator import DEMO
from tests.e2e.operator_support import PROFILES, Deployed, deployed
from tests.infrastructure.checks import REPO

START = (
    "restore",
    "start",
    "--group",
    DEMO.group_id,
    "--cluster",
    DEMO.source_cluster,
    "--target",
    DEMO.scratch_target,
    "--reason",
    "verify last night's backup",
)
FAST = ("--interval", "0.05")  # real seconds between looks; the restore itself runs on the virtual clock


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Deployed]:
    with deployed(tmp_path) as service:
        yield service
        _assert_no_secret_shown(service)


def _assert_no_secret_shown(service: Deployed) -> None:
    secrets = [p.secret_access_key for p in PROFILES.values()] + [DEMO.client_secret, DEMO.private_key]
    secrets += [p.session_token for p in PROFILES.values() if p.session_token]
    for run in service.runs:
        for secret in secrets:
            assert secret not in run.out and secret not in run.err


def _json_only(text: str) -> Any:
    """The whole of stdout is one JSON document."""
    return json.loads(text)


def test_start_watch_get_and_list_a_restore(service: Deployed) -> None:
    started = service.run(*START)
    assert started.code == 0, started.err
    restore_id = next(line.split()[1] for line in started.out.splitlines() if line.startswith("Restore "))
    assert f"Location   /restores/{restore_id}" in started.out
    assert f"Follow it:  flexrestore restore watch {restore_id}" in started.out
    assert started.err == ""

    watched = service.run("restore", "watch", restore_id, *FAST)
    assert watched.code == exit_codes.OK, watched.err
    assert (
        f"{restore_id}  {DEMO.group_id}/{DEMO.source_cluster} -> {DEMO.scratch_target}  Atlas " in watched.out
    )
    assert "elapsed " in watched.out
    assert f"Restore    {restore_id}  COMPLETED" in watched.out
    assert "RTO        1 min 05 s (Atlas restore itself 1 min 00 s)" in watched.out

    got = service.run("restore", "get", restore_id, "-o", "json")
    assert got.code == 0
    record = _json_only(got.out)
    assert record["restoreId"] == restore_id and record["finalStatus"] == "COMPLETED"
    assert record["requestedBy"]["caller"] == OPERATOR.arn  # the front's verified principal
    assert record["reason"] == "verify last night's backup"

    listed = service.run("restore", "list", "--cluster", DEMO.source_cluster, "--limit", "5", "-o", "json")
    assert listed.code == 0
    assert [r["restoreId"] for r in _json_only(listed.out)["restores"]] == [restore_id]

    table = service.run("restore", "list")
    assert table.code == 0
    header, row = table.out.splitlines()[:2]
    assert header.split() == ["RESTORE", "ID", "REQUESTED", "AT", "SOURCE", "TARGET", "STATUS", "RTO"]
    assert row.split()[0] == restore_id and "COMPLETED" in row and row.endswith("1 min 05 s")

    # Every request went through the signed front as the operator.
    assert {call.principal for call in service.front.calls} == {OPERATOR.arn}


def test_start_with_watch_exits_0_only_when_completed_and_json_is_the_final_record(
    service: Deployed,
) -> None:
    run = service.run(*START, "--watch", *FAST, "-o", "json")

    assert run.code == exit_codes.OK, run.err
    record = _json_only(run.out)
    assert record["finalStatus"] == "COMPLETED" and record["durationSeconds"] == 65
    assert run.err == ""


def test_a_failed_restore_exits_with_the_failed_code(tmp_path: Path) -> None:
    with deployed(tmp_path, scenario="fail") as service:
        run = service.run(*START, "--watch", *FAST)
        assert run.code == exit_codes.FAILED == 3, run.err
        assert "FAILED" in run.out and "ATLAS_RESTORE_FAILED" in run.out

        restore_id = next(line.split()[1] for line in run.out.splitlines() if line.startswith("Restore "))
        again = service.run("restore", "watch", restore_id, *FAST, "-o", "json")
        assert again.code == exit_codes.FAILED
        assert _json_only(again.out)["finalStatus"] == "FAILED"
        _assert_no_secret_shown(service)


def test_a_protected_target_is_refused_with_the_guards_message(tmp_path: Path) -> None:
    with deployed(tmp_path, env={"PROTECTED_TARGETS": DEMO.scratch_target}) as service:
        run = service.run(*START, "--watch")
        assert run.code == exit_codes.REFUSED == 6
        assert run.out == ""
        assert run.err.startswith("flexrestore: start: refused (403 PROTECTED_TARGET): ")
        assert DEMO.scratch_target in run.err

        as_json = service.run(*START, "-o", "json")
        assert as_json.code == exit_codes.REFUSED
        error = _json_only(as_json.out)["error"]
        assert (error["statusCode"], error["errorCode"]) == (403, "PROTECTED_TARGET")

        dry = service.run(*START, "--dry-run")
        assert dry.code == exit_codes.REFUSED  # it would be refused
        assert "Dry run: the restore would be refused (403" in dry.out
        assert any(line.split()[:2] == ["protected-name", "REFUSE"] for line in dry.out.splitlines())
        creates = [c for c in service.stack.atlas_calls() if c["path"].endswith("/restoreJobs")]
        assert service.stack.atlas_calls() and not creates  # looked at Atlas, created nothing
        _assert_no_secret_shown(service)


def test_a_dry_run_shows_every_verdict_and_creates_nothing(service: Deployed) -> None:
    run = service.run(*START, "--dry-run")

    assert run.code == 0, run.err
    assert run.out.startswith("Dry run: a restore would be created\n")
    assert "GUARD" in run.out and "target-lock      pass" in run.out
    assert service.stack.executions() == []

    data = _json_only(service.run(*START, "--dry-run", "-o", "json").out)
    assert data["dryRun"] is True and data["allowed"] is True


def test_the_same_idempotency_key_gets_the_first_answer(service: Deployed) -> None:
    first = service.run(*START, "--idempotency-key", "nightly-2026-11-01", "-o", "json")
    again = service.run(*START, "--idempotency-key", "nightly-2026-11-01", "-o", "json")

    assert first.code == again.code == 0
    assert _json_only(first.out)["restoreId"] == _json_only(again.out)["restoreId"]
    assert _json_only(first.out)["location"] == f"/restores/{_json_only(first.out)['restoreId']}"
    assert len(service.stack.executions()) == 1


def test_an_unknown_restore_is_a_refusal_naming_it(service: Deployed) -> None:
    run = service.run("restore", "get", "0" * 32)

    assert run.code == exit_codes.REFUSED
    assert "404 RESTORE_NOT_FOUND" in run.err and "0" * 32 in run.err
    assert run.out == ""


def test_temporary_credentials_sign_with_their_session_token(service: Deployed) -> None:
    run = service.run(*START, "-o", "json", profile="alice")

    assert run.code == 0, run.err
    assert _json_only(run.out)["requestedBy"]["caller"] == ASSUMED_OPERATOR.arn


def test_a_caller_without_execute_api_invoke_is_told_so(service: Deployed) -> None:
    run = service.run("restore", "list", profile="auditor")

    assert run.code == exit_codes.NOT_AUTHORIZED == 7
    assert f"User: {AUDITOR.arn} is not authorized to perform: execute-api:Invoke" in run.err
    assert "AccessDeniedException" in run.err
    assert run.out == ""


def test_a_wrong_secret_is_a_signature_mismatch(service: Deployed) -> None:
    run = service.run("restore", "list", "-o", "json", profile="wrong-secret")

    assert run.code == exit_codes.NOT_AUTHORIZED
    assert "The request signature we calculated does not match" in run.err
    assert _json_only(run.out)["error"]["statusCode"] == 403  # stdout stays JSON


def test_a_missing_stack_is_a_clear_error(service: Deployed) -> None:
    run = service.run("restore", "list", stack="no-such-stack")

    assert run.code == exit_codes.TOOL_ERROR
    assert run.err == (
        "flexrestore: no CloudFormation stack 'no-such-stack' in us-east-1: check --stack (or "
        "FLEXRESTORE_STACK) and --region, or deploy it with `sam deploy`\n"
    )
    assert run.out == ""


def test_the_stack_name_comes_from_flexrestore_stack(service: Deployed) -> None:
    with mock.patch.dict(os.environ, {"FLEXRESTORE_STACK": "flexrestore-test"}):
        run = service.run("restore", "list", "-o", "json", stack=None)
    assert run.code == 0, run.err
    assert _json_only(run.out) == {"restores": [], "nextToken": None}


def test_api_url_skips_the_stack_lookup(service: Deployed) -> None:
    run = service.run("restore", "list", "--api-url", service.front.api_url, stack="no-such-stack")
    assert run.code == 0, run.err
    assert run.out == "No restores.\n"

    with mock.patch.dict(os.environ, {"FLEXRESTORE_API_URL": service.front.api_url}):
        run = service.run("restore", "list", stack="no-such-stack")
    assert run.code == 0, run.err


def test_missing_credentials_are_a_clear_error(tmp_path: Path) -> None:
    empty = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("AWS_") and name not in ("FLEXRESTORE_STACK", "FLEXRESTORE_API_URL")
    }
    empty |= {
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_REGION": "us-east-1",
    }
    with mock.patch.dict(os.environ, empty, clear=True):
        import io

        out, err = io.StringIO(), io.StringIO()
        code = main(["restore", "list", "--stack", "flexrestore"], stdout=out, stderr=err)
        assert code == exit_codes.TOOL_ERROR
        assert err.getvalue().startswith("flexrestore: no AWS credentials found: pass --profile NAME")
        assert out.getvalue() == ""

        code = main(["restore", "list", "--profile", "nobody"], stdout=out, stderr=err)
        assert code == exit_codes.TOOL_ERROR
        assert "no AWS profile named 'nobody'" in err.getvalue()


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["restore"],
        ["restore", "start"],
        ["restore", "get"],
        ["restore", "watch", "x", "--interval", "0"],
        ["restore", "list", "-o", "yaml"],
        ["plan"],
    ],
)
def test_bad_usage_exits_2(capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    import io

    err = io.StringIO()
    assert main(args, stderr=err) == exit_codes.USAGE
    printed = capsys.readouterr().err + err.getvalue()
    assert "usage: flexrestore" in printed
    assert "Traceback" not in printed


@pytest.mark.parametrize(
    "args",
    [[], ["restore"], ["restore", "start"], ["restore", "get"], ["restore", "list"], ["restore", "watch"]],
)
def test_every_level_has_help_with_the_exit_codes(
    capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    assert main([*args, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: flexrestore")
    assert "exit codes:" in out and "3  the restore ended FAILED" in out
    assert "7  not authorized by API Gateway" in out
    if args[1:]:
        assert "--stack NAME" in out and "-o {table,json}" in out and "--profile NAME" in out


def test_the_command_imports_neither_local_mode_nor_the_simulator() -> None:
    """It is installed where local mode and the simulator are not (their dependencies are test extras)."""
    for path in sorted((REPO / "src" / "flexrestore" / "cli").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for name in names:
                assert not name.startswith(("flexrestore.local", "flexrestore.simulator", "moto")), (
                    f"{path.name} imports {name}"
                )
