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
from flexrestore.contracts.plan import PLAN_NAME_PATTERN
from flexrestore.domain.errors import PlanChanged, PlanNotFound
from flexrestore.domain.intake import IntakeError, idempotency_key
from flexrestore.domain.plan_catalog import plan_answer
from flexrestore.domain.request import InvalidRequest, decode_json_object

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


@router.put("/plans/<name>")
def put_plan(name: Annotated[str, Path(pattern=PLAN_NAME_PATTERN)]) -> Response[str]:
    event = router.current_event
    document = decode_json_object(event.body or "", max_bytes=MAX_PLAN_BYTES, what="body")
    saved = bootstrap.plan_catalog().save(name, document, caller=_caller())
    body = {**plan_answer(saved.entry), "created": saved.created, "changes": saved.changes}
    return _answer(201 if saved.created else 200, body, {"Location": f"/plans/{name}"})


@router.get("/plans")
def list_plans() -> Response[str]:
    return _answer(200, {"plans": [plan_answer(e) for e in bootstrap.plan_catalog().all()]})


@router.get("/plans/<name>")
def get_plan(name: Annotated[str, Path(pattern=PLAN_NAME_PATTERN)]) -> Response[str]:
    return _answer(200, plan_answer(bootstrap.plan_catalog().get(name)))


@router.delete("/plans/<name>")
def delete_plan(name: Annotated[str, Path(pattern=PLAN_NAME_PATTERN)]) -> Response[str]:
    entry = bootstrap.plan_catalog().delete(name)
    return _answer(200, {"deleted": name, "revision": entry.revision, "scheduleDeleted": entry.schedule_name})


@router.post("/plans/<name>/runs")
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


@router.get("/runs")
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


@router.get("/runs/<runId>")
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
