"""What people are told: SNS subjects and bodies (an ending, a refused schedule or alarm). Plain Python; one
subject builder for every message. What machines are told (the outcome events) is a contract of its own:
``contracts/events.py``."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from flexrestore.contracts import RestoreRecord
from flexrestore.contracts.record import COMPLETED, ERROR, FAILED

MAX_SUBJECT = 99  # SNS: "less than 100 characters"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def duration_words(seconds: int | None) -> str:
    if seconds is None:
        return ""
    if seconds < 120:
        return f"{seconds} s"
    minutes, rest = divmod(seconds, 60)
    return f"{minutes} min {rest} s" if rest else f"{minutes} min"


def subject_line(text: str) -> str:
    """An SNS subject: one line, no control characters, under 100 characters."""
    text = _CONTROL.sub(" ", text)
    return text if len(text) <= MAX_SUBJECT else text[: MAX_SUBJECT - 1] + "…"


def break_glass_line(record: RestoreRecord) -> str | None:
    """``BREAK-GLASS restore by <principal>: <reason>`` when the intake let this restore overwrite a
    protected target on a break-glass request, else None."""
    if record.break_glass is None:
        return None
    principal = record.break_glass.principal or "an unknown principal"
    reason = record.break_glass.reason or "no reason given"
    return _CONTROL.sub(" ", f"BREAK-GLASS restore by {principal}: {reason}")


def subject(record: RestoreRecord) -> str:
    """e.g. ``Restore COMPLETED: orders-prod → orders-verify in 62 s``; ``BREAK-GLASS Restore ...`` for a
    break-glass restore (the body's first line names who and why)."""
    status = record.final_status or ERROR
    route = f"{record.cluster_name} → {record.target_deployment_item_name}"
    duration = duration_words(record.duration_seconds)
    tail = {COMPLETED: f" in {duration}", FAILED: f" after {duration}"}.get(status, "") if duration else ""
    flag = "BREAK-GLASS " if break_glass_line(record) else ""
    return subject_line(f"{flag}Restore {status}: {route}{tail}")


def body(
    record: RestoreRecord, *, record_saved: bool = True, record_error: Mapping[str, str] | None = None
) -> str:
    """A few lines for people, then the record as JSON for machines."""
    flagged = break_glass_line(record)
    lines = ([flagged] if flagged else []) + [subject(record), ""]
    lines.append(f"Restore id:   {record.restore_id}")
    lines.append(f"Source:       {record.source} (snapshot {record.snapshot_id or 'unknown'})")
    lines.append(f"Target:       {record.target_project_id}/{record.target_deployment_item_name}")
    lines.append(f"Atlas job:    {record.restore_job_id}")
    asked = record.requested_by
    who = (asked.caller or asked.schedule or asked.alarm) if asked else None
    trigger = asked.trigger if asked else "unknown trigger"
    lines.append(f"Requested:    {record.to_json()['requestedAt']} by {trigger}{f' ({who})' if who else ''}")
    if record.reason:
        lines.append(f"Reason:       {record.reason}")
    lines.append(f"Finished:     {record.to_json()['finishedAt']}")
    if record.duration_seconds is not None:
        rto = f"RTO {duration_words(record.duration_seconds)}"
        if record.duration_source == "observed":
            rto += " (Atlas gave no finish date: measured to when the end was noticed)"
        if record.atlas_duration_seconds is not None:
            rto += f"; Atlas restore itself {duration_words(record.atlas_duration_seconds)}"
        lines.append(f"Duration:     {rto}")
    if record.error is not None:
        lines.append(f"Error:        {record.error.code}: {record.error.message}")
    document = record.to_json()
    if not record_saved:
        lines.append("WARNING:      the final record could not be saved in DynamoDB; this message holds it.")
        document = {**document, "recordSaved": False, "recordError": dict(record_error or {})}
    lines += ["", json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False, default=str)]
    return "\n".join(lines)


def refusal_subject(kind: str, who: str, route: str) -> str:
    return subject_line(f"Restore refused ({kind} {who}): {route}")


def refusal_body(
    *,
    kind: str,
    who: str,
    route: str,
    event_id: Any,
    status: Any,
    code: Any,
    message: Any,
    errors: Sequence[Mapping[str, Any]] = (),
    request: Mapping[str, Any] | None = None,
) -> str:
    """Nobody waits on a schedule's or an alarm's answer: a refused one is told to people like this."""
    lines = [
        refusal_subject(kind, who, route),
        "",
        f"Trigger:      {kind} {who} (event {event_id})",
        f"Answer:       {status} {code}",
        f"Why:          {message}",
    ]
    for problem in errors:
        lines.append(f"Field:        {problem.get('field')}: {problem.get('message')}")
    if request is not None:
        lines += ["", json.dumps(dict(request), indent=2, ensure_ascii=False)]
    return "\n".join(lines)
