"""Telling people (SNS) and machines (EventBridge) how a restore ended."""

from __future__ import annotations

import json

from flexrestore.aws.clients import client
from flexrestore.contracts.events import OutcomeEvent


class OutcomeEventRejected(RuntimeError):
    """EventBridge accepted the call but not the entry (PutEvents' FailedEntryCount > 0)."""


class Notifier:
    def __init__(self, topic_arn: str, event_bus_name: str) -> None:
        self.topic_arn = topic_arn
        self.event_bus_name = event_bus_name

    def publish(self, subject: str, message: str) -> str:
        answer = client("sns").publish(TopicArn=self.topic_arn, Subject=subject, Message=message)
        return str(answer.get("MessageId", ""))

    def put_event(self, event: OutcomeEvent) -> str:
        """One entry on the bus: the event's source, detail-type, resources and detail (JSON)."""
        answer = client("events").put_events(
            Entries=[
                {
                    "Source": event.source,
                    "DetailType": event.detail_type,
                    "Resources": list(event.resources),
                    "Detail": json.dumps(event.detail_json(), ensure_ascii=False),
                    "EventBusName": self.event_bus_name,
                }
            ]
        )
        if answer.get("FailedEntryCount", 0):
            entry = (answer.get("Entries") or [{}])[0]
            raise OutcomeEventRejected(
                f"EventBridge rejected the {event.detail_type!r} event on bus '{self.event_bus_name}': "
                f"{entry.get('ErrorCode', 'unknown error')}: {entry.get('ErrorMessage', '')}".rstrip(": ")
            )
        return str((answer.get("Entries") or [{}])[0].get("EventId", ""))
