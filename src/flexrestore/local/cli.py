"""``flexrestore-local``: run one event, or one verification plan once, through the whole service on this
machine (argparse and main only).

- ``--event FILE`` (any file from ``events/`` or your own) goes to the real intake handler; the poll loop is
  the real state-machine definition executed by moto, whose Lambda tasks call the real handlers
  (``local/flow.py``).
- ``--plan FILE`` (JSON, or YAML ending in ``.yaml``/``.yml``) is saved through the real HTTP route
  (``PUT /plans/{name}`` through the intake handler), run once as ``POST /plans/{name}/runs`` does, its run
  followed to its end through the real run state machine, the real poll loop and the real handlers, and
  its run record read back (``GET /runs/{runId}``) (``local/plan_flow.py``). With ``--event`` of the shape
  of ``events/schedule-plan-run.json`` as well, the plan's schedule fires instead, with that event as the
  schedule's input (what EventBridge Scheduler does when it is due).

Atlas is the local simulator (``--scenario`` picks its behaviour) on a virtual clock, so a 30-minute restore
takes a second. ``--atlas-url`` points the same flow at another Atlas (the real one, say) with the
credentials from ``--secret-file`` or the environment; the clock is then real.

Without ``--json`` it shows a person what happens (``local/view.py``); with ``--json`` it prints exactly one
JSON object: for ``--event`` the keys in :data:`RESULT_KEYS`
(:meth:`~flexrestore.local.flow.FlowResult.to_json`); for ``--plan`` the run record's keys plus
``notifications``, ``events``, ``atlas_calls``, ``state_transitions``, ``restore_state_transitions``,
``history_events``, ``virtual_seconds`` (:data:`PLAN_RESULT_KEYS`), or :data:`PLAN_REFUSED_KEYS` when the
API refused the plan. While the flow runs, the handlers' own output goes to a log file (``--log``;
``local/capture.py``).

Exit codes (:data:`EXIT_CODES`): 0 whenever the flow ran, whatever its outcome; with ``--fail-on-outcome``,
the outcome decides instead: for ``--event`` the restore's ending (0 COMPLETED, 3 FAILED, 4 TIMED_OUT,
5 ERROR, 6 REFUSED), the codes of the ``flexrestore`` command; for ``--plan`` the run's (0 SUCCEEDED,
8 PARTIAL, 9 FAILED). A plan the API refuses (``PUT /plans/{name}`` answered 4xx, e.g. 400 naming each bad
field) exits 6 with or without ``--fail-on-outcome``: nothing was saved and nothing ran. 2 for bad usage
(unreadable file, unknown scenario, missing credentials, an ``--event`` that does not go with ``--plan``),
1 when the tool itself failed, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from flexrestore.cli import exit_codes
from flexrestore.local.capture import handler_output_to
from flexrestore.local.flow import RESULT_KEYS, FlowResult, run_flow
from flexrestore.local.inputs import (
    DEFAULT_EVENT,
    UsageError,
    is_plan_run_input,
    load_event,
    load_plan,
    load_secret,
)
from flexrestore.local.plan_flow import (
    PLAN_REFUSED_KEYS,
    PLAN_RESULT_KEYS,
    PlanRefused,
    PlanRunResult,
    run_plan,
)
from flexrestore.local.view import HumanView, RunView

__all__ = [
    "EXIT_CODES",
    "PLAN_REFUSED_KEYS",
    "PLAN_RESULT_KEYS",
    "RESULT_KEYS",
    "RUN_FAILED",
    "RUN_PARTIAL",
    "build_parser",
    "main",
    "run_outcome_code",
]

# With --plan --fail-on-outcome: how the run ended (SUCCEEDED is 0), the codes of the flexrestore command.
RUN_PARTIAL: Final = exit_codes.RUN_PARTIAL
RUN_FAILED: Final = exit_codes.RUN_FAILED

EXIT_CODES = """exit codes:
  0   the flow ran (with --fail-on-outcome: the restore ended COMPLETED, the run SUCCEEDED)
  1   the tool itself failed
  2   bad usage (unreadable file, unknown scenario, missing credentials, an --event that does
      not go with --plan)
  6   --plan: the API refused the plan (PUT /plans/{name} answered 4xx); nothing ran
  with --event --fail-on-outcome, when the restore did not complete:
  3   FAILED
  4   TIMED_OUT
  5   ERROR
  6   REFUSED (nothing was created)
  with --plan --fail-on-outcome, when the run did not succeed:
  8   PARTIAL (some sources were not verified)
  9   FAILED (no source completed)
  130 interrupted"""


def run_outcome_code(final_status: str | None) -> int:
    """``--plan --fail-on-outcome``: 0 SUCCEEDED, 8 PARTIAL, 9 FAILED (or no final status)."""
    return exit_codes.run_code(str(final_status))


def build_parser() -> argparse.ArgumentParser:
    from flexrestore.simulator import SCENARIOS

    parser = argparse.ArgumentParser(
        prog="flexrestore-local",
        description="Run one event, or one verification plan once, through the real handlers and the real "
        "state machines, offline (moto for AWS, the local Atlas simulator for Atlas, a virtual clock).",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--event",
        type=Path,
        default=None,
        help=f"the event JSON: a file from events/ or your own (default without --plan: {DEFAULT_EVENT}); "
        "with --plan, a plan-run input such as events/schedule-plan-run.json: the plan's schedule fires "
        "with it as the schedule's input",
    )
    parser.add_argument(
        "--plan",
        type=Path,
        default=None,
        metavar="FILE",
        help="a verification plan (JSON, or YAML ending in .yaml/.yml): saved with PUT /plans/{name}, "
        "run once as POST /plans/{name}/runs does, followed to its end, its run record read back",
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
        "6 REFUSED) or the run did not end SUCCEEDED (8 PARTIAL, 9 FAILED), for CI",
    )
    return parser


@dataclass(frozen=True)
class _Inputs:
    event_path: Path | None
    event: dict[str, Any] | None
    plan_path: Path | None
    plan: dict[str, Any] | None
    secret: dict[str, str] | None


class _Stop(Exception):
    """Ends main with this exit code (the message has been printed)."""

    def __init__(self, code: int) -> None:
        self.code = code


def _read_inputs(args: argparse.Namespace) -> _Inputs:
    if args.secret_file and not args.atlas_url:
        raise UsageError(
            "--secret-file only applies with --atlas-url (the simulator has its own credentials)"
        )
    plan = load_plan(args.plan) if args.plan is not None else None
    event_path: Path | None = args.event
    if event_path is None and plan is None:
        event_path = DEFAULT_EVENT
        if not event_path.is_file():
            raise UsageError(
                f"no --event given and no {DEFAULT_EVENT} here; pass --event FILE or --plan FILE"
            )
    event = load_event(event_path) if event_path is not None else None
    if event is not None and plan is None and is_plan_run_input(event):
        raise UsageError(
            f"{event_path} is what a plan's schedule sends to the run state machine, not an event for the "
            f"intake: give the plan it runs too (--plan FILE --event {event_path})"
        )
    if event is not None and plan is not None:
        if not is_plan_run_input(event):
            raise UsageError(
                "with --plan, --event must be what the plan's schedule sends (the shape of "
                f"events/schedule-plan-run.json); {event_path} is an event for the intake: "
                "run it without --plan"
            )
        if event["plan"] != plan["name"]:
            raise UsageError(
                f"{event_path} runs the plan {event['plan']!r}, but {args.plan} is the plan {plan['name']!r}"
            )
        if not plan.get("schedule"):
            raise UsageError(
                f"{args.plan} has no schedule to fire: give it one, or leave out --event to run it now"
            )
    secret = load_secret(args.secret_file) if args.atlas_url else None
    return _Inputs(event_path, event, args.plan, plan, secret)


@contextlib.contextmanager
def _stack_failures(log_path: Path) -> Iterator[None]:
    """Ctrl-C and the tool's own failures, said on stderr, as :class:`_Stop`."""
    try:
        yield
    except KeyboardInterrupt:
        print(
            f"\nflexrestore-local: interrupted; the local stack was stopped (logs: {log_path})",
            file=sys.stderr,
        )
        raise _Stop(exit_codes.INTERRUPTED) from None
    except Exception as exc:  # the tool failed, not the restore or the run
        print(
            f"flexrestore-local: the local stack failed: {type(exc).__name__}: {exc} (logs: {log_path})",
            file=sys.stderr,
        )
        raise _Stop(exit_codes.TOOL_ERROR) from None


