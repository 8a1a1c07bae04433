"""Verification plans (``contracts/plan.py``): the API's answer for a bad plan, the target-safety guards a
plan's targets must pass when it is saved, and the concrete sources of a run. Plain Python.

- :func:`parse_plan` reads a plan (decoded JSON) or raises :class:`InvalidRequest` with one
  ``{"field", "message"}`` per bad field (``sources[3].clusterName``, ``snapshot.windowDays``), never the
  value.
- :func:`validate_plan` is what ``PUT /plans/{name}`` needs: :func:`parse_plan`, the name in the path, and
  :func:`target_problems` (a source whose target the guards refuse, e.g. a protected one, refuses the
  plan; a selector's templated targets are known only when the plan runs, and the intake guards them then).
- :func:`resolve_sources` turns a plan and the Flex clusters listed for its selectors' projects into the
  run's ordered sources: explicit sources first in plan order, then what the selectors matched sorted by
  cluster name, then the selectors that matched nothing. A source that cannot run carries a
  :class:`Refusal` (the run records it ``REFUSED``); the others go on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

from pydantic import BaseModel, ValidationError

from flexrestore.contracts.patterns import CLUSTER_NAME_MAX_CHARS, CLUSTER_NAME_PATTERN, is_target_name
from flexrestore.contracts.plan import (
    DESCRIPTION_MAX_CHARS,
    EXPRESSION_RULE,
    MAX_CONCURRENCY,
    MAX_RETAIN_MINUTES,
    MAX_RTO_OBJECTIVE_SECONDS,
    MAX_SNAPSHOT_AGE_HOURS,
    MAX_SOURCES,
    MAX_VALIDATION_TIMEOUT_SECONDS,
    MAX_WINDOW_DAYS,
    TEMPLATE_RULE,
    TIMEZONE_RULE,
    EphemeralTargets,
    ExplicitSource,
    Plan,
    Schedule,
    SelectorTag,
    SnapshotChoice,
    TagSelector,
    Validation,
)
from flexrestore.domain.guards import (
    PROJECT_NOT_ALLOWED,
    PROTECTED_TARGET,
    SELF_RESTORE_UNCONFIRMED,
    GuardConfig,
    TargetFacts,
    Verdict,
    check_target,
)
from flexrestore.domain.ports import ListedCluster
from flexrestore.domain.request import FIELD_RULES, InvalidRequest, Vocabulary, describe_errors

__all__ = [
    "PLAN_VOCABULARY",
    "PlannedSource",
    "Refusal",
    "parse_plan",
    "resolve_sources",
    "restorable",
    "target_problems",
    "validate_plan",
]

# Why a source of a run cannot run (the run record's error code; the source ends REFUSED).
NO_MATCHING_CLUSTER: Final = "NO_MATCHING_CLUSTER"
CLUSTERS_NOT_LISTED: Final = "CLUSTERS_NOT_LISTED"
DUPLICATE_SOURCE: Final = "DUPLICATE_SOURCE"
SOURCE_IS_TARGET: Final = "SOURCE_IS_TARGET"
TARGET_IS_SOURCE: Final = "TARGET_IS_SOURCE"
TARGET_COLLISION: Final = "TARGET_COLLISION"
INVALID_CLUSTER_NAME: Final = "INVALID_CLUSTER_NAME"
INVALID_TARGET_NAME: Final = "INVALID_TARGET_NAME"
TOO_MANY_SOURCES: Final = "TOO_MANY_SOURCES"
MAX_RUN_SOURCES: Final = MAX_SOURCES

PLAN_RULES: Final[Mapping[str, str]] = {
    "groupId": FIELD_RULES["groupId"],
    "clusterName": FIELD_RULES["clusterName"],
    "targetDeploymentItemName": FIELD_RULES["targetDeploymentItemName"],
    "targetProjectId": FIELD_RULES["targetProjectId"],
    "name": "must be 1 to 64 characters: letters A-Z a-z, digits and . _ -",
    "description": f"must be text of at most {DESCRIPTION_MAX_CHARS} characters",
    "schedule.expression": EXPRESSION_RULE,
    "schedule.timezone": TIMEZONE_RULE,
    "snapshot.choice": "must be LATEST or RANDOM_WITHIN_WINDOW",
    "snapshot.windowDays": f"must be a whole number of days from 1 to {MAX_WINDOW_DAYS}",
    "snapshot.maxAgeHours": f"must be a whole number of hours from 1 to {MAX_SNAPSHOT_AGE_HOURS}",
    "rtoObjectiveSeconds": f"must be a whole number of seconds from 1 to {MAX_RTO_OBJECTIVE_SECONDS}",
    "maxConcurrency": f"must be a whole number from 1 to {MAX_CONCURRENCY}",
    "notify": "must be ALL, FAILURES or SUMMARY",
    "sources": f"must be a list of 1 to {MAX_SOURCES} sources",
    "sources.selector.targetDeploymentItemName": TEMPLATE_RULE,
    "sources.selector.tag": 'must be an Atlas tag: {"key": ..., "value": ...}',
    "sources.selector.tag.key": "must be 1 to 255 characters",
    "sources.selector.tag.value": "must be 1 to 255 characters",
    "targets.mode": "must be EPHEMERAL",
    "targets.projectId": FIELD_RULES["targetProjectId"],
    "targets.provider": "must be AWS, AZURE or GCP",
    "targets.region": "must be an Atlas region name such as US_EAST_1",
    "targets.retainMinutes": f"must be a whole number of minutes from 0 to {MAX_RETAIN_MINUTES}",
    "validation.lambdaArn": (
        "must be a Lambda function ARN: arn:aws:lambda:<region>:<account id>:function:<name>"
        "[:<alias or version>]"
    ),
    "validation.timeoutSeconds": (
        f"must be a whole number of seconds from 1 to {MAX_VALIDATION_TIMEOUT_SECONDS}"
    ),
}
_EITHER = "a source is either one cluster (clusterName) or a tag selector (tag), not both"
PLAN_REFUSED_FIELDS: Final[Mapping[str, str]] = {
    "sources.selector.clusterName": f"is not used with tag: {_EITHER}",
    "sources.snapshotId": "is not used in a plan: snapshot.choice picks each source's snapshot",
    "sources.breakGlass": (
        "is not allowed in a plan: a run has no IAM caller to authorize break-glass; point the source at a "
        "target that is not protected"
    ),
    "sources.confirmRestoreOntoSource": (
        "is not allowed in a plan: a verification never restores onto its source"
    ),
    "sources.dryRun": "is not allowed in a plan: a run restores",
    "sources.reason": "is not used in a plan: a run gives each restore its reason (the plan and the run)",
}


def _fields(model: type[BaseModel]) -> tuple[str, ...]:
    return tuple(info.alias or name for name, info in model.model_fields.items())


PLAN_VOCABULARY: Final = Vocabulary(
    what="the plan",
    rules=PLAN_RULES,
    allowed={
        "": _fields(Plan),
        "schedule": _fields(Schedule),
        "snapshot": _fields(SnapshotChoice),
        "sources.explicit": _fields(ExplicitSource),
        "sources.selector": _fields(TagSelector),
        "sources.selector.tag": _fields(SelectorTag),
        "targets": _fields(EphemeralTargets),
        "validation": _fields(Validation),
    },
    refused=PLAN_REFUSED_FIELDS,
    members=frozenset({"explicit", "selector"}),
)


def parse_plan(data: Any) -> Plan:
    """Validate already-decoded JSON into a :class:`Plan`; raise :class:`InvalidRequest` naming each bad
    field. YAML is the caller's business: this reads what ``json.loads`` (or a YAML loader) gave."""
    if not isinstance(data, dict):
        raise InvalidRequest("the plan is not valid", [{"field": "body", "message": "must be a JSON object"}])
    try:
        return Plan.model_validate(data)
    except ValidationError as exc:
        raise describe_errors(exc, vocabulary=PLAN_VOCABULARY) from None


