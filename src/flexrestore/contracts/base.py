"""What every contract model shares: camelCase on the wire, snake_case in Python, dates as ISO 8601 UTC
strings with a ``Z`` (``flexrestore.clock.isoformat``, the one date format of the service)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Final

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer, WithJsonSchema
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from flexrestore.clock import isoformat, parse_iso


def _moment(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return parse_iso(value)
        except ValueError:
            pass
    raise ValueError("must be an ISO 8601 date-time")


Timestamp = Annotated[
    datetime,
    BeforeValidator(_moment),
    PlainSerializer(isoformat, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time", "examples": ["2026-11-01T02:01:05Z"]}),
]


class Contract(BaseModel):
    """A frozen model with Atlas-style camelCase names on the wire."""

    # defer_build: a model's validator and serializer are built when it is first used, not when its class
    # is defined, so a cold start builds only the models its invocation reads or writes (building them
    # all at import took about 15 ms of every handler's start).
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        extra="ignore",
        serialize_by_alias=True,
        defer_build=True,
    )

    def to_json(self) -> dict[str, Any]:
        """The JSON form: every field, ``null`` where there is no value."""
        return self.model_dump(mode="json", by_alias=True)

    def to_stored(self) -> dict[str, Any]:
        """The JSON form without the fields that have no value (DynamoDB items leave them out, so conditions
        such as ``attribute_not_exists(finalStatus)`` mean "not ended yet")."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


# A model-level rule that names the fields it is about (relative to the model that checks it), so an
# answer can name each one (``domain/request.py`` ``describe_errors`` reads the problems back).
FIELD_RULES_ERROR: Final = "field_rules"


def field_rules_error(problems: Sequence[tuple[str, str]]) -> PydanticCustomError:
    """Raise this from a model validator: one ``(field, message)`` per problem, never a value in it."""
    summary = "; ".join(f"{name}: {message}" for name, message in problems)
    return PydanticCustomError(
        FIELD_RULES_ERROR,
        "{summary}",
        {"summary": summary, "problems": [{"field": name, "message": message} for name, message in problems]},
    )
