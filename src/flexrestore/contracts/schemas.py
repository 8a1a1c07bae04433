"""The contracts' JSON Schemas, as committed in ``docs/schemas/`` and ``docs/events/`` (a test fails when they
drift).

python -m flexrestore.contracts.schemas docs      # what ``make docs`` runs: docs/schemas/ and docs/events/
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import core_schema

from flexrestore.contracts.events import EVENT_VERSION, PUBLISHED, RESOURCES
from flexrestore.contracts.execution import ExecutionInput
from flexrestore.contracts.plan import Plan
from flexrestore.contracts.record import RefusalRecord, RestoreRecord
from flexrestore.contracts.run import RunRecord
from flexrestore.contracts.validator import ValidatorInput, ValidatorOutput

MODELS: dict[str, type[BaseModel]] = {
    "restore-record.json": RestoreRecord,
    "execution-input.json": ExecutionInput,
    "refusal-record.json": RefusalRecord,
    "plan.json": Plan,
    "run-record.json": RunRecord,
    "validator-input.json": ValidatorInput,
    "validator-output.json": ValidatorOutput,
}
# Documents people write (plans, validators' answers): their schema is what is accepted.
WRITTEN_BY_PEOPLE = frozenset({"plan.json", "validator-output.json"})
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
# What the service sets on every event (EventBridge adds version, id, account, time and region).
REQUIRED = ("detail-type", "source", "resources", "detail")


def schemas() -> dict[str, dict[str, Any]]:
    """File name -> the JSON Schema of what is written (the serialized form, camelCase), or for a document
    people write, of what is accepted."""
    return {
        name: model.model_json_schema(
            by_alias=True, mode="validation" if name in WRITTEN_BY_PEOPLE else "serialization"
        )
        for name, model in MODELS.items()
    }


class _EveryFieldPresent(GenerateJsonSchema):
    """An event's detail has every field, ``null`` when it has no value: each one is required (and may be
    null where its type says so)."""

    def field_is_required(
        self,
        field: core_schema.ModelField | core_schema.DataclassField | core_schema.TypedDictField,
        total: bool,
    ) -> bool:
        return True


def event_schemas() -> dict[str, dict[str, Any]]:
    """File name in ``docs/events/`` -> the JSON Schema of the whole EventBridge event of that detail-type:
    the envelope (its ``source`` and ``detail-type`` fixed) and the detail (``$defs``, from its model)."""
    documents: dict[str, dict[str, Any]] = {}
    for name, (source, detail_type, model) in PUBLISHED.items():
        detail = model.model_json_schema(
            by_alias=True, mode="serialization", schema_generator=_EveryFieldPresent
        )
        definitions = detail.pop("$defs", {})
        title = str(detail["title"])
        documents[name] = {
            "$schema": JSON_SCHEMA_DIALECT,
            "title": detail_type,
            "description": (
                f"The EventBridge event with source {source} and detail-type {detail_type!r}, as a rule "
                f"delivers it; its detail is {title} (detail version {EVENT_VERSION}). New detail fields "
                "may appear within a version; a change that can break a consumer comes with a new version."
            ),
            "type": "object",
            "properties": {
                "version": {"type": "string", "description": "EventBridge's envelope version"},
                "id": {"type": "string", "description": "EventBridge's event id"},
                "detail-type": {"const": detail_type},
                "source": {"const": source},
                "account": {"type": "string"},
                "time": {"type": "string", "format": "date-time"},
                "region": {"type": "string"},
                "resources": {
                    "type": "array",
                    "items": {"type": "string"},
                    "maxItems": 1,
                    "description": RESOURCES[source],
                },
                "detail": {"$ref": f"#/$defs/{title}"},
            },
            "required": list(REQUIRED),
            "$defs": {**definitions, title: detail},
        }
    return documents


def rendered(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    docs = Path(argv[0] if argv else "docs")
    for folder, documents in ((docs / "schemas", schemas()), (docs / "events", event_schemas())):
        folder.mkdir(parents=True, exist_ok=True)
        for name, schema in documents.items():
            (folder / name).write_text(rendered(schema), encoding="utf-8")
            print(f"wrote {folder / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
