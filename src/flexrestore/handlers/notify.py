"""Notify Lambda: SNS message for people, EventBridge outcome event for machines, then the record's
``notification`` = SENT (best-effort).

Event: the state after the Record step: execution input, ``poll.observation``, and either
``recorded.record`` (the saved final record) or ``recordError`` (DynamoDB failed: the record is rebuilt
from the input and the observation, and the message says it was not saved). Raising here is retried by
the state machine, then marked on the record as notification FAILED and fails the execution.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from flexrestore import clock
from flexrestore.domain import outcome

logger = Logger()


def _final_record(event: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    recorded = (event.get("recorded") or {}).get("record")
    if isinstance(recorded, dict) and recorded.get("finalStatus"):
        return recorded, True
    observation = outcome.Observation.from_dict((event.get("poll") or {}).get("observation"))
    try:
        start = outcome.StartInput.from_event(event)
        record = outcome.final_record(start, None, observation, execution_arn=None, now=clock.utcnow())
    except outcome.InvalidExecutionInput as exc:
        record = {
            "restoreId": event.get("restoreId"),
            "finalStatus": outcome.ERROR,
            "error": {"code": "InvalidExecutionInput", "message": str(exc)},
        }
    caught = event.get("recordError")
    record_error: dict[str, Any] = caught if isinstance(caught, dict) else {}
    record["recordSaved"] = False
    record["recordError"] = outcome.caught_error(
        record_error.get("Error"), record_error.get("Cause") or "the Record step produced no record"
    )
    return record, False


@logger.inject_lambda_context(correlation_id_path="restoreId")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from flexrestore.aws.notifier import Notifier
    from flexrestore.aws.outcomes import RestoreOutcomes
    from flexrestore.settings import get_settings

    settings = get_settings()
    record, saved = _final_record(event if isinstance(event, dict) else {})
    notifier = Notifier(settings.require("notification_topic_arn"), settings.event_bus_name)
    message_id = notifier.publish(outcome.subject(record), outcome.body(record, record_saved=saved))
    event_id = notifier.put_outcome_event(outcome.detail_type(str(record.get("finalStatus"))), record)

    notification = {"status": "SENT", "at": clock.isoformat(clock.utcnow())}
    restore_id = record.get("restoreId")
    if saved and restore_id:
        try:
            outcomes = RestoreOutcomes(settings.require("restores_table"))
            outcomes.mark_notification(str(restore_id), notification)
        except Exception as exc:  # the message is out; failing now would only send it twice
            logger.warning(
                "notified, but could not mark the record",
                extra={"errorType": type(exc).__name__, "error": str(exc)},
            )
    logger.info("outcome notified", extra={"finalStatus": record.get("finalStatus"), "recordSaved": saved})
    return {**notification, "snsMessageId": message_id, "eventId": event_id, "recordSaved": saved}
