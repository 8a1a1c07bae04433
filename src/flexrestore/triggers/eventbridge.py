"""EventBridge triggers of the intake: a verification schedule and a CloudWatch alarm state change.

The envelope is parsed with powertools' Parser model (``EventBridgeModel``), the detail into the domain's
types once, here; then the one intake flow runs. Shapes (``events/`` holds a sample of each):

- "Scheduled Event": ``detail`` is exactly ``{"schedule": "<name>", "request": <restore request or a list of
  1 to 10>}``; the envelope's ``id`` keys idempotency (with the element's index for a list).
- "CloudWatch Alarm State Change": the recovery plan of ``detail.alarmName`` runs when the alarm changed
  into ALARM (domain/recovery.py).

Nobody waits on these answers: a refusal (bad request, guard, busy target) is logged, counted, audited,
told on SNS and returned (a retry cannot help); a fault (Atlas down, misconfiguration, the same event in
progress elsewhere) raises :class:`IntakeFailed`, so Lambda's asynchronous retries run the event again
and then its on-failure destination keeps it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from pydantic import ValidationError

from flexrestore import bootstrap
from flexrestore.contracts import RequestedBy
from flexrestore.domain import messages
from flexrestore.domain.intake import IntakeError, as_intake_error, idempotency_key
from flexrestore.domain.recovery import AlarmIgnored, decide_alarm
from flexrestore.domain.request import InvalidRequest, RestoreRequest, TriggeredRestore, parse_request

logger = logging.getLogger("flexrestore.triggers")

MAX_EVENT_ID_CHARS: Final = 128
# Restores one scheduled event may ask for: they run one after another within one intake invocation.
MAX_SCHEDULED_RESTORES: Final = 10
# A scheduled list's next restore starts only with this much of the invocation left (one takes ~1 s
# when Atlas is well); the rest is left to the event's retry rather than cut off by the timeout.
MIN_MS_PER_SCHEDULED_RESTORE = 5000
# A schedule label: letters, digits, . - _ (template.yaml sends "<stack name>-verification").
_SCHEDULE_NAME = re.compile(r"[A-Za-z0-9._-]{1,160}")
# CloudWatch alarm names are free text up to 255 characters; refuse only what would hide in logs.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")

EventKind = Literal["schedule", "alarm"]


class IntakeFailed(RuntimeError):
    """Raised to Lambda for an EventBridge delivery that should be retried (never carries a secret)."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True)
class ScheduledRestores:
    """A scheduled event whose ``detail.request`` is a list: each element in order, either the restore it
    asks for or why it is refused (an :class:`InvalidRequest` naming ``detail.request[<index>].<field>``)."""

    schedule: str
    event_id: str
    elements: tuple[TriggeredRestore | InvalidRequest, ...]

    @property
    def valid(self) -> list[tuple[int, TriggeredRestore]]:
        return [(i, e) for i, e in enumerate(self.elements) if isinstance(e, TriggeredRestore)]


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


