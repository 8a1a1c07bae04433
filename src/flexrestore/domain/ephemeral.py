"""Ephemeral targets: the Flex cluster a verification run creates for one source, restores into, validates
and deletes. Plain Python: the cluster's name and tags, and the one rule that decides whether the service
may delete a cluster (:func:`deletion_verdict`), which every deletion goes through (the run's Cleanup step
and the sweeper alike).

Deleting is the most dangerous call this service makes, so the rule is narrow and every part of it must
hold. A cluster may be deleted only when:

==========================  ===========================================================================
rule (refusal code)         holds when
==========================  ===========================================================================
``EPHEMERAL_PROJECT``       the cluster is in the plan's ``targets.projectId`` (the run's copy of the plan)
``NOT_CREATED_BY_SERVICE``  the run's source item records that this service was about to create exactly
                            this cluster (name and project) before it sent the create, under the name
                            this run and source give (``frv-<8 hex of the run id>-<index>``); a cluster
                            whose create answer was lost was adopted by reading it, never created twice
``TAGS_MISMATCH``           Atlas shows every one of the run's tags on it (service, plan, run, source)
``IS_SOURCE``               it is not one of the run's sources
``PROTECTED_NAME``          no PROTECTED_TARGETS entry matches it
``PROTECTED_TAG``           it does not carry PROTECTED_TAG_KEY = PROTECTED_TAG_VALUE
``TERMINATION_PROTECTED``   its termination protection is off (the run creates it off: someone turned it
                            on, which means "keep")
==========================  ===========================================================================

Every rule is evaluated and every refusal reported (on the run record's source ``target.deletionRefused``):
a refused cluster is never deleted, by the run or by the sweeper; people decide. A cluster that merely has
the prefix (``frv-decoy0-001``) fails ``NOT_CREATED_BY_SERVICE`` and ``TAGS_MISMATCH``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from flexrestore.contracts.run import RunTarget
from flexrestore.domain.guards import GuardConfig

EPHEMERAL_PREFIX: Final = "frv-"
SERVICE_TAG: Final = "flexrestore-service"
SERVICE_TAG_VALUE: Final = "flexrestore"
PLAN_TAG: Final = "flexrestore-plan"
RUN_TAG: Final = "flexrestore-run"
SOURCE_TAG: Final = "flexrestore-source"

# How long a new cluster may stay CREATING before the source gives up on it (Atlas: seconds, allow minutes).
TARGET_READY_TIMEOUT_SECONDS: Final = 1200

# Refusal codes of the deletion guard.
EPHEMERAL_PROJECT: Final = "EPHEMERAL_PROJECT"
NOT_CREATED_BY_SERVICE: Final = "NOT_CREATED_BY_SERVICE"
TAGS_MISMATCH: Final = "TAGS_MISMATCH"
IS_SOURCE: Final = "IS_SOURCE"
PROTECTED_NAME: Final = "PROTECTED_NAME"
PROTECTED_TAG: Final = "PROTECTED_TAG"
TERMINATION_PROTECTED: Final = "TERMINATION_PROTECTED"
DELETION_REFUSED: Final = "DELETION_REFUSED"


def ephemeral_name(run_id: str, index: int) -> str:
    """``frv-<first 8 hex of SHA-256 of the run id>-<index, 3 digits>``: short (16 characters for up to
    1000 sources), a valid Flex cluster name whatever the run id looks like, the same for a retried step,
    different for another run or source."""
    digest = hashlib.sha256(run_id.encode("utf-8")).hexdigest()[:8]
    return f"{EPHEMERAL_PREFIX}{digest}-{index:03d}"


def run_tags(plan: str, run_id: str, index: int) -> dict[str, str]:
    """The Atlas tags of the cluster a run creates for one source; the run id makes them this run's only."""
    return {
        SERVICE_TAG: SERVICE_TAG_VALUE,
        PLAN_TAG: plan,
        RUN_TAG: run_id,
        SOURCE_TAG: str(index),
    }


