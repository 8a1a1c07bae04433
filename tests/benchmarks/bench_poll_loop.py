"""Cost and latency of the poll loop, measured on the real state machine offline (not a pytest test).

    .venv/bin/python tests/benchmarks/bench_poll_loop.py [--json]

For each Atlas scenario it runs one restore through the real ASL in moto, with the real handlers and the
Atlas simulator on a virtual clock, and prints: billed state transitions (states entered + retried task
attempts, from the execution history), Atlas calls made by the loop, and how long after Atlas's
restoreFinishedDate the loop noticed the end. Targets (issue 4): a 60 s restore <= 15 transitions and
noticed within 20 s; a 30-minute restore <= 60 transitions and noticed within 90 s. A classic
Task -> Choice -> Wait loop polling every 4 s (the Atlas CLI's pace) is shown for comparison.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.e2e.support import start_restore

from flexrestore.clock import VirtualClock
from flexrestore.local.harness import OfflineStack

TARGETS = {"ok": (15, 20), "slow": (60, 90)}


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def measure(scenario: str) -> dict[str, Any]:
    quiet = {"POWERTOOLS_LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_DISABLED": "true"}
    with OfflineStack(scenario=scenario, clock=VirtualClock(), env_overrides=quiet) as stack:
        restore = start_restore(stack)
        calls_before = len(stack.atlas_calls())
        execution = stack.wait_for_execution(restore.execution_arn, timeout_s=120)
        record = stack.record(restore.restore_id) or {}
        loop_calls = stack.atlas_calls()[calls_before:]
        finished = record.get("restoreFinishedDate")
        noticed = (
            (_at(record["noticedAt"]) - _at(finished)).total_seconds()
            if finished and record.get("noticedAt")
            else None
        )
        restore_seconds = record.get("atlasDurationSeconds")
        classic = 3 * math.ceil((restore_seconds or 0) / 4) + 4 if restore_seconds else None
        return {
            "scenario": scenario,
            "execution": execution["status"],
            "finalStatus": record.get("finalStatus"),
            "atlasRestoreSeconds": restore_seconds,
            "rtoSeconds": record.get("durationSeconds"),
            "stateTransitions": stack.state_transitions(restore.execution_arn),
            "atlasCalls": len(loop_calls),
            "atlasPolls": sum(1 for call in loop_calls if "/backup/restoreJobs/" in call["path"]),
            "noticedAfterFinishSeconds": noticed,
            "classicLoopTransitionsAt4s": classic,
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--scenario", action="append", help="scenarios to run (default: ok, slow)")
    args = parser.parse_args(argv)
    results = [measure(scenario) for scenario in (args.scenario or ["ok", "slow"])]
    if args.json:
        print(json.dumps({"pollLoop": results}, indent=2))
        return 0
    print(
        f"{'scenario':<10} {'restore':>8} {'ending':>10} {'transitions':>12} "
        f"{'Atlas calls':>12} {'noticed':>9}"
    )
    for result in results:
        target = TARGETS.get(result["scenario"])
        noticed = result["noticedAfterFinishSeconds"]
        print(
            f"{result['scenario']:<10} {result['atlasRestoreSeconds'] or '-':>7}s "
            f"{result['finalStatus']:>10} "
            f"{result['stateTransitions']:>12} {result['atlasCalls']:>12} "
            f"{'-' if noticed is None else f'{noticed:.0f} s':>9}"
            + (f"   target <= {target[0]} transitions, noticed within {target[1]} s" if target else "")
            + (
                f"; a 4 s Task/Choice/Wait loop: ~{result['classicLoopTransitionsAt4s']}"
                if result["classicLoopTransitionsAt4s"]
                else ""
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