def parse_schedule(event: Mapping[str, Any]) -> TriggeredRestore | ScheduledRestores:
    """The restore a schedule asks for, or (``detail.request`` a list) the restores.

    :class:`InvalidRequest` names ``detail.<field>`` when the event itself is wrong (then nothing runs); a
    bad element of a list is kept in :attr:`ScheduledRestores.elements` and the others still run.
    """
    if not isinstance(event.get("detail"), dict):
        raise InvalidRequest(
            "the scheduled event carries no restore request",
            [{"field": "detail", "message": 'must be an object {"schedule": <name>, "request": {...}}'}],
        )
    event_id, detail = _envelope(event)
    problems = []
    if set(detail) - {"schedule", "request"}:
        problems.append(
            {"field": "detail", "message": "has unknown keys; only schedule and request are allowed"}
        )
    schedule = detail.get("schedule")
    if not isinstance(schedule, str) or not _SCHEDULE_NAME.fullmatch(schedule):
        problems.append(
            {
                "field": "detail.schedule",
                "message": "must be the schedule's name: 1 to 160 letters, digits, '.', '-' or '_'",
            }
        )
    raw = detail.get("request")
    if isinstance(raw, list) and not 1 <= len(raw) <= MAX_SCHEDULED_RESTORES:
        problems.append(
            {
                "field": "detail.request",
                "message": "must be a restore request (JSON object) or a list of 1 to "
                f"{MAX_SCHEDULED_RESTORES} of them (got a list of {len(raw)})",
            }
        )
    if problems:
        raise InvalidRequest("the scheduled event is not valid", problems)
    requested_by = RequestedBy(trigger="schedule", schedule=str(schedule), event_id=event_id)
    if isinstance(raw, list):
        return ScheduledRestores(
            schedule=str(schedule),
            event_id=event_id,
            elements=tuple(
                _element(element, f"detail.request[{index}]", requested_by)
                for index, element in enumerate(raw)
            ),
        )
    try:
        return TriggeredRestore(request=parse_request(raw), requested_by=requested_by)
    except InvalidRequest as exc:
        raise exc.prefixed("detail.request") from None


def _element(raw: Any, prefix: str, requested_by: RequestedBy) -> TriggeredRestore | InvalidRequest:
    try:
        return TriggeredRestore(request=parse_request(raw), requested_by=requested_by)
    except InvalidRequest as exc:
        refused = exc.prefixed(prefix)
        return InvalidRequest(f"{prefix}: {refused.message}", refused.errors)


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


def handle(event: dict[str, Any], context: Any, kind: EventKind) -> dict[str, Any]:
    try:
        if kind == "schedule":
            parsed = parse_schedule(event)
            if isinstance(parsed, ScheduledRestores):
                return _scheduled_list(event, context, parsed)
            triggered: TriggeredRestore = parsed
        else:
            decision = parse_alarm(event, bootstrap.checked_recovery_plans())
            if isinstance(decision, AlarmIgnored):
                logger.info(
                    decision.message, extra={"ignoredReason": decision.reason, "alarm": decision.alarm}
                )
                bootstrap.metrics().count("AlarmIgnored", "reason", decision.reason)
                return {"status": "IGNORED", "reason": decision.reason, "message": decision.message}
            triggered = decision
    except InvalidRequest as exc:
        return _invalid(kind, event, exc)
    return _submit(kind, event, context, triggered, idempotency_key("event", str(event["id"])))


def _submit(
    kind: EventKind, event: Mapping[str, Any], context: Any, triggered: TriggeredRestore, key: str
) -> dict[str, Any]:
    """One restore of a schedule or alarm: a refusal is answered (and told), a fault raises IntakeFailed."""
    try:
        status, answer = bootstrap.intake(context).submit(triggered.request, triggered.requested_by, key)
        return {"statusCode": status, **answer}
    except InvalidRequest as exc:
        return _invalid(kind, event, exc, triggered)
    except Exception as exc:
        error = exc if isinstance(exc, IntakeError) else as_intake_error(exc)
        if error is None:
            raise
        if error.refusal:
            logger.warning("%s event refused: %s", kind, error.message, extra={"errorCode": error.code})
            refused = {"statusCode": error.status, **error.body()}
            _tell_refused(kind, event, triggered, refused)
            return refused
        if error.code == "REQUEST_IN_PROGRESS":
            # Another delivery of this event is being handled right now; a later retry gets its answer.
            logger.warning(
                "the same %s event is already being handled; failing this delivery for a retry", kind
            )
            raise IntakeFailed(
                "this event is already being handled; retry later", status=409, code=error.code
            ) from None
        logger.error(
            "%s event failed, to be retried: %s", kind, error.message, extra={"errorCode": error.code}
        )
        raise IntakeFailed(
            f"{error.status} {error.code}: {error.message}", status=error.status, code=error.code
        ) from None


