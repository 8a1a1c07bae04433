"""The run record: how one run of a verification plan (``contracts/plan.py``) ended, source by source. One
per run, written when the run ends; the run's summary message and its ``Flex Verification Run Completed``
event carry it. See docs/contracts.md, "Run record"; the JSON Schema is ``docs/schemas/run-record.json``.

``domain/runs.py`` builds it (per-source entries, the summary counts, the final status).
"""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import ConfigDict, Field, model_validator

from flexrestore.contracts.base import Contract, Timestamp
from flexrestore.contracts.plan import NotifyPolicy, SnapshotChoiceName
from flexrestore.contracts.record import ErrorInfo, RequestedBy

REFUSED: Final = "REFUSED"
SUCCEEDED: Final = "SUCCEEDED"
PARTIAL: Final = "PARTIAL"
RUN_FAILED: Final = "FAILED"
SourceStatus = Literal["COMPLETED", "FAILED", "TIMED_OUT", "ERROR", "REFUSED"]
RunStatus = Literal["SUCCEEDED", "PARTIAL", "FAILED"]
ValidationStatus = Literal["SUCCEEDED", "FAILED", "TIMED_OUT", "SKIPPED"]

RUN_KIND: Final = "run"
RUN_ID_PREFIX: Final = "run#"


class SnapshotPick(Contract):
    """How a source's snapshot was chosen, so a run can be explained afterwards.

    RANDOM_WITHIN_WINDOW: the ``candidates`` COMPLETED, unexpired snapshots taken since ``windowStart``,
    oldest first (by the time Atlas finished them, then by id), and the one at ``position`` (0-based) was
    taken: ``random.Random(int(seed, 16)).randrange(candidates)``, where ``seed`` is the first 8 bytes of
    SHA-256 over ``<runId>\\n<groupId>/<clusterName>``, in hex.
    """

    choice: SnapshotChoiceName
    candidates: int = Field(description="the snapshots the choice was made among")
    window_days: int | None = None
    window_start: Timestamp | None = Field(None, description="the oldest moment a candidate may be from")
    position: int | None = Field(None, description="0-based position of the pick among the candidates")
    seed: str | None = Field(None, description="the random choice's seed, 16 hex characters")


class RunTarget(Contract):
    """A source's target and, for an ephemeral one (a Flex cluster the run created for this source), its
    life: the create recorded before it was sent, Atlas's creation time, when it was IDLE, when its delete
    was asked for and when Atlas no longer had it. ``existedSeconds`` (created to gone) is what Atlas bills
    for; ``retainUntil`` is set when a source that failed validation keeps its cluster for people to look
    at; ``deletionRefused`` says why the service would not delete it (it then never will: people must)."""

    ephemeral: bool
    name: str | None = None
    project_id: str | None = Field(None, description="the project the target is in")
    create_requested_at: Timestamp | None = Field(
        None, description="when the run recorded that it was about to create the cluster (before the call)"
    )
    created_at: Timestamp | None = Field(None, description="Atlas's createDate of the cluster")
    idle_at: Timestamp | None = Field(None, description="when the run first saw it IDLE")
    delete_requested_at: Timestamp | None = Field(None, description="when its delete was sent")
    deleted_at: Timestamp | None = Field(
        None, description="when Atlas no longer had it (or, if it never existed, when that was seen)"
    )
    existed_seconds: int | None = Field(None, description="createdAt to deletedAt")
    retain_until: Timestamp | None = Field(
        None, description="kept until then for people to look at (its validation did not succeed)"
    )
    deletion_refused: ErrorInfo | None = Field(
        None, description="why the deletion guard refused to delete it; it is left to people"
    )


ValidationCheckStatus = Literal["PASSED", "FAILED", "SKIPPED"]


class ValidationCheck(Contract):
    """One check of a validation: a built-in one (``target-idle``, ``target-version``, ``restore-job``,
    ``snapshot-age``) or the plan's validator (``validator``, and ``validator:<name>`` for the checks it
    reported)."""

    name: str
    status: ValidationCheckStatus
    message: str | None = None


class ValidationResult(Contract):
    """The verdict of a source's validation, after its restore: the built-in checks (what the Atlas Admin
    API can tell) and, when the plan names one, its validator's answer. SKIPPED: the restore did not
    complete, so there was nothing to validate. Only SUCCEEDED counts as verified."""

    status: ValidationStatus
    message: str | None = None
    checks: list[ValidationCheck] = Field(default_factory=list)
    validator: str | None = Field(None, description="the plan's validator function (Lambda ARN), if any")
    at: Timestamp | None = Field(None, description="when the verdict was reached")


class RunSource(Contract):
    """One source of a run and how its restore ended (``REFUSED``: no restore was made)."""

    index: int = Field(description="the source's place in the run (explicit sources first, then matches)")
    origin: str | None = Field(None, description="where in the plan it comes from: sources[i]")
    group_id: str
    cluster_name: str | None = Field(None, description="null only for a tag selector that matched nothing")
    target_deployment_item_name: str | None = None
    target_project_id: str
    snapshot_id: str | None = None
    snapshot_taken_at: Timestamp | None = None
    snapshot_choice: SnapshotPick | None = None
    restore_id: str | None = None
    restore_job_id: str | None = None
    final_status: SourceStatus = Field(description="the restore's finalStatus, or REFUSED")
    duration_seconds: int | None = Field(None, description="the RTO: the restore's durationSeconds")
    objective_met: bool | None = Field(
        None,
        description="the restore completed within rtoObjectiveSeconds; null: no objective or no duration",
    )
    error: ErrorInfo | None = None
    target: RunTarget | None = None
    validation: ValidationResult | None = None


class RunSummary(Contract):
    """The run's counts. ``verified``: completed, within the objective, validated when validation is on."""

    total: int
    verified: int
    completed: int
    failed: int
    timed_out: int
    error: int
    refused: int
    objective_missed: int
    rto_median_seconds: int | float | None = Field(None, description="over the completed sources")
    rto_max_seconds: int | None = Field(None, description="over the completed sources")
    validation_failed: int = Field(0, description="completed sources whose validation did not succeed")
    cluster_hours: float | None = Field(None, description="hours the run's ephemeral targets existed")


class RunRecord(Contract):
    """One run of a verification plan."""

    model_config = ConfigDict(title="RunRecord")

    id: str = Field(description="run#<runId>, the key when stored next to restore records")
    kind: Literal["run"] = "run"
    run_id: str
    plan: str = Field(description="the plan's name")
    requested_by: RequestedBy | None = None
    started_at: Timestamp
    finished_at: Timestamp | None = Field(None, description="set when the run has ended")
    final_status: RunStatus | None = Field(
        None,
        description="SUCCEEDED: every source verified; FAILED: none completed; PARTIAL: the rest",
    )
    rto_objective_seconds: int | None = Field(None, description="the plan's objective at the time of the run")
    notify: NotifyPolicy | None = None
    sources: list[RunSource] = Field(default_factory=list)
    summary: RunSummary | None = None
    error: ErrorInfo | None = Field(
        None, description="why the run as a whole could not restore its sources (e.g. PLAN_NOT_FOUND)"
    )
    execution_arn: str | None = Field(None, description="the run's Step Functions execution")

    @model_validator(mode="before")
    @classmethod
    def _id_from_run_id(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("id"):
            run_id = data.get("runId", data.get("run_id"))
            if isinstance(run_id, str):
                return {**data, "id": f"{RUN_ID_PREFIX}{run_id}"}
        return data
