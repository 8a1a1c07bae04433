"""The deletion guard (domain/ephemeral.py): a cluster may be deleted only when every rule holds. Each test
breaks one rule on an otherwise deletable cluster and proves it alone refuses the deletion."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from flexrestore.contracts.run import RunTarget
from flexrestore.domain.ephemeral import (
    EPHEMERAL_PROJECT,
    IS_SOURCE,
    NOT_CREATED_BY_SERVICE,
    PROTECTED_NAME,
    PROTECTED_TAG,
    TAGS_MISMATCH,
    TERMINATION_PROTECTED,
    ClusterFacts,
    DeletionCandidate,
    deletion_verdict,
    ephemeral_name,
    existed_seconds,
    run_tags,
)
from flexrestore.domain.guards import GuardConfig, ProtectedTarget

PROJECT = "6700f1eea20000000000b001"
SOURCE_PROJECT = "6700f1eea10000000000a001"
RUN = "8703c29008b545988a2e49087fb2282a"
PLAN = "ephemeral-fleet"
INDEX = 7
NAME = ephemeral_name(RUN, INDEX)
AT = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
RECORDED = RunTarget(ephemeral=True, name=NAME, project_id=PROJECT, create_requested_at=AT, created_at=AT)


def candidate(**changes: Any) -> DeletionCandidate:
    base = DeletionCandidate(
        project_id=PROJECT,
        name=NAME,
        run_id=RUN,
        index=INDEX,
        plan=PLAN,
        ephemeral_project_id=PROJECT,
        recorded=RECORDED,
        source_clusters=[(SOURCE_PROJECT, "fleet-01"), (PROJECT, "orders-verify-src")],
    )
    return replace(base, **changes)


def cluster(**changes: Any) -> ClusterFacts:
    base = ClusterFacts(
        project_id=PROJECT, name=NAME, tags=run_tags(PLAN, RUN, INDEX), termination_protection=False
    )
    return replace(base, **changes)


def codes(
    verdict_candidate: DeletionCandidate, facts: ClusterFacts, config: GuardConfig | None = None
) -> list[str]:
    verdict = deletion_verdict(verdict_candidate, facts, config or GuardConfig())
    assert verdict.allowed == (not verdict.refusals)
    return [r.code for r in verdict.refusals]


def test_the_cluster_the_run_created_with_its_tags_may_be_deleted() -> None:
    verdict = deletion_verdict(candidate(), cluster(), GuardConfig())
    assert verdict.allowed and verdict.refusals == ()


def test_names_are_short_recognisable_and_unique_per_run_and_source() -> None:
    assert NAME.startswith("frv-") and len(NAME) == 16
    assert ephemeral_name(RUN, INDEX) == NAME  # a retried step names the same cluster
    assert ephemeral_name(RUN, INDEX + 1) != NAME and ephemeral_name(RUN + "x", INDEX) != NAME
    assert ephemeral_name("run id: with spaces/and slashes", 499).replace("-", "").isalnum()


def test_tags_name_the_service_the_plan_the_run_and_the_source() -> None:
    assert run_tags(PLAN, RUN, INDEX) == {
        "flexrestore-service": "flexrestore",
        "flexrestore-plan": PLAN,
        "flexrestore-run": RUN,
        "flexrestore-source": "7",
    }


@pytest.mark.parametrize(
    ("changed_candidate", "changed_cluster"),
    [
        ({"project_id": SOURCE_PROJECT}, {"project_id": SOURCE_PROJECT}),  # another project
        ({"ephemeral_project_id": None}, {}),  # the plan has no ephemeral targets
        ({"ephemeral_project_id": SOURCE_PROJECT}, {}),  # the plan's project is another one
    ],
)
def test_only_a_cluster_of_the_plans_ephemeral_project(
    changed_candidate: dict[str, Any], changed_cluster: dict[str, Any]
) -> None:
    recorded = replace_target(project_id=changed_candidate.get("project_id", PROJECT))
    assert codes(candidate(recorded=recorded, **changed_candidate), cluster(**changed_cluster)) == [
        EPHEMERAL_PROJECT
    ]


def replace_target(**changes: Any) -> RunTarget:
    return RECORDED.model_copy(update=changes)


@pytest.mark.parametrize(
    "recorded",
    [
        None,  # the run never recorded a create for this source
        replace_target(create_requested_at=None),  # recorded, but not as a create this service sent
        replace_target(ephemeral=False),  # a standing target
        replace_target(name="frv-00000000-007"),  # another cluster was created for this source
        replace_target(project_id="6700f1eea20000000000b002"),  # in another project
    ],
)
def test_only_a_cluster_this_service_recorded_creating(recorded: RunTarget | None) -> None:
    assert NOT_CREATED_BY_SERVICE in codes(candidate(recorded=recorded), cluster())


def test_a_cluster_with_the_prefix_that_the_service_did_not_create_is_never_deleted() -> None:
    # The decoy of the FLEET seed: the prefix, the project, but no record of a create and none of our tags;
    # even a record that (wrongly) claims it does not help: its name is not the one this run and source give.
    decoy = "frv-decoy0-001"
    facts = cluster(name=decoy, tags={"team": "data-platform"})
    claimed = replace_target(name=decoy)
    for recorded in (None, claimed):
        found = codes(candidate(name=decoy, recorded=recorded), facts)
        assert NOT_CREATED_BY_SERVICE in found and TAGS_MISMATCH in found


@pytest.mark.parametrize(
    "tags",
    [
        {},  # no tags (a create's answer has no tags key when none were given)
        {**run_tags(PLAN, RUN, INDEX), "flexrestore-run": "another-run"},
        {**run_tags(PLAN, RUN, INDEX), "flexrestore-source": "8"},
        {**run_tags(PLAN, RUN, INDEX), "flexrestore-plan": "another-plan"},
        {k: v for k, v in run_tags(PLAN, RUN, INDEX).items() if k != "flexrestore-service"},
    ],
)
def test_only_a_cluster_carrying_the_runs_tags(tags: dict[str, str]) -> None:
    assert codes(candidate(), cluster(tags=tags)) == [TAGS_MISMATCH]


def test_never_a_source_of_the_run() -> None:
    sources = [(PROJECT, NAME.upper())]  # compared like Atlas names: case-insensitively
    assert codes(candidate(source_clusters=sources), cluster()) == [IS_SOURCE]


@pytest.mark.parametrize(
    "entry",
    [
        ProtectedTarget("frv-*", "frv-*"),
        ProtectedTarget(f"{PROJECT}:{NAME}", NAME, PROJECT),
        ProtectedTarget("*", "*"),
    ],
)
def test_never_a_cluster_protected_by_name(entry: ProtectedTarget) -> None:
    assert codes(candidate(), cluster(), GuardConfig(protected_targets=(entry,))) == [PROTECTED_NAME]
    other_project = ProtectedTarget(f"{SOURCE_PROJECT}:frv-*", "frv-*", SOURCE_PROJECT)
    assert codes(candidate(), cluster(), GuardConfig(protected_targets=(other_project,))) == []


def test_never_a_cluster_protected_by_tag() -> None:
    tags = {**run_tags(PLAN, RUN, INDEX), "Restore-Protected": " TRUE "}
    assert codes(candidate(), cluster(tags=tags)) == [PROTECTED_TAG]


def test_never_a_cluster_whose_termination_protection_someone_turned_on() -> None:
    assert codes(candidate(), cluster(termination_protection=True)) == [TERMINATION_PROTECTED]
    assert codes(candidate(), cluster(termination_protection=None)) == []  # Atlas left it out


def test_every_broken_rule_is_reported_at_once() -> None:
    facts = cluster(project_id=SOURCE_PROJECT, tags={}, termination_protection=True)
    found = codes(candidate(recorded=None, ephemeral_project_id=None), facts)
    assert found == [EPHEMERAL_PROJECT, NOT_CREATED_BY_SERVICE, TAGS_MISMATCH, TERMINATION_PROTECTED]
    assert "TAGS_MISMATCH" in deletion_verdict(candidate(recorded=None), facts, GuardConfig()).message


def test_existed_seconds_is_created_to_gone() -> None:
    assert existed_seconds(AT, AT.replace(minute=2, second=7)) == 127
    assert existed_seconds(None, AT) is None and existed_seconds(AT, None) is None
