"""Target guards, pure: each guard allows and refuses; bad configuration names the variable and entry."""

from __future__ import annotations

from typing import Any

import pytest

from flexrestore.domain.guards import (
    DEDICATED_NOT_SUPPORTED,
    GuardConfig,
    TargetFacts,
    Verdict,
    break_glass_used,
    check_target,
    first_refusal,
    target_lock_verdict,
    validate_recovery_plans,
)
from flexrestore.domain.request import RestoreRequest
from flexrestore.settings import Settings, SettingsError

SOURCE_PROJECT = "65f1a2b3c4d5e6f708192a3b"
OTHER_PROJECT = "65f1a2b3c4d5e6f708192a3c"
UNLISTED_PROJECT = "0123456789abcdef01234567"
BREAK_GLASS_ROLE = "arn:aws:sts::123456789012:assumed-role/BreakGlass/*"
ALICE = "arn:aws:sts::123456789012:assumed-role/BreakGlass/alice"
MALLORY = "arn:aws:sts::123456789012:assumed-role/Developer/mallory"

GUARD_ORDER = [
    "break-glass",
    "allowed-project",
    "self-restore",
    "protected-name",
    "target-exists",
    "target-kind",
    "protected-tag",
    "target-state",
    "target-version",
]

IDLE_FLEX = TargetFacts(exists=True, dedicated=False, state_name="IDLE", mongodb_version="8.0.15", tags={})


def settings(**env: Any) -> Settings:
    return Settings.model_validate({key: str(value) for key, value in env.items()})


def config(**env: Any) -> GuardConfig:
    return GuardConfig.from_settings(settings(**env))


def request(**fields: Any) -> RestoreRequest:
    body = {
        "groupId": SOURCE_PROJECT,
        "clusterName": "orders-prod",
        "targetDeploymentItemName": "orders-verify",
    }
    body.update(fields)
    return RestoreRequest.model_validate(body)


def verdict_of(verdicts: list[Verdict], guard: str) -> Verdict:
    (found,) = [v for v in verdicts if v.guard == guard]
    return found


def check(
    req: RestoreRequest | None = None,
    facts: TargetFacts = IDLE_FLEX,
    snapshot_version: str | None = "8.0.15",
    cfg: GuardConfig | None = None,
    caller: str | None = None,
) -> list[Verdict]:
    return check_target(req or request(), facts, snapshot_version, cfg or config(), caller)


# --- configuration ----------------------------------------------------------------------------------


def test_defaults_protect_by_the_restore_protected_tag_and_allow_only_the_source_project() -> None:
    cfg = GuardConfig.from_settings(Settings.model_validate({}))
    assert cfg.protected_targets == ()
    assert (cfg.protected_tag_key, cfg.protected_tag_value) == ("restore-protected", "true")
    assert cfg.allowed_target_projects == frozenset()
    assert cfg.break_glass_principals == ()


def test_protected_targets_format_names_patterns_and_per_project_entries() -> None:
    cfg = config(PROTECTED_TARGETS=f" orders-prod, *-live\n{OTHER_PROJECT}:billing-*, *:odd:name,a:b ")
    assert [(p.project_id, p.pattern) for p in cfg.protected_targets] == [
        (None, "orders-prod"),
        (None, "*-live"),
        (OTHER_PROJECT, "billing-*"),
        (None, "odd:name"),
        (None, "a:b"),  # a colon after something that is not a project id is part of the name
    ]
    assert cfg.protected_by(SOURCE_PROJECT, "orders-prod") is not None
    assert cfg.protected_by(SOURCE_PROJECT, "Orders-PROD") is not None  # leans towards protecting
    assert cfg.protected_by(SOURCE_PROJECT, "payments-live") is not None
    assert cfg.protected_by(OTHER_PROJECT, "billing-eu") is not None
    assert cfg.protected_by(SOURCE_PROJECT, "billing-eu") is None  # that entry is for the other project only
    assert cfg.protected_by(SOURCE_PROJECT, "orders-verify") is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("orders-prod prod;x", "entry 'prod;x' is not valid: ';' cannot appear"),
        ("65F1A2B3C4D5E6F708192A3B:orders", "looks like a project id but is not 24 lowercase hex"),
        ("65f1a2b3c4d5:orders", "looks like a project id"),
        (f"{SOURCE_PROJECT}:", "the cluster name pattern is empty"),
        ("orders/prod", "'/' cannot appear"),
    ],
)
def test_bad_protected_targets_entry_is_named(value: str, expected: str) -> None:
    with pytest.raises(SettingsError) as error:
        config(PROTECTED_TARGETS=value)
    message = str(error.value)
    assert message.startswith("PROTECTED_TARGETS: entry ")
    assert expected in message
    assert "Format: comma-separated entries" in message


