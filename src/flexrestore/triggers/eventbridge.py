"""The intake's EventBridge trigger: a CloudWatch alarm state change runs the alarm's recovery plan when the
alarm changed into ALARM (domain/recovery.py). (Scheduled verification is a verification plan's own
EventBridge Scheduler schedule, which starts a run: domain/plan_catalog.py.)

The envelope is parsed with powertools' Parser model (``EventBridgeModel``), the detail into the domain's
types once, here; then the one intake flow runs, keyed on the envelope's ``id``. ``events/`` holds samples.

Nobody waits on the answer: a refusal (bad request, guard, busy target) is logged, counted, audited, told on
SNS and returned (a retry cannot help); a fault (Atlas down, misconfiguration, the same event in progress
elsewhere) raises :class:`IntakeFailed`, so Lambda's asynchronous retries run the event again and then its
on-failure destination keeps it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any, Final

from pydantic import ValidationError

from flexrestore import bootstrap
from flexrestore.domain import messages
from flexrestore.domain.intake import IntakeError, as_intake_error, idempotency_key
from flexrestore.domain.recovery import AlarmIgnored, decide_alarm
from flexrestore.domain.request import InvalidRequest, RestoreRequest, TriggeredRestore

logger = logging.getLogger("flexrestore.triggers")

MAX_EVENT_ID_CHARS: Final = 128
# CloudWatch alarm names are free text up to 255 characters; refuse only what would hide in logs.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")

KIND: Final = "alarm"


class IntakeFailed(RuntimeError):
    """Raised to Lambda for an EventBridge delivery that should be retried (never carries a secret)."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


# --- parsing, once, at the edge ------------------------------------------------------------------------


