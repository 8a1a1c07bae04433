"""Typed errors of the Atlas adapter.

Every error carries what a caller needs to decide what to do next (HTTP status, Atlas ``errorCode``,
``detail``, whether retrying can help, and how long Atlas asked us to wait) and nothing more: no header, no
token, no credential value ever reaches a message.
"""

from __future__ import annotations

import json
from typing import Any


class AtlasError(Exception):
    """Base class: any failure talking to Atlas."""

    default_retryable = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_code: str | None = None,
        detail: str | None = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.error_code = error_code
        self.detail = detail
        self.retryable = self.default_retryable if retryable is None else retryable
        self.retry_after = retry_after

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, error_code={self.error_code!r}, "
            f"retryable={self.retryable!r}, retry_after={self.retry_after!r}, message={self.message!r})"
        )


class AtlasBadRequest(AtlasError):
    """400: Atlas refused the request (e.g. ``CANNOT_USE_NON_FLEX_CLUSTER_IN_FLEX_API``)."""


class AtlasAuthError(AtlasError):
    """401/403: the credentials were refused or lack the role."""


class AtlasNotFound(AtlasError):
    """404: Atlas does not know the project, cluster, snapshot or restore job."""


class AtlasConflict(AtlasError):
    """409: the resource is in a state that forbids the operation."""


class AtlasRateLimited(AtlasError):
    """429: a rate-limit bucket is empty; ``retry_after`` says when to come back (if Atlas said)."""

    default_retryable = True


class AtlasUnavailable(AtlasError):
    """5xx, timeouts and connection errors: Atlas could not answer."""

    default_retryable = True


class AtlasBadResponse(AtlasError):
    """Atlas answered 2xx with a body that is not JSON or not the documented shape."""


class AtlasCredentialsError(AtlasError):
    """The credentials secret is missing or malformed. Names the secret id, never a value."""


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