def test_allowed_target_projects_are_checked() -> None:
    cfg = config(ALLOWED_TARGET_PROJECTS=f"{OTHER_PROJECT}, {UNLISTED_PROJECT.upper()}")
    assert cfg.allowed_target_projects == {OTHER_PROJECT, UNLISTED_PROJECT}
    with pytest.raises(SettingsError, match=r"ALLOWED_TARGET_PROJECTS: entry 'prod-project' is not an Atlas"):
        config(ALLOWED_TARGET_PROJECTS=f"{OTHER_PROJECT},prod-project")


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("BreakGlass", "is not an IAM principal ARN"),
        ("arn:aws:sts::*:assumed-role/BreakGlass/*", "literal 12-digit account id"),
        ("arn:aws:sts::123456789012:*", "would let every principal of the account break glass"),
        ("arn:aws:s3:::bucket", "is not an IAM principal ARN"),
    ],
)
def test_bad_break_glass_principal_is_named(entry: str, expected: str) -> None:
    with pytest.raises(SettingsError) as error:
        config(BREAK_GLASS_PRINCIPALS=f"{BREAK_GLASS_ROLE},{entry}")
    assert str(error.value).startswith(f"BREAK_GLASS_PRINCIPALS: entry {entry!r}")
    assert expected in str(error.value)


def test_empty_protected_tag_settings_are_refused() -> None:
    with pytest.raises(SettingsError, match="PROTECTED_TAG_KEY is empty"):
        config(PROTECTED_TAG_KEY=" ")
    with pytest.raises(SettingsError, match="PROTECTED_TAG_VALUE is empty"):
        config(PROTECTED_TAG_VALUE="")


def test_lock_lease_always_outlives_the_poll_loop() -> None:
    assert config(TARGET_LOCK_LEASE_SECONDS=7200, POLL_DEADLINE_SECONDS=3600).lock_lease_seconds == 7200
    assert config(TARGET_LOCK_LEASE_SECONDS=600, POLL_DEADLINE_SECONDS=3600).lock_lease_seconds == 4500


# --- a clean request: every guard answers, all allow ----------------------------------------------


def test_every_guard_answers_in_order_and_a_clean_request_passes() -> None:
    verdicts = check()
    assert [v.guard for v in verdicts] == GUARD_ORDER
    assert all(v.allowed and v.status == 200 for v in verdicts)
    assert first_refusal(verdicts) is None
    assert not break_glass_used(verdicts)
    assert verdicts[0].to_dict() == {
        "guard": "break-glass",
        "allowed": True,
        "reason": "not-applicable",
        "status": 200,
        "message": "break-glass not requested",
        "field": None,
    }


def test_all_refusals_are_reported_and_the_first_one_wins() -> None:
    verdicts = check(
        request(targetDeploymentItemName="orders-prod"),  # the source itself, unconfirmed, protected by tag
        facts=TargetFacts(True, False, "UPDATING", "7.0.2", {"restore-protected": "true"}),
        cfg=config(PROTECTED_TARGETS="orders-*"),
    )
    refused = [(v.guard, v.reason, v.status) for v in verdicts if not v.allowed]
    assert refused == [
        ("self-restore", "self-restore-unconfirmed", 400),
        ("protected-name", "protected-target", 403),
        ("protected-tag", "protected-tag", 403),
        ("target-state", "target-busy", 409),
        ("target-version", "version-downgrade", 409),
    ]
    first = first_refusal(verdicts)
    assert first is not None and first.guard == "self-restore"


# --- protected by name ------------------------------------------------------------------------------


def test_protected_by_name_refuses_with_403_naming_the_entry() -> None:
    verdicts = check(request(targetDeploymentItemName="orders-live"), cfg=config(PROTECTED_TARGETS="*-live"))
    refusal = first_refusal(verdicts)
    assert refusal is not None
    assert (refusal.guard, refusal.reason, refusal.status) == ("protected-name", "protected-target", 403)
    assert refusal.field == "targetDeploymentItemName"
    assert "'orders-live'" in refusal.message and "PROTECTED_TARGETS entry '*-live'" in refusal.message


def test_protected_by_name_in_another_project_only() -> None:
    cfg = config(PROTECTED_TARGETS=f"{OTHER_PROJECT}:orders-verify", ALLOWED_TARGET_PROJECTS=OTHER_PROJECT)
    assert verdict_of(check(cfg=cfg), "protected-name").allowed
    refused = verdict_of(check(request(targetProjectId=OTHER_PROJECT), cfg=cfg), "protected-name")
    assert not refused.allowed and refused.reason == "protected-target"


