"""The HTTP API's verification routes (included in ``triggers/http.py``'s resolver, same auth and errors):

- ``PUT /plans/{name}``: create (201) or replace (200) a plan; ``400`` names each bad field, a target the
  guards refuse included; the answer lists what changed. The plan's schedule follows it.
- ``GET /plans``, ``GET /plans/{name}``, ``DELETE /plans/{name}`` (its schedule goes first).
- ``POST /plans/{name}/runs``: run it now, ``202`` with the ``runId``; with an ``Idempotency-Key`` header
  a retried request names the same run.
- ``GET /runs?plan=&limit=&nextToken=`` (newest first, without their sources) and ``GET /runs/{runId}``.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from flexrestore import bootstrap
from flexrestore.aws.store import MAX_PAGE, BadPageToken
from flexrestore.contracts import RequestedBy
from flexrestore.contracts.api import (
    DeletedPlan,
    ErrorAnswer,
    PlanAnswer,
    PlanList,
    RunList,
    SavedPlan,
    StartedRun,
)
from flexrestore.contracts.plan import PLAN_NAME_PATTERN, Plan
from flexrestore.contracts.run import RunRecord
from flexrestore.domain.errors import PlanChanged, PlanNotFound
from flexrestore.domain.intake import IntakeError, idempotency_key
from flexrestore.domain.plan_catalog import plan_answer
from flexrestore.domain.request import InvalidRequest, decode_json_object
from flexrestore.triggers.api_docs import ALWAYS, BAD_QUERY, answers, documented

router = APIGatewayRouter()  # type: ignore[no-untyped-call]

# A plan of 500 sources is about 100 KB of JSON.
MAX_PLAN_BYTES = 512 * 1024
RUN_ID_PATTERN = r"^[A-Za-z0-9_-]{1,80}$"
RUN_QUERY_PARAMETERS = ("plan", "limit", "nextToken")


def _answer(status: int, body: Any, headers: dict[str, str] | None = None) -> Response[str]:
    return Response(
        status_code=status,
        content_type="application/json",
        body=json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        headers=headers or {},
    )


def _caller() -> str | None:
    identity = (router.current_event.raw_event.get("requestContext") or {}).get("identity") or {}
    caller = identity.get("userArn")
    return caller if isinstance(caller, str) and caller else None


_NO_PLAN = answers(ErrorAnswer, "no such plan (PLAN_NOT_FOUND)")
_BAD_NAME = answers(ErrorAnswer, "the plan name in the path is not valid (INVALID_REQUEST)")


@router.put(
    "/plans/<name>",
    summary="Create or replace a verification plan",
    description="Validates the plan (every bad field named, sources[i] included; a target the guards refuse "
    "refuses the plan), saves it, then creates, updates or deletes its EventBridge Scheduler schedule.",
    operation_id="putPlan",
    tags=["plans"],
    responses={
        **ALWAYS,
        200: answers(SavedPlan, "replaced (changes lists what changed; empty when nothing did)"),
        201: answers(SavedPlan, "created", headers={"Location": "/plans/<name>"}),
        400: answers(ErrorAnswer, "the plan is not valid (INVALID_REQUEST, one entry per bad field)"),
        409: answers(
            ErrorAnswer, "another request changed the plan meanwhile (PLAN_CHANGED)", retry_after=True
        ),
    },
    openapi_extensions=documented(body=Plan, body_description="the plan (JSON; tools turn YAML into it)"),
)
def put_plan(name: Annotated[str, Path(pattern=PLAN_NAME_PATTERN)]) -> Response[str]:
    event = router.current_event
    document = decode_json_object(event.body or "", max_bytes=MAX_PLAN_BYTES, what="body")
    saved = bootstrap.plan_catalog().save(name, document, caller=_caller())
    body = {**plan_answer(saved.entry), "created": saved.created, "changes": saved.changes}
    return _answer(201, body, {"Location": f"/plans/{name}"}) if saved.created else _answer(200, body)


@router.get(
    "/plans",
    summary="List the verification plans",
    operation_id="listPlans",
    tags=["plans"],
    responses={**ALWAYS, 200: answers(PlanList, "every plan, by name")},
)
def list_plans() -> Response[str]:
    return _answer(200, {"plans": [plan_answer(e) for e in bootstrap.plan_catalog().all()]})


@router.get(
    "/plans/<name>",
    summary="Read a verification plan",
    operation_id="getPlan",
    tags=["plans"],
    responses={**ALWAYS, 200: answers(PlanAnswer, "the plan"), 400: _BAD_NAME, 404: _NO_PLAN},
)
def get_plan(name: Annotated[str, Path(pattern=PLAN_NAME_PATTERN)]) -> Response[str]:
    return _answer(200, plan_answer(bootstrap.plan_catalog().get(name)))


@router.delete(
    "/plans/<name>",
    summary="Delete a verification plan and its schedule",
    operation_id="deletePlan",
    tags=["plans"],
    responses={**ALWAYS, 200: answers(DeletedPlan, "deleted"), 400: _BAD_NAME, 404: _NO_PLAN},
)
def delete_plan(name: Annotated[str, Path(pattern=PLAN_NAME_PATTERN)]) -> Response[str]:
    entry = bootstrap.plan_catalog().delete(name)
    return _answer(200, {"deleted": name, "revision": entry.revision, "scheduleDeleted": entry.schedule_name})


@router.post(
    "/plans/<name>/runs",
    summary="Run a verification plan now",
    description="Starts a verification run of the saved plan. With an Idempotency-Key, the same request (and "
    "caller) names the same run, so a retry starts nothing new.",
    operation_id="runPlan",
    tags=["plans"],
    responses={
        **ALWAYS,
        202: answers(StartedRun, "the run has started", headers={"Location": "/runs/<runId>"}),
        400: _BAD_NAME,
        404: _NO_PLAN,
    },
    openapi_extensions=documented(
        headers={"Idempotency-Key": "a retried request with the same key (and caller) names the same run"}
    ),
)
def run_plan(name: Annotated[str, Path(pattern=PLAN_NAME_PATTERN)]) -> Response[str]:
    event = router.current_event
    caller = _caller()
    header = event.get_header_value("idempotency-key", case_sensitive=False)
    key = idempotency_key("run-key", caller or "", name, header) if header else None
    requested_by = RequestedBy(
        trigger="api", caller=caller, event_id=(event.raw_event.get("requestContext") or {}).get("requestId")
    )
    started = bootstrap.plan_catalog().start_run(name, requested_by, key=key)
    location = f"/runs/{started.run_id}"
    body = {
        "runId": started.run_id,
        "plan": started.plan,
        "executionArn": started.execution_arn,
        "location": location,
        "message": "the run has started; GET the location for its record once it has ended",
    }
    return _answer(202, body, {"Location": location})


@router.get(
    "/runs",
    summary="List verification runs, newest first",
    operation_id="listRuns",
    tags=["runs"],
    responses={**ALWAYS, 200: answers(RunList, "one page of runs (without their sources)"), 400: BAD_QUERY},
)
def list_runs(
    plan: Annotated[str | None, Query(pattern=PLAN_NAME_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 20,
    nextToken: Annotated[str | None, Query(max_length=2048)] = None,
) -> Response[str]:
    unknown = set(router.current_event.query_string_parameters or {}) - set(RUN_QUERY_PARAMETERS)
    if unknown:
        raise InvalidRequest(
            "the query is not valid",
            [{"field": "query", "message": f"unknown parameter; allowed: {', '.join(RUN_QUERY_PARAMETERS)}"}],
        )
    try:
        runs, token = bootstrap.run_table().list_runs(plan=plan, limit=limit, next_token=nextToken)
    except BadPageToken as exc:
        raise InvalidRequest(
            "the query is not valid", [{"field": "nextToken", "message": str(exc)}]
        ) from None
    return _answer(200, {"runs": [_without_sources(r.to_json()) for r in runs], "nextToken": token})


@router.get(
    "/runs/<runId>",
    summary="Read a verification run's record",
    operation_id="getRun",
    tags=["runs"],
    responses={
        **ALWAYS,
        200: answers(RunRecord, "the run record with every source (those that have ended, while it runs)"),
        400: BAD_QUERY,
        404: answers(ErrorAnswer, "no such run (RUN_NOT_FOUND)"),
    },
)
def get_run(runId: Annotated[str, Path(pattern=RUN_ID_PATTERN)]) -> Response[str]:
    record = bootstrap.run_table().get_run(runId)
    if record is None:
        raise IntakeError(404, "RUN_NOT_FOUND", f"no run {runId}", refusal=True)
    return _answer(200, record.to_json())


def _without_sources(document: dict[str, Any]) -> dict[str, Any]:
    document.pop("sources", None)
    return document


@router.exception_handler(PlanNotFound)  # type: ignore[untyped-decorator]
def no_plan(exc: PlanNotFound) -> Response[str]:
    return _answer(404, {"message": str(exc), "errorCode": "PLAN_NOT_FOUND"})


@router.exception_handler(PlanChanged)  # type: ignore[untyped-decorator]
def plan_changed(exc: PlanChanged) -> Response[str]:
    return _answer(409, {"message": str(exc), "errorCode": "PLAN_CHANGED"}, {"Retry-After": "1"})
