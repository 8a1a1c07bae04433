"""One whole restore, end to end, offline: what it does on AWS and Atlas, what that costs, how long it takes.

    .venv/bin/python tests/benchmarks/bench_restore.py [--json]        (make bench)

For each trigger (API, schedule, alarm) and a few Atlas behaviours it runs the sample event from events/
through the offline stack (real intake, real ASL in moto, real handlers, the Atlas simulator, a virtual
clock) and counts: Lambda invocations per function, billed state transitions, AWS requests by operation
(DynamoDB, Secrets Manager, SNS, EventBridge, Step Functions), Atlas calls, and the RTO the record shows.
The AWS cost per restore is those counts times the list prices in PRICES_USD (assumptions: us-east-1,
on-demand, no free tier; check the AWS pricing pages before relying on them). Cold starts, warm intake
latency and package sizes are measured by bench_results.py (bench/results.json).

Not a pytest test: numbers, not assertions (the e2e and infrastructure tests assert the behaviour).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
EVENTS = REPO / "events"

RUNS: list[tuple[str, str]] = [
    ("api-post-restore.json", "ok"),
    ("alarm-into-alarm.json", "ok"),
    ("api-post-restore.json", "slow"),
    ("api-post-restore.json", "flaky"),
    ("api-post-restore.json", "rate-limited"),
    ("api-post-restore.json", "fail"),
    ("api-post-restore.json", "never-finishes"),
]

# Assumed list prices (USD, us-east-1, on-demand, no free tier).
PRICES_USD = {
    "state_transition": 0.025 / 1000,  # Step Functions Standard
    "lambda_request": 0.20 / 1_000_000,
    "lambda_gb_second_arm64": 0.0000133334,
    "dynamodb_write_unit": 0.625 / 1_000_000,
    "dynamodb_read_unit": 0.125 / 1_000_000,
    "secrets_manager_call": 0.05 / 10_000,
    "sns_publish": 0.50 / 1_000_000,
    "eventbridge_event": 1.00 / 1_000_000,
    "api_gateway_request": 3.50 / 1_000_000,
}
# Assumptions for what offline runs cannot measure.
LAMBDA_MEMORY_GB = 0.5  # template.yaml MemorySize 512
# Billed duration per invocation (the intake includes its short wait for the create step's Atlas job).
LAMBDA_SECONDS = {"intake": 1.5, "create": 0.8, "poll": 0.3, "record": 0.2, "notify": 0.3, "reconcile": 0.5}
WRITE_UNITS_PER_WRITE = 3  # a ~1-2 KB record (2 WCU) plus its index copies
BILLABLE = {
    "dynamodb": {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "TransactWriteItems"},
    "secretsmanager": {"GetSecretValue"},
    "sns": {"Publish"},
    "events": {"PutEvents"},
    "states": {"StartExecution", "DescribeExecution"},
}


@contextmanager
def counting_aws_requests() -> Iterator[Counter[str]]:
    """Count every botocore API call by ``service:Operation`` while active (any client, any thread)."""
    from botocore.client import BaseClient

    counts: Counter[str] = Counter()
    original = BaseClient._make_api_call

    def counted(self: Any, operation_name: str, api_params: Any) -> Any:
        counts[f"{self.meta.service_model.endpoint_prefix}:{operation_name}"] += 1
        return original(self, operation_name, api_params)

    BaseClient._make_api_call = counted  # type: ignore[method-assign]
    try:
        yield counts
    finally:
        BaseClient._make_api_call = original  # type: ignore[method-assign]


def _counting(handler_path: str, invocations: Counter[str], name: str) -> Callable[..., Any]:
    import importlib

    module_name, _, attribute = handler_path.rpartition(".")

    def handler(event: Any, context: Any) -> Any:
        invocations[name] += 1
        return getattr(importlib.import_module(module_name), attribute)(event, context)

    return handler


def measure(event_file: str, scenario: str) -> dict[str, Any]:
    from flexrestore.clock import VirtualClock
    from flexrestore.local.flow import DEMO_RECOVERY_PLANS
    from flexrestore.local.harness import HANDLERS, OfflineStack
    from flexrestore.local.inputs import load_event

    event = load_event(EVENTS / event_file)
    clock = VirtualClock()
    invocations: Counter[str] = Counter()
    started = time.perf_counter()
    overrides = {"RECOVERY_PLANS": json.dumps(DEMO_RECOVERY_PLANS)}
    with OfflineStack(scenario=scenario, clock=clock, env_overrides=overrides) as stack:
        for name, path in HANDLERS.items():
            stack.functions[name] = _counting(path, invocations, name)
        virtual_start = clock.now()
        with counting_aws_requests() as requests:
            answer = stack.invoke("intake", event)
            for arn in stack.executions():
                stack.wait_for_execution(arn, timeout_s=300)
        wall_seconds = time.perf_counter() - started
        body = answer.get("body") if isinstance(answer, dict) else None
        data = json.loads(body) if isinstance(body, str) else answer
        restore_id = data.get("restoreId") if isinstance(data, dict) else None
        record = (stack.record(restore_id) if restore_id else None) or {}
        transitions = sum(stack.state_transitions(arn) for arn in stack.executions())
        atlas_calls = len(stack.atlas_calls())
    billable = {
        key: count
        for key, count in sorted(requests.items())
        if key.split(":")[1] in BILLABLE.get(key.split(":")[0], set())
    }
    return {
        "event": event_file,
        "scenario": scenario,
        "finalStatus": record.get("finalStatus", "REFUSED"),
        "rtoSeconds": record.get("durationSeconds"),
        "virtualSeconds": round(clock.now() - virtual_start, 1),
        "lambdaInvocations": dict(invocations),
        "stateTransitions": transitions,
        "awsRequests": billable,
        "atlasCalls": atlas_calls,
        "costUsd": cost(dict(invocations), transitions, billable, api=event_file.startswith("api-")),
        "offlineWallSeconds": round(wall_seconds, 2),
    }


def cost(invocations: dict[str, int], transitions: int, requests: dict[str, int], *, api: bool) -> float:
    p = PRICES_USD
    lambda_cost = sum(
        count * (p["lambda_request"] + LAMBDA_MEMORY_GB * LAMBDA_SECONDS[name] * p["lambda_gb_second_arm64"])
        for name, count in invocations.items()
    )
    writes = sum(c for k, c in requests.items() if k.split(":")[1] in {"PutItem", "UpdateItem", "DeleteItem"})
    reads = sum(c for k, c in requests.items() if k.split(":")[1] in {"GetItem", "Query"})
    total = (
        lambda_cost
        + transitions * p["state_transition"]
        + writes * WRITE_UNITS_PER_WRITE * p["dynamodb_write_unit"]
        + reads * p["dynamodb_read_unit"]
        + requests.get("secretsmanager:GetSecretValue", 0) * p["secrets_manager_call"]
        + requests.get("sns:Publish", 0) * p["sns_publish"]
        + requests.get("events:PutEvents", 0) * p["eventbridge_event"]
        + (p["api_gateway_request"] if api else 0.0)
    )
    return round(total, 7)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    from flexrestore.local.capture import handler_output_to

    with handler_output_to(Path(os.devnull)):  # the handlers' logs are not the point here
        results = [measure(event_file, scenario) for event_file, scenario in RUNS]
    if args.json:
        print(json.dumps({"restores": results, "prices": PRICES_USD}, indent=2))
        return 0

    header = (
        f"{'event [scenario]':<38} {'ending':<10} {'RTO':>6} {'Lambda':>6} {'trans.':>6} "
        f"{'DynamoDB':>8} {'secrets':>7} {'Atlas':>5} {'USD/restore':>11} {'offline':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        dynamodb = sum(c for k, c in r["awsRequests"].items() if k.startswith("dynamodb:"))
        rto = f"{r['rtoSeconds']} s" if r["rtoSeconds"] is not None else "-"
        name = f"{r['event'].removesuffix('.json')} [{r['scenario']}]"
        print(
            f"{name:<38} {r['finalStatus']:<10} {rto:>6} "
            f"{sum(r['lambdaInvocations'].values()):>6} {r['stateTransitions']:>6} {dynamodb:>8} "
            f"{r['awsRequests'].get('secretsmanager:GetSecretValue', 0):>7} {r['atlasCalls']:>5} "
            f"{r['costUsd']:>11.6f} {r['offlineWallSeconds']:>7.2f}s"
        )
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO / "src"))
    raise SystemExit(main())
