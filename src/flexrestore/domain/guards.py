"""Target guards: may this restore overwrite that target? Plain Python, no AWS, no HTTP.

A restore erases everything on its target, so before any Atlas restore job is created the intake runs
:func:`check_target` and refuses the request on the first failed guard (:func:`first_refusal`).
Every guard always answers (dryRun shows them all). Guards, in the order a refusal is reported:

=================  =======================================================  ==========================
guard              refuses when                                             status / reason
=================  =======================================================  ==========================
break-glass        ``breakGlass`` without a reason, without an IAM caller   400 / 403 break-glass-denied
                   (schedules, alarms), or from a caller not in
                   BREAK_GLASS_PRINCIPALS
allowed-project    target project is neither the source project nor in     403 project-not-allowed
                   ALLOWED_TARGET_PROJECTS
self-restore       target = source cluster without                          400 self-restore-unconfirmed
                   ``confirmRestoreOntoSource: true``
protected-name     target matches a PROTECTED_TARGETS entry                 403 protected-target
target-exists      Atlas does not know the target                           404 target-missing
target-kind        target is a dedicated cluster (not supported yet)        400 dedicated-target
protected-tag      target carries PROTECTED_TAG_KEY = PROTECTED_TAG_VALUE   403 protected-tag
target-state       target is not IDLE (CREATING, UPDATING, DELETING,        409 target-busy
                   REPAIRING or a state this code does not know)
target-version     target's release series is older than the snapshot's,   409 version-downgrade /
                   or more than one major version newer                     version-too-new
target-lock        another restore holds the target's lease (aws/locks.py)  409 target-locked
=================  =======================================================  ==========================

The two protected guards are passed by an authorized break-glass request (their verdict then says
``break-glass``). Matching of names and tags leans towards protecting: case-insensitive.

Configuration (checked by :meth:`GuardConfig.from_settings`; a bad entry is a SettingsError naming the
variable and the entry, raised at intake cold start):

- PROTECTED_TARGETS: entries separated by commas or whitespace. ``orders-prod`` or ``*-prod`` (fnmatch
  globs ``* ? [...]``) protect matching target names in every project; ``<24-hex projectId>:<pattern>``
  in that project only; ``*:<pattern>`` spells "every project" for a name that itself contains a colon.
  A name containing a comma is matched with ``?`` in its place. Compared case-insensitively.
- PROTECTED_TAG_KEY / PROTECTED_TAG_VALUE (default ``restore-protected`` / ``true``): a target carrying
  that Atlas tag is protected. Key and value compared case-insensitively, value trimmed (``True`` counts).
- ALLOWED_TARGET_PROJECTS: project ids (24 hex) a restore may write into besides its own source project,
  which is always allowed. Empty: only the source project.
- BREAK_GLASS_PRINCIPALS: IAM principal ARNs with a literal account id, globs allowed after it
  (``arn:aws:sts::123456789012:assumed-role/BreakGlass/*``). An IAM role ARN
  (``arn:aws:iam::123456789012:role/BreakGlass``) also covers that role's sessions. An entry that would
  match every principal of an account is refused.
- TARGET_LOCK_LEASE_SECONDS: how long a target lock holds without its poll loop releasing it; never
  shorter than POLL_DEADLINE_SECONDS + 15 min, so a lease cannot run out under a restore still polling.

Break-glass needs an IAM caller, so schedules and alarms (and therefore recovery plans) cannot use it: a
recovery plan must name a target that is not protected (:func:`validate_recovery_plans`).

Versions: a snapshot restores into the same release series or a later one at most one major version up
(8.0 → 8.0, 7.0 → 8.0, 7.3 → 8.0; 8.0 → 7.0 is a downgrade, 6.0 → 8.0 is too new). The series of
``8.0.15`` is (8, 0). When Atlas gives no usable version the guard says "not checked" and Atlas decides.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from fnmatch import fnmatchcase
from typing import Any, Protocol

from flexrestore.clock import from_epoch, isoformat
from flexrestore.contracts.plan import LAMBDA_ARN_PATTERN
from flexrestore.settings import Settings, SettingsError

# Reason codes (also the `reason` dimension of the RestoreRefused metric).
ALLOWED = "allowed"
NOT_APPLICABLE = "not-applicable"
BREAK_GLASS = "break-glass"
PROTECTED_TARGET = "protected-target"
PROTECTED_TAG = "protected-tag"
PROJECT_NOT_ALLOWED = "project-not-allowed"
SELF_RESTORE_UNCONFIRMED = "self-restore-unconfirmed"
DEDICATED_TARGET = "dedicated-target"
TARGET_MISSING = "target-missing"
TARGET_BUSY = "target-busy"
VERSION_DOWNGRADE = "version-downgrade"
VERSION_TOO_NEW = "version-too-new"
BREAK_GLASS_DENIED = "break-glass-denied"
TARGET_LOCKED = "target-locked"

# Atlas's flex cluster states (FlexClusterDescription20241113.stateName). Only IDLE may be restored into.
IDLE = "IDLE"
KNOWN_BUSY_STATES = frozenset({"CREATING", "UPDATING", "DELETING", "REPAIRING"})

# Every dedicated-target message starts with this (README says the same).
DEDICATED_NOT_SUPPORTED = "dedicated targets are not supported yet"

# Grace beyond the poll deadline before a lease may be taken over: the poll loop's Record step still
# has to run (and release the lock) after the deadline passes.
LEASE_MARGIN_SECONDS = 900

_SEPARATORS = re.compile(r"[,\s]+")
_PROJECT_ID = re.compile(r"[a-f0-9]{24}")
_LOOKS_LIKE_PROJECT_ID = re.compile(r"[0-9a-fA-F]{12,}")
_PATTERN_PUNCTUATION = frozenset("-_.():&@+'*?[]!")  # Atlas's name punctuation (bar the comma) + globs
_PRINCIPAL = re.compile(r"arn:aws[a-z-]*:(?:iam|sts)::\d{12}:(?P<resource>\S+)")
_IAM_ROLE = re.compile(r"(?P<prefix>arn:aws[a-z-]*):iam::(?P<account>\d{12}):role/(?:.*/)?(?P<name>[^/]+)")
_VERSION = re.compile(r"\s*(\d+)\.(\d+)")

PROTECTED_TARGETS_FORMAT = (
    "comma-separated entries, each a cluster name or fnmatch pattern for every project (orders-prod, *-prod) "
    "or <24-hex projectId>:<pattern> for one project"
)


class TargetRequest(Protocol):
    """The fields of a restore request (domain/request.py) that the guards read."""

    @property
    def group_id(self) -> str: ...
    @property
    def cluster_name(self) -> str: ...
    @property
    def target_deployment_item_name(self) -> str: ...
    @property
    def target_project_id(self) -> str | None: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def break_glass(self) -> bool: ...
    @property
    def confirm_restore_onto_source(self) -> bool: ...


@dataclass(frozen=True)
class ProtectedTarget:
    """One PROTECTED_TARGETS entry: a name pattern, for one project or (project_id None) for all."""

    entry: str
    pattern: str
    project_id: str | None = None

    def matches(self, project_id: str, name: str) -> bool:
        if self.project_id is not None and self.project_id != project_id:
            return False
        return fnmatchcase(name.casefold(), self.pattern.casefold())


@dataclass(frozen=True)
class GuardConfig:
    protected_targets: tuple[ProtectedTarget, ...] = ()
    protected_tag_key: str = "restore-protected"
    protected_tag_value: str = "true"
    allowed_target_projects: frozenset[str] = frozenset()
    break_glass_principals: tuple[str, ...] = ()
    lock_lease_seconds: int = 7200
    # The Lambda functions a plan's validation may name (VALIDATOR_FUNCTION_ARNS), compared exactly.
    allowed_validators: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, settings: Settings) -> GuardConfig:
        """Parse and check the target-safety settings; SettingsError names the variable and the entry."""
        tag_key = settings.protected_tag_key.strip()
        tag_value = settings.protected_tag_value.strip()
        if not tag_key:
            raise SettingsError(
                "PROTECTED_TAG_KEY is empty; it names the Atlas tag that marks a protected target"
            )
        if not tag_value:
            raise SettingsError(
                "PROTECTED_TAG_VALUE is empty; it is the tag value that marks a protected target"
            )
        return cls(
            protected_targets=tuple(_parse_protected(e) for e in _entries(settings.protected_targets)),
            protected_tag_key=tag_key,
            protected_tag_value=tag_value,
            allowed_target_projects=frozenset(
                _parse_project(e) for e in _entries(settings.allowed_target_projects)
            ),
            break_glass_principals=tuple(
                _parse_principal(e) for e in _entries(settings.break_glass_principals)
            ),
            allowed_validators=frozenset(
                _parse_validator(e) for e in _entries(settings.validator_function_arns)
            ),
            # A lease shorter than the poll loop's life would let a second restore in while the first runs.
            lock_lease_seconds=max(
                settings.target_lock_lease_seconds, settings.poll_deadline_seconds + LEASE_MARGIN_SECONDS
            ),
        )

    def protected_by(self, project_id: str, name: str) -> ProtectedTarget | None:
        return next((p for p in self.protected_targets if p.matches(project_id, name)), None)

    def carries_protected_tag(self, tags: Mapping[str, str]) -> bool:
        """True if ``tags`` hold PROTECTED_TAG_KEY = PROTECTED_TAG_VALUE (case-insensitive, trimmed)."""
        key, value = self.protected_tag_key.casefold(), self.protected_tag_value.casefold()
        return any(k.strip().casefold() == key and v.strip().casefold() == value for k, v in tags.items())

    def is_break_glass_principal(self, caller: str) -> bool:
        return any(_principal_matches(pattern, caller) for pattern in self.break_glass_principals)


@dataclass(frozen=True)
class TargetFacts:
    """What Atlas says about the target (read by the intake with get_flex_cluster)."""

    exists: bool
    dedicated: bool = False
    state_name: str | None = None
    mongodb_version: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    """One guard's answer. ``reason`` is a short machine code; ``message`` is for people.

    ``status`` is the HTTP status of a refusal (200 when allowed); ``field`` names the request field
    a 400 is about, when there is one.
    """

    guard: str
    allowed: bool
    reason: str
    status: int
    message: str
    field: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_target(
    request: TargetRequest,
    facts: TargetFacts,
    snapshot_version: str | None,
    config: GuardConfig,
    caller: str | None,
) -> list[Verdict]:
    """Every guard's verdict for restoring into ``request``'s target, in the order refusals are reported.

    ``caller`` is the IAM principal ARN of an API request; None for schedules and alarms.
    """
    break_glass, authorized = _break_glass(request, caller, config)
    verdicts = [break_glass, *_static_guards(request, config, authorized, caller)]
    verdicts += _atlas_guards(request, facts, snapshot_version, config, authorized, caller)
    return verdicts


def first_refusal(verdicts: Iterable[Verdict]) -> Verdict | None:
    return next((v for v in verdicts if not v.allowed), None)


def break_glass_used(verdicts: Iterable[Verdict]) -> bool:
    """True when an authorized break-glass request was let through (record and notify it as such)."""
    return any(v.guard == "break-glass" and v.allowed and v.reason == BREAK_GLASS for v in verdicts)


def validate_recovery_plans(plans: Mapping[str, TargetRequest], config: GuardConfig) -> list[str]:
    """Problems with recovery plans that can be seen without Atlas, one message per problem.

    Run at intake cold start, so a bad plan fails at deployment, not at 3 a.m. when its alarm fires.
    A plan may not carry breakGlass: an alarm has no IAM caller to authorize it, so a plan must point
    at a target that is not protected. Tags, state and version need Atlas and are checked when the
    alarm fires.
    """
    problems: list[str] = []
    for alarm, plan in plans.items():
        if plan.break_glass:
            problems.append(
                f"recovery plan {alarm!r}: breakGlass is not allowed in a recovery plan (an alarm has no IAM "
                "caller to authorize it); point the plan at a target that is not protected"
            )
        for verdict in _static_guards(plan, config, authorized=False, caller=None):
            if not verdict.allowed:
                problems.append(f"recovery plan {alarm!r}: {verdict.message}")
    return problems


def target_lock_verdict(lock_id: str, running_restore_id: str | None, expires_at: int | None) -> Verdict:
    """The target-lock guard: refused (409) while another restore holds the target's lease."""
    if running_restore_id is None:
        return Verdict("target-lock", True, ALLOWED, 200, "no other restore is running into this target")
    until = f" (its lock expires at {_iso(expires_at)})" if expires_at is not None else ""
    return Verdict(
        "target-lock",
        False,
        TARGET_LOCKED,
        409,
        f"restore {running_restore_id} is already running into this target{until}; "
        "wait for it to finish or restore into another target",
    )


