"""The intake's edges: each event is parsed once, here, into the domain's types, then flows down to the
one intake flow (domain/intake.py) and its answer is shaped on the way back.

- ``http``: API Gateway REST proxy events (the HTTP API); imported on the first API event only.
- ``eventbridge``: a CloudWatch alarm's state change (its recovery plan). Scheduled verification does not
  come here: a plan's schedule starts a verification run (statemachine/run.asl.json).
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger("flexrestore.triggers")


class UnknownEvent(RuntimeError):
    """An event the intake does not handle (raised to Lambda, so it is retried and then dead-lettered)."""


ALARM_STATE_CHANGE = "CloudWatch Alarm State Change"


def kind_of(event: Any) -> str:
    """``api``, ``alarm`` or ``unknown``."""
    if not isinstance(event, dict):
        return "unknown"
    if "httpMethod" in event and "requestContext" in event:
        return "api"
    detail_type = event.get("detail-type")
    return "alarm" if detail_type == ALARM_STATE_CHANGE else "unknown"


# API Gateway gives up on the caller after 29 s: an answer must be on its way well before.
API_ANSWER_SECONDS = 25.0


def dispatch(event: Any, context: Any) -> dict[str, Any]:
    """Parse once at the edge, then run the one intake flow; every Atlas call of the invocation draws from
    its remaining time (and, for the API, from API Gateway's 29 s)."""
    from flexrestore import bootstrap

    kind = kind_of(event)
    if kind == "api":
        from flexrestore.triggers.http import app

        with bootstrap.atlas_budget(context, cap_seconds=API_ANSWER_SECONDS):
            result: dict[str, Any] = app.resolve(event, context)
        return result
    if kind == "alarm":
        from flexrestore.triggers import eventbridge

        with bootstrap.atlas_budget(context):
            return eventbridge.handle(event, context)
    keys = sorted(event)[:10] if isinstance(event, dict) else type(event).__name__
    logger.error("intake received an event it does not handle", extra={"eventKeys": keys})
    raise UnknownEvent(f"intake does not handle this event (keys: {keys})")
