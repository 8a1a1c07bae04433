"""Verification plans: what a plan may say (each bad field named, never its value), the guards a plan's
targets pass when it is saved, and the sources a run resolves from the plan and the listed clusters."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from flexrestore.contracts.plan import ExplicitSource, Plan, TagSelector
from flexrestore.domain.guards import GuardConfig, ProtectedTarget
from flexrestore.domain.plans import (
    CLUSTERS_NOT_LISTED,
    DUPLICATE_SOURCE,
    INVALID_CLUSTER_NAME,
    INVALID_TARGET_NAME,
    NO_MATCHING_CLUSTER,
    SOURCE_IS_TARGET,
    TARGET_COLLISION,
    TARGET_IS_SOURCE,
    TOO_MANY_SOURCES,
    PlannedSource,
    parse_plan,
    resolve_sources,
    restorable,
    target_problems,
    validate_plan,
)
from flexrestore.domain.request import InvalidRequest, parse_request
from tests.fakes import GROUP, ListedCluster

OTHER = "65f1a2b3c4d5e6f708192a3c"
THIRD = "65f1a2b3c4d5e6f708192a3d"
EXPLICIT = {
    "groupId": GROUP,
    "clusterName": "orders-prod",
    "targetDeploymentItemName": "orders-verify",
    "targetProjectId": GROUP,
}
SELECTOR = {
    "groupId": GROUP,
    "tag": {"key": "verify", "value": "nightly"},
    "targetDeploymentItemName": "{clusterName}-verify",
}
# The issue's example, verbatim.
EXAMPLE: dict[str, Any] = {
    "name": "nightly-orders",
    "schedule": {"expression": "cron(0 2 * * ? *)", "timezone": "Europe/Berlin"},
    "snapshot": {"choice": "LATEST"},
    "rtoObjectiveSeconds": 600,
    "maxConcurrency": 5,
    "notify": "FAILURES",
    "sources": [EXPLICIT, SELECTOR],
}
MINIMAL: dict[str, Any] = {"name": "p", "sources": [EXPLICIT]}
EPHEMERAL = {
    "mode": "EPHEMERAL",
    "projectId": OTHER,
    "provider": "AWS",
    "region": "US_EAST_1",
    "retainMinutes": 30,
}
LAMBDA_ARN = "arn:aws:lambda:eu-central-1:123456789012:function:check-orders"


def plan(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(EXAMPLE)
    data.update(changes)
    return data


def explicit(**changes: Any) -> dict[str, Any]:
    return {**EXPLICIT, **changes}


def selector(**changes: Any) -> dict[str, Any]:
    return {**SELECTOR, **changes}


def refused(data: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        parse_plan(data)
    return caught.value


def messages(error: InvalidRequest) -> dict[str, str]:
    return {e["field"]: e["message"] for e in error.errors}


# --- what a plan may say ----------------------------------------------------------------------------


def test_the_issues_example_plan_is_valid() -> None:
    parsed = parse_plan(EXAMPLE)
    assert parsed.name == "nightly-orders"
    assert parsed.schedule is not None and parsed.schedule.timezone == "Europe/Berlin"
    assert parsed.rto_objective_seconds == 600
    first, second = parsed.sources
    assert isinstance(first, ExplicitSource) and first.target_project == GROUP
    assert isinstance(second, TagSelector) and second.target_for("billing") == "billing-verify"
    assert second.target_project == GROUP  # defaults to the selector's project


def test_defaults_of_a_minimal_plan() -> None:
    parsed = parse_plan(MINIMAL)
    assert parsed.schedule is None  # runs only on demand
    assert (parsed.snapshot.choice, parsed.snapshot.window_days) == ("LATEST", None)
    assert (parsed.max_concurrency, parsed.notify, parsed.rto_objective_seconds) == (5, "FAILURES", None)
    assert parsed.targets is None and parsed.validation is None
    assert parse_plan({**MINIMAL, "schedule": {"expression": "rate(1 day)"}}).schedule.timezone == "UTC"  # type: ignore[union-attr]


def test_the_json_form_reads_back_as_the_same_plan() -> None:
    full = plan(
        description="orders, every night",
        snapshot={"choice": "RANDOM_WITHIN_WINDOW", "windowDays": 30},
        notify="ALL",
    )
    parsed = parse_plan(full)
    assert parse_plan(parsed.to_json()) == parsed
    assert parse_plan(json.loads(json.dumps(parsed.to_stored()))) == parsed
    assert parsed.to_json()["sources"][1]["tag"] == {"key": "verify", "value": "nightly"}


def test_ephemeral_targets_and_validation_are_read() -> None:
    parsed = parse_plan(
        plan(
            sources=[
                {"groupId": GROUP, "clusterName": "orders-prod"},
                {"groupId": GROUP, "tag": SELECTOR["tag"]},
            ],
            targets=EPHEMERAL,
            validation={"lambdaArn": LAMBDA_ARN, "timeoutSeconds": 840},
        )
    )
    assert parsed.ephemeral and parsed.targets is not None and parsed.targets.retain_minutes == 30
    assert parsed.validation is not None and parsed.validation.timeout_seconds == 840


@pytest.mark.parametrize(
    "expression",
    [
        "cron(0 2 * * ? *)",
        "cron(15 10 ? * MON-FRI *)",
        "cron(0/15 * * * ? *)",
        "cron(0 8 1 * ? 2027)",
        "cron(0 2 ? * 6#3 *)",
        "rate(1 minute)",
        "rate(5 minutes)",
        "rate(1 hour)",
        "rate(12 hours)",
        "rate(1 day)",
        "rate(7 days)",
        "at(2026-12-24T18:00:00)",
    ],
)
def test_scheduler_expressions_that_are_accepted(expression: str) -> None:
    parsed = parse_plan(plan(schedule={"expression": expression}))
    assert parsed.schedule is not None and parsed.schedule.expression == expression


@pytest.mark.parametrize(
    "expression",
    [
        "",
        "0 2 * * ? *",
        "cron(0 2 * * ?)",  # five fields
        "cron(0 2 * * ? * *)",  # seven
        "cron(0 2 * * * *)",  # neither day field is ?
        "cron(0 2 ? * ? *)",  # both are
        "cron(0  2 * * ? *)",
        "cron(0 2 * * ? *) ",
        "rate(0 minutes)",
        "rate(1 minutes)",
        "rate(5 minute)",
        "rate(5 weeks)",
        "rate(-5 minutes)",
        "at(2026-12-24 18:00:00)",
        "at(2026-02-30T18:00:00)",
        "every night",
    ],
)
def test_scheduler_expressions_that_are_refused(expression: str) -> None:
    error = refused(plan(schedule={"expression": expression}))
    assert list(messages(error)) == ["schedule.expression"]
    assert "EventBridge Scheduler expression" in messages(error)["schedule.expression"]


@pytest.mark.parametrize("timezone", ["UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires", "Etc/GMT+5"])
def test_iana_time_zones_are_accepted(timezone: str) -> None:
    assert parse_plan(plan(schedule={"expression": "rate(1 day)", "timezone": timezone})).schedule is not None


@pytest.mark.parametrize(
    "timezone", ["Mars/Olympus_Mons", "Europe", "localtime", "/etc/localtime", "../etc/passwd", "", "CEST "]
)
def test_unknown_time_zones_are_refused(timezone: str) -> None:
    error = refused(plan(schedule={"expression": "rate(1 day)", "timezone": timezone}))
    assert "IANA time zone" in messages(error)["schedule.timezone"]


BAD_PLANS: list[tuple[str, dict[str, Any], str, str]] = [
    # (what, plan, the field named, words its message must contain)
    ("name missing", {k: v for k, v in EXAMPLE.items() if k != "name"}, "name", "required"),
    ("name with a space", plan(name="nightly orders"), "name", "1 to 64 characters"),
    ("name with a slash", plan(name="a/b"), "name", "1 to 64 characters"),
    ("name empty", plan(name=""), "name", "1 to 64"),
    ("name too long", plan(name="n" * 65), "name", "64"),
    ("name unicode", plan(name="nächtlich"), "name", "1 to 64"),
    ("name as number", plan(name=7), "name", "JSON string"),
    ("description too long", plan(description="d" * 501), "description", "at most 500"),
    ("description bidi", plan(description="a\u202eb"), "description", "U+202E"),
    ("schedule not an object", plan(schedule="cron(0 2 * * ? *)"), "schedule", "JSON object"),
    ("schedule without expression", plan(schedule={"timezone": "UTC"}), "schedule.expression", "required"),
    (
        "schedule unknown field",
        plan(schedule={"expression": "rate(1 day)", "enabled": True}),
        "schedule.enabled",
        "allowed fields: expression, timezone",
    ),
    ("snapshot choice unknown", plan(snapshot={"choice": "OLDEST"}), "snapshot.choice", "LATEST or RANDOM"),
    ("snapshot choice missing", plan(snapshot={}), "snapshot.choice", "required"),
    (
        "random without window",
        plan(snapshot={"choice": "RANDOM_WITHIN_WINDOW"}),
        "snapshot.windowDays",
        "is required with choice RANDOM_WITHIN_WINDOW",
    ),
    (
        "window 0",
        plan(snapshot={"choice": "RANDOM_WITHIN_WINDOW", "windowDays": 0}),
        "snapshot.windowDays",
        "1 to 365",
    ),
    (
        "window 366",
        plan(snapshot={"choice": "RANDOM_WITHIN_WINDOW", "windowDays": 366}),
        "snapshot.windowDays",
        "1 to 365",
    ),
    (
        "window as string",
        plan(snapshot={"choice": "RANDOM_WITHIN_WINDOW", "windowDays": "30"}),
        "snapshot.windowDays",
        "whole number",
    ),
    (
        "window with LATEST",
        plan(snapshot={"choice": "LATEST", "windowDays": 30}),
        "snapshot.windowDays",
        "only used with choice RANDOM_WITHIN_WINDOW",
    ),
    ("objective 0", plan(rtoObjectiveSeconds=0), "rtoObjectiveSeconds", "from 1 to 86400"),
    ("objective float", plan(rtoObjectiveSeconds=600.0), "rtoObjectiveSeconds", "whole number"),
    ("objective string", plan(rtoObjectiveSeconds="600"), "rtoObjectiveSeconds", "whole number"),
    ("objective boolean", plan(rtoObjectiveSeconds=True), "rtoObjectiveSeconds", "whole number"),
    ("concurrency 0", plan(maxConcurrency=0), "maxConcurrency", "from 1 to 20"),
    ("concurrency 21", plan(maxConcurrency=21), "maxConcurrency", "from 1 to 20"),
    ("notify unknown", plan(notify="NEVER"), "notify", "ALL, FAILURES or SUMMARY"),
    ("notify lower case", plan(notify="all"), "notify", "ALL, FAILURES or SUMMARY"),
    ("unknown field", plan(owner="team-a"), "owner", "not a known field; allowed fields: name, description"),
    ("snake_case field", plan(max_concurrency=3), "max_concurrency", "not a known field"),
    ("sources missing", {k: v for k, v in EXAMPLE.items() if k != "sources"}, "sources", "required"),
    ("sources empty", plan(sources=[]), "sources", "at least 1 entry"),
    ("sources an object", plan(sources=EXPLICIT), "sources", "JSON array"),
    ("source not an object", plan(sources=[EXPLICIT, "orders-prod"]), "sources[1]", "JSON object"),
    (
        "source group id",
        plan(sources=[explicit(groupId="x")]),
        "sources[0].groupId",
        "24 lowercase hexadecimal",
    ),
    (
        "source cluster name",
        plan(sources=[EXPLICIT, explicit(clusterName="-x", targetDeploymentItemName="y")]),
        "sources[1].clusterName",
        "Flex cluster name",
    ),
    (
        "source cluster missing",
        plan(sources=[{"groupId": GROUP, "targetDeploymentItemName": "t"}]),
        "sources[0].clusterName",
        "required",
    ),
    (
        "source target pattern",
        plan(sources=[explicit(targetDeploymentItemName="a/b")]),
        "sources[0].targetDeploymentItemName",
        "1 to 64 characters",
    ),
    (
        "source target too long",
        plan(sources=[explicit(targetDeploymentItemName="t" * 65)]),
        "sources[0].targetDeploymentItemName",
        "64",
    ),
    (
        "source target control",
        plan(sources=[explicit(targetDeploymentItemName="t\x1b")]),
        "sources[0].targetDeploymentItemName",
        "U+001B",
    ),
    (
        "source target project",
        plan(sources=[explicit(targetProjectId="nope")]),
        "sources[0].targetProjectId",
        "project id",
    ),
    (
        "source target missing",
        plan(sources=[{"groupId": GROUP, "clusterName": "orders-prod"}]),
        "sources[0].targetDeploymentItemName",
        "is required (unless targets.mode is EPHEMERAL)",
    ),
    (
        "source unknown field",
        plan(sources=[explicit(force=True)]),
        "sources[0].force",
        "allowed fields: groupId, clusterName, targetDeploymentItemName, targetProjectId",
    ),
    (
        "source breakGlass",
        plan(sources=[explicit(breakGlass=True)]),
        "sources[0].breakGlass",
        "no IAM caller",
    ),
    (
        "source confirm onto source",
        plan(sources=[explicit(confirmRestoreOntoSource=True)]),
        "sources[0].confirmRestoreOntoSource",
        "never restores onto its source",
    ),
    (
        "source snapshotId",
        plan(sources=[explicit(snapshotId="latest")]),
        "sources[0].snapshotId",
        "snapshot.choice",
    ),
    ("source dryRun", plan(sources=[explicit(dryRun=True)]), "sources[0].dryRun", "a run restores"),
    (
        "source onto itself",
        plan(sources=[explicit(targetDeploymentItemName="Orders-Prod")]),
        "sources[0].targetDeploymentItemName",
        "is the source cluster itself",
    ),
    (
        "selector tag missing",
        plan(sources=[{"groupId": GROUP, "tag": None}]),
        "sources[0].tag",
        "JSON object",
    ),
    (
        "selector tag key empty",
        plan(sources=[selector(tag={"key": "", "value": "v"})]),
        "sources[0].tag.key",
        "1 to 255",
    ),
    (
        "selector tag value missing",
        plan(sources=[selector(tag={"key": "k"})]),
        "sources[0].tag.value",
        "required",
    ),
    (
        "selector tag extra",
        plan(sources=[selector(tag={"key": "k", "value": "v", "x": 1})]),
        "sources[0].tag.x",
        "allowed fields: key, value",
    ),
    (
        "selector with clusterName",
        plan(sources=[selector(clusterName="orders-prod")]),
        "sources[0].clusterName",
        "either one cluster (clusterName) or a tag selector",
    ),
    ("selector group", plan(sources=[selector(groupId=GROUP.upper())]), "sources[0].groupId", "24 lowercase"),
    (
        "template twice",
        plan(sources=[selector(targetDeploymentItemName="{clusterName}-{clusterName}")]),
        "sources[0].targetDeploymentItemName",
        "at most once",
    ),
    (
        "template other placeholder",
        plan(sources=[selector(targetDeploymentItemName="{cluster}-verify")]),
        "sources[0].targetDeploymentItemName",
        "target name template",
    ),
    (
        "template too long",
        plan(sources=[selector(targetDeploymentItemName="v" * 64 + "{clusterName}")]),
        "sources[0].targetDeploymentItemName",
        "1 to 64 characters",
    ),
    (
        "template bad character",
        plan(sources=[selector(targetDeploymentItemName="{clusterName}/verify")]),
        "sources[0].targetDeploymentItemName",
        "target name template",
    ),
    (
        "template onto itself",
        plan(sources=[selector(targetDeploymentItemName="{clusterName}")]),
        "sources[0].targetDeploymentItemName",
        "onto itself",
    ),
    (
        "selector without target",
        plan(sources=[{"groupId": GROUP, "tag": SELECTOR["tag"]}]),
        "sources[0].targetDeploymentItemName",
        "is required",
    ),
    (
        "same selector twice",
        plan(sources=[SELECTOR, selector(targetDeploymentItemName="{clusterName}-v2")]),
        "sources[1].tag",
        "selects the same clusters as sources[0]",
    ),
    ("targets mode", plan(targets={**EPHEMERAL, "mode": "EXISTING"}), "targets.mode", "EPHEMERAL"),
    (
        "targets provider",
        plan(targets={**EPHEMERAL, "provider": "aws"}),
        "targets.provider",
        "AWS, AZURE or GCP",
    ),
    ("targets region", plan(targets={**EPHEMERAL, "region": "us-east-1"}), "targets.region", "US_EAST_1"),
    (
        "targets retain",
        plan(targets={**EPHEMERAL, "retainMinutes": 1441}),
        "targets.retainMinutes",
        "0 to 1440",
    ),
    ("targets project", plan(targets={**EPHEMERAL, "projectId": "p"}), "targets.projectId", "project id"),
    (
        "ephemeral with a target",
        plan(targets=EPHEMERAL),
        "sources[0].targetDeploymentItemName",
        "not used with targets.mode EPHEMERAL",
    ),
    (
        "validation arn",
        plan(validation={"lambdaArn": "arn:aws:s3:::bucket"}),
        "validation.lambdaArn",
        "Lambda function ARN",
    ),
    (
        "validation timeout",
        plan(validation={"lambdaArn": LAMBDA_ARN, "timeoutSeconds": 841}),
        "validation.timeoutSeconds",
        "1 to 840",
    ),
]


@pytest.mark.parametrize(("what", "data", "field", "words"), BAD_PLANS, ids=[b[0] for b in BAD_PLANS])
def test_bad_plans_name_the_field_and_the_rule(
    what: str, data: dict[str, Any], field: str, words: str
) -> None:
    error = refused(data)
    found = messages(error)
    assert field in found, error.errors
    assert words in found[field], found[field]
    assert field in error.message and error.message.startswith("the plan is not valid: ")
    assert "pydantic" not in found[field] and "Input should" not in found[field]


def test_every_bad_field_of_every_source_is_named() -> None:
    error = refused(
        plan(
            maxConcurrency=0,
            sources=[
                EXPLICIT,
                explicit(groupId="g", clusterName="c c", targetDeploymentItemName="t/t"),
                selector(tag={"key": 1, "value": 2}, targetProjectId="p"),
            ],
        )
    )
    assert sorted(messages(error)) == sorted(
        [
            "maxConcurrency",
            "sources[1].groupId",
            "sources[1].clusterName",
            "sources[1].targetDeploymentItemName",
            "sources[2].tag.key",
            "sources[2].tag.value",
            "sources[2].targetProjectId",
        ]
    )


def test_the_same_target_twice_is_refused() -> None:
    error = refused(
        plan(
            sources=[EXPLICIT, explicit(clusterName="billing-prod", targetDeploymentItemName="ORDERS-verify")]
        )
    )
    assert messages(error) == {"sources[1].targetDeploymentItemName": "is the same target as sources[0]"}


def test_the_same_name_in_another_project_is_another_target() -> None:
    parse_plan(plan(sources=[EXPLICIT, explicit(clusterName="billing-prod", targetProjectId=OTHER)]))


def test_a_selectors_fixed_target_counts_as_a_target() -> None:
    error = refused(plan(sources=[EXPLICIT, selector(targetDeploymentItemName="orders-verify")]))
    assert messages(error) == {"sources[1].targetDeploymentItemName": "is the same target as sources[0]"}


def test_a_target_that_is_a_source_of_the_plan_is_refused() -> None:
    error = refused(
        plan(sources=[EXPLICIT, explicit(clusterName="orders-verify", targetDeploymentItemName="scratch")])
    )
    assert "is the source cluster of sources[1]" in messages(error)["sources[0].targetDeploymentItemName"]


def test_the_same_source_twice_is_refused() -> None:
    error = refused(plan(sources=[EXPLICIT, explicit(targetDeploymentItemName="orders-verify-2")]))
    assert messages(error) == {"sources[1].clusterName": "is the same source as sources[0]"}


def test_five_hundred_sources_are_accepted_and_five_hundred_and_one_refused() -> None:
    many = [explicit(clusterName=f"c{i}", targetDeploymentItemName=f"c{i}-verify") for i in range(501)]
    assert len(parse_plan(plan(sources=many[:500])).sources) == 500
    assert messages(refused(plan(sources=many))) == {"sources": "must have at most 500 entries"}


def test_errors_never_echo_the_values() -> None:
    secretish = "s3cr3t" + "z" * 30
    error = refused(
        plan(
            name=secretish + " ",
            description=secretish * 30,
            schedule={"expression": secretish, "timezone": secretish},
            sources=[
                explicit(
                    groupId=secretish, clusterName=secretish + "!", targetDeploymentItemName=secretish + "/"
                )
            ],
        )
    )
    assert "s3cr3t" not in json.dumps(error.body())


def test_a_plan_must_be_an_object() -> None:
    for data in ([EXPLICIT], "plan", None, 3):
        assert messages(refused(data)) == {"body": "must be a JSON object"}


# --- the guards, when the plan is saved -------------------------------------------------------------


def guards(**changes: Any) -> GuardConfig:
    return GuardConfig(**changes)


def test_a_protected_target_refuses_the_plan() -> None:
    config = guards(protected_targets=(ProtectedTarget("orders-*", "orders-*"),))
    with pytest.raises(InvalidRequest) as caught:
        validate_plan(EXAMPLE, config)
    assert messages(caught.value) == {
        "sources[0].targetDeploymentItemName": (
            "is protected by PROTECTED_TARGETS entry 'orders-*'; a restore would erase it. "
            "Choose another target"
        )
    }


def test_a_target_project_that_is_not_allowed_refuses_the_plan_for_explicit_sources_and_selectors() -> None:
    data = plan(sources=[explicit(targetProjectId=OTHER), selector(targetProjectId=OTHER)])
    with pytest.raises(InvalidRequest) as caught:
        validate_plan(data, guards())
    assert sorted(messages(caught.value)) == ["sources[0].targetProjectId", "sources[1].targetProjectId"]
    assert "ALLOWED_TARGET_PROJECTS" in messages(caught.value)["sources[1].targetProjectId"]
    assert validate_plan(data, guards(allowed_target_projects=frozenset({OTHER}))).name == "nightly-orders"


def test_a_selectors_fixed_target_is_guarded_and_a_template_waits_for_the_run() -> None:
    config = guards(protected_targets=(ProtectedTarget("*-verify", "*-verify"),))
    fixed = plan(sources=[selector(targetDeploymentItemName="nightly-verify")])
    with pytest.raises(InvalidRequest) as caught:
        validate_plan(fixed, config)
    assert list(messages(caught.value)) == ["sources[0].targetDeploymentItemName"]
    # {clusterName}-verify: the names are known when the plan runs, and the intake guards each one then.
    assert target_problems(parse_plan(plan(sources=[SELECTOR])), config) == []


def test_ephemeral_targets_are_guarded_by_project_and_name_when_the_plan_is_saved() -> None:
    data = plan(sources=[{"groupId": GROUP, "clusterName": "orders-prod"}], targets=EPHEMERAL)
    # The ephemeral project must be allowed for every source (here: it is not the source's project).
    with pytest.raises(InvalidRequest) as caught:
        validate_plan(data, guards())
    assert list(messages(caught.value)) == ["targets.projectId"]
    assert "ALLOWED_TARGET_PROJECTS" in messages(caught.value)["targets.projectId"]
    allowed = guards(allowed_target_projects=frozenset({OTHER}))
    assert validate_plan(data, allowed).ephemeral
    # The source's own project needs no allowance.
    assert validate_plan(plan(sources=data["sources"], targets={**EPHEMERAL, "projectId": GROUP}), guards())
    # A PROTECTED_TARGETS pattern matching the frv- names refuses it: those clusters could never be deleted.
    for entry in ("frv-*", f"{OTHER}:frv-*", "*"):
        protected = ProtectedTarget(entry, entry.split(":")[-1], OTHER if ":" in entry else None)
        config = guards(allowed_target_projects=frozenset({OTHER}), protected_targets=(protected,))
        with pytest.raises(InvalidRequest) as caught:
            validate_plan(data, config)
        assert (
            "could never be deleted" in messages(caught.value)["targets.projectId"]
            or "nor ever deleted" in (messages(caught.value)["targets.projectId"])
        )
    # Protected names elsewhere do not matter to ephemeral targets.
    config = guards(
        allowed_target_projects=frozenset({OTHER}),
        protected_targets=(ProtectedTarget("orders-*", "orders-*"),),
    )
    assert validate_plan(data, config).ephemeral


def test_a_validator_must_be_one_the_deployment_allows() -> None:
    data = plan(validation={"lambdaArn": LAMBDA_ARN})
    with pytest.raises(InvalidRequest) as caught:
        validate_plan(data, guards())
    assert list(messages(caught.value)) == ["validation.lambdaArn"]
    assert "VALIDATOR_FUNCTION_ARNS" in messages(caught.value)["validation.lambdaArn"]
    assert validate_plan(data, guards(allowed_validators=frozenset({LAMBDA_ARN}))).validation is not None
    # Exactly that ARN: another version of it is another function as far as IAM is concerned.
    with pytest.raises(InvalidRequest):
        validate_plan(
            plan(validation={"lambdaArn": LAMBDA_ARN + ":live"}),
            guards(allowed_validators=frozenset({LAMBDA_ARN})),
        )


def test_the_plan_must_carry_the_name_of_its_path() -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_plan(EXAMPLE, guards(), name="weekly-orders")
    assert messages(caught.value) == {"name": "must be the plan name in the path"}
    assert validate_plan(EXAMPLE, guards(), name="nightly-orders").name == "nightly-orders"


def test_shape_errors_come_before_the_guards() -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_plan(plan(maxConcurrency=99), guards(protected_targets=(ProtectedTarget("*", "*"),)))
    assert list(messages(caught.value)) == ["maxConcurrency"]


# --- the sources of a run ----------------------------------------------------------------------------

TAGGED = {"verify": "nightly"}


def resolved(
    data: dict[str, Any], listed: dict[str, list[ListedCluster]], **kwargs: Any
) -> list[PlannedSource]:
    return resolve_sources(parse_plan(data), listed, **kwargs)


def summary(planned: list[PlannedSource]) -> list[tuple[int, str | None, str | None, str | None]]:
    return [
        (p.index, p.cluster_name, p.target_deployment_item_name, p.refusal.code if p.refusal else None)
        for p in planned
    ]


def test_explicit_sources_first_then_matches_by_cluster_name_then_empty_selectors() -> None:
    data = plan(
        sources=[
            SELECTOR,
            EXPLICIT,
            {
                "groupId": OTHER,
                "tag": {"key": "verify", "value": "weekly"},
                "targetDeploymentItemName": "{clusterName}-w",
            },
            {
                "groupId": THIRD,
                "tag": {"key": "verify", "value": "nightly"},
                "targetDeploymentItemName": "{clusterName}-v",
            },
        ]
    )
    listed = {
        GROUP: [
            ListedCluster("zeta", TAGGED),
            ListedCluster("Alpha", TAGGED),
            ListedCluster("untagged"),
            ListedCluster("other-value", {"verify": "weekly"}),
            ListedCluster("case", {"verify": "Nightly"}),  # tags match exactly
        ],
        OTHER: [ListedCluster("beta", {"verify": "weekly", "team": "x"})],
        THIRD: [],
    }
    planned = resolved(data, listed)
    assert summary(planned) == [
        (0, "orders-prod", "orders-verify", None),
        (1, "Alpha", "Alpha-verify", None),
        (2, "beta", "beta-w", None),
        (3, "zeta", "zeta-verify", None),
        (4, None, None, NO_MATCHING_CLUSTER),
    ]
    assert [p.origin for p in planned] == [
        "sources[1]",
        "sources[0]",
        "sources[2]",
        "sources[0]",
        "sources[3]",
    ]
    assert planned[2].target_project_id == OTHER and planned[2].tag is not None
    assert planned[4].refusal is not None and "verify=nightly" in planned[4].refusal.message
    assert resolved(data, listed) == planned  # the same listing gives the same run


def test_a_planned_source_is_a_restore_request() -> None:
    planned = resolved(plan(), {GROUP: [ListedCluster("billing", TAGGED)]})
    request = parse_request(
        planned[1].restore_request(snapshot_id="6723a1f0c4d5e6f708193b01", reason="run r1")
    )
    assert (request.cluster_name, request.target_deployment_item_name, request.target_project_id) == (
        "billing",
        "billing-verify",
        GROUP,
    )
    assert planned[1].key == f"{GROUP}/billing"
    assert parse_request(planned[0].restore_request()).explicit_snapshot_id is None


def test_a_match_that_is_also_an_explicit_source_is_refused_and_the_others_go_on() -> None:
    planned = resolved(
        plan(), {GROUP: [ListedCluster("orders-prod", TAGGED), ListedCluster("billing", TAGGED)]}
    )
    assert summary(planned) == [
        (0, "orders-prod", "orders-verify", None),
        (1, "billing", "billing-verify", None),
        (2, "orders-prod", "orders-prod-verify", DUPLICATE_SOURCE),
    ]
    assert [p.index for p in restorable(planned)] == [0, 1]


def test_a_cluster_two_selectors_match_runs_once() -> None:
    data = plan(
        sources=[
            SELECTOR,
            selector(tag={"key": "team", "value": "orders"}, targetDeploymentItemName="{clusterName}-t"),
        ]
    )
    planned = resolved(data, {GROUP: [ListedCluster("billing", {**TAGGED, "team": "orders"})]})
    assert summary(planned) == [
        (0, "billing", "billing-verify", None),
        (1, "billing", "billing-t", DUPLICATE_SOURCE),
    ]


def test_a_match_that_is_the_target_of_an_explicit_source_is_refused() -> None:
    planned = resolved(plan(), {GROUP: [ListedCluster("orders-verify", TAGGED)]})
    assert summary(planned)[1] == (1, "orders-verify", "orders-verify-verify", SOURCE_IS_TARGET)


def test_a_match_whose_target_is_another_source_of_the_run_is_refused() -> None:
    data = plan(sources=[selector(targetDeploymentItemName="{clusterName}2")])
    planned = resolved(data, {GROUP: [ListedCluster("db", TAGGED), ListedCluster("db2", TAGGED)]})
    assert summary(planned) == [(0, "db", "db2", TARGET_IS_SOURCE), (1, "db2", "db22", None)]


def test_a_fixed_target_takes_the_first_match_only() -> None:
    data = plan(sources=[selector(targetDeploymentItemName="scratch")])
    planned = resolved(data, {GROUP: [ListedCluster("b", TAGGED), ListedCluster("a", TAGGED)]})
    assert summary(planned) == [(0, "a", "scratch", None), (1, "b", "scratch", TARGET_COLLISION)]


def test_a_match_colliding_with_an_explicit_target_is_refused() -> None:
    data = plan(sources=[EXPLICIT, selector(targetDeploymentItemName="orders-{clusterName}")])
    planned = resolved(data, {GROUP: [ListedCluster("verify", TAGGED)]})
    assert summary(planned)[1] == (1, "verify", "orders-verify", TARGET_COLLISION)


def test_the_target_of_a_selector_is_never_the_source_itself() -> None:
    same_name = plan(sources=[selector(targetDeploymentItemName="{clusterName}", targetProjectId=OTHER)])
    into_other = resolved(same_name, {GROUP: [ListedCluster("db", TAGGED)]})
    assert summary(into_other) == [(0, "db", "db", None)] and into_other[0].target_project_id == OTHER
    fixed = plan(sources=[selector(targetDeploymentItemName="db")])
    assert summary(resolved(fixed, {GROUP: [ListedCluster("DB", TAGGED)]})) == [
        (0, "DB", "db", TARGET_IS_SOURCE)
    ]


def test_a_target_name_too_long_for_a_long_cluster_name_is_refused() -> None:
    data = plan(sources=[selector(targetDeploymentItemName="{clusterName}-verification")])
    long_name = "c" * 60
    planned = resolved(data, {GROUP: [ListedCluster(long_name, TAGGED), ListedCluster("short", TAGGED)]})
    assert summary(planned) == [
        (0, long_name, long_name + "-verification", INVALID_TARGET_NAME),
        (1, "short", "short-verification", None),
    ]


def test_a_listed_name_that_is_no_flex_cluster_name_is_refused() -> None:
    planned = resolved(plan(sources=[SELECTOR]), {GROUP: [ListedCluster("bad name", TAGGED)]})
    assert summary(planned)[0][3] == INVALID_CLUSTER_NAME


def test_a_project_whose_clusters_could_not_be_listed_refuses_its_selectors() -> None:
    planned = resolved(plan(), {}, unlisted={GROUP: "Atlas answered 503"})
    assert summary(planned) == [
        (0, "orders-prod", "orders-verify", None),
        (1, None, None, CLUSTERS_NOT_LISTED),
    ]
    assert planned[1].refusal is not None and "Atlas answered 503" in planned[1].refusal.message
    assert summary(resolved(plan(), {}))[1][3] == CLUSTERS_NOT_LISTED


def test_ephemeral_plans_resolve_without_targets_in_the_targets_project() -> None:
    data = plan(
        sources=[{"groupId": GROUP, "clusterName": "orders-prod"}, {"groupId": GROUP, "tag": TAGGED_TAG}],
        targets=EPHEMERAL,
    )
    planned = resolved(data, {GROUP: [ListedCluster("billing", TAGGED)]})
    assert summary(planned) == [(0, "orders-prod", None, None), (1, "billing", None, None)]
    assert {p.target_project_id for p in planned} == {OTHER}
    request = planned[1].restore_request(target_name="verify-billing-1a2b")
    assert request["targetDeploymentItemName"] == "verify-billing-1a2b"
    with pytest.raises(ValueError, match="no cluster or no target"):
        planned[1].restore_request()


TAGGED_TAG = {"key": "verify", "value": "nightly"}


def test_a_run_restores_at_most_five_hundred_sources() -> None:
    listed = {GROUP: [ListedCluster(f"c{i:03}", TAGGED) for i in range(600)]}
    planned = resolved(plan(), listed)
    assert len(restorable(planned)) == 500
    assert [p.refusal.code for p in planned if p.refusal] == [TOO_MANY_SOURCES] * 101
    assert planned[-1].cluster_name == "c599"


def test_the_plan_model_refuses_what_parse_plan_refuses() -> None:
    with pytest.raises(ValueError):
        Plan.model_validate(plan(maxConcurrency=0))
