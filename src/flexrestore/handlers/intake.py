"""Intake Lambda: the HTTP API (``/restores``), scheduled verification and alarm-driven recovery.

Parsed once at the edge (flexrestore.triggers), then the one intake flow (domain/intake.py) over the
adapters bootstrap.py wires. Cold start checks RECOVERY_PLANS and the guard settings and fails the import
with a message naming the alarm and the field, so a broken plan is seen at deployment, not when its alarm
fires.
"""

from __future__ import annotations

from typing import Any

from flexrestore import bootstrap, tracing, triggers
from flexrestore.logs import service_logger

logger = service_logger()
bootstrap.checked_recovery_plans()  # fail fast on a broken RECOVERY_PLANS or target-safety setting


@tracing.traced
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    kind = triggers.kind_of(event)
    correlation = (event.get("requestContext") or {}).get("requestId") if kind == "api" else event.get("id")
    logger.set_correlation_id(correlation if isinstance(correlation, str) else None)
    with logger.append_context_keys(trigger=kind):
        return triggers.dispatch(event, context)
