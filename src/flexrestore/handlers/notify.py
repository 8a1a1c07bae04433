"""Notify Lambda: SNS for people, an EventBridge outcome event for machines, each at most once per restore
(domain/notifying.py), then the record's ``notification.status`` = SENT.

Event: the state after the Record step: execution input, ``poll.observation``, and either
``recorded.record`` (the saved final record) or ``recordError`` (DynamoDB failed: the record is rebuilt
from the input and the observation, and the message says it was not saved). The answer (the execution's
output) then carries that record, which the reconciler writes once DynamoDB takes it (domain/reconcile.py).
"""

from __future__ import annotations

from typing import Any

from flexrestore import bootstrap, clock
from flexrestore.domain import notifying, outcome
from flexrestore.logs import service_logger

logger = service_logger()


@logger.inject_lambda_context(correlation_id_path="restoreId")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    ending = outcome.ending_to_tell(event if isinstance(event, dict) else {}, now=clock.utcnow())
    told = notifying.tell(
        ending.record,
        notifier=bootstrap.notifier(),
        deliveries=bootstrap.store() if ending.saved else None,
        now=clock.utcnow,
        record_saved=ending.saved,
        record_error=ending.record_error,
    )
    logger.info(
        "outcome notified", extra={"finalStatus": ending.record.final_status, "recordSaved": ending.saved}
    )
    answer: dict[str, Any] = {
        "status": "SENT",
        "at": clock.isoformat(told.at),
        "snsMessageId": told.ids[notifying.SNS_CHANNEL],
        "eventId": told.ids[notifying.EVENTS_CHANNEL],
        "recordSaved": ending.saved,
        "finalStatus": ending.record.final_status,
    }
    if not ending.saved:
        # The execution's output: the ending people were told, for the reconciler to record.
        answer.update(record=ending.record.to_json(), holdLock=ending.hold_lock)
    return answer
