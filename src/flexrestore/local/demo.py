"""``make demo``: every sample event in ``events/`` through the whole service offline, then a few Atlas
misbehaviours on the API sample, and one summary line per run.

    python -m flexrestore.local.demo [--events DIR]

Each run is ``flexrestore-local --event FILE [--scenario NAME]`` (same code, fresh offline stack each time),
except the GET sample: it runs on the stack where the sample POST has just run to its end, so it reads that
restore (the POST's restoreId follows from its Idempotency-Key and caller; the GET sample asks for it).
Exit code 0 when every flow ran, whatever the restores' outcomes; 1 when the tool itself failed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from flexrestore.local.capture import handler_output_to
from flexrestore.local.flow import FlowResult, run_flow
from flexrestore.local.inputs import UsageError, load_event
from flexrestore.local.view import HumanView, summary_line

# Atlas behaving badly, on the API sample: the outcome is recorded and notified every time.
EXTRA_SCENARIOS = ("fail", "flaky", "rate-limited", "never-finishes")
API_SAMPLE = "api-post-restore.json"
# Sample -> the sample that runs first on the same stack.
RUNS_AFTER = {"api-get-restore.json": API_SAMPLE}


def _events_dir(given: Path | None) -> Path:
    if given is not None:
        return given
    here = Path("events")
    if here.is_dir():
        return here
    return Path(__file__).resolve().parents[3] / "events"  # a source checkout, run from elsewhere


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flexrestore.local.demo", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--events", type=Path, default=None, help="folder of sample events (default: events/)"
    )
    args = parser.parse_args(argv)

    folder = _events_dir(args.events)
    files = sorted(folder.glob("*.json"))
    if not files:
        print(f"demo: no sample events (*.json) in {folder}", file=sys.stderr)
        return 2
    runs: list[tuple[Path, str]] = [(path, "ok") for path in files]
    runs += [
        (folder / API_SAMPLE, scenario) for scenario in EXTRA_SCENARIOS if (folder / API_SAMPLE).is_file()
    ]

    log_path = Path(tempfile.gettempdir()) / f"flexrestore-demo-{os.getpid()}-{int(time.time())}.log"
    out = sys.stdout
    summaries: list[str] = []
    started = time.monotonic()
    for path, scenario in runs:
        name = path.name if scenario == "ok" else f"{path.name} [{scenario}]"
        first: Path | None = folder / RUNS_AFTER[path.name] if path.name in RUNS_AFTER else None
        if first is not None and (scenario != "ok" or not first.is_file()):
            first = None  # without the POST sample the GET runs alone (and answers 404)
        try:
            event = load_event(path)
            earlier = [load_event(first)] if first else []
        except UsageError as exc:
            print(f"demo: {exc}", file=sys.stderr)
            return 2
        view = HumanView(out, show_record=False, show_calls=False)
        from flexrestore.triggers import kind_of as event_kind

        mode = f"Atlas simulator, scenario {scenario}, virtual clock"
        if first:
            mode += f"; right after {first.name} ran to its end on the same stack"
        view.header(str(path), mode, event, event_kind(event))
        try:
            with handler_output_to(log_path) as terminal:
                view.out = terminal
                result: FlowResult = run_flow(
                    event, scenario=scenario, progress=view.progress, answered=view.answer, first=earlier
                )
        except Exception as exc:
            print(f"demo: the local stack failed on {name}: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        view.out = out
        view.result(result, None)
        view.line()
        summaries.append(summary_line(name, result))

    print(
        f"== Summary: {len(runs)} runs in {time.monotonic() - started:.1f} s of real time (logs: {log_path})"
    )
    for line in summaries:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
