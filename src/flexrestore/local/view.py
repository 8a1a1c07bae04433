"""The person-facing view of local mode: the story of one run (``flexrestore-local`` without ``--json``)
and the demo's one-line summaries. It renders what :func:`~flexrestore.local.flow.run_flow` reports and
prints nothing else; the live line rewrites itself on a terminal.

:func:`summary_line` and :meth:`HumanView.result` take a :class:`~flexrestore.local.flow.FlowResult` or its
JSON form (:meth:`~flexrestore.local.flow.FlowResult.to_json`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TextIO

from flexrestore.local.flow import FlowResult, IntakeAnswer, Progress


def _data(result: FlowResult | Mapping[str, Any]) -> Mapping[str, Any]:
    return result.to_json() if isinstance(result, FlowResult) else result


def _duration(value: float) -> str:
    seconds = round(value)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def describe_request(event: dict[str, Any], trigger: str) -> list[str]:
    """What was asked, in a few lines (the request as the trigger carries it)."""
    if trigger == "api":
        identity = (event.get("requestContext") or {}).get("identity") or {}
        lines = [
            f"{event.get('httpMethod')} {event.get('path')}  by {identity.get('userArn') or 'anonymous'}"
        ]
        body = event.get("body")
        if body:
            lines.append(f"body: {body}")
        return lines
    raw_detail = event.get("detail")
    detail: dict[str, Any] = raw_detail if isinstance(raw_detail, dict) else {}
    if trigger == "alarm":
        state = (detail.get("state") or {}).get("value")
        previous = (detail.get("previousState") or {}).get("value")
        return [f"CloudWatch alarm '{detail.get('alarmName')}' went from {previous} to {state}"]
    return [f"an event the intake does not know (keys: {', '.join(sorted(event)[:8])})"]


def summary_line(name: str, flow_result: FlowResult | Mapping[str, Any]) -> str:
    """One line per run: what ran, how it ended, how long it took."""
    result = _data(flow_result)
    parts = [f"{name:<40}", f"{result['final_status']:<9}"]
    if result["http_status"] is not None:
        parts.append(f"HTTP {result['http_status']}")
    record = result.get("record") or {}
    if record.get("durationSeconds") is not None:
        label = "RTO" if result["final_status"] == "COMPLETED" else "ended after"
        parts.append(f"{label} {_duration(float(record['durationSeconds']))}")
    elif result["final_status"] == "REFUSED":
        response = result.get("response")
        answer = response.get("body") if isinstance(response, dict) and "body" in response else response
        if isinstance(answer, dict):
            reason = (
                answer.get("errorCode") or answer.get("reason") or answer.get("status") or answer.get("error")
            )
            if reason:
                parts.append(str(reason))
    return "  ".join([*parts, *_summary_tail(result)])


def _summary_tail(result: Mapping[str, Any]) -> list[str]:
    tail = [f"{len(result['atlas_calls'])} Atlas calls"]
    if result["state_transitions"] is not None:
        tail.append(f"{result['state_transitions']} state transitions")
    tail.append(f"{_duration(result['virtual_seconds'])} on the clock")
    return tail


class HumanView:
    """Writes the person-facing view; the live line rewrites itself on a terminal."""

    def __init__(self, out: TextIO, *, show_record: bool = True, show_calls: bool = True) -> None:
        self.out = out
        self.live = out.isatty()
        self.show_record = show_record
        self.show_calls = show_calls
        self._last_status: str | None = None
        self._live_shown = False

    def line(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def header(self, source: str, mode: str, event: dict[str, Any], trigger: str) -> None:
        self.line(f"== {source}  ({mode})")
        for index, text in enumerate(describe_request(event, trigger)):
            self.line(f"Request  ({trigger}) {text}" if index == 0 else f"         {text}")

    def progress(self, update: Progress) -> None:
        text = (
            f"   poll loop  +{_duration(update.elapsed_seconds):>12}  "
            f"Atlas job {update.status or 'starting'}  ({update.atlas_calls} Atlas calls)"
        )
        if self.live:
            self.out.write("\r" + text.ljust(78))
            self.out.flush()
            self._live_shown = True
        elif update.status != self._last_status:
            self.line(text)
        self._last_status = update.status

    def answer(self, answer: IntakeAnswer) -> None:
        response = answer.response
        body = response.get("body") if answer.trigger == "api" and isinstance(response, dict) else response
        status = f"HTTP {answer.http_status}" if answer.http_status is not None else "answer"
        details = body if isinstance(body, dict) else {}
        if answer.restore_id and answer.http_status == 200:  # GET /restores/{id}: the record
            self.line(
                f"Intake   {status}: restore {answer.restore_id} is "
                f"{details.get('finalStatus') or details.get('status')}, Atlas restore job "
                f"{answer.restore_job_id}, requested at {details.get('requestedAt')}"
            )
        elif answer.restore_id:
            self.line(
                f"Intake   {status}: restore {answer.restore_id} created, Atlas restore job "
                f"{answer.restore_job_id} ({details.get('status')}), snapshot {details.get('snapshotId')}"
            )
        elif answer.trigger != "api" and isinstance(body, dict) and "error" in body:
            self.line(f"Intake   raised {body['error']}: {body.get('message')}")
            self.line(
                "         (on AWS: retried twice by Lambda, then kept in the dead-letter queue, which alarms)"
            )
        else:
            self.line(f"Intake   {status}: {json.dumps(body, ensure_ascii=False)}")
            if details.get("errorCode") == "RESTORE_NOT_FOUND":
                self.line(
                    "         (each run starts on an empty stack, so no restore exists yet; "
                    "`make demo` runs this GET after the sample POST)"
                )

    def result(self, flow_result: FlowResult | Mapping[str, Any], log_path: str | None) -> None:
        result = _data(flow_result)
        if self._live_shown:
            self.out.write("\n")
        record = result.get("record") or {}
        outcome = f"Outcome  {result['final_status']}"
        if record.get("durationSeconds") is not None:
            outcome += f"  RTO {_duration(float(record['durationSeconds']))}"
            if record.get("atlasDurationSeconds") is not None:
                outcome += f" (Atlas restore itself {_duration(float(record['atlasDurationSeconds']))})"
        if isinstance(record.get("error"), dict):
            outcome += f"  error {record['error'].get('code')}: {record['error'].get('message')}"
        self.line(outcome)
        for timeline in record.get("timeline") or []:
            self.line(f"           {timeline.get('at')}  {timeline.get('status')}")
        for message in result["notifications"]:
            self.line(f"Notified SNS: {message.get('subject')}")
        for event in result["events"]:
            self.line(f"Event    EventBridge: {event.get('detail-type')}")
        if result["state_transitions"] is not None:
            self.line(
                f"Loop     {result['state_transitions']} state transitions, "
                f"{_duration(result['virtual_seconds'])} on the clock"
            )
        if self.show_calls:
            self.line(f"Atlas    {len(result['atlas_calls'])} calls")
            for call in result["atlas_calls"]:
                self.line(f"           {call['method']:<5} {call['path']}  -> {call['status']}")
        if self.show_record and result["record"] is not None:
            self.line(
                "Record   "
                + json.dumps(result["record"], indent=2, ensure_ascii=False).replace("\n", "\n         ")
            )
        if log_path:
            self.line(f"Logs     {log_path}")
