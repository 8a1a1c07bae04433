"""Record Lambda: writes the final restore record (idempotent), frees the target, emits the metrics.

Event (the state machine's Record step): ``{"input": <state: execution input + poll.observation>,
"executionArn": ...}``. Returns the final record, which the Notify step sends.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from flexrestore import clock
from flexrestore.domain import outcome

logger = Logger()
metrics = Metrics()

_STATUS_METRICS = {
    outcome.COMPLETED: "RestoreCompleted",
    outcome.FAILED: "RestoreFailed",
    outcome.TIMED_OUT: "RestoreTimedOut",
    outcome.ERROR: "RestoreError",
}


@metrics.log_metrics
@logger.inject_lambda_context(correlation_id_path="input.restoreId")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from flexrestore.aws.outcomes import RestoreOutcomes
    from flexrestore.settings import get_settings

    state = event.get("input") if isinstance(event, dict) else None
    state = state if isinstance(state, dict) else {}
    start = outcome.StartInput.from_event(state)
    observation = outcome.Observation.from_dict((state.get("poll") or {}).get("observation"))
    outcomes = RestoreOutcomes(get_settings().require("restores_table"))

    stored = outcomes.get(start.restore_id)
    if stored and stored.get("finalStatus"):
        record, written = stored, False  # a retry after a successful write: nothing to do
    else:
        record = outcome.final_record(
            start, stored, observation, execution_arn=event.get("executionArn"), now=clock.utcnow()
        )
        record, written = outcomes.save_final(record)

    if start.lock_id:
        released = outcomes.release_lock(start.lock_id, start.restore_id)
        logger.info("target lock", extra={"lockId": start.lock_id, "released": released})

    if written:  # count each restore once, however often this step is retried
        metrics.add_metric(name=_STATUS_METRICS[record["finalStatus"]], unit=MetricUnit.Count, value=1)
        if record.get("durationSeconds") is not None:
            metrics.add_metric(
                name="RestoreDurationSeconds", unit=MetricUnit.Seconds, value=record["durationSeconds"]
            )
    logger.info(
        "final record written" if written else "final record already there",
        extra={"finalStatus": record.get("finalStatus"), "durationSeconds": record.get("durationSeconds")},
    )
    return record
