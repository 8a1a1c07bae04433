"""Record Lambda: writes the final restore record once, frees the target, counts the ending
(domain/outcome.py). Event: ``{"input": <state: execution input + poll.observation>, "executionArn"}``;
returns the final record, which the Notify step sends."""

from __future__ import annotations

from typing import Any

from flexrestore import bootstrap, clock
from flexrestore.contracts import ExecutionInput
from flexrestore.domain import outcome
from flexrestore.logs import service_logger

logger = service_logger()


@logger.inject_lambda_context(correlation_id_path="input.restoreId")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    state = event.get("input") if isinstance(event, dict) else None
    state = state if isinstance(state, dict) else {}
    record = outcome.end_restore(
        ExecutionInput.from_event(state),
        outcome.Observation.from_dict((state.get("poll") or {}).get("observation")),
        execution_arn=event.get("executionArn"),
        records=bootstrap.store(),
        locks=bootstrap.locks(),
        metrics=bootstrap.metrics(),
        now=clock.utcnow,
    )
    return record.to_json()
