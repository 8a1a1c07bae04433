"""Notify Lambda: SNS message for people, EventBridge outcome event for machines, then the record's
``notification.status`` = SENT.

Each channel is delivered at most once per restore: its delivery is marked on the restore record
(``notification.sns`` / ``notification.events`` = ``{"status": "SENT", "at", "messageId"|"eventId"}``) as
soon as it is out, and a retried attempt skips a channel already marked SENT. So when SNS took the message
and PutEvents failed, the state machine's retry sends only the event. Both channels are tried on every
attempt (one failing does not keep the other from its audience); the first failure is then raised, for
the state machine to retry, then mark the record's notification FAILED.

Event: the state after the Record step: execution input, ``poll.observation``, and either
``recorded.record`` (the saved final record) or ``recordError`` (DynamoDB failed: the record is rebuilt
from the input and the observation, and the message says it was not saved).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger

from flexrestore import clock
from flexrestore.aws.notifier import Notifier
from flexrestore.aws.outcomes import RestoreOutcomes
from flexrestore.domain import outcome
from flexrestore.settings import get_settings

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


class _Deliveries:
    """What earlier attempts delivered, from the record, and the marks this attempt adds.

    Without a readable record (it was not saved: the Record step failed, DynamoDB is down) delivery falls
    back to at-least-once: every channel is sent on every attempt, since telling twice beats telling
    nobody. Equally, a crash between a send and its mark sends that channel again on the retry.
    """

    def __init__(self, restore_id: str | None, saved: bool) -> None:
        self.restore_id = restore_id
        self.outcomes: RestoreOutcomes | None = None
        self.earlier: dict[str, Any] = {}
        if not (saved and restore_id):
            return
        try:
            outcomes = RestoreOutcomes(get_settings().require("restores_table"))
            self.earlier = outcomes.open_notification(restore_id)
            self.outcomes = outcomes
        except Exception as exc:
            logger.warning(
                "cannot read earlier deliveries from the record: sending every channel (at least once)",
                extra={"errorType": type(exc).__name__, "error": str(exc)},
            )

    def sent_before(self, channel: str) -> str | None:
        return outcome.earlier_delivery(self.earlier, channel)

    def mark(self, channel: str, delivery: dict[str, Any]) -> None:
        if self.outcomes is None or self.restore_id is None:
            return
        try:
            if not self.outcomes.mark_channel(self.restore_id, channel, delivery):
                logger.warning("another attempt marked this channel SENT first", extra={"channel": channel})
        except Exception as exc:  # out is out: failing now would only send it again
            logger.warning(
                "could not mark the delivery on the record; a retry would send this channel again",
                extra={"channel": channel, "errorType": type(exc).__name__, "error": str(exc)},
            )

    def finish(self, notification: dict[str, Any]) -> None:
        if self.outcomes is None or self.restore_id is None:
            return
        try:
            self.outcomes.mark_notification(self.restore_id, notification)
        except Exception as exc:  # every channel is out: failing now would only send them again
            logger.warning(
                "notified, but could not mark the record",
                extra={"errorType": type(exc).__name__, "error": str(exc)},
            )


@logger.inject_lambda_context(correlation_id_path="restoreId")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = get_settings()
    record, saved = _final_record(event if isinstance(event, dict) else {})
    notifier = Notifier(settings.require("notification_topic_arn"), settings.event_bus_name)
    senders: dict[str, Callable[[], str]] = {
        outcome.SNS_CHANNEL: lambda: notifier.publish(
            outcome.subject(record), outcome.body(record, record_saved=saved)
        ),
        outcome.EVENTS_CHANNEL: lambda: notifier.put_outcome_event(
            outcome.detail_type(str(record.get("finalStatus"))), record
        ),
    }
    restore_id = record.get("restoreId")
    deliveries = _Deliveries(str(restore_id) if restore_id else None, saved)
    delivery_ids: dict[str, str] = {}
    failures: list[Exception] = []
    for channel, send in senders.items():
        earlier = deliveries.sent_before(channel)
        if earlier is not None:
            logger.info("already delivered by an earlier attempt; not sent again", extra={"channel": channel})
            delivery_ids[channel] = earlier
            continue
        try:
            delivery_ids[channel] = send()
        except Exception as exc:
            failures.append(exc)
            deliveries.mark(channel, outcome.not_delivered(clock.utcnow(), type(exc).__name__, str(exc)))
            continue
        deliveries.mark(channel, outcome.delivered(channel, clock.utcnow(), delivery_ids[channel]))
    if failures:
        raise failures[0]  # the state machine retries; channels marked SENT are skipped then

    notification = {"status": outcome.SENT, "at": clock.isoformat(clock.utcnow())}
    deliveries.finish(notification)
    logger.info("outcome notified", extra={"finalStatus": record.get("finalStatus"), "recordSaved": saved})
    return {
        **notification,
        "snsMessageId": delivery_ids[outcome.SNS_CHANNEL],
        "eventId": delivery_ids[outcome.EVENTS_CHANNEL],
        "recordSaved": saved,
    }