# --- protected by tag -------------------------------------------------------------------------------


@pytest.mark.parametrize("tags", [{"restore-protected": "true"}, {"Restore-Protected": " TRUE "}])
def test_protected_by_tag_refuses_with_403(tags: dict[str, str]) -> None:
    facts = TargetFacts(True, False, "IDLE", "8.0.15", {"team": "orders", **tags})
    refusal = first_refusal(check(facts=facts))
    assert refusal is not None
    assert (refusal.guard, refusal.reason, refusal.status) == ("protected-tag", "protected-tag", 403)
    assert "restore-protected=true" in refusal.message


@pytest.mark.parametrize("tags", [{}, {"restore-protected": "false"}, {"protected": "true"}])
def test_tag_guard_allows_other_tags(tags: dict[str, str]) -> None:
    verdict = verdict_of(check(facts=TargetFacts(True, False, "IDLE", "8.0.15", tags)), "protected-tag")
    assert verdict.allowed and verdict.reason == "allowed"


def test_protected_tag_key_and_value_are_configurable() -> None:
    cfg = config(PROTECTED_TAG_KEY="env", PROTECTED_TAG_VALUE="production")
    tagged = TargetFacts(True, False, "IDLE", "8.0.15", {"env": "Production"})
    assert not verdict_of(check(facts=tagged, cfg=cfg), "protected-tag").allowed
    default_tag = TargetFacts(True, False, "IDLE", "8.0.15", {"restore-protected": "true"})
    assert verdict_of(check(facts=default_tag, cfg=cfg), "protected-tag").allowed


# --- break-glass ------------------------------------------------------------------------------------

PROTECTED_EVERYWHERE = TargetFacts(True, False, "IDLE", "8.0.15", {"restore-protected": "true"})


def test_break_glass_from_a_listed_principal_passes_both_protected_guards() -> None:
    cfg = config(PROTECTED_TARGETS="orders-verify", BREAK_GLASS_PRINCIPALS=BREAK_GLASS_ROLE)
    req = request(breakGlass=True, reason="INC-4711: orders-verify holds the only good copy")
    verdicts = check(req, facts=PROTECTED_EVERYWHERE, cfg=cfg, caller=ALICE)
    assert first_refusal(verdicts) is None
    assert break_glass_used(verdicts)
    for guard in ("break-glass", "protected-name", "protected-tag"):
        verdict = verdict_of(verdicts, guard)
        assert verdict.allowed and verdict.reason == "break-glass", guard
        assert ALICE in verdict.message


def test_an_iam_role_arn_covers_that_roles_sessions() -> None:
    cfg = config(BREAK_GLASS_PRINCIPALS="arn:aws:iam::123456789012:role/ops/BreakGlass")
    req = request(breakGlass=True, reason="INC-1")
    assert first_refusal(check(req, facts=PROTECTED_EVERYWHERE, cfg=cfg, caller=ALICE)) is None
    refusal = first_refusal(check(req, facts=PROTECTED_EVERYWHERE, cfg=cfg, caller=MALLORY))
    assert refusal is not None and refusal.reason == "break-glass-denied"


def test_break_glass_from_a_caller_not_on_the_list_is_403_naming_why() -> None:
    cfg = config(BREAK_GLASS_PRINCIPALS=BREAK_GLASS_ROLE)
    req = request(breakGlass=True, reason="I really want to")
    verdicts = check(req, facts=PROTECTED_EVERYWHERE, cfg=cfg, caller=MALLORY)
    refusal = first_refusal(verdicts)
    assert refusal is not None
    assert (refusal.guard, refusal.reason, refusal.status) == ("break-glass", "break-glass-denied", 403)
    assert f"caller {MALLORY} may not break glass: it is not in BREAK_GLASS_PRINCIPALS" in refusal.message
    assert not break_glass_used(verdicts)
    # And the protection is not waived for the refused caller.
    assert not verdict_of(verdicts, "protected-tag").allowed


def test_break_glass_is_refused_even_for_an_unprotected_target_when_the_caller_is_not_listed() -> None:
    refusal = first_refusal(check(request(breakGlass=True, reason="x"), caller=MALLORY))
    assert refusal is not None and refusal.reason == "break-glass-denied"


def test_break_glass_without_a_caller_is_refused_schedules_and_alarms_cannot_break_glass() -> None:
    cfg = config(BREAK_GLASS_PRINCIPALS=BREAK_GLASS_ROLE)
    refusal = first_refusal(check(request(breakGlass=True, reason="x"), cfg=cfg, caller=None))
    assert refusal is not None
    assert (refusal.reason, refusal.status) == ("break-glass-denied", 403)
    assert "schedules and alarms cannot break glass" in refusal.message