def validate_plan(data: Any, config: GuardConfig, *, name: str | None = None) -> Plan:
    """Everything ``PUT /plans/{name}`` checks before saving: the shape (:func:`parse_plan`), that the plan
    is called ``name`` (the path's) when given, and that the guards allow every target known now."""
    plan = parse_plan(data)
    errors: list[dict[str, str]] = []
    if name is not None and plan.name != name:
        errors.append({"field": "name", "message": "must be the plan name in the path"})
    errors += target_problems(plan, config)
    if errors:
        raise InvalidRequest.naming(PLAN_VOCABULARY.what, errors)
    return plan


def target_problems(plan: Plan, config: GuardConfig) -> list[dict[str, str]]:
    """The targets of ``plan`` the target-safety guards refuse already, one ``{"field", "message"}`` each.

    Only what needs no Atlas: the allowed project, the source itself, the protected names. A selector's
    templated target names are known when the plan runs (the allowed project is checked now). The
    protected tag, the state and the version of a target are Atlas's, and checked by the intake when the
    run restores. Ephemeral targets are created by the run: their project must be allowed for every
    source, and their names (``frv-...``) must not be protected (a protected cluster could never be
    deleted). A plan's validator must be one of VALIDATOR_FUNCTION_ARNS.
    """
    problems: list[dict[str, str]] = []
    if plan.validation is not None and plan.validation.lambda_arn not in config.allowed_validators:
        problems.append(
            {
                "field": "validation.lambdaArn",
                "message": "is not in VALIDATOR_FUNCTION_ARNS (the template's ValidatorFunctionArns): this "
                "deployment may not invoke it. Add it there, or name an allowed validator",
            }
        )
    if plan.targets is not None:
        return problems + _ephemeral_problems(plan, plan.targets, config)
    for position, source in enumerate(plan.sources):
        if source.target_deployment_item_name is None:
            continue
        if isinstance(source, ExplicitSource):
            view = _GuardView(
                source.group_id,
                source.cluster_name,
                source.target_deployment_item_name,
                source.target_project,
            )
            only: tuple[str, ...] | None = None
        else:
            fixed = source.fixed_target
            view = _GuardView(
                source.group_id, "", fixed or source.target_deployment_item_name, source.target_project
            )
            only = None if fixed else ("allowed-project",)
        facts = TargetFacts(exists=True, state_name="IDLE")
        for verdict in check_target(view, facts, None, config, caller=None):
            if verdict.allowed or (only is not None and verdict.guard not in only):
                continue
            field = "targetProjectId" if verdict.field == "targetProjectId" else "targetDeploymentItemName"
            problems.append(
                {"field": f"sources[{position}].{field}", "message": _guard_words(verdict, view, config)}
            )
    return problems


