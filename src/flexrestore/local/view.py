"""The person-facing view of local mode (``flexrestore-local`` without ``--json``) and the demo's one-line
summaries. It renders what the flows report and prints nothing else; live lines rewrite themselves on a
terminal.

- :class:`HumanView` and :func:`summary_line`: the story of one event
  (:func:`~flexrestore.local.flow.run_flow`); they take a :class:`~flexrestore.local.flow.FlowResult` or
  its JSON form (:meth:`~flexrestore.local.flow.FlowResult.to_json`).
- :class:`RunView` and :func:`plan_summary_line`: one run of a plan
  (:func:`~flexrestore.local.plan_flow.run_plan`): a line per source while it runs, then the run's report
  (the table of its summary message, ``domain/runs.py``); they take a
  :class:`~flexrestore.local.plan_flow.PlanRunResult` or its JSON form.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TextIO

from flexrestore.local.flow import FlowResult, IntakeAnswer, Progress
from flexrestore.local.plan_flow import (
    PlanRefused,
    PlanRunResult,
    PlanSaved,
    RunProgress,
    RunStart,
    SourceProgress,
)


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


# --- one run of a plan ------------------------------------------------------------------------------------


# An Atlas restore job's endings: a source's restore may show one a moment before it has ended.
_ATLAS_ENDINGS = frozenset({"COMPLETED", "FAILED"})
WAITING = "WAITING"  # a source whose restore is not made yet (OfflineStack.run_sources)


def _run_data(result: PlanRunResult | Mapping[str, Any]) -> Mapping[str, Any]:
    return result.to_json() if isinstance(result, PlanRunResult) else result


def run_words(summary: Mapping[str, Any]) -> str:
    """A run's counts in a few words: ``20/22 restored, 1 over RTO, 2 refused``."""
    words = [f"{summary.get('completed', 0)}/{summary.get('total', 0)} restored"]
    for key, what in (
        ("objectiveMissed", "over RTO"),
        ("validationFailed", "failed validation"),
        ("failed", "failed"),
        ("timedOut", "timed out"),
        ("error", "in error"),
        ("refused", "refused"),
    ):
        if summary.get(key):
            words.append(f"{summary[key]} {what}")
    return ", ".join(words)


def _rto_words(summary: Mapping[str, Any]) -> str | None:
    if summary.get("rtoMaxSeconds") is None:
        return None
    median = float(summary.get("rtoMedianSeconds") or 0)
    return f"RTO median {_duration(median)}, longest {_duration(float(summary['rtoMaxSeconds']))}"


def plan_summary_line(name: str, plan_result: PlanRunResult | Mapping[str, Any]) -> str:
    """One line per run of a plan: how it ended, its counts and RTOs, what it cost."""
    result = _run_data(plan_result)
    summary = result.get("summary") or {}
    parts = [f"{name:<40}", f"{result.get('finalStatus') or 'UNKNOWN':<9}", run_words(summary)]
    rto = _rto_words(summary)
    if rto:
        parts.append(rto)
    parts += [
        f"{len(result['atlas_calls'])} Atlas calls",
        f"{result['state_transitions']} state transitions "
        f"(+{result['restore_state_transitions']} in restores)",
        f"{_duration(result['virtual_seconds'])} on the clock",
    ]
    left = result.get("clusters_left")
    if left is not None:  # ephemeral targets: what the verification project still holds
        parts.append(f"clusters left: {', '.join(left) or 'none'}")
    return "  ".join(parts)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def refused_plan_line(name: str, refusal: PlanRefused) -> str:
    """One line for a plan the API refused: nothing ran."""
    body = refusal.response if isinstance(refusal.response, dict) else {}
    fields = ", ".join(str(e.get("field")) for e in body.get("errors") or [])
    parts = [
        f"{name:<40}",
        f"{'REFUSED':<9}",
        f"HTTP {refusal.http_status}",
        str(body.get("errorCode") or ""),
    ]
    if fields:
        parts.append(fields)
    return "  ".join([*parts, "nothing ran"])


