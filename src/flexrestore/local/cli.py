"""``flexrestore-local``: run one event through the whole service on this machine (argparse and main only).

The event (any file from ``events/`` or your own) goes to the real intake handler; the poll loop is the real
state-machine definition executed by moto, whose Lambda tasks call the real handlers; Atlas is the local
simulator (``--scenario`` picks its behaviour) on a virtual clock, so a 30-minute restore takes a second.
``--atlas-url`` points the same flow at another Atlas (the real one, say) with the credentials from
``--secret-file`` or the environment; the clock is then real.

Without ``--json`` it shows a person what happens (``local/view.py``); with ``--json`` it prints exactly one
JSON object (:meth:`~flexrestore.local.flow.FlowResult.to_json`: keys in :data:`RESULT_KEYS`). While the
flow runs, the handlers' own output goes to a log file (``--log``; ``local/capture.py``).

Exit codes: 0 whenever the flow ran, whatever the restore's outcome; with ``--fail-on-outcome``, the
restore's ending instead (0 COMPLETED, 3 FAILED, 4 TIMED_OUT, 5 ERROR, 6 REFUSED), the codes of the
``flexrestore`` command. 2 for bad usage (unreadable event, unknown scenario, missing credentials), 1 when
the tool itself failed, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from flexrestore.cli import exit_codes
from flexrestore.local.capture import handler_output_to
from flexrestore.local.flow import RESULT_KEYS, FlowResult, run_flow
from flexrestore.local.inputs import DEFAULT_EVENT, UsageError, load_event, load_secret
from flexrestore.local.view import HumanView

__all__ = ["RESULT_KEYS", "build_parser", "main"]

EXIT_CODES = """exit codes:
  0   the flow ran (with --fail-on-outcome: the restore ended COMPLETED)
  1   the tool itself failed
  2   bad usage (unreadable event, unknown scenario, missing credentials)
  with --fail-on-outcome, when the restore did not complete:
  3   FAILED
  4   TIMED_OUT
  5   ERROR
  6   REFUSED (nothing was created)
  130 interrupted"""


def build_parser() -> argparse.ArgumentParser:
    from flexrestore.simulator import SCENARIOS

    parser = argparse.ArgumentParser(
        prog="flexrestore-local",
        description="Run one event through the real handlers and the real state machine, offline "
        "(moto for AWS, the local Atlas simulator for Atlas, a virtual clock).",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
    parser.add_argument(
        "--fail-on-outcome",
        action="store_true",
        help="exit non-zero when the restore did not end COMPLETED (3 FAILED, 4 TIMED_OUT, 5 ERROR, "
        "6 REFUSED), for CI",
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
        return exit_codes.USAGE

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
            result: FlowResult = run_flow(
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
        return exit_codes.INTERRUPTED
    except Exception as exc:  # the tool failed, not the restore
        print(
            f"flexrestore-local: the local stack failed: {type(exc).__name__}: {exc} (logs: {log_path})",
            file=sys.stderr,
        )
        return exit_codes.TOOL_ERROR
    try:
        if view is not None:
            view.out = out
            view.result(result, str(log_path))
        else:
            out.write(json.dumps(result.to_json(), ensure_ascii=False) + "\n")
            out.flush()
    except BrokenPipeError:  # the reader went away (| head): not a failure of the flow
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    if args.fail_on_outcome:
        return exit_codes.outcome_code([result.final_status])
    return exit_codes.OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