def _ephemeral_problems(plan: Plan, targets: EphemeralTargets, config: GuardConfig) -> list[dict[str, str]]:
    project = targets.project_id
    problems: list[dict[str, str]] = []
    outside = sorted(
        {
            s.group_id
            for s in plan.sources
            if s.group_id != project and project not in config.allowed_target_projects
        }
    )
    if outside:
        problems.append(
            {
                "field": "targets.projectId",
                "message": "is neither the source project of every source nor in ALLOWED_TARGET_PROJECTS; a "
                f"run may not restore into it (sources of {len(outside)} other project(s))",
            }
        )
    # The names a run gives: frv-<8 hex>-<3 digits>; a pattern that matches these samples protects them.
    samples = (f"{EPHEMERAL_NAME_SAMPLE}-000", f"{EPHEMERAL_NAME_SAMPLE}-499")
    protected = next((p for n in samples if (p := config.protected_by(project, n)) is not None), None)
    if protected is not None:
        problems.append(
            {
                "field": "targets.projectId",
                "message": "the clusters a run creates there (frv-...) are protected by PROTECTED_TARGETS "
                f"entry {protected.entry!r}: they could not be restored into, nor ever deleted",
            }
        )
    return problems


EPHEMERAL_NAME_SAMPLE: Final = "frv-0a1b2c3d"


@dataclass(frozen=True)
class _GuardView:
    """A plan's source as the guards read a restore request (no break-glass, no confirmation)."""

    group_id: str
    cluster_name: str
    target_deployment_item_name: str
    target_project_id: str
    reason: str | None = None
    break_glass: bool = False
    confirm_restore_onto_source: bool = False


def _guard_words(verdict: Verdict, view: _GuardView, config: GuardConfig) -> str:
    """The guard's refusal without the value (the answer names the field instead)."""
    if verdict.reason == PROJECT_NOT_ALLOWED:
        return "is neither the source project nor in ALLOWED_TARGET_PROJECTS; a run may not restore into it"
    if verdict.reason == SELF_RESTORE_UNCONFIRMED:
        return "is the source cluster itself; a verification never restores onto its source"
    if verdict.reason == PROTECTED_TARGET:
        protected = config.protected_by(view.target_project_id, view.target_deployment_item_name)
        entry = f" entry {protected.entry!r}" if protected is not None else ""
        return f"is protected by PROTECTED_TARGETS{entry}; a restore would erase it. Choose another target"
    return verdict.message