# --- the guards -------------------------------------------------------------------------------------


def _break_glass(request: TargetRequest, caller: str | None, config: GuardConfig) -> tuple[Verdict, bool]:
    guard = "break-glass"

    def denied(status: int, message: str, field: str = "breakGlass") -> tuple[Verdict, bool]:
        return Verdict(guard, False, BREAK_GLASS_DENIED, status, message, field=field), False

    if not request.break_glass:
        return Verdict(guard, True, NOT_APPLICABLE, 200, "break-glass not requested"), False
    if not (request.reason or "").strip():
        return denied(
            400,
            "breakGlass needs a non-empty reason saying why a protected target may be overwritten",
            field="reason",
        )
    if caller is None:
        return denied(
            403,
            "breakGlass is only accepted from an IAM caller of the HTTP API; schedules and alarms "
            "cannot break glass",
        )
    if not config.is_break_glass_principal(caller):
        return denied(403, f"caller {caller} may not break glass: it is not in BREAK_GLASS_PRINCIPALS")
    return Verdict(
        guard, True, BREAK_GLASS, 200, f"break-glass by {caller}: protected-target guards waived"
    ), True


def _static_guards(
    request: TargetRequest, config: GuardConfig, authorized: bool, caller: str | None
) -> list[Verdict]:
    """The guards that need nothing from Atlas (also run over recovery plans at cold start)."""
    project = _target_project(request)
    name = request.target_deployment_item_name
    where = f"target {name!r} in project {project}"
    verdicts: list[Verdict] = []

    if project == request.group_id:
        verdicts.append(Verdict("allowed-project", True, ALLOWED, 200, "target is in the source project"))
    elif project in config.allowed_target_projects:
        verdicts.append(
            Verdict("allowed-project", True, ALLOWED, 200, f"project {project} is in ALLOWED_TARGET_PROJECTS")
        )
    else:
        verdicts.append(
            Verdict(
                "allowed-project",
                False,
                PROJECT_NOT_ALLOWED,
                403,
                f"targetProjectId {project} is not the source project and not in ALLOWED_TARGET_PROJECTS",
                field="targetProjectId",
            )
        )

    if project == request.group_id and name.casefold() == request.cluster_name.casefold():
        if request.confirm_restore_onto_source:
            verdicts.append(
                Verdict("self-restore", True, ALLOWED, 200, "restore onto the source cluster confirmed")
            )
        else:
            verdicts.append(
                Verdict(
                    "self-restore",
                    False,
                    SELF_RESTORE_UNCONFIRMED,
                    400,
                    f"{where} is the source cluster itself: its current data would be replaced by the "
                    "snapshot; set confirmRestoreOntoSource to true to do that",
                    field="confirmRestoreOntoSource",
                )
            )
    else:
        verdicts.append(
            Verdict("self-restore", True, NOT_APPLICABLE, 200, "target is not the source cluster")
        )

    protected = config.protected_by(project, name)
    if protected is None:
        verdicts.append(
            Verdict("protected-name", True, ALLOWED, 200, "target matches no PROTECTED_TARGETS entry")
        )
    elif authorized:
        verdicts.append(
            Verdict(
                "protected-name",
                True,
                BREAK_GLASS,
                200,
                f"{where} is protected by PROTECTED_TARGETS entry {protected.entry!r}; allowed by "
                f"break-glass from {caller}",
            )
        )
    else:
        verdicts.append(
            Verdict(
                "protected-name",
                False,
                PROTECTED_TARGET,
                403,
                f"{where} is protected by PROTECTED_TARGETS entry {protected.entry!r}; a restore would "
                "erase it. Choose another target (or, in an emergency, use breakGlass with a reason)",
                field="targetDeploymentItemName",
            )
        )
    return verdicts


