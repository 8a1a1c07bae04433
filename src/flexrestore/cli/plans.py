"""``flexrestore plan apply|list|get|delete|run`` and ``flexrestore run get|list|watch``: verification plans
and their runs, over the HTTP API (``/plans``, ``/runs``).

Plans are files people keep in their own repository, JSON or YAML (YAML needs PyYAML: ``pipx install
'flexrestore[cli]'``); ``apply`` sends each as JSON to ``PUT /plans/{name}`` and says what changed. A run
ends ``SUCCEEDED``, ``PARTIAL`` or ``FAILED``; ``plan run --watch`` and ``run watch`` exit with its code.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from flexrestore.cli import exit_codes
from flexrestore.cli.api import Api, CliError, raise_for_answer
from flexrestore.cli.render import duration, key_values, table, write_json, write_lines
from flexrestore.cli.restore import DEFAULT_WATCH_INTERVAL, MAX_TRANSIENT_ERRORS, Streams, _seconds

MAX_PLAN_FILE_BYTES = 512 * 1024


def register_plan(subparsers: Any, parents: Sequence[argparse.ArgumentParser], epilog: str) -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    group = subparsers.add_parser(
        "plan",
        help="save, list, delete and run verification plans",
        description="Verification plans: which clusters to restore, when, from which snapshot and how fast "
        "(README: Backup verification). Files are JSON or YAML.",
        epilog=epilog,
        formatter_class=formatter,
    )
    group.set_defaults(command=None, help_of=group)
    commands = group.add_subparsers(title="commands", metavar="COMMAND")

    apply = commands.add_parser(
        "apply",
        parents=parents,
        help="create or replace plans from files (PUT /plans/{name})",
        description='Save each plan file (its name is the plan\'s "name"); prints what changed. A refused '
        "plan prints every bad field; the other files are still applied (exit code: the first refusal).",
        epilog=epilog,
        formatter_class=formatter,
    )
    apply.add_argument("files", nargs="+", metavar="FILE", type=Path, help="plan files (.json, .yaml, .yml)")
    apply.set_defaults(command=apply_plans)

    listing = commands.add_parser(
        "list", parents=parents, help="list the plans (GET /plans)", epilog=epilog, formatter_class=formatter
    )
    listing.set_defaults(command=list_plans)

    get = commands.add_parser(
        "get",
        parents=parents,
        help="show one plan (GET /plans/{name})",
        description="The saved plan (defaults filled in), its revision and schedule.",
        epilog=epilog,
        formatter_class=formatter,
    )
    get.add_argument("name", metavar="NAME")
    get.set_defaults(command=get_plan)

    delete = commands.add_parser(
        "delete",
        parents=parents,
        help="delete a plan and its schedule (DELETE /plans/{name})",
        epilog=epilog,
        formatter_class=formatter,
    )
    delete.add_argument("name", metavar="NAME")
    delete.set_defaults(command=delete_plan)

    run = commands.add_parser(
        "run",
        parents=parents,
        help="run a plan now (POST /plans/{name}/runs)",
        description="Start a run of the plan. With --watch, follow it to its end: the exit code is 0 only "
        "when the run SUCCEEDED (every source verified).",
        epilog=epilog,
        formatter_class=formatter,
    )
    run.add_argument("name", metavar="NAME")
    run.add_argument(
        "--idempotency-key", metavar="KEY", help="a retried request with the same key names the same run"
    )
    run.add_argument("--watch", action="store_true", help="then follow the run to its end")
    run.add_argument(
        "--interval",
        type=_seconds,
        default=DEFAULT_WATCH_INTERVAL,
        metavar="S",
        help=f"with --watch: seconds between looks (default {DEFAULT_WATCH_INTERVAL:g})",
    )
    run.set_defaults(command=run_plan)


def register_run(subparsers: Any, parents: Sequence[argparse.ArgumentParser], epilog: str) -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    group = subparsers.add_parser(
        "run",
        help="show and follow verification runs",
        description="Verification runs: one per run of a plan, with every source's outcome and the summary.",
        epilog=epilog,
        formatter_class=formatter,
    )
    group.set_defaults(command=None, help_of=group)
    commands = group.add_subparsers(title="commands", metavar="COMMAND")

    get = commands.add_parser(
        "get",
        parents=parents,
        help="show one run (GET /runs/{runId})",
        description="The run record: status, summary and a table of the sources with status and RTO.",
        epilog=epilog,
        formatter_class=formatter,
    )
    get.add_argument("run_id", metavar="RUN_ID")
    get.set_defaults(command=get_run)

    listing = commands.add_parser(
        "list",
        parents=parents,
        help="list runs, newest first (GET /runs)",
        epilog=epilog,
        formatter_class=formatter,
    )
    listing.add_argument("--plan", metavar="NAME", help="only runs of this plan")
    listing.add_argument(
        "--limit", type=int, default=20, metavar="N", help="at most N (1 to 100; default 20)"
    )
    listing.add_argument("--next-token", metavar="TOKEN", help="the next page (as the previous page said)")
    listing.set_defaults(command=list_runs)

    watch = commands.add_parser(
        "watch",
        parents=parents,
        help="follow a run to its end",
        description="Follow a run until it ends, then show its record. Exit code: 0 SUCCEEDED, "
        f"{exit_codes.RUN_PARTIAL} PARTIAL, {exit_codes.RUN_FAILED} FAILED.",
        epilog=epilog,
        formatter_class=formatter,
    )
    watch.add_argument("run_id", metavar="RUN_ID")
    watch.add_argument(
        "--interval",
        type=_seconds,
        default=DEFAULT_WATCH_INTERVAL,
        metavar="S",
        help=f"seconds between looks (default {DEFAULT_WATCH_INTERVAL:g})",
    )
    watch.set_defaults(command=watch_run)


def _plan_path(name: str, *rest: str) -> str:
    return "/".join(["/plans", quote(name, safe=""), *rest])


# ------------------------------------------------------------------------------------------------ plans


def read_plan(path: Path) -> dict[str, Any]:
    """A plan file as the JSON object it holds; a CliError (usage) naming the file otherwise."""
    try:
        if path.stat().st_size > MAX_PLAN_FILE_BYTES:
            raise CliError(f"{path}: larger than {MAX_PLAN_FILE_BYTES // 1024} KiB", exit_codes.USAGE)
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"{path}: cannot read it ({exc.__class__.__name__})", exit_codes.USAGE) from None
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise CliError(
                f"{path}: YAML plans need PyYAML: pipx install 'flexrestore[cli]' (or use JSON)",
                exit_codes.USAGE,
            ) from None
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise CliError(f"{path}: not valid YAML: {exc}", exit_codes.USAGE) from None
    else:
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise CliError(f"{path}: not valid JSON: {exc}", exit_codes.USAGE) from None
    if not isinstance(document, dict) or not isinstance(document.get("name"), str):
        raise CliError(f'{path}: a plan is an object with a "name"', exit_codes.USAGE)
    return document


def apply_plans(args: argparse.Namespace, api: Api, streams: Streams) -> int:
    documents = [(path, read_plan(path)) for path in args.files]  # every file readable before any PUT
    results: list[dict[str, Any]] = []
    code = exit_codes.OK
    for path, document in documents:
        answer = api.request("PUT", _plan_path(document["name"]), body=document)
        if answer.status in (200, 201):
            body = answer.body if isinstance(answer.body, dict) else {}
            results.append({"file": str(path), "statusCode": answer.status, **body})
            if not streams.json:
                streams.out.write(_applied_line(body) + "\n")
            continue
        try:
            raise_for_answer(answer, f"apply {path}")
        except CliError as exc:
            if exc.code != exit_codes.REFUSED:
                raise
            code = code or exc.code
            body = answer.body if isinstance(answer.body, dict) else {}
            results.append({"file": str(path), "statusCode": answer.status, "error": body})
            if not streams.json:
                lines = [f"refused  {document['name']} ({path}): {body.get('message')}"]
                lines += [f"  {e.get('field')}: {e.get('message')}" for e in body.get("errors") or []]
                write_lines(streams.err, lines)
    if streams.json:
        write_json(streams.out, {"applied": results})
    streams.out.flush()
    return code


def _applied_line(body: Mapping[str, Any]) -> str:
    name, revision = body.get("name"), body.get("revision")
    schedule = body.get("scheduleName")
    when = (
        f", scheduled {((body.get('plan') or {}).get('schedule') or {}).get('expression')}"
        if schedule
        else ""
    )
    if body.get("created"):
        return f"created  {name} (revision {revision}{when})"
    changes = body.get("changes") or []
    if not changes:
        return f"unchanged {name} (revision {revision})"
    return f"updated  {name}: {', '.join(changes)} (revision {revision}{when})"


def list_plans(args: argparse.Namespace, api: Api, streams: Streams) -> int:
    answer = api.request("GET", "/plans")
    raise_for_answer(answer, "list")
    body = answer.body if isinstance(answer.body, dict) else {}
    if streams.json:
        write_json(streams.out, body)
        return exit_codes.OK
    plans = [p for p in body.get("plans") or [] if isinstance(p, dict)]
    if not plans:
        streams.out.write("No plans.\n")
        return exit_codes.OK
    rows = [
        (
            p.get("name"),
            p.get("revision"),
            _schedule_words(p.get("plan") or {}),
            len((p.get("plan") or {}).get("sources") or []),
            p.get("updatedAt"),
        )
        for p in plans
    ]
    write_lines(streams.out, table(rows, ("NAME", "REVISION", "SCHEDULE", "SOURCES", "UPDATED AT")))
    return exit_codes.OK


def _schedule_words(plan: Mapping[str, Any]) -> str:
    schedule = plan.get("schedule")
    if not isinstance(schedule, dict):
        return "on demand"
    return f"{schedule.get('expression')} {schedule.get('timezone') or 'UTC'}"


def get_plan(args: argparse.Namespace, api: Api, streams: Streams) -> int:
    answer = api.request("GET", _plan_path(args.name))
    raise_for_answer(answer, "get")
    body = answer.body if isinstance(answer.body, dict) else {}
    if streams.json:
        write_json(streams.out, body)
        return exit_codes.OK
    plan = body.get("plan") or {}
    lines = key_values(
        [
            ("Plan", f"{body.get('name')}  revision {body.get('revision')}"),
            ("Schedule", _schedule_words(plan)),
            ("Updated", f"{body.get('updatedAt')} by {body.get('updatedBy') or 'unknown'}"),
            ("Sources", len(plan.get("sources") or [])),
        ]
    )
    write_lines(streams.out, [*lines, "", json.dumps(plan, indent=2, ensure_ascii=False)])
    return exit_codes.OK


def delete_plan(args: argparse.Namespace, api: Api, streams: Streams) -> int:
    answer = api.request("DELETE", _plan_path(args.name))
    raise_for_answer(answer, "delete")
    body = answer.body if isinstance(answer.body, dict) else {}
    if streams.json:
        write_json(streams.out, body)
    else:
        gone = f" and its schedule {body['scheduleDeleted']}" if body.get("scheduleDeleted") else ""
        streams.out.write(f"deleted  {body.get('deleted')}{gone}\n")
    return exit_codes.OK


def run_plan(args: argparse.Namespace, api: Api, streams: Streams) -> int:
    headers = {"Idempotency-Key": args.idempotency_key} if args.idempotency_key else None
    answer = api.request("POST", _plan_path(args.name, "runs"), headers=headers)
    raise_for_answer(answer, "run")
    body = answer.body if isinstance(answer.body, dict) else {}
    run_id = str(body.get("runId") or "")
    if not args.watch:
        if streams.json:
            write_json(streams.out, body)
        else:
            streams.out.write(f"Run      {run_id}  started (HTTP {answer.status})\n")
            streams.out.write(f"Follow it:  flexrestore run watch {run_id}\n")
        return exit_codes.OK
    if not streams.json:
        streams.out.write(f"Run      {run_id}  started (HTTP {answer.status})\n")
    return _watch_run(api, run_id, args.interval, streams)


# ------------------------------------------------------------------------------------------------- runs


def _run_path(run_id: str) -> str:
    return "/runs/" + quote(run_id, safe="")


def run_lines(record: Mapping[str, Any]) -> list[str]:
    """A run record for a person: the result, then a table of the sources (status and RTO)."""
    summary = record.get("summary") or {}
    error = record.get("error")
    head = key_values(
        [
            ("Run", f"{record.get('runId')}  {record.get('finalStatus') or 'RUNNING'}"),
            ("Plan", record.get("plan")),
            ("Started", record.get("startedAt")),
            ("Finished", record.get("finishedAt")),
            (
                "Verified",
                f"{summary.get('verified')} of {summary.get('total')} "
                f"({summary.get('completed')} completed, {summary.get('refused')} refused, "
                f"{summary.get('objectiveMissed')} over the RTO objective)"
                if summary
                else None,
            ),
            (
                "RTO",
                f"median {duration(float(summary['rtoMedianSeconds']))}, "
                f"longest {duration(float(summary['rtoMaxSeconds']))}"
                if summary.get("rtoMaxSeconds") is not None
                else None,
            ),
            ("Error", f"{error.get('code')}: {error.get('message')}" if isinstance(error, dict) else None),
        ]
    )
    rows = [
        (
            s.get("index"),
            s.get("clusterName") or "-",
            s.get("targetDeploymentItemName"),
            s.get("finalStatus"),
            duration(float(s["durationSeconds"])) if s.get("durationSeconds") is not None else None,
            _objective(s.get("objectiveMet")),
            (s.get("error") or {}).get("code"),
        )
        for s in record.get("sources") or []
        if isinstance(s, dict)
    ]
    if not rows:
        return head
    return [*head, "", *table(rows, ("#", "SOURCE", "TARGET", "STATUS", "RTO", "OBJECTIVE", "ERROR"))]


def _objective(met: Any) -> str | None:
    if met is None:
        return None
    return "met" if met else "MISSED"


def get_run(args: argparse.Namespace, api: Api, streams: Streams) -> int:
    answer = api.request("GET", _run_path(args.run_id))
    raise_for_answer(answer, "get")
    body = answer.body if isinstance(answer.body, dict) else {}
    if streams.json:
        write_json(streams.out, body)
    else:
        write_lines(streams.out, run_lines(body))
    return exit_codes.OK


def list_runs(args: argparse.Namespace, api: Api, streams: Streams) -> int:
    query = {"plan": args.plan, "limit": args.limit, "nextToken": args.next_token}
    answer = api.request("GET", "/runs", query=query)
    raise_for_answer(answer, "list")
    body = answer.body if isinstance(answer.body, dict) else {}
    if streams.json:
        write_json(streams.out, body)
        return exit_codes.OK
    runs = [r for r in body.get("runs") or [] if isinstance(r, dict)]
    if not runs:
        streams.out.write("No runs.\n")
    else:
        rows = [
            (
                r.get("runId"),
                r.get("plan"),
                r.get("startedAt"),
                r.get("finalStatus") or "RUNNING",
                f"{(r.get('summary') or {}).get('verified')}/{(r.get('summary') or {}).get('total')}"
                if r.get("summary")
                else None,
            )
            for r in runs
        ]
        write_lines(streams.out, table(rows, ("RUN ID", "PLAN", "STARTED AT", "STATUS", "VERIFIED")))
    if body.get("nextToken"):
        streams.out.write(f"More: add --next-token {body['nextToken']}\n")
    return exit_codes.OK


def watch_run(args: argparse.Namespace, api: Api, streams: Streams) -> int:
    return _watch_run(api, args.run_id, args.interval, streams)


def _watch_run(api: Api, run_id: str, interval: float, streams: Streams) -> int:
    started = streams.clock()
    live = not streams.json and streams.out.isatty()
    errors = 0
    record: dict[str, Any] = {}
    try:
        while True:
            answer = api.request("GET", _run_path(run_id))
            if answer.status == 404 or answer.status >= 500:
                # Not written yet (the run's first step is a moment away), or a passing fault: look again.
                errors = errors + 1 if answer.status >= 500 else errors
                if errors > MAX_TRANSIENT_ERRORS:
                    raise_for_answer(answer, "watch")
                streams.sleep(interval)
                continue
            raise_for_answer(answer, "watch")
            record = answer.body if isinstance(answer.body, dict) else {}
            if record.get("finalStatus"):
                break
            if live:
                line = (
                    f"{run_id}  {record.get('plan')}  RUNNING  elapsed {duration(streams.clock() - started)}"
                )
                streams.out.write("\r" + line.ljust(100))
                streams.out.flush()
            streams.sleep(interval)
    except KeyboardInterrupt:
        streams.err.write(
            f"\nflexrestore: stopped watching; the run goes on (flexrestore run watch {run_id})\n"
        )
        return exit_codes.INTERRUPTED
    if streams.json:
        write_json(streams.out, record)
    else:
        if live:
            streams.out.write("\n")
        write_lines(streams.out, run_lines(record))
    return exit_codes.run_code(str(record.get("finalStatus")))
