"""API Gateway REST proxy events for any route, as API Gateway sends them to the intake (IAM-signed caller
in ``requestContext.identity.userArn``), for tests of the HTTP API beyond the sample events."""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import parse_qsl

CALLER = "arn:aws:iam::123456789012:user/operator"


def api_event(
    method: str,
    path: str,
    body: Any = None,
    *,
    query: str = "",
    headers: dict[str, str] | None = None,
    caller: str | None = CALLER,
    raw_body: str | None = None,
) -> dict[str, Any]:
    text = raw_body if raw_body is not None else (None if body is None else json.dumps(body))
    all_headers = {
        "Content-Type": "application/json",
        "Host": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com",
    }
    all_headers.update(headers or {})
    pairs = parse_qsl(query, keep_blank_values=True)
    multi_query: dict[str, list[str]] = {}
    for name, value in pairs:
        multi_query.setdefault(name, []).append(value)
    request_id = str(uuid.uuid4())
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": all_headers,
        "multiValueHeaders": {k: [v] for k, v in all_headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": path,
            "httpMethod": method,
            "path": f"/v1{path}",
            "accountId": "123456789012",
            "stage": "v1",
            "requestId": request_id,
            "identity": {"userArn": caller, "caller": caller, "sourceIp": "203.0.113.10"},
        },
        "body": text,
        "isBase64Encoded": False,
    }


def answer(response: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
    headers = {k: v[-1] for k, v in (response.get("multiValueHeaders") or {}).items()}
    headers.update(response.get("headers") or {})
    return response["statusCode"], json.loads(response["body"]), headers
