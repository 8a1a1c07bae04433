"""What a consumer of the published contracts can rely on, as test helpers: an event, as a rule delivers it,
validates against the committed JSON Schema of its detail-type (docs/events/) and carries no detail field
the schema does not name."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

REPO = Path(__file__).resolve().parents[1]
EVENTS = REPO / "docs" / "events"


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
        for error in Draft202012Validator(schema, format_checker=FormatChecker()).iter_errors(event)
    ]
    assert problems == [], problems
    detail_schema = schema["$defs"][schema["properties"]["detail"]["$ref"].rsplit("/", 1)[-1]]
    assert set(event["detail"]) == set(detail_schema["properties"])
    detail: dict[str, Any] = event["detail"]
    return detail