def _envelope(event: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The event id and ``detail`` from the EventBridge envelope; InvalidRequest names what is wrong."""
    from aws_lambda_powertools.utilities.parser import parse
    from aws_lambda_powertools.utilities.parser.models import EventBridgeModel

    event_id = event.get("id")
    if (
        not isinstance(event_id, str)
        or not 0 < len(event_id) <= MAX_EVENT_ID_CHARS
        or _UNPRINTABLE.search(event_id)
    ):
        raise InvalidRequest(
            "the event has no usable id",
            [
                {
                    "field": "id",
                    "message": f"must be the EventBridge event id (1 to {MAX_EVENT_ID_CHARS} characters)",
                }
            ],
        )
    try:
        envelope = parse(event=dict(event), model=EventBridgeModel)
    except ValidationError as exc:
        fields = sorted({str(error["loc"][0]) for error in exc.errors(include_input=False) if error["loc"]})
        raise InvalidRequest(
            "the event is not an EventBridge event",
            [
                {"field": name, "message": "is missing or not valid in the EventBridge envelope"}
                for name in fields
            ],
        ) from None
    detail = envelope.detail if isinstance(envelope.detail, dict) else None
    if detail is None:
        raise InvalidRequest(
            "the event carries no detail", [{"field": "detail", "message": "must be an object"}]
        )
    return event_id, detail


def parse_alarm(
    event: Mapping[str, Any], plans: dict[str, RestoreRequest]
) -> TriggeredRestore | AlarmIgnored:
    """The recovery plan an alarm state change starts, or why it starts nothing."""
    if not isinstance(event.get("detail"), dict):
        raise InvalidRequest("the alarm event has no detail", [{"field": "detail", "message": "is required"}])
    event_id, detail = _envelope(event)
    alarm = detail.get("alarmName")
    if not isinstance(alarm, str) or not 0 < len(alarm) <= 255 or _UNPRINTABLE.search(alarm):
        raise InvalidRequest(
            "the alarm event is not valid",
            [
                {
                    "field": "detail.alarmName",
                    "message": "must be an alarm name of 1 to 255 printable characters",
                }
            ],
        )
    return decide_alarm(
        alarm=alarm,
        state=_state_value(detail.get("state")),
        previous=_state_value(detail.get("previousState")),
        event_id=event_id,
        plans=plans,
    )


def _state_value(state: Any) -> str | None:
    value = state.get("value") if isinstance(state, dict) else None
    return value if isinstance(value, str) else None


# --- running what the event asks for -------------------------------------------------------------------


def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        decision = parse_alarm(event, bootstrap.checked_recovery_plans())
    except InvalidRequest as exc:
        return _invalid(event, exc)
    if isinstance(decision, AlarmIgnored):
        logger.info(decision.message, extra={"ignoredReason": decision.reason, "alarm": decision.alarm})
        bootstrap.metrics().count("AlarmIgnored", "reason", decision.reason)
        return {"status": "IGNORED", "reason": decision.reason, "message": decision.message}
    return _submit(event, context, decision, idempotency_key("event", str(event["id"])))


def _submit(event: Mapping[str, Any], context: Any, triggered: TriggeredRestore, key: str) -> dict[str, Any]:
    """The alarm's restore: a refusal is answered (and told), a fault raises IntakeFailed."""
    try:
        status, answer = bootstrap.intake(context).submit(triggered.request, triggered.requested_by, key)
        return {"statusCode": status, **answer}
    except InvalidRequest as exc:
        return _invalid(event, exc, triggered)
    except Exception as exc:
        error = exc if isinstance(exc, IntakeError) else as_intake_error(exc)
        if error is None:
            raise
        if error.refusal:
            logger.warning("alarm event refused: %s", error.message, extra={"errorCode": error.code})
            refused = {"statusCode": error.status, **error.body()}
            _tell_refused(event, triggered, refused)
            return refused
        if error.code == "REQUEST_IN_PROGRESS":
            # Another delivery of this event is being handled right now; a later retry gets its answer.
            logger.warning("the same alarm event is already being handled; failing this delivery for a retry")
            raise IntakeFailed(
                "this event is already being handled; retry later", status=409, code=error.code
            ) from None
        logger.error("alarm event failed, to be retried: %s", error.message, extra={"errorCode": error.code})
        raise IntakeFailed(
            f"{error.status} {error.code}: {error.message}", status=error.status, code=error.code
        ) from None


def _invalid(
    event: Mapping[str, Any], exc: InvalidRequest, triggered: TriggeredRestore | None = None
) -> dict[str, Any]:
    logger.error("alarm event refused: %s", exc.message, extra={"errors": exc.errors})
    bootstrap.metrics().count("RestoreRefused", "reason", "invalid-request")
    refused = {"statusCode": 400, "errorCode": "INVALID_REQUEST", **exc.body()}
    _tell_refused(event, triggered, refused)
    return refused


def _tell_refused(
    event: Mapping[str, Any], triggered: TriggeredRestore | None, refused: Mapping[str, Any]
) -> None:
    """Nobody waits on an alarm's answer: a refused one is told to people (SNS), so a recovery plan refused
    at 3 a.m. is not silent."""
    try:
        notifier = bootstrap.optional_notifier()
        if notifier is None:
            return
        raw_detail = event.get("detail")
        detail: Mapping[str, Any] = raw_detail if isinstance(raw_detail, dict) else {}
        who = triggered.requested_by.alarm if triggered else None
        who = who or str(detail.get("alarmName") or "unknown")[:64]
        route = (
            f"{triggered.request.cluster_name} -> {triggered.request.target_deployment_item_name}"
            if triggered
            else "invalid request"
        )
        notifier.publish(
            messages.refusal_subject(KIND, who, route),
            messages.refusal_body(
                kind=KIND,
                who=who,
                route=route,
                event_id=event.get("id"),
                status=refused.get("statusCode"),
                code=refused.get("errorCode"),
                message=refused.get("message"),
                errors=refused.get("errors") or (),
                request=triggered.request.to_wire() if triggered else None,
            ),
        )
    except Exception as exc:  # the refusal is logged, counted and audited already
        logger.error("could not notify the refusal: %s", type(exc).__name__)
