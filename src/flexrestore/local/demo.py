"""``make demo``: every sample event in ``events/`` and every sample plan in ``examples/plans/`` through the
whole service offline, a few Atlas misbehaviours on the API sample, then one summary line per run.

    python -m flexrestore.local.demo [--events DIR] [--plans DIR]

Each event runs as ``flexrestore-local --event FILE [--scenario NAME]`` does (same code, fresh offline stack
each time), except:

- the GET sample: it runs on the stack where the sample POST has just run to its end, so it reads that
  restore (the POST's restoreId follows from its Idempotency-Key and caller; the GET sample asks for it);
- a plan-run sample (``events/schedule-plan-run.json``, what a plan's schedule sends to the run state
  machine): it runs with the plan it names, from the plans folder, as ``flexrestore-local --plan PLAN
  --event FILE`` does: the plan is saved and its schedule fires with the sample as its input.

Each plan then runs once as ``flexrestore-local --plan FILE`` does (saved with ``PUT /plans/{name}``, run
with ``POST /plans/{name}/runs``, followed to its end, its run record read back); its summary line says how
the run ended, its counts and RTOs, and what it cost. Exit code 0 when every flow ran, whatever the
outcomes; 2 when a sample cannot be read (or a plan-run sample's plan is not in the plans folder); 1 when
the tool itself failed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flexrestore.local.capture import handler_output_to
from flexrestore.local.flow import FlowResult, run_flow
from flexrestore.local.inputs import YAML_SUFFIXES, UsageError, is_plan_run_input, load_event, load_plan
from flexrestore.local.plan_flow import PlanRefused, PlanRunResult, run_plan
from flexrestore.local.view import HumanView, RunView, plan_summary_line, refused_plan_line, summary_line

# Atlas behaving badly, on the API sample: the outcome is recorded and notified every time.
EXTRA_SCENARIOS = ("fail", "flaky", "rate-limited", "never-finishes")
API_SAMPLE = "api-post-restore.json"
# Sample -> the sample that runs first on the same stack.
RUNS_AFTER = {"api-get-restore.json": API_SAMPLE}
MODE = "Atlas simulator, scenario {scenario}, virtual clock"


def _folder(given: Path | None, relative: Path) -> Path:
    if given is not None:
        return given
    if relative.is_dir():
        return relative
    return Path(__file__).resolve().parents[3] / relative  # a source checkout, run from elsewhere


def _plans(folder: Path) -> dict[str, tuple[Path, dict[str, Any]]]:
    """Every plan in ``folder`` (JSON and YAML), by name."""
    found: dict[str, tuple[Path, dict[str, Any]]] = {}
    if not folder.is_dir():
        return found
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in (".json", *YAML_SUFFIXES)):
        plan = load_plan(path)
        found[str(plan["name"])] = (path, plan)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flexrestore.local.demo", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--events", type=Path, default=None, help="folder of sample events (default: events/)"
    )
    parser.add_argument(
        "--plans", type=Path, default=None, help="folder of sample plans (default: examples/plans/)"
    )
    args = parser.parse_args(argv)

    folder = _folder(args.events, Path("events"))
    files = sorted(folder.glob("*.json"))
    if not files:
        print(f"demo: no sample events (*.json) in {folder}", file=sys.stderr)
        return 2
    plans_folder = _folder(args.plans, Path("examples") / "plans")
    try:
        plans = _plans(plans_folder)
    except UsageError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 2

    log_path = Path(tempfile.gettempdir()) / f"flexrestore-demo-{os.getpid()}-{int(time.time())}.log"
    runs: list[tuple[str, Callable[[], str]]] = []
    for path in files:
        try:
            event = load_event(path)
        except UsageError as exc:
            print(f"demo: {exc}", file=sys.stderr)
            return 2
        if is_plan_run_input(event):
            if event["plan"] not in plans:
                print(
                    f"demo: {path.name} runs the plan {event['plan']!r}, which is not in {plans_folder}",
                    file=sys.stderr,
                )
                return 2
            plan_path, plan = plans[event["plan"]]
            name = f"{path.name} ({event['plan']})"
            runs.append((name, _plan_run(name, plan_path, plan, log_path, schedule=(path, event))))
        else:
            runs.append((path.name, _event_run(folder, path, "ok", log_path)))
    if (folder / API_SAMPLE).is_file():
        runs += [
            (f"{API_SAMPLE} [{scenario}]", _event_run(folder, folder / API_SAMPLE, scenario, log_path))
            for scenario in EXTRA_SCENARIOS
        ]
    runs += [
        (f"plan {name}", _plan_run(f"plan {name}", path, plan, log_path))
        for name, (path, plan) in plans.items()
    ]

    summaries: list[str] = []
    started = time.monotonic()
    for name, run in runs:
        try:
            summaries.append(run())
        except UsageError as exc:
            print(f"demo: {exc}", file=sys.stderr)
            return 2
        except Exception as exc:
            print(f"demo: the local stack failed on {name}: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1

    print(
        f"== Summary: {len(runs)} runs in {time.monotonic() - started:.1f} s of real time (logs: {log_path})"
    )
    for line in summaries:
        print(line)
    return 0


def _event_run(folder: Path, path: Path, scenario: str, log_path: Path) -> Callable[[], str]:
    def run() -> str:
        from flexrestore.triggers import kind_of as event_kind

        name = path.name if scenario == "ok" else f"{path.name} [{scenario}]"
        first: Path | None = folder / RUNS_AFTER[path.name] if path.name in RUNS_AFTER else None
        if first is not None and (scenario != "ok" or not first.is_file()):
            first = None  # without the POST sample the GET runs alone (and answers 404)
        event = load_event(path)
        earlier = [load_event(first)] if first else []
        view = HumanView(sys.stdout, show_record=False, show_calls=False)
        mode = MODE.format(scenario=scenario)
        if first:
            mode += f"; right after {first.name} ran to its end on the same stack"
        view.header(str(path), mode, event, event_kind(event))
        with handler_output_to(log_path) as terminal:
            view.out = terminal
            result: FlowResult = run_flow(
                event, scenario=scenario, progress=view.progress, answered=view.answer, first=earlier
            )
        view.out = sys.stdout
        view.result(result, None)
        view.line()
        return summary_line(name, result)

    return run


def _plan_run(
    name: str,
    plan_path: Path,
    plan: dict[str, Any],
    log_path: Path,
    *,
    schedule: tuple[Path, dict[str, Any]] | None = None,
) -> Callable[[], str]:
    def run() -> str:
        view = RunView(sys.stdout)
        view.header(str(plan_path), MODE.format(scenario="ok"), plan, str(schedule[0]) if schedule else None)
        result: PlanRunResult | None = None
        refused: PlanRefused | None = None
        with handler_output_to(log_path) as terminal:
            view.out = terminal
            try:
                result = run_plan(
                    plan,
                    schedule_input=schedule[1] if schedule else None,
                    saved=view.saved,
                    started=view.started,
                    # Off a terminal, a line per change of each source would bury the rest.
                    progress=view.progress if view.live else None,
                )
            except PlanRefused as exc:
                refused = exc
        view.out = sys.stdout
        if refused is not None:
            view.refused(refused)
            view.line()
            return refused_plan_line(name, refused)
        assert result is not None
        view.result(result, None)
        view.line()
        return plan_summary_line(name, result)

    return run


if __name__ == "__main__":
    sys.exit(main())
