"""The restore request: one shape for every trigger, with Atlas's own field names (docs/contracts.md,
"Restore request"), and who asked for it.

Validation is strict: JSON types only (no ``"true"`` → ``True``), unknown fields refused, every string
bounded, and no control or bidirectional-override characters anywhere (they hide what a name really is
in logs, records and notifications). :func:`describe_errors` turns a pydantic error into the API's
answer: one plain message per bad field, never the input echoed back, never a stack trace.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from flexrestore.contracts import RequestedBy

__all__ = ["InvalidRequest", "RequestedBy", "RestoreRequest", "TriggeredRestore", "parse_request"]

ATLAS_ID_PATTERN: Final = r"^[a-f0-9]{24}$"
CLUSTER_NAME_PATTERN: Final = r"^[a-zA-Z0-9][a-zA-Z0-9-]*$"
# Atlas's own pattern for targetDeploymentItemName; pydantic-core's Rust regex knows \p{L} / \p{N}, and its
# `$` matches only at the very end (Python's `re` would also accept a trailing newline).
TARGET_NAME_PATTERN: Final = r"^[\p{L}\p{N}\-_.(),:&@+']{1,64}$"
LATEST: Final = "latest"
REASON_MAX_CHARS: Final = 500

# C0 and C1 controls, DEL, the line/paragraph separators, the bidi marks/embeddings/overrides/isolates
# that can make text display as something else, and lone surrogates (not text at all; JSON can carry them).
_FORBIDDEN_CHARACTERS = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]"
)

# Plain-words rule of each field, used in error messages instead of raw regexes.
FIELD_RULES: Final[Mapping[str, str]] = {
    "groupId": "must be an Atlas project id: 24 lowercase hexadecimal characters",
    "clusterName": (
        "must be a Flex cluster name: letters, digits and hyphens, starting with a letter or digit, "
        "at most 64 characters"
    ),
    "snapshotId": 'must be "latest" or an Atlas snapshot id: 24 lowercase hexadecimal characters',
    "targetDeploymentItemName": (
        "must be 1 to 64 characters: Unicode letters and digits or - _ . ( ) , : & @ + '"
    ),
    "targetProjectId": "must be an Atlas project id: 24 lowercase hexadecimal characters",
    "reason": f"must be text of at most {REASON_MAX_CHARS} characters",
    "dryRun": "must be true or false (a JSON boolean, not a string)",
    "breakGlass": "must be true or false (a JSON boolean, not a string)",
    "confirmRestoreOntoSource": "must be true or false (a JSON boolean, not a string)",
}
ALLOWED_FIELDS: Final = tuple(FIELD_RULES)
_MAX_ERRORS = 20
_MAX_FIELD_NAME_ECHO = 64


class RestoreRequest(BaseModel):
    """A validated restore request. Python names are snake_case; the wire names are Atlas's camelCase."""

    model_config = ConfigDict(
        strict=True,
        extra="forbid",
        frozen=True,
        validate_by_alias=True,
        validate_by_name=False,
        serialize_by_alias=True,
    )

    group_id: str = Field(alias="groupId", pattern=ATLAS_ID_PATTERN, max_length=24)
    cluster_name: str = Field(alias="clusterName", pattern=CLUSTER_NAME_PATTERN, max_length=64)
    snapshot_id: str | None = Field(None, alias="snapshotId", max_length=24)
    target_deployment_item_name: str = Field(
        alias="targetDeploymentItemName", pattern=TARGET_NAME_PATTERN, max_length=64
    )
    requested_target_project_id: str | None = Field(
        None, alias="targetProjectId", pattern=ATLAS_ID_PATTERN, max_length=24
    )
    reason: str | None = Field(None, max_length=REASON_MAX_CHARS)
    dry_run: bool = Field(False, alias="dryRun")
    break_glass: bool = Field(False, alias="breakGlass")
    confirm_restore_onto_source: bool = Field(False, alias="confirmRestoreOntoSource")

    @field_validator("*", mode="before")
    @classmethod
    def _no_hidden_characters(cls, value: Any) -> Any:
        if isinstance(value, str):
            found = _FORBIDDEN_CHARACTERS.search(value)
            if found:
                raise ValueError(
                    f"must not contain control or bidirectional-override characters "
                    f"(found U+{ord(found.group()):04X} at position {found.start() + 1})"
                )
        return value

    @field_validator("snapshot_id")
    @classmethod
    def _snapshot_id_or_latest(cls, value: str | None) -> str | None:
        if value is None or value == LATEST or re.fullmatch(r"[a-f0-9]{24}", value):
            return value
        raise ValueError(FIELD_RULES["snapshotId"])

    @model_validator(mode="after")
    def _safety_flags(self) -> RestoreRequest:
        if self.break_glass and not (self.reason or "").strip():
            raise ValueError("breakGlass: a break-glass request needs a non-empty reason")
        return self

    @property
    def target_project_id(self) -> str:
        """Atlas needs targetProjectId on every flex restore; it defaults to the source project."""
        return self.requested_target_project_id or self.group_id

    @property
    def explicit_snapshot_id(self) -> str | None:
        """The snapshot asked for, or None for "the newest COMPLETED one"."""
        return None if self.snapshot_id in (None, LATEST) else self.snapshot_id

    @property
    def source(self) -> str:
        return f"{self.group_id}/{self.cluster_name}"

    def to_wire(self) -> dict[str, Any]:
        """The request as JSON-ready camelCase, without unset optional fields."""
        return self.model_dump(by_alias=True, exclude_none=True)


