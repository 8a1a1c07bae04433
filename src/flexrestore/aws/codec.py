"""The one codec between JSON-like Python values and DynamoDB items (every adapter of RESTORES_TABLE uses it).

Numbers come back as int or float, never Decimal; floats go in as Decimal (boto3 refuses floats).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer


@cache
def _serializer() -> TypeSerializer:
    from boto3.dynamodb.types import TypeSerializer

    return TypeSerializer()


@cache
def _deserializer() -> TypeDeserializer:
    from boto3.dynamodb.types import TypeDeserializer

    return TypeDeserializer()


def to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    """A DynamoDB item (attribute-value map) from JSON-like values."""
    return {key: to_attribute(value) for key, value in values.items()}


def to_attribute(value: Any) -> Any:
    """One DynamoDB attribute value (``{"S": ...}``, ``{"M": ...}``, ...)."""
    return _serializer().serialize(_dynamo_safe(value))


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-like values from a DynamoDB item."""
    deserializer = _deserializer()
    return {key: _plain(deserializer.deserialize(value)) for key, value in item.items()}


def _dynamo_safe(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, Mapping):
        return {str(k): _dynamo_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_dynamo_safe(v) for v in value]
    raise TypeError(f"cannot store a {type(value).__name__} in DynamoDB")


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | set):
        return [_plain(v) for v in value]
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    return value


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a botocore ClientError (None for anything else)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    code = response.get("Error", {}).get("Code")
    return str(code) if code else None


def condition_failed(exc: BaseException) -> bool:
    return error_code(exc) == "ConditionalCheckFailedException"
