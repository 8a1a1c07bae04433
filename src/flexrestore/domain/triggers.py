"""The three ways a restore is asked for, turned into one restore request. Plain Python.

Event shapes (``events/`` holds a sample of each):

- **API Gateway REST proxy** (``httpMethod`` + ``requestContext``): the request is the JSON body; the caller
  is ``requestContext.identity.userArn`` (AWS_IAM auth).
- **Scheduled verification**: an EventBridge rule on a schedule, whose target's InputTransformer keeps the
  envelope of the "Scheduled Event" (so ``id`` and ``time`` stay the event's own) and puts the request in
  ``detail``::

      {"id": "<event id>", "detail-type": "Scheduled Event", "source": "aws.events", "time": "...",
       "resources": ["<rule arn>"],
       "detail": {"schedule": "<schedule name>", "request": {<restore request>}}}

  ``detail`` holds exactly those two keys. ``request`` is one restore request, or a list of 1 to
  :data:`MAX_SCHEDULED_RESTORES` of them (one schedule verifying several clusters): each element is
  validated on its own, so one bad element (named ``detail.request[<index>].<field>``) does not stop the
  others. The event ``id`` keys idempotency (with the element's index for a list): EventBridge and
  Lambda's asynchronous retries deliver the same id again.
- **Alarm-driven recovery**: EventBridge "CloudWatch Alarm State Change". Only a change *into* ``ALARM``
  acts; the request is the recovery plan of ``detail.alarmName`` in RECOVERY_PLANS (a JSON object
  ``{"<alarm name>": {<restore request>}, ...}``, validated with the same model at cold start).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from pydantic import ValidationError

from flexrestore.domain.request import InvalidRequest, RestoreRequest, describe_errors, parse_request

SCHEDULED_EVENT: Final = "Scheduled Event"
ALARM_STATE_CHANGE: Final = "CloudWatch Alarm State Change"
ALARM: Final = "ALARM"
MAX_EVENT_ID_CHARS: Final = 128
# Restores one scheduled event may ask for: they run one after another within one intake invocation.
MAX_SCHEDULED_RESTORES: Final = 10
# A schedule label: letters, digits, . - _ (template.yaml sends "<stack name>-verification").
_SCHEDULE_NAME = re.compile(r"[A-Za-z0-9._-]{1,160}")
# CloudWatch alarm names are free text up to 255 characters; refuse only what would hide in logs.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")

TriggerKind = Literal["api", "schedule", "alarm"]


@dataclass(frozen=True)
class RequestedBy:
    """Who asked: stored in the record as ``requestedBy`` (CONTRACTS.md, restore record)."""

    trigger: TriggerKind
    caller: str | None = None
    schedule: str | None = None
    alarm: str | None = None
    event_id: str | None = None

    def to_record(self) -> dict[str, str | None]:
        return {
            "trigger": self.trigger,
            "caller": self.caller,
            "schedule": self.schedule,
            "alarm": self.alarm,
            "eventId": self.event_id,
        }


@dataclass(frozen=True)
class TriggeredRestore:
    """A restore asked for by an EventBridge event (schedule or alarm)."""

    request: RestoreRequest
    requested_by: RequestedBy


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


@dataclass(frozen=True)
class AlarmIgnored:
    """An alarm event that creates nothing. ``reason`` is the ``AlarmIgnored`` metric's dimension."""

    reason: Literal["not-into-alarm", "no-plan"]
    message: str
    alarm: str | None


class RecoveryPlanError(ValueError):
    """RECOVERY_PLANS is broken; the message names the alarm and the field (raised at cold start)."""


def event_kind(event: Any) -> Literal["api", "schedule", "alarm", "unknown"]:
    if not isinstance(event, dict):
        return "unknown"
    if "httpMethod" in event and "requestContext" in event:
        return "api"
    detail_type = event.get("detail-type")
    if detail_type == SCHEDULED_EVENT:
        return "schedule"
    if detail_type == ALARM_STATE_CHANGE:
        return "alarm"
    return "unknown"