class TriggeredRestore(BaseModel):
    """A restore request and who asked for it (an API call, a schedule, an alarm's recovery plan)."""

    model_config = ConfigDict(frozen=True)

    request: RestoreRequest
    requested_by: RequestedBy


class InvalidRequest(ValueError):
    """A request that cannot be accepted. ``errors`` holds one ``{"field", "message"}`` per bad field."""

    status = 400

    def __init__(self, message: str, errors: list[dict[str, str]]) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors

    def body(self) -> dict[str, Any]:
        return {"message": self.message, "errors": self.errors}

    def prefixed(self, prefix: str) -> InvalidRequest:
        """The same refusal for a request nested at ``prefix`` (``detail.request``)."""
        errors = [
            {"field": f"{prefix}.{e['field']}" if e["field"] != "body" else prefix, "message": e["message"]}
            for e in self.errors
        ]
        return InvalidRequest(self.message, errors)


def parse_request(data: Any) -> RestoreRequest:
    """Validate already-decoded JSON into a :class:`RestoreRequest`; raise :class:`InvalidRequest`."""
    if not isinstance(data, dict):
        raise InvalidRequest(
            "the restore request is not valid",
            [{"field": "body", "message": "must be a JSON object"}],
        )
    try:
        return RestoreRequest.model_validate(data)
    except ValidationError as exc:
        raise describe_errors(exc) from None


def decode_json_object(text: str, *, max_bytes: int, what: str = "body") -> dict[str, Any]:
    """Decode a JSON object of at most ``max_bytes`` bytes; refuse duplicate keys (which one would win?)."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise InvalidRequest(
            f"the {what} is too large",
            [{"field": what, "message": f"must be at most {max_bytes} bytes (got {size})"}],
        )
    if not text.strip():
        raise InvalidRequest(f"the {what} is empty", [{"field": what, "message": "must be a JSON object"}])

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise InvalidRequest(
                    f"the {what} is not valid",
                    [{"field": _safe_field_name(key), "message": "appears more than once"}],
                )
            result[key] = value
        return result

    try:
        data = json.loads(text, object_pairs_hook=no_duplicates)
    except InvalidRequest:
        raise
    except (ValueError, RecursionError) as exc:
        where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise InvalidRequest(
            f"the {what} is not valid JSON",
            [{"field": what, "message": f"must be a JSON object; it is not valid JSON{where}"}],
        ) from None
    if not isinstance(data, dict):
        raise InvalidRequest(
            f"the {what} is not valid",
            [{"field": what, "message": f"must be a JSON object, not {_json_kind(data)}"}],
        )
    return data


def describe_errors(exc: ValidationError, *, prefix: str = "") -> InvalidRequest:
    """One plain-words message per bad field. Never includes the offending value."""
    errors: list[dict[str, str]] = []
    seen: set[str] = set()
    for error in exc.errors(include_input=False, include_url=False, include_context=True):
        field, message = _describe_one(error)
        field = f"{prefix}{field}"
        if field in seen:  # one message per field is enough (e.g. type *and* pattern)
            continue
        seen.add(field)
        errors.append({"field": field, "message": message})
    if len(errors) > _MAX_ERRORS:
        more = len(errors) - _MAX_ERRORS
        errors = [*errors[:_MAX_ERRORS], {"field": "(more)", "message": f"{more} more problems not listed"}]
    names = ", ".join(e["field"] for e in errors[:5]) + (", ..." if len(errors) > 5 else "")
    return InvalidRequest(f"the restore request is not valid: {names}", errors)


def _describe_one(error: Any) -> tuple[str, str]:
    loc = error.get("loc", ())
    kind = error.get("type", "")
    field = _safe_field_name(str(loc[0])) if loc else ""
    rule = FIELD_RULES.get(field, "")
    if kind == "extra_forbidden":
        return field, "is not a known field; allowed fields: " + ", ".join(ALLOWED_FIELDS)
    if kind == "missing":
        return field, f"is required; it {rule}" if rule else "is required"
    if kind in ("string_type", "bool_type", "int_type", "dict_type", "model_type"):
        expected = {"string_type": "a JSON string", "bool_type": "a JSON boolean (true or false)"}.get(
            kind, "of another type"
        )
        return field, f"must be {expected}"
    if kind == "string_too_long":
        limit = error.get("ctx", {}).get("max_length")
        return field, f"must be at most {limit} characters"
    if kind == "string_pattern_mismatch":
        return field, rule or "has the wrong format"
    if kind == "value_error":
        message = str(error.get("msg", "")).removeprefix("Value error, ")
        if not field and ":" in message:  # a model-level rule names its field first: "breakGlass: ..."
            field, _, message = message.partition(": ")
        return field or "body", message
    return field or "body", rule or "is not valid"


def _safe_field_name(name: str) -> str:
    """Echo a field name only in a short, printable form (it is user input)."""
    printable = "".join(
        ch if ch.isprintable() and not _FORBIDDEN_CHARACTERS.match(ch) else "?" for ch in name
    )
    if len(printable) > _MAX_FIELD_NAME_ECHO:
        printable = printable[:_MAX_FIELD_NAME_ECHO] + "..."
    return printable


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "null" if value is None else "something else"