def _atlas_guards(
    request: TargetRequest,
    facts: TargetFacts,
    snapshot_version: str | None,
    config: GuardConfig,
    authorized: bool,
    caller: str | None,
) -> list[Verdict]:
    """The guards that read what Atlas says about the target."""
    name = request.target_deployment_item_name
    where = f"target {name!r} in project {_target_project(request)}"

    def skipped(guard: str, why: str) -> Verdict:
        return Verdict(guard, True, NOT_APPLICABLE, 200, f"not checked: {why}")

    if not facts.exists:
        missing = "the target does not exist"
        return [
            Verdict(
                "target-exists",
                False,
                TARGET_MISSING,
                404,
                f"{where} does not exist; a restore writes into an existing flex cluster",
                field="targetDeploymentItemName",
            ),
            skipped("target-kind", missing),
            skipped("protected-tag", missing),
            skipped("target-state", missing),
            skipped("target-version", missing),
        ]
    exists = Verdict("target-exists", True, ALLOWED, 200, f"{where} exists")
    if facts.dedicated:
        dedicated = "the target is a dedicated cluster"
        return [
            exists,
            Verdict(
                "target-kind",
                False,
                DEDICATED_TARGET,
                400,
                f"{DEDICATED_NOT_SUPPORTED}: {where} is a dedicated cluster; this service restores flex "
                "snapshots into flex clusters only",
                field="targetDeploymentItemName",
            ),
            skipped("protected-tag", dedicated),
            skipped("target-state", dedicated),
            skipped("target-version", dedicated),
        ]
    return [
        exists,
        Verdict("target-kind", True, ALLOWED, 200, "target is a flex cluster"),
        _protected_tag(facts, config, where, authorized, caller),
        _target_state(facts, where),
        _target_version(facts, snapshot_version, where),
    ]


