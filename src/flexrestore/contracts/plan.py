"""A verification plan: a document people keep in their own repository (JSON, or YAML that a tool turns
into the same JSON) saying which clusters to restore, when, from which snapshot and how fast. A **run**
restores every source of a plan and ends with a run record (``contracts/run.py``). See docs/contracts.md,
"Plan"; the JSON Schema is ``docs/schemas/plan.json``.

Read strictly, like the restore request: JSON types only, unknown fields refused, camelCase names only,
no control or bidirectional-override characters, every bound checked. The rules that span fields (a
target needed unless targets are ephemeral, the same target twice, a target that is a source) are checked
by :class:`Plan` itself and name each field they are about (``sources[3].targetDeploymentItemName``).
``domain/plans.py`` turns a refusal into the API's answer and adds the target-safety guards.
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import datetime
from typing import Annotated, Any, Final, Literal

from pydantic import ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

from flexrestore.contracts.base import Contract, Timestamp, field_rules_error
from flexrestore.contracts.patterns import (
    ATLAS_ID_PATTERN,
    CLUSTER_NAME_PATTERN,
    TARGET_NAME_MAX_CHARS,
    TARGET_NAME_PATTERN,
    hidden_character_problem,
    is_target_name,
)

PLAN_NAME_PATTERN: Final = r"^[A-Za-z0-9._-]{1,64}$"
CLUSTER_NAME_PLACEHOLDER: Final = "{clusterName}"
MAX_SOURCES: Final = 500
MAX_CONCURRENCY: Final = 20
DEFAULT_MAX_CONCURRENCY: Final = 5
MAX_WINDOW_DAYS: Final = 365
MAX_RTO_OBJECTIVE_SECONDS: Final = 86_400
MAX_RETAIN_MINUTES: Final = 1440
# The run's validate function has 900 s (Lambda's most); it keeps 60 s for the built-in checks and records.
MAX_VALIDATION_TIMEOUT_SECONDS: Final = 840
MAX_SNAPSHOT_AGE_HOURS: Final = 8760
DESCRIPTION_MAX_CHARS: Final = 500
DEFAULT_TIMEZONE: Final = "UTC"

LATEST: Final = "LATEST"
RANDOM_WITHIN_WINDOW: Final = "RANDOM_WITHIN_WINDOW"
SnapshotChoiceName = Literal["LATEST", "RANDOM_WITHIN_WINDOW"]
NotifyPolicy = Literal["ALL", "FAILURES", "SUMMARY"]
NOTIFY_ALL: Final = "ALL"
NOTIFY_FAILURES: Final = "FAILURES"
NOTIFY_SUMMARY: Final = "SUMMARY"
EPHEMERAL: Final = "EPHEMERAL"

# EventBridge Scheduler expressions, by shape: cron with six fields, rate with a unit, a one-time at().
_CRON_FIELD = r"[0-9A-Za-z*?,/#-]+"
_CRON = re.compile(rf"cron\(({_CRON_FIELD}(?: {_CRON_FIELD}){{5}})\)")
_RATE = re.compile(r"rate\(([1-9][0-9]{0,5}) (minute|minutes|hour|hours|day|days)\)")
_AT = re.compile(r"at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)")
EXPRESSION_RULE: Final = (
    "must be an EventBridge Scheduler expression: cron(<6 fields>), e.g. cron(0 2 * * ? *), "
    "rate(<n> minutes|hours|days) or at(yyyy-mm-ddThh:mm:ss)"
)
# IANA names: Area/Location[/Sublocation], or a single word such as UTC.
_TIMEZONE = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+){0,2}")
_NOT_ZONES = frozenset({"localtime", "posixrules", "factory"})  # files of the tz database, not zone names
TIMEZONE_RULE: Final = "must be an IANA time zone name such as Europe/Berlin or UTC"
LAMBDA_ARN_PATTERN: Final = (
    r"^arn:aws[a-z-]*:lambda:[a-z]{2}(?:-[a-z]+)+-[0-9]:[0-9]{12}:function:[A-Za-z0-9_-]{1,64}"
    r"(?::(?:\$LATEST|[A-Za-z0-9_-]{1,128}))?$"
)


class Document(Contract):
    """A contract people write: strict JSON types, unknown fields refused, camelCase names only, and no
    control or bidirectional-override characters in any string."""

    model_config = ConfigDict(
        strict=True, extra="forbid", populate_by_name=False, validate_by_name=False, validate_by_alias=True
    )

    @field_validator("*", mode="before")
    @classmethod
    def _no_hidden_characters(cls, value: Any) -> Any:
        problem = hidden_character_problem(value) if isinstance(value, str) else None
        if problem:
            raise ValueError(problem)
        return value


class Schedule(Document):
    """When the plan runs by itself (EventBridge Scheduler). A plan without one runs only on demand."""

    expression: str = Field(
        max_length=256,
        description="cron(<6 fields>), rate(<n> minute[s]|hour[s]|day[s]) or at(yyyy-mm-ddThh:mm:ss)",
        examples=["cron(0 2 * * ? *)"],
    )
    timezone: str = Field(
        DEFAULT_TIMEZONE,
        max_length=64,
        description="IANA time zone the expression is read in",
        examples=["Europe/Berlin"],
    )

    @field_validator("expression")
    @classmethod
    def _expression_shape(cls, value: str) -> str:
        problem = expression_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        if not is_timezone(value):
            raise ValueError(TIMEZONE_RULE)
        return value


class SnapshotChoice(Document):
    """Which snapshot each source restores."""

    choice: SnapshotChoiceName = Field(
        description="LATEST: the newest COMPLETED, unexpired snapshot; RANDOM_WITHIN_WINDOW: a random "
        "COMPLETED, unexpired one taken within windowDays (seeded by the run id, recorded in the run record)"
    )
    window_days: int | None = Field(
        None, ge=1, le=MAX_WINDOW_DAYS, description="with RANDOM_WITHIN_WINDOW only: how many days back"
    )
    max_age_hours: int | None = Field(
        None,
        ge=1,
        le=MAX_SNAPSHOT_AGE_HOURS,
        description="validation fails a source whose snapshot was taken longer than this before the run "
        "started (with RANDOM_WITHIN_WINDOW and no maxAgeHours: windowDays; otherwise no limit)",
    )

    @model_validator(mode="after")
    def _window_goes_with_random(self) -> SnapshotChoice:
        if self.choice == RANDOM_WITHIN_WINDOW and self.window_days is None:
            raise field_rules_error(
                [
                    (
                        "windowDays",
                        f"is required with choice {RANDOM_WITHIN_WINDOW}: a number of days, 1 to 365",
                    )
                ]
            )
        if self.choice == LATEST and self.window_days is not None:
            raise field_rules_error([("windowDays", f"is only used with choice {RANDOM_WITHIN_WINDOW}")])
        return self


class ExplicitSource(Document):
    """One named cluster, with the restore request's fields and rules."""

    group_id: str = Field(pattern=ATLAS_ID_PATTERN, max_length=24, description="source project")
    cluster_name: str = Field(pattern=CLUSTER_NAME_PATTERN, max_length=64, description="source Flex cluster")
    target_deployment_item_name: str | None = Field(
        None,
        pattern=TARGET_NAME_PATTERN,
        max_length=64,
        description="the cluster the snapshot is restored into (not with targets.mode EPHEMERAL)",
    )
    target_project_id: str | None = Field(
        None, pattern=ATLAS_ID_PATTERN, max_length=24, description="defaults to groupId"
    )

    @property
    def target_project(self) -> str:
        return self.target_project_id or self.group_id