def parse_scheduled_event(event: Mapping[str, Any]) -> TriggeredRestore | ScheduledRestores:
    """The restore a schedule asks for, or (``detail.request`` a list) the restores.

    :class:`InvalidRequest` names ``detail.<field>`` when the event itself is wrong (then nothing runs); a
    bad element of a list is kept in :attr:`ScheduledRestores.elements` and the others still run.
    """
    event_id = _event_id(event)
    detail = event.get("detail")
    if not isinstance(detail, dict):
        raise InvalidRequest(
            "the scheduled event carries no restore request",
            [{"field": "detail", "message": 'must be an object {"schedule": <name>, "request": {...}}'}],
        )
    problems = []
    unknown = sorted(set(detail) - {"schedule", "request"})
    if unknown:
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
    requested_by = RequestedBy("schedule", schedule=str(schedule), event_id=event_id)
    if isinstance(raw, list):
        return ScheduledRestores(
            schedule=str(schedule),
            event_id=event_id,
            elements=tuple(
                _scheduled_element(element, f"detail.request[{index}]", requested_by)
                for index, element in enumerate(raw)
            ),
        )
    try:
        request = parse_request(raw)
    except InvalidRequest as exc:
        raise _prefixed(exc, "detail.request") from None
    return TriggeredRestore(request=request, requested_by=requested_by)


def _scheduled_element(raw: Any, prefix: str, requested_by: RequestedBy) -> TriggeredRestore | InvalidRequest:
    try:
        return TriggeredRestore(request=parse_request(raw), requested_by=requested_by)
    except InvalidRequest as exc:
        refused = _prefixed(exc, prefix)
        return InvalidRequest(f"{prefix}: {refused.message}", refused.errors)


def parse_alarm_event(
    event: Mapping[str, Any], plans: Mapping[str, RestoreRequest]
) -> TriggeredRestore | AlarmIgnored:
    """The recovery plan an alarm state change starts, or why it starts nothing."""
    event_id = _event_id(event)
    detail = event.get("detail")
    if not isinstance(detail, dict):
        raise InvalidRequest("the alarm event has no detail", [{"field": "detail", "message": "is required"}])
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
    state = _state_value(detail.get("state"))
    previous = _state_value(detail.get("previousState"))
    if state != ALARM or previous == ALARM:
        return AlarmIgnored(
            "not-into-alarm",
            f"alarm {alarm!r} changed from {previous or 'unknown'} to {state or 'unknown'}; "
            "only a change into ALARM starts a recovery",
            alarm,
        )
    plan = plans.get(alarm)
    if plan is None:
        return AlarmIgnored(
            "no-plan", f"alarm {alarm!r} went into ALARM but RECOVERY_PLANS has no plan for it", alarm
        )
    if not plan.reason:
        plan = plan.model_copy(update={"reason": f"recovery plan of CloudWatch alarm {alarm!r}"})
    return TriggeredRestore(request=plan, requested_by=RequestedBy("alarm", alarm=alarm, event_id=event_id))


def load_recovery_plans(text: str) -> dict[str, RestoreRequest]:
    """Parse RECOVERY_PLANS; :class:`RecoveryPlanError` names the alarm and every bad field."""
    try:
        data = json.loads(text or "{}")
    except json.JSONDecodeError as exc:
        raise RecoveryPlanError(
            f"RECOVERY_PLANS is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); "
            'expected {"<alarm name>": {<restore request>}, ...}'
        ) from None
    if not isinstance(data, dict):
        raise RecoveryPlanError('RECOVERY_PLANS must be a JSON object {"<alarm name>": {<restore request>}}')
    plans: dict[str, RestoreRequest] = {}
    for alarm, plan in data.items():
        if not isinstance(plan, dict):
            raise RecoveryPlanError(f"RECOVERY_PLANS: the plan of alarm {alarm!r} must be a JSON object")
        try:
            plans[alarm] = RestoreRequest.model_validate(plan)
        except ValidationError as exc:
            problems = "; ".join(f"{e['field']} {e['message']}" for e in describe_errors(exc).errors)
            raise RecoveryPlanError(
                f"RECOVERY_PLANS: the plan of alarm {alarm!r} is not valid: {problems}"
            ) from None
        if plans[alarm].dry_run:
            raise RecoveryPlanError(
                f"RECOVERY_PLANS: the plan of alarm {alarm!r} has dryRun: true; a recovery plan must restore"
            )
    return plans


def _event_id(event: Mapping[str, Any]) -> str:
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
    return event_id


def _state_value(state: Any) -> str | None:
    value = state.get("value") if isinstance(state, dict) else None
    return value if isinstance(value, str) else None


def _prefixed(exc: InvalidRequest, prefix: str) -> InvalidRequest:
    errors = [
        {"field": f"{prefix}.{e['field']}" if e["field"] != "body" else prefix, "message": e["message"]}
        for e in exc.errors
    ]
    return InvalidRequest(exc.message, errors)
