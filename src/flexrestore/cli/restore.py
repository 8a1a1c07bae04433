"""``flexrestore restore start|get|list|watch``: the restore commands, over the HTTP API.

Each command function takes the parsed arguments, an :class:`~flexrestore.cli.api.Api` and the output
streams, writes its output and returns the exit code (:mod:`flexrestore.cli.exit_codes`).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, TextIO
from urllib.parse import quote

from flexrestore.cli import exit_codes
from flexrestore.cli.api import Api, ApiAnswer, CliError, raise_for_answer
from flexrestore.cli.render import (
    duration,
    key_values,
    record_lines,
    restore_status,
    table,
    write_json,
    write_lines,
)

DEFAULT_WATCH_INTERVAL = 10.0  # the service itself looks at Atlas every 10 s at the most
MAX_TRANSIENT_ERRORS = 5  # in a row, while watching: 5xx answers or the API out of reach


@dataclass
class Streams:
    out: TextIO
    err: TextIO
    json: bool
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic


Command = Callable[[argparse.Namespace, Api, Streams], int]


def register(subparsers: Any, parents: Sequence[argparse.ArgumentParser], epilog: str) -> None:
    """Add ``restore`` and its subcommands to the top-level parser's subparsers."""
    formatter = argparse.RawDescriptionHelpFormatter
    group = subparsers.add_parser(
        "restore",
        help="start, follow and list restores",
        description="Start, follow and list restores of Atlas Flex snapshots through the deployed API.",
        epilog=epilog,
        formatter_class=formatter,
    )
    group.set_defaults(command=None, help_of=group)
    commands = group.add_subparsers(title="commands", metavar="COMMAND")

    start = commands.add_parser(
        "start",
        parents=parents,
        help="ask for a restore (POST /restores)",
        description="Ask for a restore of a snapshot into a target Flex cluster, which it OVERWRITES. The "
        "service's guards refuse protected, busy or foreign targets first; --dry-run shows every guard's "
        "verdict and creates nothing.",
        epilog=epilog,
        formatter_class=formatter,
    )
    start.add_argument("--group", required=True, metavar="PROJECT_ID", help="source project id (groupId)")
    start.add_argument("--cluster", required=True, metavar="NAME", help="source Flex cluster")
    start.add_argument("--target", required=True, metavar="NAME", help="target Flex cluster (overwritten)")
    start.add_argument(
        "--target-project", metavar="PROJECT_ID", help="target's project id (default: the source project)"
    )
    start.add_argument(
        "--snapshot", default="latest", metavar="ID|latest", help="snapshot id, or latest (the default)"
    )
    start.add_argument("--reason", help="why (kept on the record and in the notification)")
    start.add_argument("--dry-run", action="store_true", help="run every guard, create nothing")
    start.add_argument(
        "--idempotency-key",
        metavar="KEY",
        help="a retried start with the same key gets the first answer (1 to 128 printable ASCII characters)",
    )
    start.add_argument(
        "--watch", action="store_true", help="then follow it to its end (exit code: its outcome)"
    )
    start.add_argument(
        "--interval",
        type=_seconds,
        default=DEFAULT_WATCH_INTERVAL,
        metavar="S",
        help=f"with --watch: seconds between looks (default {DEFAULT_WATCH_INTERVAL:g})",
    )
    start.set_defaults(command=start_restore)

    get = commands.add_parser(
        "get",
        parents=parents,
        help="show one restore (GET /restores/{id})",
        description="Show one restore's record: status, source, target, who asked, Atlas job, RTO, timeline.",
        epilog=epilog,
        formatter_class=formatter,
    )
    get.add_argument("restore_id", metavar="RESTORE_ID")
    get.set_defaults(command=get_restore)

    listing = commands.add_parser(
        "list",
        parents=parents,
        help="list restores, newest first (GET /restores)",
        description="List restores, newest first.",
        epilog=epilog,
        formatter_class=formatter,
    )
    listing.add_argument("--cluster", metavar="NAME", help="only restores of this source cluster")
    listing.add_argument("--group", metavar="PROJECT_ID", help="only restores of this source project")
    listing.add_argument(
        "--limit", type=int, default=20, metavar="N", help="at most N (1 to 100; default 20)"
    )
    listing.add_argument("--next-token", metavar="TOKEN", help="the next page (as the previous page said)")
    listing.set_defaults(command=list_restores)

    watch = commands.add_parser(
        "watch",
        parents=parents,
        help="follow a restore to its end",
        description="Follow a restore until it ends: a live line with the Atlas job's status and the time "
        "since the restore was requested, then the final record. The exit code is the outcome: 0 only "
        "for COMPLETED, 3 FAILED, 4 TIMED_OUT, 5 ERROR.",
        epilog=epilog,
        formatter_class=formatter,
    )
    watch.add_argument("restore_id", metavar="RESTORE_ID")
    watch.add_argument(
        "--interval",
        type=_seconds,
        default=DEFAULT_WATCH_INTERVAL,
        metavar="S",
        help=f"seconds between looks (default {DEFAULT_WATCH_INTERVAL:g})",
    )
    watch.set_defaults(command=watch_restore)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError("must be more than 0 and at most 3600 seconds")
    return value


