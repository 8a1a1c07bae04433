"""The HTTP API of the intake (API Gateway REST proxy, AWS_IAM auth): ``POST /restores``,
``GET /restores/{restoreId}``, ``GET /restores``, and the verification routes of ``triggers/plans_api.py``
(``/plans``, ``/runs``).

Routes live at module level on powertools' ``APIGatewayRestResolver`` with validation on: path and query
parameters are declared (``Annotated[..., Query(...)]``) and a refused one gets the same error body as any
other bad input. Each route also declares what it answers per status (``responses=``, the models of
``contracts/api.py``) and, where it reads them itself, its request body and headers
(:func:`documented`): docs/openapi.json is generated from these routes (``triggers/openapi.py``), so a
route added here appears in it.

Errors are JSON ``{"message", "errorCode", "errors"?: [{"field", "message"}]}``, with ``Retry-After`` when
coming back later can help; the status codes are listed in domain/intake.py.
Exactly once: keyed on the ``Idempotency-Key`` header and the caller, or (no header) on the request and
the caller for ``NO_KEY_WINDOW_SECONDS``.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from collections.abc import Mapping
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from flexrestore import bootstrap
from flexrestore.aws.store import MAX_PAGE, BadPageToken
from flexrestore.contracts import RequestedBy, RestoreRecord
from flexrestore.contracts.api import (
    AcceptedRestore,
    DryRun,
    ErrorAnswer,
    Forbidden,
    RestoreList,
)
from flexrestore.domain.intake import (
    IntakeError,
    as_intake_error,
    idempotency_key,
    request_fingerprint,
)
from flexrestore.domain.request import (
    ATLAS_ID_PATTERN,
    CLUSTER_NAME_PATTERN,
    InvalidRequest,
    RestoreRequest,
    decode_json_object,
    parse_request,
)
from flexrestore.triggers.api_docs import ALWAYS, BAD_QUERY, answers, documented
from flexrestore.triggers.plans_api import router as plans_router

logger = logging.getLogger("flexrestore.triggers")

MAX_BODY_BYTES = 16 * 1024
NO_KEY_WINDOW_SECONDS = 600  # identical POSTs without Idempotency-Key this close together are one request
MAX_IDEMPOTENCY_KEY_CHARS = 128
# How long a 202 waits for the execution's create step to have the Atlas restore job (usually well under a
# second); past it, the answer says the job is being created and GET /restores/{id} shows it.
JOB_WAIT_SECONDS = 5.0
RESTORE_ID_PATTERN = r"^[a-f0-9]{32}$"
QUERY_PARAMETERS = ("cluster", "groupId", "limit", "nextToken")
_PRINTABLE_ASCII = re.compile(r"[\x21-\x7e]+")
_JSON_TYPES = ("application/json", "application/vnd.api+json")
# What a refused path or query parameter is told, by its name on the wire.
_PARAMETER_RULES = {
    "restoreId": "must be 32 lowercase hexadecimal characters",
    "cluster": "must be a Flex cluster name",
    "groupId": "must be 24 lowercase hexadecimal characters",
    "limit": f"must be a whole number from 1 to {MAX_PAGE}",
    "nextToken": "must be a token this API handed out",
    "name": "must be a plan name: 1 to 64 of A-Z a-z 0-9 . _ -",
    "plan": "must be a plan name: 1 to 64 of A-Z a-z 0-9 . _ -",
    "runId": "must be a run id: 1 to 80 of A-Z a-z 0-9 _ -",
}

app = APIGatewayRestResolver(enable_validation=True)
app.include_router(plans_router)  # /plans and /runs (triggers/plans_api.py)


def answer(status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> Response[str]:
    return Response(
        status_code=status,
        content_type="application/json",
        body=json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        headers=dict(headers or {}),
    )


def error(exc: IntakeError) -> Response[str]:
    """The error body every answer shares; ``Retry-After`` when the caller should come back."""
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
    return answer(exc.status, exc.body(), headers)


# --- routes ---------------------------------------------------------------------------------------------


@app.post(
    "/restores",
    summary="Start a restore (or try one with dryRun)",
    description="Validates the request, resolves the snapshot, runs the target guards, then (exactly once "
    "per Idempotency-Key and caller, or per identical body and caller for 10 minutes) locks the target, "
    "records the restore and starts its execution. The restore ERASES the target cluster. A repeated "
    "request gets the first answer.",
    operation_id="startRestore",
    tags=["restores"],
    responses={
        **ALWAYS,
        200: answers(DryRun, "dry run: every guard's verdict, nothing created"),
        202: answers(
            AcceptedRestore,
            "accepted: the restore's execution owns it now",
            headers={"Location": "/restores/<restoreId>, where GET follows the restore"},
        ),
        400: answers(
            ErrorAnswer,
            "the request is not valid (INVALID_REQUEST, one entry per bad field), or a "
            "guard needs a field set (restore onto the source, a break-glass reason)",
        ),
        403: answers(
            Forbidden,
            "a target guard refused (protected target, project not allowed, break glass "
            "denied: guard and reason named), or API Gateway refused the caller",
        ),
        404: answers(
            ErrorAnswer,
            "Atlas does not know the project, cluster, snapshot or target (Atlas's "
            "errorCode passed through), or there is no COMPLETED snapshot",
        ),
        409: answers(
            ErrorAnswer,
            "the target is busy or locked by a running restore (named), the snapshot "
            "is not COMPLETED, or the same request is in progress",
            retry_after=True,
        ),
        422: answers(
            ErrorAnswer, "the Idempotency-Key was used before with a different body (IDEMPOTENCY_KEY_REUSED)"
        ),
        502: answers(ErrorAnswer, "Atlas failed or refused the service's credentials"),
        503: answers(
            ErrorAnswer,
            "Atlas, DynamoDB or Secrets Manager is rate-limiting or unavailable",
            retry_after=True,
        ),
    },
    openapi_extensions=documented(
        body=RestoreRequest,
        body_description="the restore request: JSON types only, unknown or duplicate fields refused",
        headers={
            "Idempotency-Key": f"1 to {MAX_IDEMPOTENCY_KEY_CHARS} printable ASCII characters: a repeat with "
            "the same key (and caller) gets the first answer",
        },
    ),
)
def start_restore() -> Response[str]:
    current = app.current_event
    caller = _caller(current.raw_event)
    content_type = (current.get_header_value("content-type", case_sensitive=False) or "").split(";")[0]
    if content_type.strip().lower() not in ("", *_JSON_TYPES):
        raise InvalidRequest(
            "the body must be JSON", [{"field": "Content-Type", "message": "must be application/json"}]
        )
    request = parse_request(decode_json_object(_body_text(current.raw_event), max_bytes=MAX_BODY_BYTES))
    header = current.get_header_value("idempotency-key", case_sensitive=False)
    if header is not None:
        if len(header) > MAX_IDEMPOTENCY_KEY_CHARS or not _PRINTABLE_ASCII.fullmatch(header):
            raise InvalidRequest(
                "the Idempotency-Key header is not valid",
                [
                    {
                        "field": "Idempotency-Key",
                        "message": f"must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} printable ASCII characters",
                    }
                ],
            )
        key, expiry = idempotency_key("api-key", caller or "", header), None
    else:
        key = idempotency_key("api-body", caller or "", request_fingerprint(request))
        expiry = NO_KEY_WINDOW_SECONDS
    requested_by = RequestedBy(
        trigger="api",
        caller=caller,
        event_id=(current.raw_event.get("requestContext") or {}).get("requestId"),
    )
    status, body = bootstrap.intake(app.lambda_context, expires_after=expiry).submit(
        request, requested_by, key, wait_for_job_seconds=JOB_WAIT_SECONDS
    )
    return answer(status, body, {"Location": body["location"]} if status == 202 else None)


@app.get(
    "/restores/<restoreId>",
    summary="Read a restore's record",
    operation_id="getRestore",
    tags=["restores"],
    responses={
        **ALWAYS,
        200: answers(RestoreRecord, "the restore record: every field present, null where it has no value"),
        400: BAD_QUERY,
        404: answers(ErrorAnswer, "no such restore (RESTORE_NOT_FOUND)"),
    },
)
def get_restore(restoreId: Annotated[str, Path(pattern=RESTORE_ID_PATTERN)]) -> Response[str]:
    record = bootstrap.store().get(restoreId)
    if record is None:
        return error(IntakeError(404, "RESTORE_NOT_FOUND", f"no restore {restoreId}", refusal=True))
    return answer(200, record.to_json())


@app.get(
    "/restores",
    summary="List restores, newest first",
    description="All restores, or those of one cluster (cluster, optionally with groupId) or one project "
    "(groupId); limit per page, nextToken from the previous page.",
    operation_id="listRestores",
    tags=["restores"],
    responses={**ALWAYS, 200: answers(RestoreList, "one page of restore records"), 400: BAD_QUERY},
)
def list_restores(
    cluster: Annotated[str | None, Query(pattern=CLUSTER_NAME_PATTERN, max_length=64)] = None,
    groupId: Annotated[str | None, Query(pattern=ATLAS_ID_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 20,
    nextToken: Annotated[str | None, Query(max_length=2048)] = None,
) -> Response[str]:
    unknown = set(app.current_event.query_string_parameters or {}) - set(QUERY_PARAMETERS)
    if unknown:
        allowed = ", ".join(QUERY_PARAMETERS)
        raise InvalidRequest(
            "the query is not valid",
            [{"field": "query", "message": f"unknown parameter; allowed: {allowed}"}],
        )
    try:
        records, next_token = bootstrap.store().list_restores(
            group_id=groupId, cluster_name=cluster, limit=limit, next_token=nextToken
        )
    except BadPageToken as exc:
        raise InvalidRequest(
            "the query is not valid", [{"field": "nextToken", "message": str(exc)}]
        ) from None
    return answer(200, {"restores": [r.to_json() for r in records], "nextToken": next_token})


# --- errors ---------------------------------------------------------------------------------------------


@app.exception_handler(RequestValidationError)  # type: ignore[untyped-decorator]
def invalid_parameter(exc: RequestValidationError) -> Response[str]:
    problems: list[dict[str, str]] = []
    in_path = False
    for problem in exc.errors():
        location = tuple(problem.get("loc") or ())
        name = str(location[1]) if len(location) > 1 else "query"
        in_path = in_path or location[:1] == ("path",)
        if all(p["field"] != name for p in problems):
            problems.append({"field": name, "message": _PARAMETER_RULES.get(name, "is not valid")})
    names = {p["field"] for p in problems}
    message = (
        ("the restore id is not valid" if "restoreId" in names else "the path is not valid")
        if in_path
        else "the query is not valid"
    )
    refused: Response[str] = invalid(InvalidRequest(message, problems))
    return refused


@app.exception_handler(InvalidRequest)  # type: ignore[untyped-decorator]
def invalid(exc: InvalidRequest) -> Response[str]:
    if app.current_event.http_method == "POST" and app.current_event.path.endswith("/restores"):
        bootstrap.metrics().count("RestoreRefused", "reason", "invalid-request")
    logger.info("request refused: %s", exc.message, extra={"errors": exc.errors})
    return answer(400, {"message": exc.message, "errorCode": "INVALID_REQUEST", "errors": exc.errors})


@app.exception_handler(Exception)  # type: ignore[untyped-decorator]
def failed(exc: Exception) -> Response[str]:
    known = as_intake_error(exc)
    if known is not None:
        log = logger.warning if known.status < 500 else logger.error
        log("request ended with %s %s: %s", known.status, known.code, known.message)
        return error(known)
    # Logged with its traceback for operators; the caller gets the correlation id, never the trace.
    logger.exception("unexpected error in the intake")
    request_id = (app.current_event.raw_event.get("requestContext") or {}).get("requestId")
    message = f"internal error; operators can find it in the logs under request id {request_id}"
    return error(IntakeError(500, "INTERNAL_ERROR", message, refusal=False))


@app.not_found  # type: ignore[untyped-decorator]
def no_route(exc: Exception) -> Response[str]:
    return error(
        IntakeError(404, "NOT_FOUND", "no such resource; see /restores, /plans and /runs", refusal=True)
    )


# --- the request ----------------------------------------------------------------------------------------


def _body_text(event: Mapping[str, Any]) -> str:
    """The request body as text; API Gateway base64-encodes it for binary media types."""
    body = event.get("body") or ""
    if not event.get("isBase64Encoded"):
        return str(body)
    if len(body) > MAX_BODY_BYTES * 2:  # far too large once decoded, whatever it holds
        raise InvalidRequest(
            "the body is too large", [{"field": "body", "message": f"must be at most {MAX_BODY_BYTES} bytes"}]
        )
    try:
        return base64.b64decode(body, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise InvalidRequest(
            "the body is not valid",
            [{"field": "body", "message": "must be base64 of UTF-8 JSON (the request says isBase64Encoded)"}],
        ) from None


def _caller(event: Mapping[str, Any]) -> str | None:
    identity = (event.get("requestContext") or {}).get("identity") or {}
    caller = identity.get("userArn")
    return caller if isinstance(caller, str) and caller else None
