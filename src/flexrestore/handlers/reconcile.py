"""Reconcile Lambda (scheduled): starts the executions the intake could not start, ends as ERROR those that
could not be started before their deadline or whose execution ended unrecorded, frees target leases left by
restores that ended or were never recorded (domain/reconcile.py), and brings the plans' schedules in line with
the plans (domain/plan_catalog.py)."""

from __future__ import annotations

from typing import Any

from flexrestore import bootstrap
from flexrestore.logs import service_logger

logger = service_logger()


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    report: dict[str, Any] = bootstrap.reconciler().run().to_dict()
    report.update(bootstrap.plan_catalog().sync_schedules())
    return report
