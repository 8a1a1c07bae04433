"""``flexrestore plan ...`` and ``flexrestore run ...`` end to end, without AWS: signed requests through the
offline front to the real intake, the plan's runs through the executed run and restore state machines on the
simulator's FLEET, on the virtual clock."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from flexrestore.cli import exit_codes
from flexrestore.cli.main import main
from flexrestore.simulator import FLEET
from tests.e2e.operator_support import Deployed, deployed

FAST = ("--interval", "0.05")


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Deployed]:
    with deployed(tmp_path) as service:
        yield service


def source(cluster: str) -> dict[str, str]:
    return {
        "groupId": FLEET.group_id,
        "clusterName": cluster,
        "targetDeploymentItemName": FLEET.target_of(cluster),
    }


def write_plan(folder: Path, name: str, clusters: list[str], **extra: object) -> Path:
    path = folder / f"{name}.json"
    path.write_text(json.dumps({"name": name, "sources": [source(c) for c in clusters], **extra}))
    return path


def test_apply_creates_updates_and_leaves_plans_alone_and_list_and_get_show_them(
    service: Deployed, tmp_path: Path
) -> None:
    json_plan = write_plan(tmp_path, "nightly-a", ["fleet-01"])
    yaml_plan = tmp_path / "nightly-b.yaml"
    yaml_plan.write_text(
        "name: nightly-b\n"
        "schedule:\n  expression: cron(0 3 * * ? *)\n  timezone: Europe/Berlin\n"
        "maxConcurrency: 2\n"
        f"sources:\n  - groupId: {FLEET.group_id}\n    clusterName: fleet-02\n"
        "    targetDeploymentItemName: fleet-02-verify\n"
    )

    applied = service.run("plan", "apply", str(json_plan), str(yaml_plan))
    assert applied.code == exit_codes.OK, applied.err
    assert applied.out.splitlines() == [
        "created  nightly-a (revision 1)",
        "created  nightly-b (revision 1, scheduled cron(0 3 * * ? *))",
    ]
    assert [s["name"] for s in service.stack.schedules()] == ["nightly-b"]

    write_plan(tmp_path, "nightly-a", ["fleet-01", "fleet-03"], maxConcurrency=2)
    again = service.run("plan", "apply", str(json_plan), str(yaml_plan))
    assert again.out.splitlines() == [
        "updated  nightly-a: maxConcurrency, sources (+1 -0) (revision 2)",
        "unchanged nightly-b (revision 1)",
    ]

    listed = service.run("plan", "list")
    header, *rows = listed.out.splitlines()
    assert header.split() == ["NAME", "REVISION", "SCHEDULE", "SOURCES", "UPDATED", "AT"]
    assert [r.split()[:3] for r in rows] == [["nightly-a", "2", "on"], ["nightly-b", "1", "cron(0"]]

    got = service.run("plan", "get", "nightly-b", "-o", "json")
    document = json.loads(got.out)
    assert document["plan"]["schedule"] == {"expression": "cron(0 3 * * ? *)", "timezone": "Europe/Berlin"}
    assert document["updatedBy"].endswith(":user/operator")


def test_a_refused_plan_names_each_field_and_the_others_are_applied(
    service: Deployed, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "bad", "maxConcurrency": 99, "sources": [{"groupId": "x"}]}))
    good = write_plan(tmp_path, "good", ["fleet-01"])

    applied = service.run("plan", "apply", str(bad), str(good))

    assert applied.code == exit_codes.REFUSED
    assert applied.out.splitlines() == ["created  good (revision 1)"]
    assert "refused  bad" in applied.err
    assert "  maxConcurrency: must be a whole number from 1 to 20" in applied.err
    assert "  sources[0].groupId: " in applied.err


def test_an_unreadable_plan_file_is_bad_usage_and_nothing_is_applied(
    service: Deployed, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    good = write_plan(tmp_path, "good", ["fleet-01"])
    applied = service.run("plan", "apply", str(good), str(broken))
    assert applied.code == exit_codes.USAGE
    assert "broken.json: not valid JSON" in applied.err
    assert service.run("plan", "list").out == "No plans.\n"


def test_run_watch_exits_0_when_every_source_is_verified_and_shows_the_sources(
    service: Deployed, tmp_path: Path
) -> None:
    service.run("plan", "apply", str(write_plan(tmp_path, "two", ["fleet-01", "fleet-02"])))

    watched = service.run("plan", "run", "two", "--watch", *FAST)

    assert watched.code == exit_codes.OK, watched.err
    lines = watched.out.splitlines()
    run_id = lines[0].split()[1]
    assert f"Run       {run_id}  SUCCEEDED" in watched.out
    assert "Verified  2 of 2 (2 completed, 0 refused, 0 over the RTO objective)" in watched.out
    table = lines[lines.index("") + 1 :]
    assert table[0].split() == ["#", "SOURCE", "TARGET", "STATUS", "RTO", "OBJECTIVE", "ERROR"]
    assert [row.split()[1:4] for row in table[1:]] == [
        ["fleet-01", "fleet-01-verify", "COMPLETED"],
        ["fleet-02", "fleet-02-verify", "COMPLETED"],
    ]

    listed = service.run("run", "list", "--plan", "two", "-o", "json")
    assert [r["runId"] for r in json.loads(listed.out)["runs"]] == [run_id]
    got = service.run("run", "get", run_id, "-o", "json")
    assert json.loads(got.out)["summary"]["verified"] == 2


def test_a_partial_run_exits_with_its_own_code(service: Deployed, tmp_path: Path) -> None:
    # fleet-05's target carries the protected tag: refused, so the run is PARTIAL.
    service.run("plan", "apply", str(write_plan(tmp_path, "partial", ["fleet-04", "fleet-05"])))
    started = service.run("plan", "run", "partial", "-o", "json")
    assert started.code == exit_codes.OK
    run_id = json.loads(started.out)["runId"]

    watched = service.run("run", "watch", run_id, *FAST, "-o", "json")

    assert watched.code == exit_codes.RUN_PARTIAL == 8
    record = json.loads(watched.out)
    assert record["finalStatus"] == "PARTIAL" and record["summary"]["refused"] == 1


def test_delete_removes_the_plan_and_its_schedule(service: Deployed, tmp_path: Path) -> None:
    plan = write_plan(tmp_path, "gone", ["fleet-01"], schedule={"expression": "rate(1 day)"})
    service.run("plan", "apply", str(plan))
    deleted = service.run("plan", "delete", "gone")
    assert deleted.code == 0 and deleted.out == "deleted  gone and its schedule gone\n"
    assert service.stack.schedules() == []
    missing = service.run("plan", "get", "gone")
    assert missing.code == exit_codes.REFUSED and "no plan 'gone'" in missing.err


@pytest.mark.parametrize("args", [["plan"], ["plan", "apply"], ["run"], ["run", "watch"], ["plan", "run"]])
def test_every_plan_and_run_level_has_help_with_the_exit_codes(
    capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    assert main([*args, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: flexrestore")
    assert "8  a watched verification run ended PARTIAL" in out
    assert "9  a watched verification run ended FAILED" in out
