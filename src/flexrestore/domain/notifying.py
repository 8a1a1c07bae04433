"""Telling how a restore ended: an SNS message for people, an EventBridge outcome event for machines. The
one send loop, used by the Notify step and by the intake for a restore that ended there.

Each channel is delivered at most once per restore: its delivery is marked on the restore record
(``notification.sns`` / ``notification.events``) as soon as it is out, and a later attempt skips a channel
already marked SENT. Both channels are tried on every attempt (one failing does not keep the other from its
audience); the first failure is then raised, for the caller to retry. Without a readable record
(``deliveries`` None, or it cannot be read) delivery falls back to at-least-once: telling twice beats
telling nobody.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from flexrestore.contracts import Delivery, ErrorInfo, Notification, RestoreRecord
from flexrestore.domain import messages
from flexrestore.domain.ports import Deliveries, Notifier

logger = logging.getLogger("flexrestore.notify")

SNS_CHANNEL = "sns"
EVENTS_CHANNEL = "events"
CHANNELS = (SNS_CHANNEL, EVENTS_CHANNEL)
MAX_ERROR_MESSAGE = 1000


def error_info(code: str, message: str) -> ErrorInfo:
    if len(message) > MAX_ERROR_MESSAGE:
        message = message[: MAX_ERROR_MESSAGE - 1] + "…"
    return ErrorInfo(code=code, message=message)


def delivered(channel: str, at: datetime, delivery_id: str) -> Delivery:
    """``notification.<channel>`` once the channel took the message (SNS MessageId, EventBridge EventId)."""
    if channel == SNS_CHANNEL:
        return Delivery(status="SENT", at=at, message_id=delivery_id)
    return Delivery(status="SENT", at=at, event_id=delivery_id)


def not_delivered(at: datetime, code: str, message: str) -> Delivery:
    """``notification.<channel>`` after a failed attempt: the next attempt sends it again."""
    return Delivery(status="FAILED", at=at, error=error_info(code, message))


def earlier_delivery(notification: Notification, channel: str) -> str | None:
    """The id of an earlier attempt's delivery on ``channel``, or None if it must still be sent."""
    entry: Delivery | None = getattr(notification, channel)
    if entry is None or entry.status != "SENT":
        return None
    return (entry.message_id if channel == SNS_CHANNEL else entry.event_id) or ""


def channels_for(record: RestoreRecord) -> tuple[str, ...]:
    """The channels a restore's ending goes to: both, except that a verification run's restore gets its own
    SNS message only as its plan's ``notify`` says (the run's summary tells people the rest)."""
    from flexrestore.domain.runs import notify_per_restore

    if record.run is not None and not notify_per_restore(record.run.notify, record.final_status):
        return (EVENTS_CHANNEL,)
    return CHANNELS


@dataclass(frozen=True)
class Told:
    """What an attempt delivered: ``ids`` per channel (MessageId / EventId; a channel left out by the
    plan's notify policy has none)."""

    ids: Mapping[str, str]
    at: datetime


def tell(
    record: RestoreRecord,
    *,
    notifier: Notifier,
    deliveries: Deliveries | None,
    now: Callable[[], datetime],
    record_saved: bool = True,
    record_error: Mapping[str, str] | None = None,
    execution_arn: str | None = None,
) -> Told:
    """Send both channels (skipping those an earlier attempt delivered); raise the first failure.

    The event is the published outcome event (``contracts/events.py``); ``execution_arn`` names the
    restore's execution in its ``resources`` when the record does not (it could not be saved)."""
    from flexrestore.contracts.events import restore_event  # the published contract: only where one is sent

    event = restore_event(record, record_saved=record_saved, execution_arn=execution_arn)
    senders: dict[str, Callable[[], str]] = {
        SNS_CHANNEL: lambda: notifier.publish(
            messages.subject(record),
            messages.body(record, record_saved=record_saved, record_error=record_error),
        ),
        EVENTS_CHANNEL: lambda: notifier.put_event(event),
    }
    earlier = _open(deliveries, record.restore_id) if record_saved else None
    ids: dict[str, str] = {}
    failures: list[Exception] = []
    wanted = channels_for(record)
    for channel, send in senders.items():
        if channel not in wanted:
            continue
        before = earlier_delivery(earlier, channel) if earlier is not None else None
        if before is not None:
            logger.info("already delivered by an earlier attempt; not sent again", extra={"channel": channel})
            ids[channel] = before
            continue
        try:
            ids[channel] = send()
        except Exception as exc:
            failures.append(exc)
            if earlier is not None:
                _mark(
                    deliveries, record.restore_id, channel, not_delivered(now(), type(exc).__name__, str(exc))
                )
            continue
        if earlier is not None:
            _mark(deliveries, record.restore_id, channel, delivered(channel, now(), ids[channel]))
    if failures:
        raise failures[0]
    at = now()
    if earlier is not None and deliveries is not None:
        try:
            deliveries.mark_notification(record.restore_id, Notification(status="SENT", at=at))
        except Exception as exc:  # every channel is out: failing now would only send them again
            logger.warning("notified, but could not mark the record", extra={"errorType": type(exc).__name__})
    return Told(ids=ids, at=at)


def _open(deliveries: Deliveries | None, restore_id: str) -> Notification | None:
    if deliveries is None:
        return None
    try:
        return deliveries.open_notification(restore_id)
    except Exception as exc:
        logger.warning(
            "cannot read earlier deliveries from the record: sending every channel (at least once)",
            extra={"errorType": type(exc).__name__, "error": str(exc)},
        )
        return None


def _mark(deliveries: Deliveries | None, restore_id: str, channel: str, delivery: Delivery) -> None:
    if deliveries is None:
        return
    try:
        if not deliveries.mark_channel(restore_id, channel, delivery):
            logger.warning("another attempt marked this channel SENT first", extra={"channel": channel})
    except Exception as exc:  # out is out: failing now would only send it again
        logger.warning(
            "could not mark the delivery on the record; a retry would send this channel again",
            extra={"channel": channel, "errorType": type(exc).__name__, "error": str(exc)},
        )
