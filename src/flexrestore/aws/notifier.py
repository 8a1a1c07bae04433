"""Telling people (SNS) and machines (EventBridge) how a restore ended."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flexrestore.aws.clients import client
from flexrestore.domain.messages import EVENT_SOURCE


class OutcomeEventRejected(RuntimeError):
    """EventBridge accepted the call but not the entry (PutEvents' FailedEntryCount > 0)."""


class Notifier:
    def __init__(self, topic_arn: str, event_bus_name: str) -> None:
        self.topic_arn = topic_arn
        self.event_bus_name = event_bus_name

    def publish(self, subject: str, message: str) -> str:
        answer = client("sns").publish(TopicArn=self.topic_arn, Subject=subject, Message=message)
        return str(answer.get("MessageId", ""))

    def put_outcome_event(self, detail_type: str, detail: Mapping[str, Any]) -> str:
        answer = client("events").put_events(
            Entries=[
                {
                    "Source": EVENT_SOURCE,
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail, default=str),
                    "EventBusName": self.event_bus_name,
                }
            ]
        )
        if answer.get("FailedEntryCount", 0):
            entry = (answer.get("Entries") or [{}])[0]
            raise OutcomeEventRejected(
                f"EventBridge rejected the outcome event on bus '{self.event_bus_name}': "
                f"{entry.get('ErrorCode', 'unknown error')}: {entry.get('ErrorMessage', '')}".rstrip(": ")
            )
        return str((answer.get("Entries") or [{}])[0].get("EventId", ""))
