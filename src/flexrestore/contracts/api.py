"""The HTTP API's answers, as published in docs/openapi.json (generated from the routes of
``triggers/http.py``, which declare these models for each status they answer).

The answers are built as plain JSON by the intake and the routes; these models describe them for the
document, and the tests check real answers against it. A field documented as "absent when ..." is left out
of the answer rather than sent as ``null``; every other field is always present.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, RootModel
from pydantic.json_schema import SkipJsonSchema

from flexrestore.contracts.base import Timestamp
from flexrestore.contracts.plan import Plan
from flexrestore.contracts.record import RequestedBy, RestoreRecord
from flexrestore.contracts.run import RunRecord


def _no_null_default(schema: dict[str, Any]) -> None:
    """A field that may be absent has no value to default to: drop pydantic's ``"default": null``."""
    for field in schema.get("properties", {}).values():
        if "default" in field and field["default"] is None:
            del field["default"]


ANSWER_CONFIG = ConfigDict(
    populate_by_name=True, serialize_by_alias=True, frozen=True, json_schema_extra=_no_null_default
)


class FieldProblem(BaseModel):
    """One bad field: its name (clusterName, a header such as Idempotency-Key, body, query) and the rule it
    broke, in words (never the value sent)."""

    model_config = ANSWER_CONFIG

    field: str
    message: str


class ErrorAnswer(BaseModel):
    """Every error the service answers. (API Gateway's own refusals have no errorCode: GatewayRefusal.)"""

    model_config = ANSWER_CONFIG

    message: str = Field(description="what went wrong, for people (never a secret, never a stack trace)")
    error_code: str = Field(
        alias="errorCode",
        description="for machines: INVALID_REQUEST, a guard's reason (PROTECTED_TARGET, TARGET_LOCKED, ...), "
        "Atlas's own errorCode passed through, RESTORE_NOT_FOUND, REQUEST_IN_PROGRESS, "
        "IDEMPOTENCY_KEY_REUSED, SERVICE_MISCONFIGURED, ...",
    )
    errors: list[FieldProblem] | SkipJsonSchema[None] = Field(
        None, description="one entry per bad field; absent when the error is not about fields"
    )
    guard: str | SkipJsonSchema[None] = Field(
        None, description="the target guard that refused (absent unless a guard refused)"
    )
    reason: str | SkipJsonSchema[None] = Field(
        None, description="the guard's reason code (absent unless a guard refused)"
    )
    field: str | SkipJsonSchema[None] = Field(
        None, description="the request field a snapshot refusal is about (absent otherwise)"
    )


class GatewayRefusal(BaseModel):
    """API Gateway's own answer, before the service sees the request: a missing or wrong SigV4 signature or
    a caller without execute-api:Invoke (403), throttling (429). It has no errorCode; its x-amzn-ErrorType
    header says which it is."""

    model_config = ConfigDict(populate_by_name=True, json_schema_extra=_no_null_default)

    message: str | SkipJsonSchema[None] = Field(None, description="most refusals")
    message_capitalized: str | SkipJsonSchema[None] = Field(
        None, alias="Message", description="an explicit IAM deny: 'User: <arn> is not authorized ...'"
    )


class Forbidden(RootModel[ErrorAnswer | GatewayRefusal]):
    """403: a target guard refused (an ErrorAnswer naming the guard), or API Gateway refused the caller (a
    GatewayRefusal)."""


class AcceptedRestore(BaseModel):
    """202: the restore is accepted; from now on its execution owns it (GET its location to follow it)."""

    model_config = ANSWER_CONFIG

    restore_id: str = Field(alias="restoreId", description="32 lowercase hex characters")
    restore_job_id: str | None = Field(
        alias="restoreJobId", description="Atlas's restore job; null while it is being created"
    )
    status: str | None = Field(
        description="ACCEPTED or CREATING until the Atlas job exists, then Atlas's job status (or how the "
        "restore ended, if it already has)"
    )
    execution_arn: str | None = Field(
        alias="executionArn", description="the restore's Step Functions execution"
    )
    location: str = Field(description="/restores/<restoreId>, also in the Location header")
    source: str = Field(description="<groupId>/<clusterName>")
    snapshot_id: str | None = Field(alias="snapshotId", description="the snapshot resolved for the restore")
    target_deployment_item_name: str = Field(alias="targetDeploymentItemName")
    target_project_id: str = Field(alias="targetProjectId")
    requested_at: Timestamp = Field(alias="requestedAt")
    requested_by: RequestedBy = Field(alias="requestedBy")
    break_glass: bool = Field(
        alias="breakGlass", description="true when a break-glass request overwrites a protected target"
    )
    message: str | SkipJsonSchema[None] = Field(
        None,
        description="present while the Atlas job is still being created: GET the location for it",
    )