class SelectorTag(Document):
    """An Atlas resource tag, matched exactly (key and value)."""

    key: str = Field(min_length=1, max_length=255)
    value: str = Field(min_length=1, max_length=255)


class TagSelector(Document):
    """Every Flex cluster of ``groupId`` that carries ``tag``, listed when the plan runs."""

    group_id: str = Field(
        pattern=ATLAS_ID_PATTERN, max_length=24, description="project whose clusters are listed"
    )
    tag: SelectorTag
    target_deployment_item_name: str | None = Field(
        None,
        description="target name template: {clusterName} (at most once) is replaced by each cluster's name",
        examples=["{clusterName}-verify"],
    )
    target_project_id: str | None = Field(
        None, pattern=ATLAS_ID_PATTERN, max_length=24, description="defaults to groupId"
    )

    @field_validator("target_deployment_item_name")
    @classmethod
    def _template_makes_names(cls, value: str | None) -> str | None:
        if value is None:
            return value
        too_long = len(value) > TARGET_NAME_MAX_CHARS + len(CLUSTER_NAME_PLACEHOLDER)
        if (
            too_long
            or value.count(CLUSTER_NAME_PLACEHOLDER) > 1
            or not is_target_name(value.replace(CLUSTER_NAME_PLACEHOLDER, "a"))
        ):
            raise ValueError(TEMPLATE_RULE)
        return value

    @property
    def target_project(self) -> str:
        return self.target_project_id or self.group_id

    @property
    def fixed_target(self) -> str | None:
        """The target name when the template has no placeholder (every match then goes to one target)."""
        template = self.target_deployment_item_name
        return template if template is not None and CLUSTER_NAME_PLACEHOLDER not in template else None

    def target_for(self, cluster_name: str) -> str | None:
        """The target name for a matched cluster (not checked: a long cluster name can make it too long)."""
        template = self.target_deployment_item_name
        return None if template is None else template.replace(CLUSTER_NAME_PLACEHOLDER, cluster_name)


