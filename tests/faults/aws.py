"""AWS faults at the boto3 level, per Lambda function: "the next 2 DynamoDB calls the record function makes
are throttled", "StartExecution fails for 10 minutes", "the create function's write hangs".

Every boto3 call goes through ``BaseClient._make_api_call`` after the SDK's own retries are set up; while
:class:`AwsFaults` is active, a call that matches an armed :class:`AwsFault` raises the error the SDK would
raise once its retries are spent (the client's own exception class for that code), or hangs: it waits on
the process clock until the Lambda invocation it runs in times out. Calls are attributed to a function by
:func:`running_as`, which the fault world wraps around every handler; calls made outside a handler (the
test reading a record, moto's state machine) are never struck.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from flexrestore import clock

_running_as: ContextVar[str | None] = ContextVar("running_as", default=None)
HANG_SECONDS = 3600.0  # longer than any function's timeout: the invocation ends first


class Crash(BaseException):
    """The process dies here (not an Exception: nothing gets to clean up, and nothing redelivers)."""


@contextmanager
def running_as(function: str) -> Iterator[None]:
    """The current thread runs the Lambda function ``function`` (short name) for the block."""
    token = _running_as.set(function)
    try:
        yield
    finally:
        _running_as.reset(token)


@dataclass
class AwsFault:
    """Calls of ``service``.``operation`` made by ``function`` fail with ``code`` (or hang).

    ``count`` calls in a row after ``skip`` good ones, or every call for ``seconds`` on the clock from when
    the fault is armed; ``only`` narrows it down by the call's parameters (one table, the lock item ...).
    """

    service: str  # boto3 service name: dynamodb, stepfunctions, sns, events, secretsmanager
    operation: str  # API operation (PutItem, StartExecution, Publish ...), or "*" for any
    function: str  # short name of the Lambda function (intake, create, poll, record, notify, reconcile)
    code: str = "ThrottlingException"
    count: int | None = 1
    seconds: float | None = None
    skip: int = 0
    hang: bool = False
    crash: bool = False  # the process dies at this call (before it is made)
    only: Callable[[dict[str, Any]], bool] | None = None
    until: float | None = field(default=None, init=False)
    struck: int = field(default=0, init=False)

    def matches(self, service: str, operation: str, function: str | None, params: dict[str, Any]) -> bool:
        return (
            self.service == service
            and self.operation in ("*", operation)
            and self.function == function
            and (self.only is None or self.only(params))
        )


class AwsFaults:
    """The armed faults; a context manager that patches botocore while open."""

    def __init__(self) -> None:
        self.faults: list[AwsFault] = []
        self.log: list[tuple[str, str, str, str]] = []  # (function, service, operation, what happened)
        self._lock = threading.Lock()

    def arm(self, fault: AwsFault) -> AwsFault:
        if fault.seconds is not None:
            fault.until = clock.seconds() + fault.seconds
            fault.count = None
        self.faults.append(fault)
        return fault

    def _strike(self, service: str, operation: str, params: dict[str, Any]) -> AwsFault | None:
        function = _running_as.get()
        if function is None:
            return None
        now = clock.seconds()
        with self._lock:
            for fault in self.faults:
                if not fault.matches(service, operation, function, params):
                    continue
                if fault.until is not None and now >= fault.until:
                    continue
                if fault.count is not None and fault.struck >= fault.count:
                    continue
                if fault.skip > 0:
                    fault.skip -= 1
                    continue
                fault.struck += 1
                what = "crashes" if fault.crash else "hangs" if fault.hang else fault.code
                self.log.append((function, service, operation, what))
                return fault
        return None

    def __enter__(self) -> AwsFaults:
        from botocore.client import BaseClient

        original = BaseClient._make_api_call
        faults = self

        def make_api_call(client: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
            service = client.meta.service_model.service_name
            fault = faults._strike(service, operation_name, api_params)
            if fault is not None:
                if fault.crash:
                    raise Crash(f"{service} {operation_name}")
                if fault.hang:
                    clock.sleep(HANG_SECONDS)  # the invocation's timeout stops it (local/conductor.py)
                error = {"Error": {"Code": fault.code, "Message": f"injected: {fault.code}"}}
                response = {**error, "ResponseMetadata": {"HTTPStatusCode": 400}}
                raise client.exceptions.from_code(fault.code)(response, operation_name)
            return original(client, operation_name, api_params)

        self._restore = (BaseClient, original)
        BaseClient._make_api_call = make_api_call  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc_info: object) -> None:
        owner, original = self._restore
        owner._make_api_call = original  # type: ignore[method-assign]


# --- narrowing a fault down to one kind of call -----------------------------------------------------------


def table(name: str) -> Callable[[dict[str, Any]], bool]:
    """Calls on that DynamoDB table."""
    return lambda params: params.get("TableName") == name


def item_kind(kind: str) -> Callable[[dict[str, Any]], bool]:
    """A PutItem of an item of that kind (``restore``, ``lock``)."""
    return lambda params: (params.get("Item") or {}).get("kind", {}).get("S") == kind
