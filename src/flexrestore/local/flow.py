"""Run one event through the offline stack and say what happened: :func:`run_flow` -> :class:`FlowResult`.

The event goes to the real intake handler; the poll loop is the real state-machine definition executed by
moto, whose Lambda tasks call the real handlers; Atlas is the local simulator (``scenario``) on a virtual
clock, or another Atlas (``atlas_url`` + ``secret``) on the real clock. Nothing here prints: callers watch
through the ``answered`` and ``progress`` callbacks and render the result (``local/view.py``, or
:meth:`FlowResult.to_json` for ``flexrestore-local --json``).

Only :class:`~flexrestore.local.harness.OfflineStack`'s public methods are used.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

# The keys of FlowResult.to_json(), in order (flexrestore-local --json prints exactly these).
RESULT_KEYS = (
    "trigger",
    "http_status",
    "response",
    "restore_id",
    "restore_job_id",
    "final_status",
    "record",
    "notifications",
    "events",
    "atlas_calls",
    "state_transitions",
    "virtual_seconds",
)
FINAL_STATUSES = ("COMPLETED", "FAILED", "TIMED_OUT", "ERROR", "REFUSED")

# The recovery plan of the sample alarm (events/alarm-into-alarm.json), unless RECOVERY_PLANS is set.
DEMO_RECOVERY_PLANS = {
    "orders-prod-data-loss": {
        "groupId": "65f1a2b3c4d5e6f708192a3b",
        "clusterName": "orders-prod",
        "snapshotId": "latest",
        "targetDeploymentItemName": "orders-dr",
        "reason": "orders-prod lost documents: restore the latest snapshot into orders-dr",
    }
}

# How long (real time) one look at a running poll loop waits before progress is reported again.
PROGRESS_INTERVAL_SECONDS = 0.2


@dataclass(frozen=True)
class Progress:
    """What the live line shows while the poll loop runs."""

    elapsed_seconds: float
    status: str | None
    atlas_calls: int


@dataclass(frozen=True)
class IntakeAnswer:
    """The intake's answer, as soon as it has answered (before the poll loop runs)."""

    trigger: str
    http_status: int | None
    response: Any  # an API answer as {"statusCode", "headers", "multiValueHeaders", "body"}; else as returned
    restore_id: str | None
    restore_job_id: str | None


@dataclass(frozen=True)
class FlowResult:
    """How one event went through the service. Its JSON-like parts are plain (JSON-safe) lists and dicts.

    ``final_status`` is one of :data:`FINAL_STATUSES` (REFUSED: nothing was created).
    """

    trigger: str
    http_status: int | None
    response: Any
    restore_id: str | None
    restore_job_id: Any
    final_status: str
    record: dict[str, Any] | None
    notifications: list[dict[str, Any]]
    events: list[dict[str, Any]]
    atlas_calls: list[dict[str, Any]]
    state_transitions: int | None
    virtual_seconds: float

    @property
    def location(self) -> str | None:
        """The ``Location`` header of an API answer (``POST /restores`` → 202), if any."""
        response = self.response if isinstance(self.response, dict) else {}
        values = (response.get("multiValueHeaders") or {}).get("Location")
        if values:
            return str(values[-1])
        value = (response.get("headers") or {}).get("Location")
        return str(value) if value is not None else None

    def to_json(self) -> dict[str, Any]:
        """The object ``flexrestore-local --json`` prints: :data:`RESULT_KEYS` in order."""
        return dict(_json_safe({key: getattr(self, key) for key in RESULT_KEYS}))


ProgressCallback = Callable[[Progress], None]
AnswerCallback = Callable[[IntakeAnswer], None]


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _handler_answer(trigger: str, response: Any) -> tuple[int | None, Any, dict[str, Any]]:
    """(HTTP status for API events, the answer shown, the answer's body as a dict)."""
    if trigger == "api" and isinstance(response, dict):
        body: Any = response.get("body")
        with contextlib.suppress(TypeError, ValueError):
            body = json.loads(body)
        status = response.get("statusCode")
        shown = {
            "statusCode": status,
            "headers": dict(response.get("headers") or {}),
            # API Gateway's REST proxy answers carry their headers here (Location among them).
            "multiValueHeaders": {
                str(name): list(values) if isinstance(values, list | tuple) else [values]
                for name, values in (response.get("multiValueHeaders") or {}).items()
            },
            "body": body,
        }
        return (
            (int(status) if isinstance(status, int) else None),
            shown,
            body if isinstance(body, dict) else {},
        )
    answer = response if isinstance(response, dict) else {}
    return None, response, answer