def describe_plan(plan: Mapping[str, Any], *, max_sources: int = 5) -> list[str]:
    """What a plan asks for, in a few lines. Read from the file as given (the API validates it after), so
    any value may be wrong: each is shown, never checked."""
    snapshot = _mapping(plan.get("snapshot"))
    choice = str(snapshot.get("choice") or "LATEST")
    if snapshot.get("windowDays") is not None:
        choice += f" ({snapshot['windowDays']} days)"
    head = [f"snapshot {choice}"]
    objective = plan.get("rtoObjectiveSeconds")
    if isinstance(objective, int | float) and not isinstance(objective, bool):
        head.append(f"RTO objective {_duration(float(objective))}")
    elif objective is not None:
        head.append(f"RTO objective {objective!r}")
    head.append(f"at most {plan.get('maxConcurrency', 5)} at once")
    head.append(f"notify {plan.get('notify', 'FAILURES')}")
    schedule = _mapping(plan.get("schedule"))
    if schedule:
        head.append(f"schedule {schedule.get('expression')} {schedule.get('timezone') or 'UTC'}")
    lines = [f"{plan.get('name')}: {', '.join(head)}"]
    sources: list[Any] = plan["sources"] if isinstance(plan.get("sources"), list) else []
    for index, entry in enumerate(sources[:max_sources]):
        source = _mapping(entry)
        tag = _mapping(source.get("tag"))
        what = (
            f"every Flex cluster of {source.get('groupId')} tagged {tag.get('key')}={tag.get('value')}"
            if tag
            else f"{source.get('groupId')}/{source.get('clusterName')}"
        )
        lines.append(f"sources[{index}]: {what} -> {source.get('targetDeploymentItemName')}")
    if len(sources) > max_sources:
        lines.append(f"... and {len(sources) - max_sources} more sources")
    return lines