# --- the sources of a run ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """Why a source of a run does not run: a code (the run record's ``error.code``) and words."""

    code: str
    message: str


@dataclass(frozen=True)
class PlannedSource:
    """One source of a run, in the run's order (``index``), from ``origin`` (``sources[i]`` of the plan).

    ``cluster_name`` is None only for a selector that matched nothing; ``target_deployment_item_name`` is
    None for an ephemeral target (the run creates and names it). A refused source carries ``refusal``.
    """

    index: int
    origin: str
    group_id: str
    cluster_name: str | None
    target_deployment_item_name: str | None
    target_project_id: str
    snapshot: SnapshotChoice
    tag: SelectorTag | None = None
    refusal: Refusal | None = None

    @property
    def refused(self) -> bool:
        return self.refusal is not None

    @property
    def key(self) -> str:
        """``<groupId>/<clusterName>``, as restore records name the source (the random choice's key too)."""
        return f"{self.group_id}/{self.cluster_name or ''}"

    def restore_request(
        self, *, snapshot_id: str | None = None, reason: str | None = None, target_name: str | None = None
    ) -> dict[str, Any]:
        """The restore request (``domain/request.py``'s fields) that restores this source; ``target_name``
        names an ephemeral target once the run has created it."""
        target = target_name or self.target_deployment_item_name
        if self.cluster_name is None or target is None:
            raise ValueError(f"{self.origin} has no cluster or no target to restore into")
        request: dict[str, Any] = {
            "groupId": self.group_id,
            "clusterName": self.cluster_name,
            "targetDeploymentItemName": target,
            "targetProjectId": self.target_project_id,
        }
        if snapshot_id is not None:
            request["snapshotId"] = snapshot_id
        if reason is not None:
            request["reason"] = reason
        return request


@dataclass(frozen=True)
class _Match:
    position: int
    selector: TagSelector
    cluster_name: str


def resolve_sources(
    plan: Plan,
    listed: Mapping[str, Sequence[ListedCluster]],
    *,
    unlisted: Mapping[str, str] | None = None,
) -> list[PlannedSource]:
    """The run's sources, in order, each with its index.

    ``listed`` holds the Flex clusters listed for each selector's ``groupId``; ``unlisted`` says why a
    project's clusters could not be listed (its selectors are refused with that reason). A selector
    match is refused when it is already a source (an explicit one, or an earlier match), when it is the
    target of an explicit source, when its target would be itself or another source of the run, or when
    its target is already taken; the others go on.
    """
    unlisted = unlisted or {}
    ephemeral = plan.targets is not None
    target_project = plan.targets.project_id if plan.targets is not None else None
    planned: list[PlannedSource] = []
    running = 0  # sources that will restore
    sources: set[tuple[str, str]] = set()
    targets: set[tuple[str, str]] = set()

    for position, source in enumerate(plan.sources):
        if isinstance(source, ExplicitSource):
            planned.append(
                PlannedSource(
                    index=len(planned),
                    origin=f"sources[{position}]",
                    group_id=source.group_id,
                    cluster_name=source.cluster_name,
                    target_deployment_item_name=source.target_deployment_item_name,
                    target_project_id=target_project or source.target_project,
                    snapshot=plan.snapshot,
                )
            )
            running += 1
            sources.add((source.group_id, source.cluster_name.casefold()))
            if source.target_deployment_item_name is not None:
                targets.add((source.target_project, source.target_deployment_item_name.casefold()))
    explicit_targets = frozenset(targets)

    matches: list[_Match] = []
    empty: list[PlannedSource] = []
    for position, source in enumerate(plan.sources):
        if not isinstance(source, TagSelector):
            continue
        found = [
            _Match(position, source, cluster.name)
            for cluster in listed.get(source.group_id, ())
            if cluster.tag_map.get(source.tag.key) == source.tag.value
        ]
        matches += found
        if not found:
            empty.append(_unmatched(plan, position, source, listed, unlisted, target_project))
    matches.sort(key=lambda m: (m.cluster_name.casefold(), m.cluster_name, m.selector.group_id, m.position))
    every_source = sources | {(m.selector.group_id, m.cluster_name.casefold()) for m in matches}

    for match in matches:
        selector = match.selector
        target = None if ephemeral else selector.target_for(match.cluster_name)
        project = target_project or selector.target_project
        source_key = (selector.group_id, match.cluster_name.casefold())
        target_key = (project, target.casefold()) if target is not None else None
        refusal = _match_refusal(
            match, target, source_key, target_key, sources, explicit_targets, every_source, targets
        )
        if refusal is None and running >= MAX_RUN_SOURCES:
            refusal = Refusal(
                TOO_MANY_SOURCES, f"a run restores at most {MAX_RUN_SOURCES} sources; this one is beyond that"
            )
        if refusal is None:
            running += 1
            sources.add(source_key)
            if target_key is not None:
                targets.add(target_key)
        planned.append(
            PlannedSource(
                index=len(planned),
                origin=f"sources[{match.position}]",
                group_id=selector.group_id,
                cluster_name=match.cluster_name,
                target_deployment_item_name=target,
                target_project_id=project,
                snapshot=plan.snapshot,
                tag=selector.tag,
                refusal=refusal,
            )
        )
    for entry in empty:
        planned.append(replace(entry, index=len(planned)))
    return planned


