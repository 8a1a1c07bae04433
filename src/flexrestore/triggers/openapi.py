"""docs/openapi.json: the HTTP API's OpenAPI document, generated from the routes of ``triggers/http.py`` by
powertools' OpenAPI support (a test fails when the committed document and the code differ).

python -m flexrestore.triggers.openapi docs/openapi.json      # part of ``make docs``

What powertools does not know is added here, from the same code: the schemas of the request bodies the
routes read themselves (``api_docs.documented``), the security (SigV4 for ``execute-api``, as API Gateway's
AWS_IAM authorization wants it) and the server (the stage ``v1`` of the stack's API). Powertools documents
a 422 ``HTTPValidationError`` for every route because validation is on; this API answers a refused
parameter with its own 400 error body instead, so those 422s are left out.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Final

from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn, Server, ServerVariable

from flexrestore.triggers.api_docs import REQUEST_BODIES
from flexrestore.triggers.http import app

TITLE: Final = "Atlas Flex Restore API"
# The document's version: a contract change (CHANGELOG.md) moves it.
API_VERSION: Final = "1.0.0"
DESCRIPTION: Final = (
    "Start, follow and list restores of MongoDB Atlas Flex cluster snapshots. Every request is signed with "
    "AWS SigV4 for the service execute-api (API Gateway AWS_IAM authorization); the caller needs "
    "execute-api:Invoke on the API. The base URL is the stack's ApiUrl output. How restores end is also "
    "published as EventBridge events (docs/events/)."
)
SECURITY_SCHEME: Final = "sigv4"
COMPONENTS: Final = "#/components/schemas/"
_POWERTOOLS_VALIDATION = f"{COMPONENTS}HTTPValidationError"
# Powertools' own error schemas, in the order they refer to each other.
_POWERTOOLS_SCHEMAS = ("HTTPValidationError", "ResponseValidationError", "ValidationError")


def document() -> dict[str, Any]:
    """The OpenAPI document of every route on the resolver, as JSON."""
    schema = app.get_openapi_schema(
        title=TITLE,
        version=API_VERSION,
        description=DESCRIPTION,
        servers=[
            Server(
                url="https://{restApiId}.execute-api.{region}.amazonaws.com/v1",
                description="the deployed stack's API (its ApiUrl output)",
                variables={
                    "restApiId": ServerVariable(default="abcdef1234", description="the REST API's id"),
                    "region": ServerVariable(default="us-east-1", description="the stack's region"),
                },
            )
        ],
        security_schemes={
            SECURITY_SCHEME: APIKey.model_validate(
                {
                    "type": "apiKey",
                    "in": APIKeyIn.header,
                    "name": "Authorization",
                    "description": "AWS Signature Version 4 for the service execute-api (with X-Amz-Date, "
                    "and X-Amz-Security-Token for temporary credentials)",
                    "x-amazon-apigateway-authtype": "awsSigv4",
                }
            )
        },
        security=[{SECURITY_SCHEME: []}],
    )
    generated: dict[str, Any] = json.loads(schema.model_dump_json(by_alias=True, exclude_none=True))
    _add_request_bodies(generated)
    _leave_out_powertools_validation_errors(generated)
    return generated


def _add_request_bodies(document: dict[str, Any]) -> None:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name, model in sorted(REQUEST_BODIES.items()):
        schema = model.model_json_schema(
            by_alias=True, mode="validation", ref_template=COMPONENTS + "{model}"
        )
        schemas.update(schema.pop("$defs", {}))
        schemas[name] = schema


def _leave_out_powertools_validation_errors(document: dict[str, Any]) -> None:
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            answers = operation.get("responses", {})
            content = answers.get("422", {}).get("content", {})
            if any(c.get("schema", {}).get("$ref") == _POWERTOOLS_VALIDATION for c in content.values()):
                del answers["422"]
    schemas = document.get("components", {}).get("schemas", {})
    for name in _POWERTOOLS_SCHEMAS:  # each one only when nothing refers to it
        rest = {**document, "components": {**document["components"], "schemas": {**schemas}}}
        rest["components"]["schemas"].pop(name, None)
        if f'"{COMPONENTS}{name}"' not in json.dumps(rest):
            schemas.pop(name, None)


def rendered(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    target = Path(argv[0] if argv else "docs/openapi.json")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(rendered(document()), encoding="utf-8")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