def test_break_glass_needs_a_reason() -> None:
    # The request model already refuses this (400); the guard holds the rule too, for any other caller.
    class NoReason:
        group_id = SOURCE_PROJECT
        cluster_name = "orders-prod"
        target_deployment_item_name = "orders-verify"
        target_project_id = None
        reason = "  "
        break_glass = True
        confirm_restore_onto_source = False

    cfg = config(BREAK_GLASS_PRINCIPALS=BREAK_GLASS_ROLE)
    refusal = first_refusal(check_target(NoReason(), PROTECTED_EVERYWHERE, "8.0.15", cfg, ALICE))
    assert refusal is not None
    assert (refusal.reason, refusal.status, refusal.field) == ("break-glass-denied", 400, "reason")


# --- allowed target projects ------------------------------------------------------------------------


def test_restore_into_the_source_project_is_always_allowed() -> None:
    verdict = verdict_of(check(request(targetProjectId=SOURCE_PROJECT)), "allowed-project")
    assert verdict.allowed


def test_restore_into_a_listed_project_is_allowed_and_into_another_is_403() -> None:
    cfg = config(ALLOWED_TARGET_PROJECTS=OTHER_PROJECT)
    assert verdict_of(check(request(targetProjectId=OTHER_PROJECT), cfg=cfg), "allowed-project").allowed
    refusal = first_refusal(check(request(targetProjectId=UNLISTED_PROJECT), cfg=cfg))
    assert refusal is not None
    assert (refusal.guard, refusal.reason, refusal.status) == ("allowed-project", "project-not-allowed", 403)
    assert refusal.field == "targetProjectId"
    assert UNLISTED_PROJECT in refusal.message and "ALLOWED_TARGET_PROJECTS" in refusal.message


# --- restoring a cluster onto itself ----------------------------------------------------------------


def test_restore_onto_the_source_needs_confirmation() -> None:
    refusal = first_refusal(check(request(targetDeploymentItemName="orders-prod")))
    assert refusal is not None
    assert (refusal.guard, refusal.reason, refusal.status) == (
        "self-restore",
        "self-restore-unconfirmed",
        400,
    )
    assert refusal.field == "confirmRestoreOntoSource"
    assert "set confirmRestoreOntoSource to true" in refusal.message

    confirmed = check(request(targetDeploymentItemName="orders-prod", confirmRestoreOntoSource=True))
    assert first_refusal(confirmed) is None
    assert verdict_of(confirmed, "self-restore").reason == "allowed"


def test_same_name_in_another_project_is_not_a_self_restore() -> None:
    cfg = config(ALLOWED_TARGET_PROJECTS=OTHER_PROJECT)
    req = request(targetDeploymentItemName="orders-prod", targetProjectId=OTHER_PROJECT)
    verdict = verdict_of(check(req, cfg=cfg), "self-restore")
    assert verdict.allowed and verdict.reason == "not-applicable"


# --- target exists, kind, state ---------------------------------------------------------------------


def test_missing_target_is_404_and_the_atlas_guards_say_not_checked() -> None:
    verdicts = check(facts=TargetFacts(exists=False, dedicated=False, state_name=None, mongodb_version=None))
    refusal = first_refusal(verdicts)
    assert refusal is not None
    assert (refusal.guard, refusal.reason, refusal.status) == ("target-exists", "target-missing", 404)
    assert "'orders-verify'" in refusal.message and "does not exist" in refusal.message
    for guard in ("target-kind", "protected-tag", "target-state", "target-version"):
        assert verdict_of(verdicts, guard).message == "not checked: the target does not exist"


def test_dedicated_target_is_refused_as_not_supported_yet() -> None:
    facts = TargetFacts(exists=True, dedicated=True, state_name=None, mongodb_version=None)
    refusal = first_refusal(check(request(targetDeploymentItemName="analytics-dedicated"), facts=facts))
    assert refusal is not None
    assert (refusal.guard, refusal.reason, refusal.status) == ("target-kind", "dedicated-target", 400)
    assert refusal.message.startswith(f"{DEDICATED_NOT_SUPPORTED}: target 'analytics-dedicated'")
    assert DEDICATED_NOT_SUPPORTED == "dedicated targets are not supported yet"


@pytest.mark.parametrize("state", ["CREATING", "UPDATING", "DELETING", "REPAIRING"])
def test_busy_target_is_409_naming_the_state(state: str) -> None:
    refusal = first_refusal(check(facts=TargetFacts(True, False, state, "8.0.15")))
    assert refusal is not None
    assert (refusal.guard, refusal.reason, refusal.status) == ("target-state", "target-busy", 409)
    assert f"is {state}" in refusal.message and "needs an IDLE target" in refusal.message