def run_flow(
    event: dict[str, Any],
    *,
    scenario: str = "ok",
    atlas_url: str | None = None,
    secret: dict[str, str] | None = None,
    progress: ProgressCallback | None = None,
    answered: AnswerCallback | None = None,
    first: Sequence[dict[str, Any]] = (),
) -> FlowResult:
    """Run ``event`` through the offline stack.

    ``answered`` sees the intake's answer before the poll loop runs; ``progress`` is called a few times a
    second (real time) while it runs. ``first``: events run to their end on the same stack beforehand (e.g.
    the POST whose restore a GET reads); the result covers ``event`` only.
    """
    from flexrestore.clock import Clock, SystemClock, VirtualClock
    from flexrestore.local.harness import OfflineStack
    from flexrestore.triggers import kind_of as event_kind

    clock: Clock = SystemClock() if atlas_url else VirtualClock()
    overrides = {} if "RECOVERY_PLANS" in os.environ else {"RECOVERY_PLANS": json.dumps(DEMO_RECOVERY_PLANS)}
    trigger = event_kind(event)

    with OfflineStack(
        scenario=scenario, clock=clock, env_overrides=overrides, atlas_url=atlas_url, secret=secret
    ) as stack:
        for earlier in first:
            with contextlib.suppress(Exception):  # its answer is not part of this result
                stack.invoke("intake", earlier)
            for arn in stack.executions():
                stack.wait_for_execution(arn)
        earlier_executions = set(stack.executions())
        earlier_calls = len(stack.atlas_calls())
        earlier_notifications, earlier_events = len(stack.notifications()), len(stack.events())
        start = clock.now()
        try:
            response: Any = stack.invoke("intake", event)
        except Exception as exc:  # the handler failed: Lambda would retry, then dead-letter it
            response = {"error": type(exc).__name__, "message": str(exc)}
        http_status, shown, answer = _handler_answer(trigger, response)
        shown = _json_safe(shown)
        restore_id = answer.get("restoreId") if isinstance(answer.get("restoreId"), str) else None
        restore_job_id = _json_safe(answer.get("restoreJobId"))
        if answered is not None:
            answered(IntakeAnswer(trigger, http_status, shown, restore_id, restore_job_id))

        executions = [arn for arn in stack.executions() if arn not in earlier_executions]
        for arn in executions:
            while stack.poll_execution(arn, timeout_s=PROGRESS_INTERVAL_SECONDS) is None:
                if progress is not None:  # still running: show where it is
                    current = stack.record(restore_id) if restore_id else None
                    progress(
                        Progress(
                            elapsed_seconds=clock.now() - start,
                            status=(current or {}).get("status"),
                            atlas_calls=len(stack.atlas_calls()) - earlier_calls,
                        )
                    )

        record = stack.record(restore_id) if restore_id else None
        if record is None:
            final_status = "REFUSED"  # nothing was created
        else:
            restore_job_id = record.get("restoreJobId", restore_job_id)
            final_status = str(record.get("finalStatus") or "ERROR")
        if progress is not None and executions:
            calls = len(stack.atlas_calls()) - earlier_calls
            progress(Progress(clock.now() - start, (record or {}).get("status"), calls))
        return FlowResult(
            trigger=trigger,
            http_status=http_status,
            response=shown,
            restore_id=restore_id,
            restore_job_id=_json_safe(restore_job_id),
            final_status=final_status,
            record=_json_safe(record),
            notifications=_json_safe(stack.notifications()[earlier_notifications:]),
            events=_json_safe(stack.events()[earlier_events:]),
            atlas_calls=[
                {"method": c["method"], "path": c["path"], "status": c["status"]}
                for c in stack.atlas_calls()[earlier_calls:]
            ],
            state_transitions=sum(stack.state_transitions(arn) for arn in executions) if executions else None,
            virtual_seconds=round(clock.now() - start, 3),
        )
