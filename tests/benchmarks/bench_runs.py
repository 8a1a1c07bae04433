"""Verification runs at scale, offline: plans of 20, 100 and 500 sources through the real run state machine,
the real restore state machine and the real handlers, on the Atlas simulator and the virtual clock.

    .venv/bin/python tests/benchmarks/bench_runs.py [--sizes 20,100,500] [--concurrency 20] [--output PATH]

(``make bench`` runs it.) Per plan size it prints and writes to bench/runs.json:

- ``run_transitions`` and ``run_history_events``: billed state transitions and history events of the run's
  own execution (the Step Functions limits that grow with the plan: 25,000 events per execution), and
  ``history_events_per_source``;
- ``restore_transitions_per_source``: the restores' own executions, per source;
- ``atlas_calls_per_source``: every request the simulator answered (listing the selector's project, the
  snapshots, the target, the create, the polls), per source;
- ``virtual_seconds`` against ``floor_seconds`` = ceil(sources / maxConcurrency) x the median time one
  restore's execution took (its slot in the Map), and their ``ratio``;
- ``real_seconds``: how long the offline run took on this machine.

The sources are a project of ``n`` Flex clusters tagged for verification, each with its scratch target and a
snapshot from yesterday, added to the simulator for the run; the plan selects them by tag.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUTPUT = REPO / "bench" / "runs.json"
PROJECT = "6700f1eea30000000000c001"
QUIET = {"POWERTOOLS_LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_DISABLED": "true"}


def measure(size: int, concurrency: int) -> dict[str, Any]:
    from flexrestore.clock import VirtualClock, parse_iso
    from flexrestore.local.harness import OfflineStack

    with OfflineStack(clock=VirtualClock(), env_overrides=QUIET) as stack:
        state = stack.simulator.state
        state.add_group(PROJECT)
        yesterday = datetime.fromtimestamp(stack.clock.now(), tz=UTC) - timedelta(days=1)
        for n in range(size):
            name = f"src-{n:03d}"
            state.add_cluster(PROJECT, name, tags={"bench": "nightly"})
            state.add_cluster(PROJECT, f"{name}-verify")
            state.add_snapshot(PROJECT, name, scheduled=yesterday)
        plan = {
            "name": f"bench-{size}",
            "maxConcurrency": concurrency,
            "sources": [
                {
                    "groupId": PROJECT,
                    "tag": {"key": "bench", "value": "nightly"},
                    "targetDeploymentItemName": "{clusterName}-verify",
                }
            ],
        }
        stack.put_plan(plan)
        started_real, started_virtual = time.monotonic(), stack.clock.now()
        arn = stack.start_run(plan["name"], run_id=f"bench-{size}")
        description = stack.wait_for_execution(arn, timeout_s=3600)
        real = time.monotonic() - started_real
        virtual = stack.clock.now() - started_virtual
        record = stack.run_record(f"bench-{size}") or {}
        history = stack.history(arn)
        restores = [a for a in stack.executions() if a != arn]
        restore_transitions = sum(stack.state_transitions(a) for a in restores)
        slots = []  # on the clock: a restore holds its slot from its request until its end was noticed
        for source in record.get("sources") or []:
            restore = stack.record(source["restoreId"]) if source.get("restoreId") else None
            if restore and restore.get("noticedAt"):
                span = parse_iso(restore["noticedAt"]) - parse_iso(restore["requestedAt"])
                slots.append(span.total_seconds())
        slot = statistics.median(slots) if slots else 0.0
        floor = math.ceil(size / concurrency) * slot
        summary = record.get("summary") or {}
        return {
            "sources": size,
            "max_concurrency": concurrency,
            "status": description["status"],
            "final_status": record.get("finalStatus"),
            "completed": summary.get("completed"),
            "run_transitions": stack.state_transitions(arn),
            "run_history_events": len(history),
            "history_events_per_source": round(len(history) / size, 2),
            "restore_transitions_per_source": round(restore_transitions / size, 2),
            "atlas_calls_per_source": round(len(stack.simulator.calls) / size, 2),
            "virtual_seconds": round(virtual),
            "restore_slot_seconds": round(slot),
            "floor_seconds": round(floor),
            "ratio": round(virtual / floor, 2) if floor else None,
            "real_seconds": round(real, 1),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="20,100,500", help="plan sizes, comma-separated")
    parser.add_argument("--concurrency", type=int, default=20, help="the plans' maxConcurrency (1 to 20)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    os.environ.update(QUIET)
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):  # the handlers' metric lines
            result = measure(size, args.concurrency)
        results.append(result)
        print(
            f"{size:>4} sources  {result['final_status']:<9}  run: {result['run_transitions']} transitions, "
            f"{result['run_history_events']} history events ({result['history_events_per_source']}/source)  "
            f"restores: {result['restore_transitions_per_source']} transitions/source  "
            f"Atlas: {result['atlas_calls_per_source']} calls/source  "
            f"{result['virtual_seconds']} s on the clock vs floor {result['floor_seconds']} s "
            f"(x{result['ratio']})  {result['real_seconds']} s real",
            flush=True,
        )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"runs": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO / "src"))
    sys.exit(main())