def _protected_tag(
    facts: TargetFacts, config: GuardConfig, where: str, authorized: bool, caller: str | None
) -> Verdict:
    tag = f"{config.protected_tag_key}={config.protected_tag_value}"
    if not config.carries_protected_tag(facts.tags):
        return Verdict("protected-tag", True, ALLOWED, 200, f"target has no tag {tag}")
    if authorized:
        return Verdict(
            "protected-tag",
            True,
            BREAK_GLASS,
            200,
            f"{where} carries the tag {tag}; allowed by break-glass from {caller}",
        )
    return Verdict(
        "protected-tag",
        False,
        PROTECTED_TAG,
        403,
        f"{where} carries the Atlas tag {tag}, which marks it protected; a restore would erase it. "
        "Choose another target (or, in an emergency, use breakGlass with a reason)",
        field="targetDeploymentItemName",
    )


def _target_state(facts: TargetFacts, where: str) -> Verdict:
    state = facts.state_name
    if state == IDLE:
        return Verdict("target-state", True, ALLOWED, 200, "target is IDLE")
    if state in KNOWN_BUSY_STATES:
        why = f"{where} is {state}"
    else:
        why = f"{where} is in state {state!r}, which this service does not know"
    return Verdict(
        "target-state",
        False,
        TARGET_BUSY,
        409,
        f"{why}; a restore needs an IDLE target. Retry once Atlas reports it IDLE",
    )


