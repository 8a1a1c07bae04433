"""``flexrestore-local``: run one event through the whole service on this machine.

The event (any file from ``events/`` or your own) goes to the real intake handler; the poll loop is the real
state-machine definition executed by moto, whose Lambda tasks call the real handlers; Atlas is the local
simulator (``--scenario`` picks its behaviour) on a virtual clock, so a 30-minute restore takes a second.
``--atlas-url`` points the same flow at another Atlas (the real one, say) with the credentials from
``--secret-file`` or the environment; the clock is then real.

Without ``--json`` it shows a person what happens; with ``--json`` it prints exactly one JSON object (keys in
:data:`RESULT_KEYS`; a schedule whose ``detail.request`` is a list adds ``restores``, one entry per element,
and the documented keys describe its first element). The exit code is 0 whenever the flow ran, whatever the
restore's outcome, 2 for bad usage (unreadable event, unknown scenario, missing credentials) and 1 when the
tool itself failed.

The handlers log JSON lines (and moto's state-machine interpreter prints noise) on stdout and stderr: while
the flow runs, both go to a log file (``--log``), so the terminal shows only the view below or the JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

RESULT_KEYS = (
    "trigger",
    "http_status",
    "response",
    "restore_id",
    "restore_job_id",
    "final_status",
    "record",
    "notifications",
    "events",
    "atlas_calls",
    "state_transitions",
    "virtual_seconds",
)
# Only for a scheduled list of restores: one entry per element (the documented keys describe element 0).
RESTORES_KEY = "restores"
RESTORE_KEYS = (
    "index",
    "status_code",
    "error_code",
    "restore_id",
    "restore_job_id",
    "final_status",
    "record",
)
FINAL_STATUSES = ("COMPLETED", "FAILED", "TIMED_OUT", "ERROR", "REFUSED")
DEFAULT_EVENT = Path("events") / "api-post-restore.json"

# The recovery plan of the sample alarm (events/alarm-into-alarm.json), unless RECOVERY_PLANS is set.
DEMO_RECOVERY_PLANS = {
    "orders-prod-data-loss": {
        "groupId": "65f1a2b3c4d5e6f708192a3b",
        "clusterName": "orders-prod",
        "snapshotId": "latest",
        "targetDeploymentItemName": "orders-dr",
        "reason": "orders-prod lost documents: restore the latest snapshot into orders-dr",
    }
}

# Where credentials for --atlas-url come from when there is no --secret-file.
CREDENTIAL_ENV = (
    ("ATLAS_CLIENT_ID", "ATLAS_CLIENT_SECRET", "clientId", "clientSecret"),
    ("ATLAS_PUBLIC_KEY", "ATLAS_PRIVATE_KEY", "publicKey", "privateKey"),
)


class UsageError(Exception):
    """The user asked for something that cannot run; the message says what and how to fix it."""


@dataclass(frozen=True)
class Progress:
    """What the live line shows while the poll loop runs."""

    elapsed_seconds: float
    status: str | None
    atlas_calls: int


ProgressCallback = Callable[[Progress], None]
AnswerCallback = Callable[[dict[str, Any]], None]


# ------------------------------------------------------------------------------------------------ the flow


def load_event(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read the event file {path}: {exc.strerror or exc}") from None
    try:
        event = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path} is not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(event, dict):
        raise UsageError(f"{path} must hold one JSON object (an API Gateway or EventBridge event)")
    return event


def load_secret(secret_file: Path | None) -> dict[str, str]:
    """Atlas credentials for --atlas-url: the secret's JSON from a file, or from the environment."""
    if secret_file is not None:
        try:
            data = json.loads(secret_file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise UsageError(f"cannot read the secret file {secret_file}: {exc.strerror or exc}") from None
        except json.JSONDecodeError:
            # Never echo the content: it is a secret.
            raise UsageError(f"the secret file {secret_file} is not JSON") from None
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise UsageError(f"the secret file {secret_file} must hold a JSON object of strings")
        return {str(k): str(v) for k, v in data.items()}
    for id_var, secret_var, id_key, secret_key in CREDENTIAL_ENV:
        if os.environ.get(id_var) and os.environ.get(secret_var):
            return {id_key: os.environ[id_var], secret_key: os.environ[secret_var]}
    names = " or ".join(f"{a} and {b}" for a, b, _, _ in CREDENTIAL_ENV)
    raise UsageError(f"--atlas-url needs credentials: --secret-file FILE (the secret's JSON), or {names}")


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _handler_answer(trigger: str, response: Any) -> tuple[int | None, Any, dict[str, Any]]:
    """(HTTP status for API events, the answer shown, the answer's body as a dict)."""
    if trigger == "api" and isinstance(response, dict):
        body: Any = response.get("body")
        with contextlib.suppress(TypeError, ValueError):
            body = json.loads(body)
        status = response.get("statusCode")
        shown = {
            "statusCode": status,
            "headers": dict(response.get("headers") or {}),
            "body": body,
        }
        return (
            (int(status) if isinstance(status, int) else None),
            shown,
            body if isinstance(body, dict) else {},
        )
    answer = response if isinstance(response, dict) else {}
    return None, response, answer


def run_flow(
    event: dict[str, Any],
    *,
    scenario: str = "ok",
    atlas_url: str | None = None,
    secret: dict[str, str] | None = None,
    progress: ProgressCallback | None = None,
    answered: AnswerCallback | None = None,
    first: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """Run ``event`` through the offline stack; the result object (:data:`RESULT_KEYS`).

    ``answered`` sees the intake's answer (the result's first keys) before the poll loop runs; ``progress``
    is called a few times a second (real time) while it runs. ``first``: events run to their end on the
    same stack beforehand (e.g. the POST whose restore a GET reads); the result covers ``event`` only.
    """
    from flexrestore.clock import Clock, SystemClock, VirtualClock
    from flexrestore.local.harness import HarnessError, OfflineStack
    from flexrestore.triggers import kind_of as event_kind

    clock: Clock = SystemClock() if atlas_url else VirtualClock()
    overrides = {} if "RECOVERY_PLANS" in os.environ else {"RECOVERY_PLANS": json.dumps(DEMO_RECOVERY_PLANS)}
    trigger = event_kind(event)

    with OfflineStack(
        scenario=scenario, clock=clock, env_overrides=overrides, atlas_url=atlas_url, secret=secret
    ) as stack:
        for earlier in first:
            with contextlib.suppress(Exception):  # its answer is not part of this result
                stack.invoke("intake", earlier)
            for arn in stack.executions():
                stack.wait_for_execution(arn)
        earlier_executions = set(stack.executions())
        earlier_calls = len(stack.atlas_calls())
        earlier_notifications, earlier_events = len(stack.notifications()), len(stack.events())
        start = clock.now()
        try:
            response: Any = stack.invoke("intake", event)
        except Exception as exc:  # the handler failed: Lambda would retry, then dead-letter it
            response = {"error": type(exc).__name__, "message": str(exc)}
        http_status, shown, answer = _handler_answer(trigger, response)
        listed = _listed_answers(event, answer)
        first_answer = listed[0] if listed else answer
        restore_id = first_answer.get("restoreId") if isinstance(first_answer.get("restoreId"), str) else None
        restore_job_id = first_answer.get("restoreJobId")
        if answered is not None:
            answered(
                _json_safe(
                    {
                        "trigger": trigger,
                        "http_status": http_status,
                        "response": shown,
                        "restore_id": restore_id,
                        "restore_job_id": restore_job_id,
                    }
                )
            )

        executions = [arn for arn in stack.executions() if arn not in earlier_executions]
        for arn in executions:
            while True:
                try:
                    stack.wait_for_execution(arn, timeout_s=0.2)
                    break
                except HarnessError:  # still running: show where it is
                    if progress is not None:
                        current = stack.record(restore_id) if restore_id else None
                        progress(
                            Progress(
                                elapsed_seconds=clock.now() - start,
                                status=(current or {}).get("status"),
                                atlas_calls=len(stack.atlas_calls()) - earlier_calls,
                            )
                        )

        record = stack.record(restore_id) if restore_id else None
        if record is None:
            final_status = "REFUSED"  # nothing was created
        else:
            restore_job_id = record.get("restoreJobId", restore_job_id)
            final_status = str(record.get("finalStatus") or "ERROR")
        if progress is not None and executions:
            calls = len(stack.atlas_calls()) - earlier_calls
            progress(Progress(clock.now() - start, (record or {}).get("status"), calls))
        result = {
            "trigger": trigger,
            "http_status": http_status,
            "response": shown,
            "restore_id": restore_id,
            "restore_job_id": restore_job_id,
            "final_status": final_status,
            "record": record,
            "notifications": stack.notifications()[earlier_notifications:],
            "events": stack.events()[earlier_events:],
            "atlas_calls": [
                {"method": c["method"], "path": c["path"], "status": c["status"]}
                for c in stack.atlas_calls()[earlier_calls:]
            ],
            "state_transitions": sum(stack.state_transitions(arn) for arn in executions)
            if executions
            else None,
            "virtual_seconds": round(clock.now() - start, 3),
        }
        if _is_scheduled_list(event):
            # null when the handler raised (a fault: Lambda would retry the whole event)
            result[RESTORES_KEY] = [_element_result(stack, a) for a in listed] if listed else None
    return dict(_json_safe(result))


def _is_scheduled_list(event: dict[str, Any]) -> bool:
    detail = event.get("detail")
    return isinstance(detail, dict) and isinstance(detail.get("request"), list)


def _listed_answers(event: dict[str, Any], answer: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-element answers of a scheduled list (``{"restores": [...]}``), else []."""
    restores = answer.get("restores")
    if not _is_scheduled_list(event) or not isinstance(restores, list):
        return []
    return [r for r in restores if isinstance(r, dict)]


def _element_result(stack: Any, answer: dict[str, Any]) -> dict[str, Any]:
    restore_id = answer.get("restoreId") if isinstance(answer.get("restoreId"), str) else None
    record = stack.record(restore_id) if restore_id else None
    return {
        "index": answer.get("index"),
        "status_code": answer.get("statusCode"),
        "error_code": answer.get("errorCode"),
        "restore_id": restore_id,
        "restore_job_id": (record or {}).get("restoreJobId", answer.get("restoreJobId")),
        "final_status": "REFUSED" if record is None else str(record.get("finalStatus") or "ERROR"),
        "record": record,
    }


# ------------------------------------------------------------------------------------------ the human view


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
    if trigger == "schedule":
        request = json.dumps(detail.get("request"), ensure_ascii=False)
        return [
            f"scheduled verification '{detail.get('schedule')}' at {event.get('time')}",
            f"request: {request}",
        ]
    if trigger == "alarm":
        state = (detail.get("state") or {}).get("value")
        previous = (detail.get("previousState") or {}).get("value")
        return [f"CloudWatch alarm '{detail.get('alarmName')}' went from {previous} to {state}"]
    return [f"an event the intake does not know (keys: {', '.join(sorted(event)[:8])})"]


def _element_summary(element: dict[str, Any]) -> str:
    record = element.get("record") or {}
    if record.get("durationSeconds") is not None:
        label = "RTO" if element["final_status"] == "COMPLETED" else "after"
        return f"{element['final_status']} ({label} {_duration(float(record['durationSeconds']))})"
    if element["final_status"] == "REFUSED" and element.get("error_code"):
        return f"REFUSED ({element['status_code']} {element['error_code']})"
    return str(element["final_status"])


def summary_line(name: str, result: dict[str, Any]) -> str:
    """One line per run: what ran, how it ended, how long it took. A scheduled list: one status when all
    its restores ended alike (else MIXED), then each restore's outcome."""
    restores = result.get(RESTORES_KEY)
    if restores:
        statuses = {element["final_status"] for element in restores}
        status = statuses.pop() if len(statuses) == 1 else "MIXED"
        parts = [f"{name:<40}", f"{status:<9}"]
        parts.append(f"{len(restores)} restores: " + ", ".join(_element_summary(e) for e in restores))
        return "  ".join([*parts, *_summary_tail(result)])
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


def _summary_tail(result: dict[str, Any]) -> list[str]:
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

    def answer(self, answer: dict[str, Any]) -> None:
        response = answer["response"]
        body = response.get("body") if answer["trigger"] == "api" and isinstance(response, dict) else response
        status = f"HTTP {answer['http_status']}" if answer["http_status"] is not None else "answer"
        details = body if isinstance(body, dict) else {}
        listed = details.get("restores") if answer["trigger"] == "schedule" else None
        if isinstance(listed, list):
            self.line(f"Intake   answer: {len(listed)} restores asked for")
            for element in listed:
                where = f"request[{element.get('index')}]"
                if element.get("restoreId"):
                    self.line(
                        f"         {where}: restore {element['restoreId']} created, Atlas restore job "
                        f"{element.get('restoreJobId')} ({element.get('status')}), "
                        f"snapshot {element.get('snapshotId')} of {element.get('source')}"
                    )
                else:
                    self.line(
                        f"         {where}: {element.get('statusCode')} {element.get('errorCode')}: "
                        f"{element.get('message')}"
                    )
        elif answer["restore_id"] and answer["http_status"] == 200:  # GET /restores/{id}: the record
            self.line(
                f"Intake   {status}: restore {answer['restore_id']} is "
                f"{details.get('finalStatus') or details.get('status')}, Atlas restore job "
                f"{answer['restore_job_id']}, requested at {details.get('requestedAt')}"
            )
        elif answer["restore_id"]:
            self.line(
                f"Intake   {status}: restore {answer['restore_id']} created, Atlas restore job "
                f"{answer['restore_job_id']} ({details.get('status')}), snapshot {details.get('snapshotId')}"
            )
        elif answer["trigger"] != "api" and isinstance(body, dict) and "error" in body:
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

    def result(self, result: dict[str, Any], log_path: str | None) -> None:
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
        restores = result.get(RESTORES_KEY)
        if restores:
            for element in restores:
                self.line(f"Outcome  request[{element['index']}] {_element_summary(element)}")
        else:
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
            label = "Record   (request[0]) " if result.get(RESTORES_KEY) else "Record   "
            self.line(
                label
                + json.dumps(result["record"], indent=2, ensure_ascii=False).replace("\n", "\n         ")
            )
        if log_path:
            self.line(f"Logs     {log_path}")


# ------------------------------------------------------------------------------------------ output capture


def _console_log_handlers() -> list[logging.StreamHandler[Any]]:
    """Plain stream handlers: powertools binds one to sys.stdout when a Logger is created (file handlers and
    test-capture subclasses are left alone)."""
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    return [
        handler
        for logger in loggers
        if isinstance(logger, logging.Logger)
        for handler in logger.handlers
        if type(handler) is logging.StreamHandler
    ]


def _set_stream(handler: logging.StreamHandler[Any], stream: Any) -> None:
    # Not setStream(): it flushes the old stream, which may be closed (a finished test's capture).
    handler.acquire()
    try:
        handler.stream = stream
    finally:
        handler.release()


@contextlib.contextmanager
def handler_output_to(log_path: Path) -> Iterator[TextIO]:
    """Send what the handlers write (logs, metrics, moto's noise) to ``log_path``, at every level: fds 1 and
    2, ``sys.stdout``/``sys.stderr``, and logging handlers already bound to the console.

    Yields a stream on the original stdout for the view and the JSON result.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved_out, saved_err = os.dup(1), os.dup(2)
    view = os.fdopen(os.dup(saved_out), "w", encoding="utf-8", errors="replace")
    with open(log_path, "a", encoding="utf-8") as log:
        handlers = _console_log_handlers()
        streams = [handler.stream for handler in handlers]
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        for handler in handlers:
            _set_stream(handler, log)
        try:
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                yield view
        finally:
            for handler, stream in zip(handlers, streams, strict=True):
                _set_stream(handler, stream)
            log.flush()
            view.flush()
            os.dup2(saved_out, 1)
            os.dup2(saved_err, 2)
            os.close(saved_out)
            os.close(saved_err)
            view.close()


# ----------------------------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    from flexrestore.simulator import SCENARIOS

    parser = argparse.ArgumentParser(
        prog="flexrestore-local",
        description="Run one event through the real handlers and the real state machine, offline "
        "(moto for AWS, the local Atlas simulator for Atlas, a virtual clock).",
    )
    parser.add_argument(
        "--event",
        type=Path,
        default=None,
        help=f"the event JSON: a file from events/ or your own (default: {DEFAULT_EVENT})",
    )
    parser.add_argument(
        "--scenario",
        default="ok",
        choices=SCENARIOS,
        metavar="NAME",
        help=f"Atlas behaviour: {', '.join(SCENARIOS)}",
    )
    parser.add_argument(
        "--atlas-url", default=None, help="use this Atlas instead of the simulator (the clock is then real)"
    )
    parser.add_argument(
        "--secret-file",
        type=Path,
        default=None,
        help="with --atlas-url: the Atlas secret's JSON ({clientId, clientSecret} or {publicKey, "
        "privateKey}); default: ATLAS_CLIENT_ID/ATLAS_CLIENT_SECRET or ATLAS_PUBLIC_KEY/ATLAS_PRIVATE_KEY",
    )
    parser.add_argument(
        "--json", action="store_true", help="print exactly one JSON object instead of the view"
    )
    parser.add_argument(
        "--log", type=Path, default=None, help="where the handlers' logs go (default: a temporary file)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = sys.stdout
    try:
        event_path: Path = args.event or DEFAULT_EVENT
        if args.event is None and not event_path.is_file():
            raise UsageError(f"no --event given and no {DEFAULT_EVENT} here; pass --event FILE")
        event = load_event(event_path)
        secret = load_secret(args.secret_file) if args.atlas_url else None
        if args.secret_file and not args.atlas_url:
            raise UsageError(
                "--secret-file only applies with --atlas-url (the simulator has its own credentials)"
            )
    except UsageError as exc:
        print(f"flexrestore-local: {exc}", file=sys.stderr)
        return 2

    from flexrestore.triggers import kind_of as event_kind

    log_path: Path = (
        args.log or Path(tempfile.gettempdir()) / f"flexrestore-local-{os.getpid()}-{int(time.time())}.log"
    )
    mode = (
        f"Atlas at {args.atlas_url}, real clock"
        if args.atlas_url
        else f"Atlas simulator, scenario {args.scenario}, virtual clock"
    )
    view = None if args.json else HumanView(out)
    if view is not None:
        view.header(str(event_path), mode, event, event_kind(event))
    try:
        with handler_output_to(log_path) as terminal:
            if view is not None:
                view.out = terminal
            result = run_flow(
                event,
                scenario=args.scenario,
                atlas_url=args.atlas_url,
                secret=secret,
                progress=view.progress if view is not None else None,
                answered=view.answer if view is not None else None,
            )
    except KeyboardInterrupt:
        print(
            f"\nflexrestore-local: interrupted; the local stack was stopped (logs: {log_path})",
            file=sys.stderr,
        )
        return 130
    except Exception as exc:  # the tool failed, not the restore
        print(
            f"flexrestore-local: the local stack failed: {type(exc).__name__}: {exc} (logs: {log_path})",
            file=sys.stderr,
        )
        return 1
    try:
        if view is not None:
            view.out = out
            view.result(result, str(log_path))
        else:
            out.write(json.dumps(result, ensure_ascii=False) + "\n")
            out.flush()
    except BrokenPipeError:  # the reader went away (| head): not a failure of the flow
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