@pytest.mark.parametrize("state", ["PAUSED", None])
def test_unknown_target_state_is_409(state: str | None) -> None:
    refusal = first_refusal(check(facts=TargetFacts(True, False, state, "8.0.15")))
    assert refusal is not None and refusal.reason == "target-busy"
    assert f"state {state!r}, which this service does not know" in refusal.message


# --- version ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("snapshot", "target"),
    [("8.0.15", "8.0.3"), ("7.0.12", "8.0.1"), ("7.3.1", "8.0.0"), ("6.0.1", "7.0.0"), ("4.4.29", "5.0.1")],
)
def test_same_release_series_or_next_major_is_allowed(snapshot: str, target: str) -> None:
    verdict = verdict_of(
        check(facts=TargetFacts(True, False, "IDLE", target), snapshot_version=snapshot), "target-version"
    )
    assert verdict.allowed and verdict.reason == "allowed"


@pytest.mark.parametrize(
    ("snapshot", "target"), [("8.0.15", "7.0.20"), ("7.3.1", "7.0.9"), ("6.0.1", "5.0.30")]
)
def test_older_target_series_is_a_409_downgrade(snapshot: str, target: str) -> None:
    refusal = first_refusal(check(facts=TargetFacts(True, False, "IDLE", target), snapshot_version=snapshot))
    assert refusal is not None
    assert (refusal.guard, refusal.reason, refusal.status) == ("target-version", "version-downgrade", 409)
    assert target in refusal.message and snapshot in refusal.message


def test_target_two_majors_newer_is_refused() -> None:
    refusal = first_refusal(check(facts=TargetFacts(True, False, "IDLE", "8.0.1"), snapshot_version="6.0.5"))
    assert refusal is not None and refusal.reason == "version-too-new"


@pytest.mark.parametrize(("snapshot", "target"), [(None, "8.0.1"), ("8.0.1", None), ("weird", "8.0.1")])
def test_unknown_versions_are_not_checked(snapshot: str | None, target: str | None) -> None:
    verdict = verdict_of(
        check(facts=TargetFacts(True, False, "IDLE", target), snapshot_version=snapshot), "target-version"
    )
    assert verdict.allowed and verdict.reason == "not-applicable"


# --- target lock ------------------------------------------------------------------------------------


def test_target_lock_verdict() -> None:
    lock_id = f"lock#{SOURCE_PROJECT}#orders-verify"
    assert target_lock_verdict(lock_id, None, None).allowed
    refused = target_lock_verdict(lock_id, "r-1", 1793505600)
    assert (refused.allowed, refused.reason, refused.status) == (False, "target-locked", 409)
    assert "restore r-1 is already running into this target" in refused.message


# --- recovery plans ---------------------------------------------------------------------------------


def test_good_recovery_plans_have_no_problems() -> None:
    plans = {
        "orders-prod-down": request(targetDeploymentItemName="orders-dr"),
        "orders-prod-corrupt": request(targetDeploymentItemName="orders-prod", confirmRestoreOntoSource=True),
    }
    assert validate_recovery_plans(plans, config(PROTECTED_TARGETS="billing-*")) == []


def test_bad_recovery_plans_are_named_with_their_problem() -> None:
    cfg = config(PROTECTED_TARGETS="orders-prod", BREAK_GLASS_PRINCIPALS=BREAK_GLASS_ROLE)
    plans = {
        "protected": request(targetDeploymentItemName="orders-prod", confirmRestoreOntoSource=True),
        "break-glass": request(targetDeploymentItemName="orders-dr", breakGlass=True, reason="because"),
        "elsewhere": request(targetProjectId=UNLISTED_PROJECT),
        "onto-source": request(clusterName="orders-dr", targetDeploymentItemName="orders-dr"),
    }
    problems = validate_recovery_plans(plans, cfg)
    assert len(problems) == 4
    assert problems[0].startswith("recovery plan 'protected': target 'orders-prod'")
    assert "PROTECTED_TARGETS entry 'orders-prod'" in problems[0]
    assert problems[1].startswith("recovery plan 'break-glass': breakGlass is not allowed in a recovery plan")
    assert problems[2].startswith(f"recovery plan 'elsewhere': targetProjectId {UNLISTED_PROJECT}")
    assert problems[3].startswith("recovery plan 'onto-source': target 'orders-dr'")
    assert "confirmRestoreOntoSource" in problems[3]