TEMPLATE_RULE: Final = (
    "must be a target name template: what remains once {clusterName} (at most once) is replaced must be a "
    "target name of 1 to 64 characters: Unicode letters and digits or - _ . ( ) , : & @ + '"
)


def _source_kind(value: Any) -> str:
    if isinstance(value, TagSelector) or (isinstance(value, dict) and "tag" in value):
        return "selector"
    return "explicit"


Source = Annotated[
    Annotated[ExplicitSource, Tag("explicit")] | Annotated[TagSelector, Tag("selector")],
    Discriminator(_source_kind),
]


class EphemeralTargets(Document):
    """Each source is restored into a Flex cluster the run creates for it in ``projectId`` (named
    ``frv-<8 hex of the run id>-<index>``, tagged with the service, the plan and the run, termination
    protection off), validated, and deleted; sources then name no target. A source whose validation did
    not succeed keeps its cluster ``retainMinutes`` for people to look at, then the sweeper deletes it."""

    mode: Literal["EPHEMERAL"]
    project_id: str = Field(
        pattern=ATLAS_ID_PATTERN,
        max_length=24,
        description="the verification project the clusters are created in: a source project or one of "
        "ALLOWED_TARGET_PROJECTS (the service account needs Project Owner there)",
    )
    provider: Literal["AWS", "AZURE", "GCP"] = Field(description="the Flex cluster's backing provider")
    region: str = Field(pattern=r"^[A-Z][A-Z0-9_]{1,49}$", description="Atlas region name, e.g. US_EAST_1")
    retain_minutes: int = Field(
        0,
        ge=0,
        le=MAX_RETAIN_MINUTES,
        description="how long a cluster whose validation did not succeed is kept before it is deleted",
    )


class Validation(Document):
    """The plan's own validator: a Lambda function the run invokes after each completed restore (after the
    built-in checks pass), with the input of docs/schemas/validator-input.json; it answers
    docs/schemas/validator-output.json. Only ARNs in the deployment's ValidatorFunctionArns are allowed."""

    lambda_arn: str = Field(pattern=LAMBDA_ARN_PATTERN, max_length=256)
    timeout_seconds: int = Field(
        60,
        ge=1,
        le=MAX_VALIDATION_TIMEOUT_SECONDS,
        description="an answer later than this is recorded TIMED_OUT",
    )


class Plan(Document):
    """A verification plan."""

    model_config = ConfigDict(title="Plan")

    name: str = Field(pattern=PLAN_NAME_PATTERN, description="1 to 64 of A-Z a-z 0-9 . _ -")
    description: str | None = Field(None, max_length=DESCRIPTION_MAX_CHARS, description="for people")
    schedule: Schedule | None = Field(None, description="absent: the plan runs only on demand")
    snapshot: SnapshotChoice = Field(
        default_factory=lambda: SnapshotChoice.model_validate({"choice": LATEST}),
        description="default: LATEST",
    )
    rto_objective_seconds: int | None = Field(
        None,
        ge=1,
        le=MAX_RTO_OBJECTIVE_SECONDS,
        description="a source whose RTO (request to Atlas's restoreFinishedDate) exceeds it misses its "
        "objective",
    )
    max_concurrency: int = Field(
        DEFAULT_MAX_CONCURRENCY, ge=1, le=MAX_CONCURRENCY, description="restores running at the same time"
    )
    notify: NotifyPolicy = Field(
        NOTIFY_FAILURES,
        description="ALL: a message per restore and the summary; FAILURES: per-restore messages only for "
        "restores that did not complete, and the summary; SUMMARY: the summary only",
    )
    sources: list[Source] = Field(min_length=1, max_length=MAX_SOURCES)
    targets: EphemeralTargets | None = None
    validation: Validation | None = None

    @property
    def ephemeral(self) -> bool:
        return self.targets is not None

    @model_validator(mode="after")
    def _sources_fit_together(self) -> Plan:
        problems = source_problems(self)
        if problems:
            raise field_rules_error(problems)
        return self


