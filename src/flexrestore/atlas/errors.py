"""Atlas's answers turned into the domain's error types (flexrestore.domain.errors, re-exported here):
the HTTP status picks the class, the ``ApiError`` body gives ``errorCode`` and ``detail``."""

from __future__ import annotations

import json
from typing import Any

from flexrestore.domain.errors import (
    AtlasAuthError,
    AtlasBadRequest,
    AtlasBadResponse,
    AtlasConflict,
    AtlasCredentialsError,
    AtlasError,
    AtlasNotFound,
    AtlasRateLimited,
    AtlasUnavailable,
)

__all__ = [
    "AtlasAuthError",
    "AtlasBadRequest",
    "AtlasBadResponse",
    "AtlasConflict",
    "AtlasCredentialsError",
    "AtlasError",
    "AtlasNotFound",
    "AtlasRateLimited",
    "AtlasUnavailable",
    "error_class_for",
    "error_from_response",
    "parse_error_body",
]


_BY_STATUS: dict[int, type[AtlasError]] = {
    400: AtlasBadRequest,
    401: AtlasAuthError,
    403: AtlasAuthError,
    404: AtlasNotFound,
    409: AtlasConflict,
    429: AtlasRateLimited,
}


def error_class_for(status: int) -> type[AtlasError]:
    if status >= 500:
        return AtlasUnavailable
    return _BY_STATUS.get(status, AtlasError)


def parse_error_body(body: bytes) -> tuple[str | None, str | None]:
    """``(errorCode, detail)`` from an ``ApiError`` body; ``(None, None)`` if it is not one.

    Tolerates non-JSON bodies (proxies and load balancers answer with HTML) and the OAuth error shape
    ``{"error": "invalid_client", "error_description": "..."}`` of the token endpoint.
    """
    try:
        data: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None, None
    if not isinstance(data, dict):
        return None, None
    code = data.get("errorCode")
    if code is None and isinstance(data.get("error"), str):
        code = data["error"]
    detail = data.get("detail")
    if detail is None:
        detail = data.get("error_description")
    return (str(code) if code is not None else None, str(detail) if detail is not None else None)


def error_from_response(
    status: int,
    body: bytes,
    *,
    operation: str,
    retry_after: float | None = None,
) -> AtlasError:
    """Build the typed error for a non-2xx answer to ``operation`` (e.g. ``"GET /api/atlas/v2/..."``)."""
    error_code, detail = parse_error_body(body)
    cls = error_class_for(status)
    message = f"Atlas {operation} failed: HTTP {status}"
    if error_code:
        message += f" {error_code}"
    if detail:
        message += f": {detail}"
    elif error_code is None and body:
        message += f" (non-JSON body, {len(body)} bytes)"
    if retry_after is not None:
        message += f" (Retry-After {retry_after:g} s)"
    return cls(
        message,
        status=status,
        error_code=error_code,
        detail=detail,
        retryable=status == 429 or status >= 500,
        retry_after=retry_after,
    )
