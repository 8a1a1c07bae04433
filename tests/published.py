"""What a consumer of the published contracts can rely on, as test helpers: an event, as a rule delivers it,
validates against the committed JSON Schema of its detail-type (docs/events/) and carries no detail field
the schema does not name; an HTTP answer is one the committed OpenAPI document (docs/openapi.json) lists
for its operation, with no field it does not name."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import regex
from jsonschema import Draft202012Validator, FormatChecker, ValidationError, validators

REPO = Path(__file__).resolve().parents[1]
EVENTS = REPO / "docs" / "events"


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Any:
    """``pattern`` with the ``regex`` module: the contracts' patterns use ``\\p{L}``/``\\p{N}``
    (``contracts/patterns.py``), which pydantic's regex and consumers' ECMA-262 engines know and Python's
    ``re``, jsonschema's default, does not."""
    if validator.is_type(instance, "string") and not regex.search(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


# Draft 2020-12 with that one keyword replaced.
Validator = validators.extend(Draft202012Validator, {"pattern": _pattern})


def event_schema_path(detail_type: str) -> Path:
    """``docs/events/flex-restore-succeeded.json`` for ``Flex Restore Succeeded``."""
    return EVENTS / f"{detail_type.lower().replace(' ', '-')}.json"


@cache
def event_schema(detail_type: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(event_schema_path(detail_type).read_text(encoding="utf-8"))
    return schema


def assert_published_event(event: dict[str, Any]) -> dict[str, Any]:
    """``event`` as a consumer's rule receives it matches its detail-type's committed schema, and its detail
    has exactly the fields the schema names (nothing internal slips in). Returns the detail."""
    schema = event_schema(str(event["detail-type"]))
    problems = [
        f"{'/'.join(str(p) for p in error.absolute_path)}: {error.message}"
        for error in Validator(schema, format_checker=FormatChecker()).iter_errors(event)
    ]
    assert problems == [], problems
    detail_schema = schema["$defs"][schema["properties"]["detail"]["$ref"].rsplit("/", 1)[-1]]
    assert set(event["detail"]) == set(detail_schema["properties"])
    detail: dict[str, Any] = event["detail"]
    return detail


# --- the HTTP API -------------------------------------------------------------------------------------------

OPENAPI = REPO / "docs" / "openapi.json"
JSON = "application/json"


@cache
def openapi() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(OPENAPI.read_text(encoding="utf-8"))
    return document


def _strict(node: Any) -> Any:
    """The schema with every object closed (``additionalProperties: false``): an answer may carry only
    documented fields."""
    if isinstance(node, list):
        return [_strict(n) for n in node]
    if not isinstance(node, dict):
        return node
    closed = {k: _strict(v) for k, v in node.items()}
    if "properties" in closed and "additionalProperties" not in closed:
        closed["additionalProperties"] = False
    return closed


@cache
def _strict_components() -> dict[str, Any]:
    components: dict[str, Any] = _strict(openapi()["components"])
    return components


def documented_operation(method: str, path: str) -> tuple[str, dict[str, Any]] | None:
    """The documented operation that answers ``method path`` (a path without the stage), or None."""
    for template, operations in openapi()["paths"].items():
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path) and method.lower() in operations:
            return template, operations[method.lower()]
    return None


def assert_documented_answer(event: dict[str, Any], response: dict[str, Any]) -> None:
    """An API answer is one docs/openapi.json lists for its operation: the status, its body's schema (no
    field the document does not name) and its headers. Requests to no documented operation are skipped."""
    found = documented_operation(str(event.get("httpMethod")), str(event.get("path")))
    if found is None:
        return
    template, operation = found
    status = str(response["statusCode"])
    what = f"{event.get('httpMethod')} {template} answered {status}"
    assert status in operation["responses"], f"{what}, which docs/openapi.json does not list"
    documented = operation["responses"][status]
    headers = {k.lower(): v[-1] for k, v in (response.get("multiValueHeaders") or {}).items()}
    headers.update({k.lower(): v for k, v in (response.get("headers") or {}).items()})
    declared = {name.lower() for name in documented.get("headers", {})}
    for name in ("retry-after", "location"):
        if name in headers:
            assert name in declared, f"{what} with a {name} header the document does not declare"
    if "location" in declared:
        assert "location" in headers, f"{what} without the Location header the document promises"
    problems = body_problems(documented, json.loads(response["body"]))
    assert problems == [], f"{what}: the body is not what docs/openapi.json says: {problems}"


def body_problems(documented: dict[str, Any], body: Any) -> list[str]:
    """What is wrong with ``body`` as the JSON of a documented response (every object closed)."""
    schema = documented.get("content", {}).get(JSON, {}).get("schema")
    if schema is None:
        return []
    validator = Validator({**_strict(schema), "components": _strict_components()})
    return [f"{'/'.join(str(p) for p in e.absolute_path)}: {e.message}" for e in validator.iter_errors(body)]