class PlanEntry(Contract):
    """A saved plan, as ``GET /plans/{name}`` answers it: the document and its bookkeeping."""

    model_config = ConfigDict(title="PlanEntry")

    name: str
    plan: dict[str, Any] = Field(description="the plan document as saved (its JSON)")
    revision: int = Field(description="1 when created, one more at every change")
    created_at: Timestamp
    updated_at: Timestamp
    updated_by: str | None = Field(None, description="IAM principal ARN of the caller that saved it")
    schedule_name: str | None = Field(
        None, description="the EventBridge Scheduler schedule that runs it (none without plan.schedule)"
    )


def source_problems(plan: Plan) -> list[tuple[str, str]]:
    """The rules between sources, one ``(field, message)`` per problem (fields relative to the plan)."""
    problems: list[tuple[str, str]] = []
    sources: dict[tuple[str, str], int] = {}  # (project, cluster name casefolded) -> position
    targets: dict[tuple[str, str], int] = {}
    selectors: dict[tuple[str, str, str], int] = {}
    for position, source in enumerate(plan.sources):
        if isinstance(source, ExplicitSource):
            key = (source.group_id, source.cluster_name.casefold())
            if key in sources:
                problems.append(
                    (f"sources[{position}].clusterName", f"is the same source as sources[{sources[key]}]")
                )
            sources.setdefault(key, position)
        else:
            tag = (source.group_id, source.tag.key, source.tag.value)
            if tag in selectors:
                problems.append(
                    (f"sources[{position}].tag", f"selects the same clusters as sources[{selectors[tag]}]")
                )
            selectors.setdefault(tag, position)

    for position, source in enumerate(plan.sources):
        field = f"sources[{position}].targetDeploymentItemName"
        if plan.targets is not None:
            if source.target_deployment_item_name is not None:
                problems.append(
                    (field, "is not used with targets.mode EPHEMERAL: the run creates each target")
                )
            if source.target_project_id is not None:
                problems.append(
                    (
                        f"sources[{position}].targetProjectId",
                        "is not used with targets.mode EPHEMERAL: targets are created in targets.projectId",
                    )
                )
            continue
        if source.target_deployment_item_name is None:
            problems.append((field, "is required (unless targets.mode is EPHEMERAL)"))
            continue
        name = source.target_deployment_item_name
        if isinstance(source, TagSelector):
            if name == CLUSTER_NAME_PLACEHOLDER and source.target_project == source.group_id:
                problems.append((field, "would restore every selected cluster onto itself"))
                continue
            name = source.fixed_target or ""
            if not name:
                continue  # a template: its targets are known when the plan runs
        target = (source.target_project, name.casefold())
        if isinstance(source, ExplicitSource) and target == (source.group_id, source.cluster_name.casefold()):
            problems.append(
                (field, "is the source cluster itself; a verification never restores onto its source")
            )
        elif target in sources:
            problems.append(
                (
                    field,
                    f"is the source cluster of sources[{sources[target]}]; a run never overwrites a cluster "
                    "it verifies",
                )
            )
        elif target in targets:
            problems.append((field, f"is the same target as sources[{targets[target]}]"))
        targets.setdefault(target, position)
    return problems


def expression_problem(expression: str) -> str | None:
    """Why ``expression`` is not an EventBridge Scheduler expression (by shape), or None."""
    cron = _CRON.fullmatch(expression)
    if cron:
        fields = cron.group(1).split(" ")
        if (fields[2] == "?") == (fields[4] == "?"):
            return (
                "must be an EventBridge Scheduler expression: in cron(minutes hours day-of-month month "
                "day-of-week year) exactly one of day-of-month and day-of-week must be ?"
            )
        return None
    rate = _RATE.fullmatch(expression)
    if rate:
        singular = not rate.group(2).endswith("s")
        if singular != (rate.group(1) == "1"):
            return (
                "must be an EventBridge Scheduler expression: rate(1 minute|hour|day) or "
                "rate(<n> minutes|hours|days)"
            )
        return None
    at = _AT.fullmatch(expression)
    if at:
        try:
            datetime.fromisoformat(at.group(1))
        except ValueError:
            return "must be an EventBridge Scheduler expression: at() needs a real date and time"
        return None
    return EXPRESSION_RULE


def is_timezone(name: str) -> bool:
    """True for an IANA time zone name this Python knows (``UTC`` always, even without a tz database)."""
    if name == DEFAULT_TIMEZONE:
        return True
    if not _TIMEZONE.fullmatch(name) or name.casefold() in _NOT_ZONES:
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True