def _match_refusal(
    match: _Match,
    target: str | None,
    source_key: tuple[str, str],
    target_key: tuple[str, str] | None,
    sources: set[tuple[str, str]],
    explicit_targets: frozenset[tuple[str, str]],
    every_source: set[tuple[str, str]],
    targets: set[tuple[str, str]],
) -> Refusal | None:
    cluster = f"cluster {match.cluster_name!r} of project {match.selector.group_id}"
    if len(match.cluster_name) > CLUSTER_NAME_MAX_CHARS or not re.fullmatch(
        CLUSTER_NAME_PATTERN, match.cluster_name
    ):
        return Refusal(INVALID_CLUSTER_NAME, f"{cluster} does not have a Flex cluster name")
    if source_key in sources:
        return Refusal(DUPLICATE_SOURCE, f"{cluster} is already a source of this run")
    if source_key in explicit_targets:
        return Refusal(
            SOURCE_IS_TARGET,
            f"{cluster} is the target of an explicit source; a run never verifies a cluster it overwrites",
        )
    if target_key is None:
        return None
    if target is None or not is_target_name(target):
        return Refusal(
            INVALID_TARGET_NAME,
            f"the target name made from the template for {cluster} is not a valid target name "
            "(at most 64 characters: Unicode letters and digits or - _ . ( ) , : & @ + ')",
        )
    if target_key == source_key:
        return Refusal(TARGET_IS_SOURCE, f"the target of {cluster} would be the cluster itself")
    if target_key in every_source:
        return Refusal(
            TARGET_IS_SOURCE,
            f"the target {target!r} of {cluster} is a source of this run; a run never overwrites a cluster "
            "it verifies",
        )
    if target_key in targets:
        return Refusal(
            TARGET_COLLISION, f"the target {target!r} of {cluster} is already a target of this run"
        )
    return None


def _unmatched(
    plan: Plan,
    position: int,
    selector: TagSelector,
    listed: Mapping[str, Sequence[ListedCluster]],
    unlisted: Mapping[str, str],
    target_project: str | None,
) -> PlannedSource:
    project = selector.group_id
    if project in unlisted or project not in listed:
        why = unlisted.get(project) or "they were not listed"
        refusal = Refusal(CLUSTERS_NOT_LISTED, f"the Flex clusters of project {project} are unknown: {why}")
    else:
        tag = f"{selector.tag.key}={selector.tag.value}"
        refusal = Refusal(NO_MATCHING_CLUSTER, f"no Flex cluster of project {project} carries the tag {tag}")
    return PlannedSource(
        index=-1,
        origin=f"sources[{position}]",
        group_id=project,
        cluster_name=None,
        target_deployment_item_name=None if plan.targets is not None else selector.fixed_target,
        target_project_id=target_project or selector.target_project,
        snapshot=plan.snapshot,
        tag=selector.tag,
        refusal=refusal,
    )


def restorable(planned: Iterable[PlannedSource]) -> list[PlannedSource]:
    """The sources a run restores (the others are recorded REFUSED straight away)."""
    return [p for p in planned if not p.refused]