class RunView:
    """Writes the person-facing view of one run of a plan. On a terminal the sources' lines are one block
    that rewrites itself in place (when it fits on the screen); otherwise, or when it does not fit, a line
    is printed each time a source's status changes."""

    def __init__(self, out: TextIO, *, live: bool | None = None, size: tuple[int, int] | None = None) -> None:
        import shutil

        self.out = out
        self.live = out.isatty() if live is None else live
        # (columns, rows), taken now: once the handlers' output is captured, stdout is not the terminal.
        self.columns, self.rows = size if size is not None else tuple(shutil.get_terminal_size())
        self._drawn = 0
        self._seen: dict[int, str] = {}

    def line(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def header(self, source: str, mode: str, plan: Mapping[str, Any], schedule_event: str | None) -> None:
        self.line(f"== {source}  ({mode})")
        for index, text in enumerate(describe_plan(plan)):
            self.line(f"Plan     {text}" if index == 0 else f"         {text}")
        if schedule_event:
            self.line(f"         run by its schedule, with {schedule_event} as the schedule's input")

    def saved(self, answer: PlanSaved) -> None:
        body = answer.response
        what = "created" if answer.http_status == 201 else "replaced"
        schedule = f"schedule {body.get('scheduleName')}" if body.get("scheduleName") else "no schedule"
        self.line(
            f"Saved    PUT /plans/{answer.plan} -> HTTP {answer.http_status}: {what}, "
            f"revision {body.get('revision')}, {schedule}"
        )

    def refused(self, refusal: PlanRefused) -> None:
        body = refusal.response if isinstance(refusal.response, dict) else {}
        self.line(
            f"Refused  PUT /plans/{refusal.plan} -> HTTP {refusal.http_status} "
            f"{body.get('errorCode') or ''}: {body.get('message') or refusal.response}"
        )
        for error in body.get("errors") or []:
            self.line(f"           {error.get('field')}: {error.get('message')}")
        self.line("         nothing was saved and nothing ran")

    def started(self, start: RunStart) -> None:
        how = (
            f"{start.request} -> HTTP {start.http_status}" if start.http_status else f"{start.request} fired"
        )
        self.line(f"Run      {how}: run {start.run_id}")

    def progress(self, update: RunProgress) -> None:
        if not update.sources:
            return
        widths = (
            max(len(s.cluster_name or "-") for s in update.sources),
            max(len(s.target or "-") for s in update.sources),
            max(len(s.status) for s in update.sources),
        )
        if self.live and len(update.sources) + 1 < self.rows:
            ended = sum(1 for s in update.sources if s.ended)
            block = [
                f"   run {update.run_id}  +{_duration(update.elapsed_seconds)}  "
                f"{ended}/{len(update.sources)} sources ended  ({update.atlas_calls} Atlas calls)",
                *(self._source_line(s, widths) for s in update.sources),
            ]
            if self._drawn:
                self.out.write(f"\x1b[{self._drawn}A")  # back to the block's first line
            for text in block:  # cut to the screen's width: a wrapped line would shift the block
                self.out.write("\r\x1b[2K" + text[: max(self.columns - 1, 20)] + "\n")
            self.out.flush()
            self._drawn = len(block)
            return
        if not self._seen:
            refused = sum(1 for s in update.sources if s.ended)
            self.line(
                f"   run {update.run_id}: {len(update.sources)} sources"
                + (f", {refused} ended at once" if refused else "")
            )
        for source in update.sources:
            if source.status == WAITING and source.index not in self._seen:
                self._seen[source.index] = source.status
                continue  # told in the line above
            if not source.ended and source.status in _ATLAS_ENDINGS:
                continue  # Atlas has ended the job: its line comes once the restore's final record is written
            if self._seen.get(source.index) != source.status:
                self._seen[source.index] = source.status
                self.line(self._source_line(source, widths))

    @staticmethod
    def _source_line(source: SourceProgress, widths: tuple[int, int, int]) -> str:
        if source.seconds is None:
            when = source.error or ""
        elif not source.ended:
            when = _duration(source.seconds)
        else:
            when = f"{'RTO' if source.status == 'COMPLETED' else 'after'} {_duration(source.seconds)}"
            if source.error:
                when += f"  {source.error}"
        return (
            f"   #{source.index:02d} {(source.cluster_name or '-'):<{widths[0]}} -> "
            f"{(source.target or '-'):<{widths[1]}}  {source.status:<{widths[2]}}  {when}"
        ).rstrip()

    def result(self, plan_result: PlanRunResult | Mapping[str, Any], log_path: str | None) -> None:
        from flexrestore.contracts.run import RunRecord
        from flexrestore.domain.runs import run_report_lines

        result = _run_data(plan_result)
        record = RunRecord.model_validate(dict(result))  # the tool's own keys are ignored
        for index, text in enumerate(run_report_lines(record)):
            self.line((f"Report   {text}" if index == 0 else f"         {text}").rstrip())
        summary = result.get("summary") or {}
        self.line(f"Outcome  {result.get('finalStatus')}  {run_words(summary)}  (run {result.get('runId')})")
        for message in result["notifications"]:
            self.line(f"Notified SNS: {message.get('subject')}")
        counts: dict[tuple[str, str], int] = {}
        for event in result["events"]:
            key = (str(event.get("detail-type")), str(event.get("source")))
            counts[key] = counts.get(key, 0) + 1
        for (detail_type, source), count in counts.items():
            times = f"{count} x " if count > 1 else ""
            self.line(f"Event    EventBridge: {times}{detail_type} ({source})")
        self.line(
            f"Run      {result['state_transitions']} state transitions, {result['history_events']} history "
            f"events; its restores {result['restore_state_transitions']} state transitions; "
            f"{len(result['atlas_calls'])} Atlas calls; {_duration(result['virtual_seconds'])} on the clock"
        )
        if log_path:
            self.line(f"Logs     {log_path}")
