"""Notify Lambda: SNS for people, an EventBridge outcome event for machines, each at most once per restore
(domain/notifying.py), then the record's ``notification.status`` = SENT; for a verification run's restore,
then the run waiting for it is told (domain/run_steps.py ``tell_run``).

Event: ``{"input": <state>, "executionArn"}``, the state after the Record step: execution input,
``poll.observation``, and either ``recorded.record`` (the saved final record) or ``recordError`` (DynamoDB
failed: the record is rebuilt from the input and the observation, and the message says it was not saved).
The state alone (without ``executionArn``) is read too: executions started before the Notify step passed
its execution along still send it. When the record was not saved, the answer (the execution's output)
carries it, which the reconciler writes once DynamoDB takes it (domain/reconcile.py).
"""

from __future__ import annotations

from typing import Any

from flexrestore import bootstrap, clock
from flexrestore.domain import notifying, outcome
from flexrestore.logs import service_logger

logger = service_logger()


@logger.inject_lambda_context(correlation_id_path="input.restoreId || restoreId")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    state, execution_arn = outcome.notify_step_input(event)
    ending = outcome.ending_to_tell(state, now=clock.utcnow())
    told = notifying.tell(
        ending.record,
        notifier=bootstrap.notifier(),
        deliveries=bootstrap.store() if ending.saved else None,
        now=clock.utcnow,
        record_saved=ending.saved,
        record_error=ending.record_error,
        execution_arn=execution_arn,
    )
    logger.info(
        "outcome notified", extra={"finalStatus": ending.record.final_status, "recordSaved": ending.saved}
    )
    run_told = bootstrap.tell_run(ending.record) if ending.record.run is not None else False
    answer: dict[str, Any] = {
        "status": "SENT",
        "at": clock.isoformat(told.at),
        "snsMessageId": told.ids.get(notifying.SNS_CHANNEL),
        "eventId": told.ids.get(notifying.EVENTS_CHANNEL),
        "recordSaved": ending.saved,
        "finalStatus": ending.record.final_status,
        "runTold": run_told,
    }
    if not ending.saved:
        # The execution's output: the ending people were told, for the reconciler to record.
        answer.update(record=ending.record.to_json(), holdLock=ending.hold_lock)
    return answer
