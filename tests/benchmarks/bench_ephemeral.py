"""Verification runs with ephemeral targets, offline: what one ephemeral source costs in execution history
events (Step Functions' 25,000-event limit per execution), state transitions, Atlas calls and cluster-hours,
against the same sources restored into standing targets.

    .venv/bin/python tests/benchmarks/bench_ephemeral.py [--sources 10] [--json]

Each case saves a plan of FLEET sources through the HTTP API and runs it once on the offline stack (the real
run and restore state machines in moto, the real handlers, the Atlas simulator: clusters IDLE 10 s after
their create, gone 40 s after their delete, restores 60 s after restoreScheduledDate) on a virtual clock.
Ephemeral cases have a validator (an in-process Lambda) that answers SUCCEEDED. Cluster cost assumes Atlas
Flex's base price, $8 per month (about $0.011 per hour); check Atlas's pricing before relying on it.

Not a pytest test: numbers, not assertions (tests/e2e/test_ephemeral_runs.py asserts the behaviour).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

FLEX_USD_PER_HOUR = 8.0 / 730
EVENT_LIMIT = 25_000
# FLEET sources with COMPLETED snapshots, a normal restore time and a target the guards allow (fleet-05's
# standing target is protected, fleet-08 is slow, fleet-13 has no COMPLETED snapshot).
USABLE = [f"fleet-{n:02d}" for n in range(1, 25) if n not in (5, 8, 13)]
CASES: list[tuple[str, bool, str]] = [
    ("standing targets [ok]", False, "ok"),
    ("ephemeral targets [ok]", True, "ok"),
    ("ephemeral [create answer lost]", True, "create-cluster-answer-lost"),
    ("ephemeral [delete fails twice]", True, "delete-fails-twice"),
    ("ephemeral [rate-limited]", True, "rate-limited"),
]


def run_case(sources: int, ephemeral: bool, scenario: str) -> dict[str, Any]:
    from tests.api_events import answer, api_event

    from flexrestore.clock import VirtualClock
    from flexrestore.local.harness import OfflineStack
    from flexrestore.simulator import FLEET

    clusters = USABLE[:sources]
    plan: dict[str, Any] = {
        "name": "bench",
        "snapshot": {"choice": "LATEST"},
        "maxConcurrency": 5,
        "sources": [{"groupId": FLEET.group_id, "clusterName": c} for c in clusters],
    }
    if ephemeral:
        plan["targets"] = {
            "mode": "EPHEMERAL",
            "projectId": FLEET.verification_group_id,
            "provider": "AWS",
            "region": "US_EAST_1",
        }
    else:
        for source in plan["sources"]:
            source["targetDeploymentItemName"] = FLEET.target_of(source["clusterName"])
    env = {
        "ALLOWED_TARGET_PROJECTS": FLEET.verification_group_id,
        "POWERTOOLS_LOG_LEVEL": "ERROR",
        "POWERTOOLS_METRICS_DISABLED": "true",
    }
    started = time.perf_counter()
    with OfflineStack(scenario="ok", clock=VirtualClock(), env_overrides=env) as stack:
        if ephemeral:
            arn = stack.register_validator(
                "bench-validator", lambda event, context: {"status": "SUCCEEDED", "message": "ok"}
            )
            plan["validation"] = {"lambdaArn": arn, "timeoutSeconds": 60}
        status, body, _ = answer(stack.invoke("intake", api_event("PUT", "/plans/bench", plan)))
        assert status == 201, body
        stack.simulator.scenario = scenario
        clock_start = stack.clock.now()
        status, started_run, _ = answer(stack.invoke("intake", api_event("POST", "/plans/bench/runs")))
        assert status == 202, started_run
        run_arn = started_run["executionArn"]
        stack.wait_for_execution(run_arn, timeout_s=600)
        virtual = stack.clock.now() - clock_start
        record = stack.run_record(started_run["runId"]) or {}
        history = stack.history(run_arn)
        transitions = stack.state_transitions(run_arn)
        restore_transitions = sum(
            stack.state_transitions(a) for a in stack.executions() if ":flexrestore-restore-poll:" in a
        )
        calls = Counter(c.operation for c in stack.simulator.calls)
    summary = record.get("summary") or {}
    n = len(clusters)
    return {
        "sources": n,
        "finalStatus": record.get("finalStatus"),
        "verified": summary.get("verified"),
        # The whole run's events over its sources (Begin, the Map and Finish included: an upper bound).
        "historyEventsPerSource": round(len(history) / n, 1),
        "historyEventsRun": len(history),
        "sourcesWithin25000Events": int(EVENT_LIMIT // (len(history) / n)),
        "runTransitionsPerSource": round(transitions / n, 1),
        "restoreTransitionsPerSource": round(restore_transitions / n, 1),
        "atlasCallsPerSource": round(sum(calls.values()) / n, 1),
        "atlasCallsByOperation": dict(sorted(calls.items())),
        "clusterHours": summary.get("clusterHours"),
        "clusterHoursPerSource": round((summary.get("clusterHours") or 0) / n, 4),
        "clusterUsdPerSource": round((summary.get("clusterHours") or 0) / n * FLEX_USD_PER_HOUR, 5),
        "virtualSeconds": round(virtual),
        "realSeconds": round(time.perf_counter() - started, 1),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sources", type=int, default=10, help=f"sources per run (1 to {len(USABLE)})")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    results = {name: run_case(args.sources, ephemeral, scenario) for name, ephemeral, scenario in CASES}
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"Verification run of {args.sources} FLEET sources, maxConcurrency 5 (per source, averaged)\n")
    header = (
        f"{'case':34} {'status':8} {'events':>6} {'≤25k':>5} {'run tr.':>7} {'restore tr.':>11} "
        f"{'Atlas':>6} {'cluster-h':>9} {'USD (Flex)':>10} {'clock':>7}"
    )
    print(header)
    for name, r in results.items():
        print(
            f"{name:34} {r['finalStatus']!s:8} {r['historyEventsPerSource']:>6} "
            f"{r['sourcesWithin25000Events']:>5} {r['runTransitionsPerSource']:>7} "
            f"{r['restoreTransitionsPerSource']:>11} {r['atlasCallsPerSource']:>6} "
            f"{r['clusterHoursPerSource']:>9} {r['clusterUsdPerSource']:>10} {r['virtualSeconds']:>6}s"
        )
    print("\nAtlas calls by operation (whole run):")
    for name, r in results.items():
        print(f"  {name}: {r['atlasCallsByOperation']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
