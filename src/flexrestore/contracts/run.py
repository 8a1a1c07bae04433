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
    """(Prepared for ephemeral targets.) A source's target and, if the run created it, its life."""

    ephemeral: bool
    name: str | None = None
    created_at: Timestamp | None = None
    idle_at: Timestamp | None = None
    deleted_at: Timestamp | None = None
    existed_seconds: int | None = None


class ValidationResult(Contract):
    """(Prepared for validation.) What the plan's validation function said about the restored data."""

    status: Literal["SUCCEEDED", "FAILED", "TIMED_OUT", "SKIPPED"]
    message: str | None = None
    checks: list[dict[str, Any]] = Field(default_factory=list)


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
