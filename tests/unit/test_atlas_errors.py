"""Atlas error answers become typed errors carrying status, errorCode, detail and retryability."""

from __future__ import annotations

import json

import pytest

from flexrestore.atlas.errors import (
    AtlasAuthError,
    AtlasBadRequest,
    AtlasConflict,
    AtlasError,
    AtlasNotFound,
    AtlasRateLimited,
    AtlasUnavailable,
    error_from_response,
)

OP = "GET /api/atlas/v2/groups/65f1a2b3c4d5e6f708192a3b/flexClusters/orders-prod"


def api_error(status: int, code: str, detail: str | None = "something happened") -> bytes:
    return json.dumps(
        {"error": status, "errorCode": code, "detail": detail, "reason": "Reason", "parameters": []}
    ).encode()


@pytest.mark.parametrize(
    ("status", "cls", "retryable"),
    [
        (400, AtlasBadRequest, False),
        (401, AtlasAuthError, False),
        (403, AtlasAuthError, False),
        (404, AtlasNotFound, False),
        (409, AtlasConflict, False),
        (410, AtlasError, False),
        (429, AtlasRateLimited, True),
        (500, AtlasUnavailable, True),
        (503, AtlasUnavailable, True),
    ],
)
def test_status_maps_to_a_typed_error(status: int, cls: type[AtlasError], retryable: bool) -> None:
    error = error_from_response(status, api_error(status, "SOME_CODE"), operation=OP)
    assert type(error) is cls
    assert error.status == status
    assert error.error_code == "SOME_CODE"
    assert error.detail == "something happened"
    assert error.retryable is retryable
    assert f"HTTP {status} SOME_CODE: something happened" in str(error)
    assert OP in str(error)


def test_non_flex_cluster_error_code_is_kept() -> None:
    error = error_from_response(
        400,
        api_error(
            400,
            "CANNOT_USE_NON_FLEX_CLUSTER_IN_FLEX_API",
            "Flex API cannot be used with a dedicated cluster.",
        ),
        operation=OP,
    )
    assert isinstance(error, AtlasBadRequest)
    assert error.error_code == "CANNOT_USE_NON_FLEX_CLUSTER_IN_FLEX_API"


def test_rate_limited_carries_retry_after() -> None:
    error = error_from_response(
        429, api_error(429, "RATE_LIMITED_TOKEN_BUCKET"), operation=OP, retry_after=7.0
    )
    assert isinstance(error, AtlasRateLimited)
    assert error.retry_after == 7.0
    assert "Retry-After 7 s" in str(error)


@pytest.mark.parametrize(
    "body", [b"<html><body>502 Bad Gateway</body></html>", b"", b"\xff\xfe\x00", b"[1, 2]", b"null"]
)
def test_non_json_error_bodies_are_tolerated(body: bytes) -> None:
    error = error_from_response(502, body, operation=OP)
    assert isinstance(error, AtlasUnavailable)
    assert error.error_code is None
    assert error.detail is None
    assert "HTTP 502" in str(error)
    assert "<html>" not in str(error)


def test_null_detail_is_tolerated() -> None:
    error = error_from_response(404, api_error(404, "CLUSTER_NOT_FOUND", None), operation=OP)
    assert error.detail is None
    assert str(error).endswith("HTTP 404 CLUSTER_NOT_FOUND")


def test_oauth_error_shape_is_understood() -> None:
    body = json.dumps({"error": "invalid_client", "error_description": "Invalid client credentials"}).encode()
    error = error_from_response(401, body, operation="POST /api/oauth/token")
    assert error.error_code == "invalid_client"
    assert error.detail == "Invalid client credentials"
