"""EventBridge Scheduler: one schedule per scheduled plan, in the stack's own schedule group, named after the
plan (plan names are valid schedule names), starting the run state machine with the plan's name. Scheduler
retries a start that fails and sends what it cannot deliver to the dead-letter queue.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from flexrestore.aws.clients import client
from flexrestore.aws.codec import error_code
from flexrestore.contracts import RequestedBy
from flexrestore.domain.errors import DependencyUnavailable, ServiceMisconfigured
from flexrestore.domain.plan_catalog import run_input

_TRANSIENT = frozenset({"ThrottlingException", "InternalServerException", "ServiceQuotaExceededException"})


class PlanSchedules:
    def __init__(
        self,
        group: str,
        run_state_machine_arn: str | None = None,
        role_arn: str | None = None,
        dead_letter_arn: str | None = None,
    ) -> None:
        self.group = group
        self.target_arn = run_state_machine_arn
        self.role_arn = role_arn
        self.dead_letter_arn = dead_letter_arn

    def put_schedule(self, plan_name: str, expression: str, timezone: str) -> str:
        """Create or update the plan's schedule; its name."""
        if not self.target_arn or not self.role_arn:
            raise ServiceMisconfigured(
                "RUN_STATE_MACHINE_ARN and SCHEDULER_ROLE_ARN are needed to schedule plans"
            )
        target: dict[str, Any] = {
            "Arn": self.target_arn,
            "RoleArn": self.role_arn,
            "Input": json.dumps(
                run_input(None, plan_name, RequestedBy(trigger="schedule", schedule=plan_name)),
                separators=(",", ":"),
            ),
            "RetryPolicy": {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 20},
        }
        if self.dead_letter_arn:
            target["DeadLetterConfig"] = {"Arn": self.dead_letter_arn}
        arguments: dict[str, Any] = {
            "Name": plan_name,
            "GroupName": self.group,
            "ScheduleExpression": expression,
            "ScheduleExpressionTimezone": timezone,
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "Target": target,
            "State": "ENABLED",
            "Description": f"flexrestore: runs the verification plan {plan_name}",
        }
        try:
            self._call(lambda: client("scheduler").update_schedule(**arguments), plan_name)
        except LookupError:
            self._call(lambda: client("scheduler").create_schedule(**arguments), plan_name)
        return plan_name

    def delete_schedule(self, plan_name: str) -> bool:
        """Delete the plan's schedule; False if there was none."""
        try:
            self._call(
                lambda: client("scheduler").delete_schedule(Name=plan_name, GroupName=self.group), plan_name
            )
        except LookupError:
            return False
        return True

    def scheduled_plans(self) -> list[str]:
        names: list[str] = []
        arguments: dict[str, Any] = {"GroupName": self.group}
        while True:
            answer = self._call(lambda: client("scheduler").list_schedules(**arguments), self.group)
            names += [str(s["Name"]) for s in answer.get("Schedules", [])]
            token = answer.get("NextToken")
            if not token:
                return names
            arguments["NextToken"] = token

    @staticmethod
    def _call(operation: Callable[[], Any], name: str) -> Any:
        try:
            return operation()
        except Exception as exc:
            code = error_code(exc)
            if code == "ResourceNotFoundException":
                raise LookupError(name) from None
            if code in _TRANSIENT:
                raise DependencyUnavailable(
                    "SCHEDULER_UNAVAILABLE", "EventBridge Scheduler is throttling or failing; retry later"
                ) from exc
            raise
