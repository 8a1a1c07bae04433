"""The errors the domain's ports raise. Adapters translate what their outside system says into these
(the Atlas client turns HTTP statuses and transport failures into ``Atlas*``, the DynamoDB adapter turns
a busy lease into :class:`TargetBusy` and throttling into :class:`StoreUnavailable`), so the domain
decides on its own types only.

The state machine matches some of these by class name (``RestoreStillRunning``, ``AtlasUnavailable``,
``AtlasRateLimited``, ``AtlasBadResponse``): renaming one changes the ASL's retriers.
"""

from __future__ import annotations

from flexrestore.clock import from_epoch, isoformat


class AtlasError(Exception):
    """Any failure talking to Atlas. Carries what a caller needs to decide (HTTP status, Atlas
    ``errorCode``, ``detail``, whether retrying can help, how long Atlas asked us to wait) and nothing
    more: no header, token or credential value ever reaches a message."""

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

    def with_message(self, message: str) -> AtlasError:
        """The same error with another message (its public class: the ASL matches class names)."""
        return type(self)(
            message,
            status=self.status,
            error_code=self.error_code,
            detail=self.detail,
            retryable=self.retryable,
            retry_after=self.retry_after,
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


class RestoreStillRunning(Exception):
    """The Atlas job is not terminal yet: the Poll task's retrier waits, then looks again."""


class TargetBusy(Exception):
    """Another restore holds the target's lease: the request gets 409 naming that restore."""

    def __init__(self, running_restore_id: str, lock_id: str, expires_at: int | None) -> None:
        self.running_restore_id = running_restore_id
        self.lock_id = lock_id
        self.expires_at = expires_at
        until = isoformat(from_epoch(expires_at)) if expires_at is not None else "an unknown time"
        super().__init__(
            f"restore {running_restore_id} is already running into this target ({lock_id}); "
            f"its lock expires at {until}"
        )


class ServiceMisconfigured(Exception):
    """A setting or the credentials secret is missing or malformed. Names it, never a value."""


class DependencyUnavailable(Exception):
    """An AWS dependency (DynamoDB, Secrets Manager, Step Functions) is throttling or failing for now; a
    retry later is safe. ``code`` is the answer's errorCode, ``retry_after`` seconds to wait."""

    def __init__(self, code: str, message: str, *, retry_after: int = 5) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after


class RequestInProgress(Exception):
    """The same request (idempotency key) is being handled right now; a retry later gets its answer."""


class IdempotencyKeyReused(Exception):
    """An idempotency key came back with a different request."""


class PlanNotFound(LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no plan {name!r}")
        self.name = name


class PlanChanged(RuntimeError):
    """Another request saved or deleted the plan meanwhile; the caller may retry."""
