"""Alarm-driven recovery: the recovery plans (RECOVERY_PLANS, a JSON object ``{"<alarm name>": {<restore
request>}, ...}``, validated with the request model at cold start) and what an alarm's state change starts.
Only a change *into* ``ALARM`` acts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Final, Literal

from pydantic import ValidationError

from flexrestore.contracts import RequestedBy
from flexrestore.domain.request import RestoreRequest, TriggeredRestore, describe_errors

ALARM: Final = "ALARM"


class RecoveryPlanError(ValueError):
    """RECOVERY_PLANS is broken; the message names the alarm and the field (raised at cold start)."""


@dataclass(frozen=True)
class AlarmIgnored:
    """An alarm event that creates nothing. ``reason`` is the ``AlarmIgnored`` metric's dimension."""

    reason: Literal["not-into-alarm", "no-plan"]
    message: str
    alarm: str | None


def decide_alarm(
    *,
    alarm: str,
    state: str | None,
    previous: str | None,
    event_id: str,
    plans: dict[str, RestoreRequest],
) -> TriggeredRestore | AlarmIgnored:
    """The recovery plan an alarm state change starts, or why it starts nothing."""
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
    return TriggeredRestore(
        request=plan, requested_by=RequestedBy(trigger="alarm", alarm=alarm, event_id=event_id)
    )


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