def _show(write: Callable[[], None]) -> None:
    try:
        write()
    except BrokenPipeError:  # the reader went away (| head): not a failure of the flow
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _print_json(document: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(document, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        inputs = _read_inputs(args)
    except UsageError as exc:
        print(f"flexrestore-local: {exc}", file=sys.stderr)
        return exit_codes.USAGE

    log_path: Path = (
        args.log or Path(tempfile.gettempdir()) / f"flexrestore-local-{os.getpid()}-{int(time.time())}.log"
    )
    mode = (
        f"Atlas at {args.atlas_url}, real clock"
        if args.atlas_url
        else f"Atlas simulator, scenario {args.scenario}, virtual clock"
    )
    try:
        if inputs.plan is not None:
            return _run_plan(args, inputs, log_path, mode)
        return _run_event(args, inputs, log_path, mode)
    except _Stop as stop:
        return stop.code


def _run_event(args: argparse.Namespace, inputs: _Inputs, log_path: Path, mode: str) -> int:
    from flexrestore.triggers import kind_of as event_kind

    assert inputs.event is not None and inputs.event_path is not None
    out = sys.stdout
    view = None if args.json else HumanView(out)
    if view is not None:
        view.header(str(inputs.event_path), mode, inputs.event, event_kind(inputs.event))
    with _stack_failures(log_path), handler_output_to(log_path) as terminal:
        if view is not None:
            view.out = terminal
        result: FlowResult = run_flow(
            inputs.event,
            scenario=args.scenario,
            atlas_url=args.atlas_url,
            secret=inputs.secret,
            progress=view.progress if view is not None else None,
            answered=view.answer if view is not None else None,
        )
    if view is not None:
        view.out = out
        _show(lambda: view.result(result, str(log_path)))
    else:
        _show(lambda: _print_json(result.to_json()))
    if args.fail_on_outcome:
        return exit_codes.outcome_code([result.final_status])
    return exit_codes.OK


def _run_plan(args: argparse.Namespace, inputs: _Inputs, log_path: Path, mode: str) -> int:
    assert inputs.plan is not None
    out = sys.stdout
    view = None if args.json else RunView(out)
    if view is not None:
        view.header(
            str(inputs.plan_path), mode, inputs.plan, str(inputs.event_path) if inputs.event else None
        )
    refused: PlanRefused | None = None
    result: PlanRunResult | None = None
    with _stack_failures(log_path), handler_output_to(log_path) as terminal:
        if view is not None:
            view.out = terminal
        try:
            result = run_plan(
                inputs.plan,
                scenario=args.scenario,
                atlas_url=args.atlas_url,
                secret=inputs.secret,
                schedule_input=inputs.event,
                saved=view.saved if view is not None else None,
                started=view.started if view is not None else None,
                progress=view.progress if view is not None else None,
            )
        except PlanRefused as exc:
            refused = exc
    if view is not None:
        view.out = out
    if refused is not None:
        refusal = refused
        _show(lambda: view.refused(refusal) if view is not None else _print_json(refusal.to_json()))
        return exit_codes.REFUSED
    assert result is not None
    ran = result
    _show(lambda: view.result(ran, str(log_path)) if view is not None else _print_json(ran.to_json()))
    if args.fail_on_outcome:
        return run_outcome_code(ran.final_status)
    return exit_codes.OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
