"""The verification run's steps after a source's restore (statemachine/run.asl.json; domain/run_steps.py):

- ``validate``: ``{"runId", "index"}`` -> the source's validation verdict (built-in checks, then the plan's
  validator, invoked from here within its timeoutSeconds);
- ``cleanup``: ``{"runId", "index"}`` -> what happened to the source's ephemeral cluster (deleted under the
  deletion guard; ``TargetStillDeleting`` while Atlas still has it, retried by the state machine).
"""

from __future__ import annotations

from typing import Any

from flexrestore import bootstrap
from flexrestore.logs import service_logger

logger = service_logger()

# The longest a cleanup step waits in-process for Atlas to no longer have a deleted cluster (30 to 47 s).
GONE_WAIT_SECONDS = 45.0


@logger.inject_lambda_context(correlation_id_path="runId")
def validate(event: dict[str, Any], context: Any) -> dict[str, Any]:
    with bootstrap.atlas_budget(context):
        result = bootstrap.run_validate_steps().validate(
            str(event["runId"]), int(event["index"]), budget_seconds=bootstrap.seconds_left(context)
        )
    return {"index": event["index"], "validation": result.status}


@logger.inject_lambda_context(correlation_id_path="runId")
def cleanup(event: dict[str, Any], context: Any) -> dict[str, Any]:
    wait = max(0.0, min(GONE_WAIT_SECONDS, bootstrap.seconds_left(context) - 5.0))
    with bootstrap.atlas_budget(context):
        what = bootstrap.run_cleanup_steps().cleanup(
            str(event["runId"]), int(event["index"]), wait_seconds=wait
        )
    logger.info("run source cleaned up", extra={"index": event["index"], "happened": what})
    return {"index": event["index"], "target": what}