def _invalid(
    kind: EventKind, event: Mapping[str, Any], exc: InvalidRequest, triggered: TriggeredRestore | None = None
) -> dict[str, Any]:
    logger.error("%s event refused: %s", kind, exc.message, extra={"errors": exc.errors})
    bootstrap.metrics().count("RestoreRefused", "reason", "invalid-request")
    refused = {"statusCode": 400, "errorCode": "INVALID_REQUEST", **exc.body()}
    _tell_refused(kind, event, triggered, refused)
    return refused


def _scheduled_list(event: Mapping[str, Any], context: Any, scheduled: ScheduledRestores) -> dict[str, Any]:
    """A schedule asking for several restores: each element runs the one intake flow on its own, keyed on
    the event id and its index, so a redelivered event creates nothing new and two elements never share a
    restore. A refused element is answered and told like a single refused request; a fault on one element
    does not stop the others: all run, then the event raises for Lambda's retry, where the elements
    already done replay their stored answers."""
    outcomes: list[dict[str, Any]] = []
    faults: list[str] = []
    for index, element in enumerate(scheduled.elements):
        if isinstance(element, InvalidRequest):
            outcome = _invalid("schedule", event, element)
        elif index and _time_left_ms(context) < MIN_MS_PER_SCHEDULED_RESTORE:
            # Better left to the retry than cut off by the function's timeout halfway through.
            logger.warning("too little time left for restore %s of this event; left to the retry", index)
            outcome = {"statusCode": 503, "errorCode": "DEFERRED", "message": "left to the event's retry"}
            faults.append(f"request[{index}]: deferred (too little time left)")
        else:
            key = idempotency_key("event", scheduled.event_id, f"request[{index}]")
            try:
                outcome = _submit("schedule", event, context, element, key)
            except IntakeFailed as exc:
                outcome = {"statusCode": exc.status, "errorCode": exc.code, "message": str(exc)}
                faults.append(f"request[{index}]: {exc}")
            except Exception as exc:  # one element's surprise must not lose the others
                logger.exception("restore %s of the scheduled event failed", index)
                outcome = {"statusCode": 500, "errorCode": "INTERNAL_ERROR", "message": type(exc).__name__}
                faults.append(f"request[{index}]: {type(exc).__name__}")
        outcomes.append({"index": index, **outcome})
    answer = {"schedule": scheduled.schedule, "eventId": scheduled.event_id, "restores": outcomes}
    if faults:
        logger.error(
            "%s of %s restores of the scheduled event hit a fault; the event is failed for a retry",
            len(faults),
            len(outcomes),
            extra={"restores": outcomes},
        )
        raise IntakeFailed(
            f"{len(faults)} of {len(outcomes)} restores of this event failed, to be retried with the event "
            f"(the others keep their answers): {'; '.join(faults)}"
        )
    return answer


def _time_left_ms(context: Any) -> int:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return int(remaining()) if callable(remaining) else MIN_MS_PER_SCHEDULED_RESTORE


def _tell_refused(
    kind: EventKind, event: Mapping[str, Any], triggered: TriggeredRestore | None, refused: Mapping[str, Any]
) -> None:
    """Nobody waits on a schedule's or an alarm's answer: a refused one is told to people (SNS), so a
    recovery plan refused at 3 a.m. or a verification that stopped running is not silent."""
    try:
        notifier = bootstrap.optional_notifier()
        if notifier is None:
            return
        raw_detail = event.get("detail")
        detail: Mapping[str, Any] = raw_detail if isinstance(raw_detail, dict) else {}
        who = (triggered.requested_by.schedule or triggered.requested_by.alarm) if triggered else None
        who = who or str(detail.get("schedule") or detail.get("alarmName") or "unknown")[:64]
        route = (
            f"{triggered.request.cluster_name} -> {triggered.request.target_deployment_item_name}"
            if triggered
            else "invalid request"
        )
        notifier.publish(
            messages.refusal_subject(kind, who, route),
            messages.refusal_body(
                kind=kind,
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
