"""docs/openapi.json is the HTTP API as the code declares it: generated from the resolver's routes
(``make docs``), a valid OpenAPI 3.1 document, every route with its parameters, request body, answers and
error bodies, signed with SigV4. (Every answer the intake gives in the offline tests is checked against it
too: tests/conftest.py.)"""

from __future__ import annotations

from typing import Any

import pytest
import regex
from openapi_spec_validator import validate

from flexrestore.triggers.http import app
from flexrestore.triggers.openapi import API_VERSION, TITLE, document, rendered
from tests.published import OPENAPI, body_problems, openapi

ERRORS_EVERY_ROUTE_ANSWERS = {"400", "403", "429", "500", "503"}


def operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, methods in openapi()["paths"].items()
        for method, operation in methods.items()
    ]


def test_the_committed_document_is_what_the_code_generates() -> None:
    assert OPENAPI.is_file(), "docs/openapi.json is missing: run make docs"
    assert OPENAPI.read_text(encoding="utf-8") == rendered(document()), (
        "docs/openapi.json differs from the routes in triggers/http.py: run make docs and commit the result"
    )


def _ecma_patterns_as_python(node: Any, found: list[str]) -> Any:
    """JSON Schema patterns are ECMA-262 regular expressions, where ``\\p{L}`` (a Unicode letter) is valid;
    the validator compiles them with Python's ``re``, which has no ``\\p``. Such a pattern is collected (and
    checked with ``regex``, which has it) and replaced by one ``re`` can compile."""
    if isinstance(node, list):
        return [_ecma_patterns_as_python(n, found) for n in node]
    if not isinstance(node, dict):
        return node
    copied = {k: _ecma_patterns_as_python(v, found) for k, v in node.items()}
    if isinstance(copied.get("pattern"), str) and "\\p{" in copied["pattern"]:
        found.append(copied["pattern"])
        copied["pattern"] = ".*"
    return copied


def test_it_is_a_valid_openapi_3_1_document() -> None:
    unicode_patterns: list[str] = []
    validate(_ecma_patterns_as_python(openapi(), unicode_patterns))
    assert unicode_patterns  # the target name's
    for pattern in unicode_patterns:
        regex.compile(pattern)
    assert openapi()["openapi"].startswith("3.1")
    assert openapi()["info"]["title"] == TITLE and openapi()["info"]["version"] == API_VERSION


def test_every_route_on_the_resolver_is_in_it() -> None:
    # Routes added to the resolver (plans, runs) appear without anything else to do.
    routes = {
        (route.openapi_path, route.method.lower())
        for route in [*app._static_routes, *app._dynamic_routes]
        if route.include_in_schema
    }
    assert routes == {(path, method) for path, method, _ in operations()}
    assert routes >= {("/restores", "post"), ("/restores", "get"), ("/restores/{restoreId}", "get")}


def test_every_operation_is_signed_and_answers_its_success_and_every_error_with_a_body() -> None:
    document = openapi()
    assert document["security"] == [{"sigv4": []}]
    scheme = document["components"]["securitySchemes"]["sigv4"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "Authorization")
    assert scheme["x-amazon-apigateway-authtype"] == "awsSigv4"
    for path, method, operation in operations():
        statuses = set(operation["responses"])
        takes_input = operation.get("parameters") or operation.get("requestBody")
        expected = ERRORS_EVERY_ROUTE_ANSWERS if takes_input else ERRORS_EVERY_ROUTE_ANSWERS - {"400"}
        assert statuses >= expected, (method, path)
        assert any(s.startswith("2") for s in statuses), (method, path)
        for status, response in operation["responses"].items():
            assert response["content"]["application/json"]["schema"], (method, path, status)
        assert operation["operationId"] and operation["summary"]
        assert operation["tags"] == [path.split("/")[1]], (method, path)
    assert "HTTPValidationError" not in document["components"]["schemas"]  # refused parameters are 400s


def test_post_restores_documents_its_body_header_and_answers() -> None:
    post = openapi()["paths"]["/restores"]["post"]
    assert set(post["responses"]) == {
        "200",
        "202",
        "400",
        "403",
        "404",
        "409",
        "422",
        "429",
        "500",
        "502",
        "503",
    }
    body = post["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/RestoreRequest"} and post["requestBody"]["required"]
    request = openapi()["components"]["schemas"]["RestoreRequest"]
    assert request["additionalProperties"] is False
    assert set(request["required"]) == {"groupId", "clusterName", "targetDeploymentItemName"}
    assert [(p["name"], p["in"]) for p in post["parameters"]] == [("Idempotency-Key", "header")]
    assert set(post["responses"]["202"]["headers"]) == {"Location"}
    assert set(post["responses"]["409"]["headers"]) == {"Retry-After"}


def test_list_and_read_document_their_parameters() -> None:
    listing = openapi()["paths"]["/restores"]["get"]
    assert [p["name"] for p in listing["parameters"]] == ["cluster", "groupId", "limit", "nextToken"]
    read = openapi()["paths"]["/restores/{restoreId}"]["get"]
    (restore_id,) = read["parameters"]
    assert (restore_id["in"], restore_id["required"], restore_id["schema"]["pattern"]) == (
        "path",
        True,
        "^[a-f0-9]{32}$",
    )
    assert read["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/RestoreRecord"
    }


@pytest.mark.parametrize(
    ("status", "body"),
    [
        ("403", {"message": "Missing Authentication Token"}),
        ("403", {"Message": "User: arn:aws:iam::123456789012:user/ops is not authorized to perform: ..."}),
        ("403", {"message": "a guard refused", "errorCode": "PROTECTED_TARGET", "guard": "g", "reason": "r"}),
        ("429", {"message": "Too Many Requests"}),
    ],
)
def test_api_gateways_own_refusals_are_documented(status: str, body: dict[str, Any]) -> None:
    post = openapi()["paths"]["/restores"]["post"]
    assert body_problems(post["responses"][status], body) == []
    assert body_problems(post["responses"][status], {**body, "stack": "trace"}) != []  # nothing else