def existed_seconds(created_at: datetime | None, deleted_at: datetime | None) -> int | None:
    """Seconds from Atlas's createDate to the moment the cluster was seen gone (what Atlas bills)."""
    if created_at is None or deleted_at is None:
        return None
    return max(0, round((deleted_at - created_at).total_seconds()))


@dataclass(frozen=True)
class DeletionCandidate:
    """A cluster the service is about to delete, and what the run knows about it.

    ``run_id``/``index`` name the run's source; ``recorded`` is that source's target as the runs table
    holds it (None: the run never recorded a create); ``ephemeral_project_id`` is the run's plan's
    ``targets.projectId`` (None: the plan has no ephemeral targets); ``source_clusters`` are the run's
    sources as ``(project id, cluster name)``."""

    project_id: str
    name: str
    run_id: str
    index: int
    plan: str
    ephemeral_project_id: str | None
    recorded: RunTarget | None
    source_clusters: Collection[tuple[str, str]]


@dataclass(frozen=True)
class ClusterFacts:
    """What Atlas says about the cluster now (read just before the delete)."""

    project_id: str
    name: str
    tags: Mapping[str, str]
    termination_protection: bool | None = None


@dataclass(frozen=True)
class Refusal:
    code: str
    message: str


@dataclass(frozen=True)
class DeletionVerdict:
    refusals: tuple[Refusal, ...]

    @property
    def allowed(self) -> bool:
        return not self.refusals

    @property
    def message(self) -> str:
        return "; ".join(f"{r.code}: {r.message}" for r in self.refusals) or "may be deleted"


def deletion_verdict(
    candidate: DeletionCandidate, cluster: ClusterFacts, config: GuardConfig
) -> DeletionVerdict:
    """Whether the service may delete ``cluster`` for ``candidate``: allowed only if every rule of the
    module docstring holds; otherwise every rule that failed, with why."""
    refusals: list[Refusal] = []
    where = f"cluster {candidate.name!r} in project {candidate.project_id}"

    project = candidate.ephemeral_project_id
    if project is None or candidate.project_id != project or cluster.project_id != project:
        wanted_project = project or "none: the plan has no ephemeral targets"
        refusals.append(
            Refusal(EPHEMERAL_PROJECT, f"{where} is not in the plan's ephemeral project ({wanted_project})")
        )

    expected = ephemeral_name(candidate.run_id, candidate.index)
    recorded = candidate.recorded
    created_here = (
        recorded is not None
        and recorded.ephemeral
        and recorded.create_requested_at is not None
        and recorded.name == candidate.name
        and recorded.project_id == candidate.project_id
        and candidate.name == expected
        and cluster.name == candidate.name
    )
    if not created_here:
        refusals.append(
            Refusal(
                NOT_CREATED_BY_SERVICE,
                f"{where} is not the cluster this service recorded creating for run {candidate.run_id} "
                f"source {candidate.index} (that would be {expected!r} in project {project})",
            )
        )

    wanted = run_tags(candidate.plan, candidate.run_id, candidate.index)
    missing = sorted(key for key, value in wanted.items() if cluster.tags.get(key) != value)
    if missing:
        refusals.append(
            Refusal(TAGS_MISMATCH, f"{where} does not carry this run's tags ({', '.join(missing)})")
        )

    sources = {(p, n.casefold()) for p, n in candidate.source_clusters}
    if (candidate.project_id, candidate.name.casefold()) in sources:
        refusals.append(Refusal(IS_SOURCE, f"{where} is a source of this run"))

    protected = config.protected_by(candidate.project_id, candidate.name)
    if protected is not None:
        refusals.append(
            Refusal(PROTECTED_NAME, f"{where} is protected by PROTECTED_TARGETS entry {protected.entry!r}")
        )
    if config.carries_protected_tag(cluster.tags):
        refusals.append(
            Refusal(
                PROTECTED_TAG,
                f"{where} carries the tag {config.protected_tag_key}={config.protected_tag_value}",
            )
        )
    if cluster.termination_protection:
        refusals.append(Refusal(TERMINATION_PROTECTED, f"{where} has termination protection turned on"))
    return DeletionVerdict(tuple(refusals))
