"""Validators for local mode: stand-ins for the Lambda functions plans name in ``validation.lambdaArn``,
registered on the offline stack before a plan runs (flexrestore-local --plan, make demo).

``fleet-validator`` (examples/plans/ephemeral-fleet.json) answers as the sample validator of
examples/validator/ would, from a made-up count of documents per source: every source holds enough
documents except ``fleet-07``, whose ``orders`` collection comes back empty, so one source of the plan
fails validation and the run shows what that looks like.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

EMPTY_SOURCE = "fleet-07"
EXPECTED_ORDERS = 1000


def fleet_validator(event: dict[str, Any], context: Any) -> dict[str, Any]:
    cluster = str((event.get("source") or {}).get("clusterName") or "")
    found = 0 if cluster == EMPTY_SOURCE else 1200 + 37 * (sum(map(ord, cluster)) % 50)
    passed = found >= EXPECTED_ORDERS
    check = {
        "name": "shop.orders",
        "status": "PASSED" if passed else "FAILED",
        "message": f"{found} documents, expected at least {EXPECTED_ORDERS}",
    }
    return {
        "status": "SUCCEEDED" if passed else "FAILED",
        "message": f"shop.orders: {check['message']}",
        "checks": [check],
    }


# Function name (the last part of the plan's lambdaArn) -> its local stand-in.
LOCAL_VALIDATORS: dict[str, Callable[[dict[str, Any], Any], dict[str, Any]]] = {
    "fleet-validator": fleet_validator,
}


def register_for(stack: Any, plan: dict[str, Any]) -> str | None:
    """Register the plan's validator on ``stack`` when local mode has a stand-in for it; its name."""
    validation = plan.get("validation")
    arn = validation.get("lambdaArn") if isinstance(validation, dict) else None
    if not isinstance(arn, str):
        return None
    name = arn.rsplit(":function:", 1)[-1].split(":")[0]
    handler = LOCAL_VALIDATORS.get(name)
    if handler is None:
        return None
    timeout = validation.get("timeoutSeconds") if isinstance(validation, dict) else None
    stack.register_validator(name, handler, timeout_seconds=int(timeout or 60))
    return name