def _target_version(facts: TargetFacts, snapshot_version: str | None, where: str) -> Verdict:
    # Atlas: a snapshot restores into the same major version or the next higher one. The release
    # series is (major, minor): 8.0.15 is series 8.0; rapid releases (7.1, 7.2, 7.3) sit between 7.0
    # and 8.0. Older series than the snapshot's = downgrade; a major more than one above = too new.
    snapshot, target = _series(snapshot_version), _series(facts.mongodb_version)
    if snapshot is None or target is None:
        return Verdict(
            "target-version", True, NOT_APPLICABLE, 200, "not checked: Atlas gave no usable MongoDB version"
        )
    if target < snapshot:
        return Verdict(
            "target-version",
            False,
            VERSION_DOWNGRADE,
            409,
            f"{where} runs MongoDB {facts.mongodb_version}, older than the snapshot's {snapshot_version}; "
            "a snapshot restores only to the same major version or the next higher one",
        )
    if target[0] > snapshot[0] + 1:
        return Verdict(
            "target-version",
            False,
            VERSION_TOO_NEW,
            409,
            f"{where} runs MongoDB {facts.mongodb_version}, more than one major version above the "
            f"snapshot's {snapshot_version}; a snapshot restores only to the same major version or the "
            "next higher one",
        )
    return Verdict(
        "target-version",
        True,
        ALLOWED,
        200,
        f"target runs MongoDB {facts.mongodb_version}; snapshot is {snapshot_version}",
    )


