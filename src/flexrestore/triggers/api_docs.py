"""What the HTTP routes declare for docs/openapi.json: the answers per status (:func:`answers`, the models
of ``contracts/api.py``), the request bodies and headers a route reads itself (:func:`documented`), and
the answers every route shares. ``triggers/http.py`` and ``triggers/plans_api.py`` use them;
``triggers/openapi.py`` generates the document."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse, OpenAPIResponseHeader
from pydantic import BaseModel

from flexrestore.contracts.api import ErrorAnswer, GatewayRefusal

JSON = "application/json"
# Request bodies the routes read themselves (so their refusals keep this API's error body): the OpenAPI
# document refers to each as #/components/schemas/<name> and triggers/openapi.py adds the schemas.
REQUEST_BODIES: dict[str, type[BaseModel]] = {}
_RETRY_AFTER: OpenAPIResponseHeader = {
    "description": "seconds after which trying again can help",
    "schema": {"type": "integer", "minimum": 1},
}


def documented(
    *,
    body: type[BaseModel] | None = None,
    body_description: str = "",
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The OpenAPI fields of an operation that reads its body or headers itself (``openapi_extensions``):
    ``requestBody`` refers to ``body``'s schema, and each header is an optional string parameter. Powertools
    writes the ``parameters`` of declared ``Path``/``Query``/``Header`` arguments over these, so a route with
    both declares its headers as ``Header`` arguments instead (tests/unit/test_openapi.py checks POST's)."""
    fields: dict[str, Any] = {}
    if body is not None:
        REQUEST_BODIES[body.__name__] = body
        fields["requestBody"] = {
            "required": True,
            "description": body_description,
            "content": {JSON: {"schema": {"$ref": f"#/components/schemas/{body.__name__}"}}},
        }
    if headers:
        fields["parameters"] = [
            {
                "name": name,
                "in": "header",
                "required": False,
                "description": text,
                "schema": {"type": "string"},
            }
            for name, text in headers.items()
        ]
    return fields


def answers(
    model: Any,
    description: str,
    *,
    retry_after: bool = False,
    headers: Mapping[str, str] | None = None,
) -> OpenAPIResponse:
    """One documented answer: its body's model, and its headers (``Retry-After`` when coming back helps)."""
    response: OpenAPIResponse = {"description": description, "content": {JSON: {"model": model}}}
    described: dict[str, OpenAPIResponseHeader] = {
        name: {"description": text, "schema": {"type": "string"}} for name, text in (headers or {}).items()
    }
    if retry_after:
        described["Retry-After"] = _RETRY_AFTER
    if described:
        response["headers"] = described
    return response


# Every route: API Gateway's own refusals, and the service's faults.
ALWAYS: dict[int, OpenAPIResponse] = {
    403: answers(
        GatewayRefusal,
        "API Gateway refused the caller: no or a wrong SigV4 signature, or no execute-api:Invoke on this API",
    ),
    429: answers(GatewayRefusal, "API Gateway is throttling requests; try again shortly"),
    500: answers(
        ErrorAnswer,
        "the service is misconfigured (SERVICE_MISCONFIGURED names the setting or "
        "secret, never a value) or failed (INTERNAL_ERROR names the request id for operators)",
    ),
    503: answers(
        ErrorAnswer,
        "DynamoDB or Secrets Manager (or, for POST, Atlas) is rate-limiting or unavailable",
        retry_after=True,
    ),
}
BAD_QUERY = answers(ErrorAnswer, "a parameter is not valid (INVALID_REQUEST, one entry per bad parameter)")
