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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from flexrestore.contracts import RequestedBy
from flexrestore.contracts.base import FIELD_RULES_ERROR
from flexrestore.contracts.patterns import (
    ATLAS_ID_PATTERN,
    CLUSTER_NAME_PATTERN,
    FORBIDDEN_CHARACTERS,
    TARGET_NAME_PATTERN,
    hidden_character_problem,
)

__all__ = [
    "ATLAS_ID_PATTERN",
    "CLUSTER_NAME_PATTERN",
    "TARGET_NAME_PATTERN",
    "InvalidRequest",
    "RequestedBy",
    "RestoreRequest",
    "TriggeredRestore",
    "Vocabulary",
    "describe_errors",
    "parse_request",
]

LATEST: Final = "latest"
REASON_MAX_CHARS: Final = 500

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

    # defer_build: validators are built on first use (the first request, or a recovery plan at cold start),
    # not when the intake's import defines the class.
    model_config = ConfigDict(
        strict=True,
        extra="forbid",
        frozen=True,
        validate_by_alias=True,
        validate_by_name=False,
        serialize_by_alias=True,
        defer_build=True,
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
        problem = hidden_character_problem(value) if isinstance(value, str) else None
        if problem:
            raise ValueError(problem)
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

    model_config = ConfigDict(frozen=True, defer_build=True)

    request: RestoreRequest
    requested_by: RequestedBy


class InvalidRequest(ValueError):
    """A request that cannot be accepted. ``errors`` holds one ``{"field", "message"}`` per bad field."""

    status = 400

    def __init__(self, message: str, errors: list[dict[str, str]]) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors

    @classmethod
    def naming(cls, what: str, errors: list[dict[str, str]]) -> InvalidRequest:
        """``<what> is not valid: <the first five fields>``, with every error."""
        names = ", ".join(e["field"] for e in errors[:5]) + (", ..." if len(errors) > 5 else "")
        return cls(f"{what} is not valid: {names}", errors)

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


@dataclass(frozen=True)
class Vocabulary:
    """How :func:`describe_errors` speaks about one kind of document.

    A field's *rule key* is its path without list indices (``sources.explicit.clusterName``, the member
    names of a union included); its *name* in an answer has the indices and not the member names
    (``sources[3].clusterName``). ``rules`` gives the plain-words rule of a field, looked up by rule key,
    then by the key without member names, then by the last part alone (so the restore request's
    ``FIELD_RULES`` also serve a plan's sources). ``allowed`` lists the fields of each object (by the
    object's rule key, ``""`` for the document itself) for "is not a known field"; ``refused`` says why a
    field someone might expect is not allowed there; ``members`` are the names of union members, which
    pydantic puts in a path after a list index.
    """

    what: str
    rules: Mapping[str, str]
    allowed: Mapping[str, Sequence[str]]
    refused: Mapping[str, str] = field(default_factory=dict)
    members: frozenset[str] = frozenset()


REQUEST_VOCABULARY: Final = Vocabulary(
    what="the restore request", rules=FIELD_RULES, allowed={"": ALLOWED_FIELDS}
)

_TYPE_WORDS: Final[Mapping[str, str]] = {
    "string_type": "must be a JSON string",
    "bool_type": "must be a JSON boolean (true or false)",
    "int_type": "must be a JSON integer",
    "dict_type": "must be a JSON object",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "list_type": "must be a JSON array",
}


def describe_errors(
    exc: ValidationError, *, prefix: str = "", vocabulary: Vocabulary = REQUEST_VOCABULARY
) -> InvalidRequest:
    """One plain-words message per bad field. Never includes the offending value."""
    errors: list[dict[str, str]] = []
    seen: set[str] = set()
    for error in exc.errors(include_input=False, include_url=False, include_context=True):
        for field_name, message in _describe_one(error, vocabulary):
            name = f"{prefix}{field_name}"
            if name in seen:  # one message per field is enough (e.g. type *and* pattern)
                continue
            seen.add(name)
            errors.append({"field": name, "message": message})
    if len(errors) > _MAX_ERRORS:
        more = len(errors) - _MAX_ERRORS
        errors = [*errors[:_MAX_ERRORS], {"field": "(more)", "message": f"{more} more problems not listed"}]
    return InvalidRequest.naming(vocabulary.what, errors)


def _describe_one(error: Any, vocabulary: Vocabulary) -> list[tuple[str, str]]:
    loc = tuple(error.get("loc", ()))
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    field_name = _field_name(loc, vocabulary)
    key = _rule_key(loc)
    rule = _rule(key, vocabulary)
    if kind == FIELD_RULES_ERROR:
        return [
            (_join(field_name, str(problem["field"])), str(problem["message"]))
            for problem in ctx.get("problems", ())
        ]
    if kind == "extra_forbidden":
        why = vocabulary.refused.get(key) or vocabulary.refused.get(_without_members(key, vocabulary))
        if why:
            return [(field_name, why)]
        allowed = vocabulary.allowed.get(key.rpartition(".")[0], ())
        return [(field_name, "is not a known field; allowed fields: " + ", ".join(allowed))]
    if kind == "missing":
        return [(field_name, f"is required; it {rule}" if rule else "is required")]
    if kind in _TYPE_WORDS:
        return [(field_name, rule if rule and kind == "int_type" else _TYPE_WORDS[kind])]
    if kind == "string_too_long":
        return [(field_name, f"must be at most {ctx.get('max_length')} characters")]
    if kind == "too_long":
        return [(field_name, f"must have at most {ctx.get('max_length')} entries")]
    if kind == "too_short":
        least = ctx.get("min_length")
        return [(field_name, f"must have at least {least} {'entry' if least == 1 else 'entries'}")]
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        bound = {"greater_than_equal": "at least", "less_than_equal": "at most"}.get(kind, "")
        limit = next(iter(ctx.values()), None)
        return [(field_name or "body", rule or f"must be {bound or kind.replace('_', ' ')} {limit}")]
    if kind == "literal_error":
        return [(field_name, rule or f"must be {ctx.get('expected')}")]
    if kind == "string_pattern_mismatch":
        return [(field_name, rule or "has the wrong format")]
    if kind == "value_error":
        message = str(error.get("msg", "")).removeprefix("Value error, ")
        if not field_name and ":" in message:  # a model-level rule names its field first: "breakGlass: ..."
            field_name, _, message = message.partition(": ")
        return [(field_name or "body", message)]
    return [(field_name or "body", rule or "is not valid")]


def _field_name(loc: tuple[Any, ...], vocabulary: Vocabulary) -> str:
    """``sources[3].clusterName``: list indices in brackets, union member names left out."""
    name = ""
    previous: Any = None
    for part in loc:
        if isinstance(part, int):
            name += f"[{part}]"
        elif not (isinstance(previous, int) and part in vocabulary.members):
            name = _join(name, _safe_field_name(str(part)))
        previous = part
    return name


def _rule_key(loc: tuple[Any, ...]) -> str:
    return ".".join(_safe_field_name(str(part)) for part in loc if not isinstance(part, int))


def _without_members(key: str, vocabulary: Vocabulary) -> str:
    return ".".join(part for part in key.split(".") if part not in vocabulary.members)


def _rule(key: str, vocabulary: Vocabulary) -> str:
    rules = vocabulary.rules
    return (
        rules.get(key)
        or rules.get(_without_members(key, vocabulary))
        or rules.get(key.rpartition(".")[2])
        or ""
    )


def _join(parent: str, child: str) -> str:
    if not parent:
        return child
    return f"{parent}{child}" if child.startswith("[") else f"{parent}.{child}"


def _safe_field_name(name: str) -> str:
    """Echo a field name only in a short, printable form (it is user input); an empty one as ``""``, so an
    answer never names a field by nothing."""
    if not name:
        return '""'
    printable = "".join(ch if ch.isprintable() and not FORBIDDEN_CHARACTERS.match(ch) else "?" for ch in name)
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