class WouldRestore(BaseModel):
    """What a dry run would restore, resolved (the snapshot "latest" stands for, the target project)."""

    model_config = ANSWER_CONFIG

    source: str
    group_id: str = Field(alias="groupId")
    cluster_name: str = Field(alias="clusterName")
    snapshot_id: str | None = Field(alias="snapshotId")
    snapshot_finished_at: Timestamp | None = Field(alias="snapshotFinishedAt")
    snapshot_mongodb_version: str | None = Field(alias="snapshotMongoDBVersion")
    target_deployment_item_name: str = Field(alias="targetDeploymentItemName")
    target_project_id: str = Field(alias="targetProjectId")
    requested_by: RequestedBy = Field(alias="requestedBy")


class Verdict(BaseModel):
    """One target guard's verdict, in the order refusals are reported."""

    model_config = ANSWER_CONFIG

    guard: str
    allowed: bool
    reason: str = Field(description="a short machine code")
    status: int = Field(description="the HTTP status of a refusal; 200 when allowed")
    message: str
    field: str | None = Field(description="the request field a 400 is about, when there is one")


class DryRun(BaseModel):
    """200 to a request with "dryRun": true: every guard's verdict; nothing is created."""

    model_config = ANSWER_CONFIG

    dry_run: bool = Field(alias="dryRun", json_schema_extra={"const": True})
    allowed: bool = Field(description="whether the restore would be created now")
    message: str
    would_restore: WouldRestore = Field(alias="wouldRestore")
    verdicts: list[Verdict]


class RestoreList(BaseModel):
    """200 to GET /restores: restore records, newest first, and the token of the next page."""

    model_config = ANSWER_CONFIG

    restores: list[RestoreRecord]
    next_token: str | None = Field(alias="nextToken", description="null on the last page")


# --- verification plans and runs ---------------------------------------------------------------------------


class PlanAnswer(BaseModel):
    """A saved plan: the document and its bookkeeping (GET /plans/{name}, and each entry of GET /plans)."""

    model_config = ANSWER_CONFIG

    name: str
    revision: int = Field(description="1 when created, one more at every change")
    created_at: Timestamp = Field(alias="createdAt")
    updated_at: Timestamp = Field(alias="updatedAt")
    updated_by: str | None = Field(alias="updatedBy", description="IAM principal ARN of the last saver")
    schedule_name: str | None = Field(
        alias="scheduleName", description="the EventBridge Scheduler schedule that runs it; null: on demand"
    )
    plan: Plan = Field(description="the plan as saved, defaults filled in")


class SavedPlan(PlanAnswer):
    """201 (created) or 200 (replaced) to PUT /plans/{name}."""

    created: bool
    changes: list[str] = Field(
        description="what changed: created, the top-level fields changed, sources (+added -removed); empty "
        "when the plan was already so"
    )


class PlanList(BaseModel):
    """200 to GET /plans: every plan, by name."""

    model_config = ANSWER_CONFIG

    plans: list[PlanAnswer]


class DeletedPlan(BaseModel):
    """200 to DELETE /plans/{name}: the plan and its schedule are gone."""

    model_config = ANSWER_CONFIG

    deleted: str = Field(description="the plan's name")
    revision: int = Field(description="the revision that was deleted")
    schedule_deleted: str | None = Field(alias="scheduleDeleted", description="the schedule deleted with it")


class StartedRun(BaseModel):
    """202 to POST /plans/{name}/runs: the run has started (GET its location once it has ended)."""

    model_config = ANSWER_CONFIG

    run_id: str = Field(alias="runId")
    plan: str
    execution_arn: str = Field(alias="executionArn", description="the run's Step Functions execution")
    location: str = Field(description="/runs/<runId>, also in the Location header")
    message: str


class RunList(BaseModel):
    """200 to GET /runs: run records without their sources (GET /runs/{runId} has them), newest first."""

    model_config = ANSWER_CONFIG

    runs: list[RunRecord]
    next_token: str | None = Field(alias="nextToken", description="null on the last page")