def _restore_path(restore_id: str) -> str:
    return "/restores/" + quote(restore_id, safe="")


# ---------------------------------------------------------------------------------------------- start


def start_restore(args: argparse.Namespace, api: Api, streams: Streams) -> int:
    request: dict[str, Any] = {
        "groupId": args.group,
        "clusterName": args.cluster,
        "targetDeploymentItemName": args.target,
        "snapshotId": args.snapshot,
    }
    if args.target_project:
        request["targetProjectId"] = args.target_project
    if args.reason:
        request["reason"] = args.reason
    if args.dry_run:
        request["dryRun"] = True
    headers = {"Idempotency-Key": args.idempotency_key} if args.idempotency_key else None
    answer = api.request("POST", "/restores", body=request, headers=headers)
    raise_for_answer(answer, "start")
    body: dict[str, Any] = answer.body if isinstance(answer.body, dict) else {}

    if body.get("dryRun"):
        if streams.json:
            write_json(streams.out, body)
        else:
            write_lines(streams.out, _dry_run_lines(body))
        return exit_codes.OK if body.get("allowed") else exit_codes.REFUSED

    restore_id = str(body.get("restoreId") or "")
    if not args.watch:
        if streams.json:
            write_json(
                streams.out, {**body, "location": answer.headers.get("location", body.get("location"))}
            )
        else:
            write_lines(streams.out, _started_lines(body, answer))
            streams.out.write(f"Follow it:  flexrestore restore watch {restore_id}\n")
        return exit_codes.OK
    if not streams.json:
        write_lines(streams.out, _started_lines(body, answer))
    return _watch(api, restore_id, args.interval, streams)


def _started_lines(body: Mapping[str, Any], answer: ApiAnswer) -> list[str]:
    return key_values(
        [
            ("Restore", f"{body.get('restoreId')}  accepted (HTTP {answer.status})"),
            ("Atlas job", f"{body.get('restoreJobId')}  {body.get('status')}"),
            ("Source", body.get("source")),
            ("Snapshot", body.get("snapshotId")),
            ("Target", f"{body.get('targetDeploymentItemName')} in project {body.get('targetProjectId')}"),
            ("Break glass", "yes" if body.get("breakGlass") else None),
            ("Location", answer.headers.get("location") or body.get("location")),
        ]
    )


def _dry_run_lines(body: Mapping[str, Any]) -> list[str]:
    would = body.get("wouldRestore") or {}
    lines = [
        f"Dry run: {body.get('message')}",
        f"Would restore {would.get('source')} snapshot {would.get('snapshotId')} "
        f"(finished {would.get('snapshotFinishedAt')}, MongoDB {would.get('snapshotMongoDBVersion')}) "
        f"into {would.get('targetDeploymentItemName')} in project {would.get('targetProjectId')}",
        "",
    ]
    rows = [
        (v.get("guard"), "pass" if v.get("allowed") else f"REFUSE {v.get('status')}", v.get("message"))
        for v in body.get("verdicts") or []
        if isinstance(v, dict)
    ]
    return lines + table(rows, ("GUARD", "VERDICT", "MESSAGE"))


# ------------------------------------------------------------------------------------------------ get


