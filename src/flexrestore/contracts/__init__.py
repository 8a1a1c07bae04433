"""The shapes other parts rely on: the restore record, the execution input of the poll loop, the refusal
audit record. Pydantic models, used by every writer and reader; their JSON Schemas are generated into
``docs/schemas/`` (a test fails when they drift). ``docs/contracts.md`` explains each one."""

from flexrestore.contracts.execution import ExecutionInput, InvalidExecutionInput
from flexrestore.contracts.record import (
    FINAL_STATUSES,
    BreakGlass,
    Delivery,
    ErrorInfo,
    Notification,
    RefusalRecord,
    RequestedBy,
    RestoreRecord,
    RunLink,
    TimelineEntry,
)

__all__ = [
    "FINAL_STATUSES",
    "BreakGlass",
    "Delivery",
    "ErrorInfo",
    "ExecutionInput",
    "InvalidExecutionInput",
    "Notification",
    "RefusalRecord",
    "RequestedBy",
    "RestoreRecord",
    "RunLink",
    "TimelineEntry",
]
