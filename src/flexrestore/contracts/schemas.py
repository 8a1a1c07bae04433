"""The contracts' JSON Schemas, as committed in ``docs/schemas/`` (a test fails when they drift).

python -m flexrestore.contracts.schemas docs/schemas      # what ``make docs`` runs
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from flexrestore.contracts.execution import ExecutionInput
from flexrestore.contracts.plan import Plan
from flexrestore.contracts.record import RefusalRecord, RestoreRecord
from flexrestore.contracts.run import RunRecord

MODELS: dict[str, type[BaseModel]] = {
    "restore-record.json": RestoreRecord,
    "execution-input.json": ExecutionInput,
    "refusal-record.json": RefusalRecord,
    "plan.json": Plan,
    "run-record.json": RunRecord,
}
# Documents people write: their schema is what is accepted (defaults optional, unknown fields refused).
WRITTEN_BY_PEOPLE = frozenset({"plan.json"})


def schemas() -> dict[str, dict[str, Any]]:
    """File name -> the JSON Schema of what is written (the serialized form, camelCase), or for a document
    people write, of what is accepted."""
    return {
        name: model.model_json_schema(
            by_alias=True, mode="validation" if name in WRITTEN_BY_PEOPLE else "serialization"
        )
        for name, model in MODELS.items()
    }


def rendered(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    folder = Path(argv[0] if argv else "docs/schemas")
    folder.mkdir(parents=True, exist_ok=True)
    for name, schema in schemas().items():
        (folder / name).write_text(rendered(schema), encoding="utf-8")
        print(f"wrote {folder / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