def get_restore(args: argparse.Namespace, api: Api, streams: Streams) -> int:
    answer = api.request("GET", _restore_path(args.restore_id))
    raise_for_answer(answer, "get")
    if streams.json:
        write_json(streams.out, answer.body)
    else:
        write_lines(streams.out, record_lines(answer.body if isinstance(answer.body, dict) else {}))
    return exit_codes.OK


# ----------------------------------------------------------------------------------------------- list


def list_restores(args: argparse.Namespace, api: Api, streams: Streams) -> int:
    query = {
        "cluster": args.cluster,
        "groupId": args.group,
        "limit": args.limit,
        "nextToken": args.next_token,
    }
    answer = api.request("GET", "/restores", query=query)
    raise_for_answer(answer, "list")
    body: dict[str, Any] = answer.body if isinstance(answer.body, dict) else {}
    if streams.json:
        write_json(streams.out, body)
        return exit_codes.OK
    records = [r for r in body.get("restores") or [] if isinstance(r, dict)]
    if not records:
        streams.out.write("No restores.\n")
    else:
        rows = [
            (
                r.get("restoreId"),
                r.get("requestedAt"),
                r.get("source"),
                r.get("targetDeploymentItemName"),
                restore_status(r),
                duration(float(r["durationSeconds"])) if r.get("durationSeconds") is not None else None,
            )
            for r in records
        ]
        write_lines(
            streams.out, table(rows, ("RESTORE ID", "REQUESTED AT", "SOURCE", "TARGET", "STATUS", "RTO"))
        )
    if body.get("nextToken"):
        streams.out.write(f"More: add --next-token {body['nextToken']}\n")
    streams.out.flush()
    return exit_codes.OK


# ---------------------------------------------------------------------------------------------- watch


def _since_requested(record: Mapping[str, Any], answer: ApiAnswer) -> float | None:
    """Seconds from the restore's ``requestedAt`` to the answer's ``Date`` (both the service's clock), or
    None when either is missing (the watch then counts from its own start)."""
    try:
        requested = datetime.fromisoformat(str(record["requestedAt"]).replace("Z", "+00:00"))
        answered = parsedate_to_datetime(answer.headers["date"])
        seconds = (answered - requested).total_seconds()
    except (KeyError, TypeError, ValueError):
        return None
    return max(seconds, 0.0)


def watch_restore(args: argparse.Namespace, api: Api, streams: Streams) -> int:
    return _watch(api, args.restore_id, args.interval, streams)


def _watch(api: Api, restore_id: str, interval: float, streams: Streams) -> int:
    started = streams.clock()
    live = not streams.json and streams.out.isatty()
    shown: str | None = None
    errors = 0
    try:
        while True:
            try:
                answer = api.request("GET", _restore_path(restore_id))
                raise_for_answer(answer, "watch")
            except CliError as exc:
                if exc.code != exit_codes.TOOL_ERROR or errors >= MAX_TRANSIENT_ERRORS:
                    raise
                errors += 1  # a 5xx or the API out of reach: look again
                streams.sleep(interval)
                continue
            errors = 0
            record: dict[str, Any] = answer.body if isinstance(answer.body, dict) else {}
            final = record.get("finalStatus")
            if not streams.json:
                elapsed = _since_requested(record, answer)
                line = (
                    f"{restore_id}  {record.get('source')} -> {record.get('targetDeploymentItemName')}  "
                    f"Atlas {record.get('status') or 'unknown'}  "
                    f"elapsed {duration(streams.clock() - started if elapsed is None else elapsed)}"
                )
                status = str(record.get("status"))
                if live:
                    streams.out.write("\r" + line.ljust(100))
                    streams.out.flush()
                elif status != shown:
                    streams.out.write(line + "\n")
                    streams.out.flush()
                shown = status
            if final:
                break
            streams.sleep(interval)
    except KeyboardInterrupt:
        if live:
            streams.out.write("\n")
        streams.err.write(
            f"flexrestore: stopped watching; the restore goes on (flexrestore restore watch {restore_id})\n"
        )
        return exit_codes.INTERRUPTED
    if streams.json:
        write_json(streams.out, record)
    else:
        if live:
            streams.out.write("\n")
        write_lines(streams.out, ["", *record_lines(record)])
    return exit_codes.outcome_code([str(final)])
