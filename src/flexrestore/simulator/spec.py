"""Request validation against the two OpenAPI copies shipped in this package.

* ``flex-backup-openapi.yaml``: the flex cluster GET and the snapshot, restore-job and download operations
  (a cut of the official Atlas Admin API v2 spec).
* ``flex-clusters-openapi.yaml``: list, create, get and delete flex clusters (a verbatim subset of the
  official spec as published with the Go SDK, whose operationIds are the short names and whose schemas
  carry no enums). Both documents define ``GET .../flexClusters/{name}``; the backup document's
  definition (stricter: it has the enums) is the one used.

Each document is loaded once per process and keeps its own ``$ref`` targets. Every request is matched to
an operation and checked the way Atlas checks it: path parameter patterns, query parameter types and
ranges, the versioned Accept header, the Content-Type of a body and the body schema. A broken rule raises
an :class:`AtlasProblem` whose ``violation`` says what was wrong, so the server both answers like Atlas
and records it.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import jsonschema
import regex
import yaml
from jsonschema.exceptions import ValidationError

from flexrestore.simulator.problems import AtlasProblem

SPEC_FILES = (
    Path(__file__).with_name("flex-backup-openapi.yaml"),
    Path(__file__).with_name("flex-clusters-openapi.yaml"),
)
VERSIONED_MEDIA_TYPE = "application/vnd.atlas.2024-11-13+json"
_METHODS = ("get", "post", "put", "patch", "delete")

# Atlas practice beyond the spec: a flex restore-job POST without targetProjectId is refused with
# 400 MISSING_ATTRIBUTE although the spec marks the field optional (seen by the Atlas CLI, its PR #3620).
REQUIRED_IN_PRACTICE: dict[str, tuple[str, ...]] = {
    "createGroupFlexClusterBackupRestoreJob": ("targetProjectId",),
}
# The schema marks every response field readOnly, but the Atlas CLI sends instanceName and Atlas accepts it.
READ_ONLY_TOLERATED = frozenset({"instanceName"})


@dataclass(frozen=True)
class Operation:
    operation_id: str
    short_id: str
    method: str
    template: str
    path_regex: re.Pattern[str]
    path_params: dict[str, dict[str, Any]]
    query_params: dict[str, dict[str, Any]]
    body_schema: dict[str, Any] | None
    body_media_types: tuple[str, ...]
    responses: dict[str, dict[str, Any]] = field(default_factory=dict)
    empty_responses: frozenset[str] = frozenset()  # documented statuses without a body (a 204)


@dataclass(frozen=True)
class Match:
    operation: Operation
    path_values: dict[str, str]


def _unicode_pattern(
    validator: Any, pattern: str, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    # Python's `re` does not know \p{L} / \p{N} (targetDeploymentItemName); the `regex` module does.
    if validator.is_type(instance, "string") and not _compiled(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


@functools.lru_cache(maxsize=64)
def _compiled(pattern: str) -> regex.Pattern[str]:
    return regex.compile(pattern)


def _read_only(
    validator: Any, read_only: bool, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if read_only:
        yield ValidationError("is readOnly and must not be sent", validator="readOnly")


def _write_only(
    validator: Any, write_only: bool, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if write_only:
        yield ValidationError("is writeOnly and must not be returned", validator="writeOnly")


# OpenAPI 3.0 schemas are a dialect of JSON Schema draft 4 (boolean exclusiveMinimum, no `const`).
_Base = jsonschema.Draft4Validator
_extend: Any = jsonschema.validators.extend  # untyped in types-jsonschema
RequestValidator: Any = _extend(_Base, {"pattern": _unicode_pattern, "readOnly": _read_only})
ResponseValidator: Any = _extend(_Base, {"pattern": _unicode_pattern, "writeOnly": _write_only})


def _resolve(node: Any, document: dict[str, Any]) -> Any:
    """Inline every $ref and turn OpenAPI's `nullable` into a JSON Schema type union."""
    if isinstance(node, list):
        return [_resolve(item, document) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target: Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        return _resolve(target, document)
    resolved = {key: _resolve(value, document) for key, value in node.items()}
    if resolved.get("nullable") is True and isinstance(resolved.get("type"), str):
        resolved["type"] = [resolved["type"], "null"]
    return resolved


def _path_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{(\w+)\}", template)
    pattern = "".join(
        re.escape(part) if index % 2 == 0 else f"(?P<{part}>[^/]+)" for index, part in enumerate(parts)
    )
    return re.compile(f"^{pattern}$")


class Spec:
    """The parsed spec: operations by path template, with resolved schemas.

    Built from one or more documents, each resolving its own ``$ref``s; an operation (method + path
    template) already defined by an earlier document is not taken again from a later one.
    """

    def __init__(self, *documents: dict[str, Any]) -> None:
        self.operations: list[Operation] = []
        self._response_validators: dict[tuple[str, int], Any] = {}
        known: set[tuple[str, str]] = set()
        for document in documents:
            for template, item in document["paths"].items():
                shared = item.get("parameters", [])
                for method in _METHODS:
                    if method in item and (method.upper(), template) not in known:
                        known.add((method.upper(), template))
                        self.operations.append(
                            self._operation(document, template, method, item[method], shared)
                        )

    @classmethod
    @functools.cache
    def load(cls) -> Spec:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        documents = []
        for path in SPEC_FILES:
            with path.open(encoding="utf-8") as handle:
                documents.append(yaml.load(handle, Loader=loader))  # noqa: S506 - a SafeLoader
        return cls(*documents)

    @staticmethod
    def _operation(
        document: dict[str, Any], template: str, method: str, raw: dict[str, Any], shared: list[Any]
    ) -> Operation:
        params = [_resolve(p, document) for p in [*shared, *raw.get("parameters", [])]]
        body = _resolve(raw.get("requestBody"), document)
        content = body["content"] if body else {}
        responses = {}
        empty = set()
        for status, response in raw.get("responses", {}).items():
            resolved = _resolve(response, document)
            media = next(iter(resolved.get("content", {}).values()), None)
            # A 204 names a media type but no schema: it has no body to check.
            if media is not None and "schema" in media:
                responses[str(status)] = media["schema"]
            else:
                empty.add(str(status))
        return Operation(
            operation_id=raw["operationId"],
            short_id=raw.get("x-xgen-operation-id-override", raw["operationId"]),
            method=method.upper(),
            template=template,
            path_regex=_path_regex(template),
            path_params={p["name"]: p["schema"] for p in params if p["in"] == "path"},
            query_params={p["name"]: p["schema"] for p in params if p["in"] == "query"},
            body_schema=next(iter(content.values()))["schema"] if content else None,
            body_media_types=tuple(content),
            responses=responses,
            empty_responses=frozenset(empty),
        )

    def match(self, method: str, path: str) -> Match:
        """The operation for ``method path``; 404 if no path matches, 405 for a method not defined there."""
        allowed: list[str] = []
        for operation in self.operations:
            found = operation.path_regex.match(path)
            if found is None:
                continue
            if operation.method == method:
                return Match(operation, {k: unquote(v) for k, v in found.groupdict().items()})
            allowed.append(operation.method)
        if allowed:
            raise AtlasProblem(
                405,
                "METHOD_NOT_ALLOWED",
                f"Method {method} is not allowed on {path}; allowed: {', '.join(sorted(allowed))}.",
                violation=f"{method} {path}: method not in the spec (allowed {', '.join(sorted(allowed))})",
            )
        raise AtlasProblem(
            404,
            "RESOURCE_NOT_FOUND",
            f"Cannot find resource {path}.",
            violation=f"{method} {path}: no such path in the spec",
        )

    # -- request checks --------------------------------------------------------------------------------

    def check_request(
        self, found: Match, query: Mapping[str, list[str]], headers: Mapping[str, str], body: bytes
    ) -> Any:
        """Validate one request; returns the parsed JSON body (or None) or raises AtlasProblem."""
        operation = found.operation
        _check_accept(headers.get("accept"))
        for name, value in found.path_values.items():
            problem = _first_error(RequestValidator, operation.path_params[name], value)
            if problem:
                raise _bad_request(f"path parameter {name}", problem, name)
        for name, values in query.items():
            _check_query(operation, name, values)
        if operation.body_schema is None:
            if body:
                raise _bad_request("body", "this operation takes no request body", "body")
            return None
        _check_content_type(headers.get("content-type"), operation.body_media_types)
        return _check_body(operation, body)

    def check_response(self, operation: Operation, status: int, body: Any) -> list[str]:
        """Problems of a response body against the spec's schema for ``status`` (tests the simulator).
        ``body`` None means no body: right only for a status documented without one (a 204)."""
        if str(status) in operation.empty_responses:
            return [] if body is None else [f"status {status} of {operation.operation_id} has no body"]
        schema = operation.responses.get(str(status))
        if schema is None:
            return [f"status {status} is not documented for {operation.operation_id}"]
        key = (operation.operation_id, status)
        validator = self._response_validators.get(key)
        if validator is None:
            validator = self._response_validators[key] = ResponseValidator(schema)
        return [f"{_where(e)}: {e.message}" for e in validator.iter_errors(body)]


def _check_accept(accept: str | None) -> None:
    ranges = [part.split(";")[0].strip().lower() for part in (accept or "").split(",")]
    if VERSIONED_MEDIA_TYPE in ranges:
        return
    # Modeled: Atlas refuses a flex call that does not ask for the only version the resource has.
    raise AtlasProblem(
        406,
        "NOT_ACCEPTABLE",
        f"This resource exists only in version 2024-11-13; send Accept: {VERSIONED_MEDIA_TYPE}.",
        parameters=[accept or ""],
        violation=f"Accept header {accept!r} does not name {VERSIONED_MEDIA_TYPE}",
    )


def _check_content_type(content_type: str | None, allowed: tuple[str, ...]) -> None:
    media = (content_type or "").split(";")[0].strip().lower()
    if media not in allowed:
        raise AtlasProblem(
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            f"Content-Type must be {' or '.join(allowed)}.",
            parameters=[content_type or ""],
            violation=f"Content-Type {content_type!r} is not {' or '.join(allowed)}",
        )


def _check_query(operation: Operation, name: str, values: list[str]) -> None:
    schema = operation.query_params.get(name)
    if schema is None:
        raise _bad_request(f"query parameter {name}", "is not defined for this operation", name)
    if len(values) != 1:
        raise _bad_request(f"query parameter {name}", "is given more than once", name)
    raw = values[0]
    value: Any = raw
    if schema.get("type") == "boolean":
        if raw not in ("true", "false"):
            raise _bad_request(f"query parameter {name}", f"{raw!r} is not a boolean", name)
        value = raw == "true"
    elif schema.get("type") == "integer":
        try:
            value = int(raw)
        except ValueError:
            raise _bad_request(f"query parameter {name}", f"{raw!r} is not an integer", name) from None
    problem = _first_error(RequestValidator, schema, value)
    if problem:
        raise _bad_request(f"query parameter {name}", problem, name)


def _check_body(operation: Operation, raw: bytes) -> Any:
    schema = operation.body_schema or {}
    if not raw:
        raise _bad_request("body", "a JSON request body is required", "body")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise AtlasProblem(
            400, "INVALID_JSON", "The request body is not valid JSON.", violation="body is not valid JSON"
        ) from None
    if not isinstance(body, dict):
        raise _bad_request("body", "must be a JSON object", "body")
    # The schema allows unknown properties, but Atlas refuses them (INVALID_ATTRIBUTE); a client sending
    # one sends something the spec does not define.
    for name in body:
        if name not in schema.get("properties", {}):
            raise AtlasProblem(
                400,
                "INVALID_ATTRIBUTE",
                f"Invalid attribute {name} specified.",
                parameters=[name],
                violation=f"body: attribute {name!r} is not defined by {operation.operation_id}",
            )
    for error in sorted(RequestValidator(schema).iter_errors(body), key=lambda e: list(e.path)):
        where = _where(error)
        if error.validator == "readOnly" and where in READ_ONLY_TOLERATED:
            continue
        if error.validator == "required":
            missing = next(name for name in error.validator_value if name not in error.instance)
            raise _missing(missing, f"body: required attribute {missing!r} is missing")
        raise _bad_request(f"body.{where}", error.message, where)
    for name in REQUIRED_IN_PRACTICE.get(operation.operation_id, ()):
        if name not in body:
            raise _missing(name, f"body: {name!r} is missing (optional in the spec, required by Atlas)")
    return body


def _missing(name: str, violation: str) -> AtlasProblem:
    return AtlasProblem(
        400,
        "MISSING_ATTRIBUTE",
        f"The required attribute {name} was not specified.",
        parameters=[name],
        violation=violation,
    )


def _bad_request(what: str, why: str, field_name: str) -> AtlasProblem:
    return AtlasProblem(
        400,
        "VALIDATION_ERROR",
        f"Invalid {what}: {why}.",
        fields=[(field_name, why)],
        violation=f"{what}: {why}",
    )


def _first_error(validator_class: Any, schema: dict[str, Any], value: Any) -> str | None:
    error = next(iter(validator_class(schema).iter_errors(value)), None)
    return None if error is None else str(error.message)


def _where(error: ValidationError) -> str:
    return ".".join(str(part) for part in error.path) or "(root)"
