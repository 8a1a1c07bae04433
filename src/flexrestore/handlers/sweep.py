"""Sweep Lambda (scheduled every few minutes): deletes the ephemeral clusters of runs that have ended, or
whose retention has passed, under the deletion guard, and finishes runs whose execution ended before they
did (domain/sweeper.py). Returns what it did."""

from __future__ import annotations

from typing import Any

from flexrestore import bootstrap
from flexrestore.logs import service_logger

logger = service_logger()


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    with bootstrap.atlas_budget(context):
        report = bootstrap.sweeper().sweep(budget_seconds=bootstrap.seconds_left(context))
    return report.to_dict()