# --- parsing and helpers ----------------------------------------------------------------------------


def _target_project(request: TargetRequest) -> str:
    return request.target_project_id or request.group_id


def _series(version: str | None) -> tuple[int, int] | None:
    match = _VERSION.match(version or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def _entries(value: str) -> list[str]:
    return [entry for entry in _SEPARATORS.split(value.strip()) if entry]


def _parse_protected(entry: str) -> ProtectedTarget:
    def bad(why: str) -> SettingsError:
        return SettingsError(
            f"PROTECTED_TARGETS: entry {entry!r} is not valid: {why}. Format: {PROTECTED_TARGETS_FORMAT}"
        )

    project_id: str | None = None
    pattern = entry
    prefix, colon, rest = entry.partition(":")
    if colon:
        if prefix == "*":
            pattern = rest
        elif _PROJECT_ID.fullmatch(prefix):
            project_id, pattern = prefix, rest
        elif _LOOKS_LIKE_PROJECT_ID.fullmatch(prefix):
            raise bad(f"{prefix!r} looks like a project id but is not 24 lowercase hex characters")
        # otherwise the colon is part of the name (Atlas allows ':' in target names)
    if not pattern:
        raise bad("the cluster name pattern is empty")
    if len(pattern) > 200:
        raise bad("the pattern is longer than 200 characters")
    for char in pattern:
        if not (char.isalnum() or char in _PATTERN_PUNCTUATION):
            raise bad(f"{char!r} cannot appear in an Atlas cluster name or an fnmatch pattern")
    return ProtectedTarget(entry=entry, pattern=pattern, project_id=project_id)


def _parse_project(entry: str) -> str:
    project = entry.lower()
    if not _PROJECT_ID.fullmatch(project):
        raise SettingsError(
            f"ALLOWED_TARGET_PROJECTS: entry {entry!r} is not an Atlas project id (24 hex characters); "
            "format: comma-separated project ids"
        )
    return project


_LAMBDA_ARN = re.compile(LAMBDA_ARN_PATTERN)


def _parse_validator(entry: str) -> str:
    if not _LAMBDA_ARN.fullmatch(entry):
        raise SettingsError(
            f"VALIDATOR_FUNCTION_ARNS: entry {entry!r} is not a Lambda function ARN "
            "(arn:aws:lambda:<region>:<account id>:function:<name>[:<alias or version>]); "
            "format: comma-separated ARNs"
        )
    return entry


def _parse_principal(entry: str) -> str:
    match = _PRINCIPAL.fullmatch(entry)
    if not match:
        raise SettingsError(
            f"BREAK_GLASS_PRINCIPALS: entry {entry!r} is not an IAM principal ARN with a literal 12-digit "
            "account id (globs allowed after it, e.g. arn:aws:sts::123456789012:assumed-role/BreakGlass/*)"
        )
    if not match.group("resource").strip("*?/"):
        raise SettingsError(
            f"BREAK_GLASS_PRINCIPALS: entry {entry!r} would let every principal of the account break glass; "
            "name a role or user"
        )
    return entry


def _principal_matches(pattern: str, caller: str) -> bool:
    if fnmatchcase(caller, pattern):
        return True
    # An IAM role ARN also covers the sessions of that role, which is how API Gateway sees its callers
    # (arn:aws:sts::<account>:assumed-role/<role name>/<session>; the role's path is dropped).
    role = _IAM_ROLE.fullmatch(pattern)
    if role:
        sessions = f"{role['prefix']}:sts::{role['account']}:assumed-role/{role['name']}/*"
        return fnmatchcase(caller, sessions)
    return False


def _iso(epoch: float) -> str:
    return isoformat(from_epoch(epoch))
