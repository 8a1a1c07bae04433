"""The figures of issue 10 ("proof, in figures"), measured offline and written to bench/results.json.

    .venv/bin/python tests/benchmarks/bench_results.py [--quick] [--samples N] [--output PATH] [--no-package]

(``make bench`` runs it after the other two benchmarks.) It needs nothing but the project's venv: no AWS, no
Atlas, no other tool. Sections of the JSON it writes (README "Measured figures" explains them):

- ``cold_start``: per Lambda handler module in src/flexrestore/handlers/, the median time a fresh interpreter
  takes to import it (Lambda's init phase, the code's part), with the environment template.yaml gives that
  function, against ``floor_ms``: a fresh interpreter importing exactly the third-party modules the
  handler's import loaded (read from ``sys.modules``), nothing of flexrestore. ``ratio`` = median / floor
  (target <= 1.3).
- ``warm_intake``: POST /restores through the real intake handler in-process, warm, on the offline stack
  (moto + the Atlas simulator), against a plain script making the calls the intake needs with boto3 and
  httpx and nothing else (``bare_*``); ``ratio`` = median / bare median (target <= 1.5). ``calls`` lists
  every Atlas and AWS call each side makes per request, counted from the simulator's log and a botocore
  ``before-call`` hook; ``notes`` says how the API's wait for the Atlas job is handled.
- ``transitions``: billed state transitions of one restore (``ok``: a one-minute restore, ``slow``: 30 min),
  from the executed state machine's history in moto.
- ``calls_per_restore``: Atlas calls (by operation) and AWS calls (by service:operation) of the same restores,
  every function included.
- ``package_bytes``: per function (and the layer), the artifact ``make package`` builds: files, unpacked and
  zipped bytes (tests/infrastructure/artifact_sizes.py). Null, with the reason in ``notes``, where
  ``make package`` cannot run (no python3.13) or was skipped.
- ``metadata``: when, on what, at which commit, how many samples.

Samples of the two sides of a ratio are taken alternately, so a machine that gets busier or quieter during
the run shifts both alike. Numbers, not assertions: nothing here fails because a figure is high.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]

HANDLERS_DIR = REPO / "src" / "flexrestore" / "handlers"
DEFAULT_OUTPUT = REPO / "bench" / "results.json"
README = REPO / "README.md"
README_BEGIN = "<!-- figures from bench/results.json, written by `make bench`: begin -->"
README_END = "<!-- figures from bench/results.json: end -->"
TARGETS = {"cold_start_ratio": 1.3, "warm_intake_ratio": 1.5}
SAMPLES = {"cold_start": 15, "warm_intake": 60}
QUICK_SAMPLES = 2
TOP_LEVEL_SAMPLES = 5
WARM_UP = 3

# What Lambda itself sets in every function's environment (the template's variables come on top).
LAMBDA_ENVIRONMENT = {
    "PATH": "/usr/bin:/bin",
    "LANG": "en_US.UTF-8",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
}
# Stand-ins for the template's references that have no default (a deploy-time parameter, or a resource
# whose name or ARN CloudFormation makes): only their presence matters to an import.
REQUIRED_PARAMETERS = {"AtlasSecret": "flexrestore/atlas"}
RESOURCE_STAND_INS = {
    "AWS::DynamoDB::Table": "flexrestore-{id}-EXAMPLE",
    "AWS::Serverless::StateMachine": "arn:aws:states:us-east-1:123456789012:stateMachine:{id}-EXAMPLE",
    "AWS::SNS::Topic": "arn:aws:sns:us-east-1:123456789012:flexrestore-{id}-EXAMPLE",
}


def _median(samples: list[float]) -> float:
    return round(statistics.median(samples), 2)


def _p95(samples: list[float]) -> float:
    if len(samples) < 2:
        return round(samples[0], 2)
    return round(statistics.quantiles(samples, n=20, method="inclusive")[-1], 2)


def _ratio(numerator: float, denominator: float) -> float:
    return round(numerator / denominator, 2) if denominator > 0 else float("nan")


# ------------------------------------------------------------------------------------------- cold start


def handler_modules() -> list[str]:
    """Every Lambda handler module: each module of src/flexrestore/handlers/ but the package itself."""
    return sorted(f"flexrestore.handlers.{p.stem}" for p in HANDLERS_DIR.glob("*.py") if p.stem != "__init__")


def function_environments() -> dict[str, tuple[str, dict[str, str]]]:
    """handler module -> (function logical id, the environment template.yaml gives that function).

    Globals' variables, then the function's own; a ``!Ref`` to a parameter takes its default, to a resource
    a stand-in of the right shape (tests/infrastructure/test_lambda_code.py builds its environment from the
    same Globals)."""
    from tests.infrastructure.checks import load_sam_template

    sam = load_sam_template()
    parameters = sam.get("Parameters", {})
    resources = sam["Resources"]

    def resolve(value: Any) -> str | None:
        if isinstance(value, str | int | float):
            return str(value)
        if isinstance(value, dict) and set(value) == {"Ref"}:
            name = value["Ref"]
            if name in parameters:
                default = parameters[name].get("Default", REQUIRED_PARAMETERS.get(name))
                return None if default is None else str(default)
            if name in resources:
                shape = RESOURCE_STAND_INS.get(resources[name]["Type"], "{id}-EXAMPLE")
                return shape.format(id=name)
        return None

    global_variables = sam.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    environments: dict[str, tuple[str, dict[str, str]]] = {}
    for logical_id, resource in resources.items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        properties = resource.get("Properties", {})
        own = properties.get("Environment", {}).get("Variables", {})
        environment = dict(LAMBDA_ENVIRONMENT, AWS_LAMBDA_FUNCTION_NAME=f"flexrestore-{logical_id}")
        for name, value in {**global_variables, **own}.items():
            resolved = resolve(value)
            if resolved is not None:
                environment[name] = resolved
        environments[str(properties["Handler"]).rpartition(".")[0]] = (logical_id, environment)
    return environments


# Run in a fresh interpreter: import the module, and print the third-party modules that import loaded
# (a module whose top-level package lives in site-packages; flexrestore itself is not one of them).
_PROBE = """
import importlib, json, site, sys
before = set(sys.modules)
importlib.import_module(sys.argv[1])
site_dirs = tuple(site.getsitepackages())
def third_party(name):
    top = sys.modules.get(name.partition(".")[0])
    where = getattr(top, "__file__", None) or next(iter(getattr(top, "__path__", None) or []), "")
    return name.partition(".")[0] != "flexrestore" and str(where).startswith(site_dirs)
loaded = [n for n in sys.modules if n not in before and sys.modules[n] is not None and third_party(n)]
print(json.dumps(loaded))
"""
# Each prints "<wall ms> <cpu ms>": perf_counter, and process_time (this process's CPU, which a busy machine
# inflates far less than the wall clock).
_TIMED_IMPORT = """
import time
started, cpu = time.perf_counter(), time.process_time()
import {module}
print((time.perf_counter() - started) * 1000, (time.process_time() - cpu) * 1000)
"""
# Loads nothing before the clock starts that the handler's interpreter lacks (no json, no importlib).
_TIMED_FLOOR = """
import sys, time
names = sys.argv[1].split(",")
started, cpu = time.perf_counter(), time.process_time()
for name in names:
    __import__(name)
print((time.perf_counter() - started) * 1000, (time.process_time() - cpu) * 1000)
"""


def _fresh(code: str, environment: dict[str, str], *args: str) -> str:
    answer = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=environment,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if answer.returncode != 0:
        raise RuntimeError(f"a fresh interpreter failed: {answer.stderr.strip()[-2000:]}")
    return answer.stdout.strip().splitlines()[-1]


def _timed(environment: dict[str, str], code: str, *args: str) -> tuple[float, float]:
    """(wall ms, CPU ms) that a fresh interpreter reports for ``code``."""
    wall, cpu = _fresh(code, environment, *args).split()
    return float(wall), float(cpu)


def cold_start(samples: int) -> dict[str, Any]:
    environments = function_environments()
    results: dict[str, Any] = {}
    for module in handler_modules():
        if module not in environments:
            raise RuntimeError(f"{module} is no function's Handler in template.yaml")
        logical_id, environment = environments[module]
        loaded = json.loads(_fresh(_PROBE, environment, module))
        top_level = sorted({name.partition(".")[0] for name in loaded})
        timings: dict[str, list[tuple[float, float]]] = {"handler": [], "floor": [], "top_level": []}
        for round_ in range(samples):  # alternately, so drift in the machine's load hits both alike
            timings["handler"].append(_timed(environment, _TIMED_IMPORT.format(module=module)))
            timings["floor"].append(_timed(environment, _TIMED_FLOOR, ",".join(loaded)))
            if round_ < TOP_LEVEL_SAMPLES:  # a reference figure only: fewer samples
                timings["top_level"].append(_timed(environment, _TIMED_FLOOR, ",".join(top_level)))
        handler_ms = [wall for wall, _ in timings["handler"]]
        floor_ms = [wall for wall, _ in timings["floor"]]
        median, floor = _median(handler_ms), _median(floor_ms)
        cpu, cpu_floor = (_median([c for _, c in timings[side]]) for side in ("handler", "floor"))
        results[module.rpartition(".")[2]] = {
            "function": logical_id,
            "median_ms": median,
            "floor_ms": floor,
            "ratio": _ratio(median, floor),
            "within_target": median <= TARGETS["cold_start_ratio"] * floor,
            "cpu_median_ms": cpu,
            "cpu_floor_ms": cpu_floor,
            "cpu_ratio": _ratio(cpu, cpu_floor),
            "third_party_packages": top_level,
            "third_party_modules": len(loaded),
            "floor_top_level_ms": _median([wall for wall, _ in timings["top_level"]]),
            "samples_ms": [round(s, 1) for s in handler_ms],
            "floor_samples_ms": [round(s, 1) for s in floor_ms],
        }
    return results


COLD_START_NOTES = (
    "Each sample is a new interpreter (sys.executable, the project's venv) with the environment "
    "template.yaml gives the function (Globals and its own variables; parameters at their defaults, "
    "resource names as stand-ins) plus what Lambda sets (region, function name, memory), timing `import "
    "<handler module>` inside the interpreter (its own start-up, the same for both, is left out). "
    "floor_ms times a new interpreter importing, in the same environment, exactly the third-party "
    "modules (every submodule, from site-packages) that the handler's import left in sys.modules, and "
    "nothing before its clock starts that the handler's interpreter lacks; so the ratio is what "
    "flexrestore's own modules add on top of the dependencies they load: defining models, compiling "
    "patterns, building the logger, and the standard-library modules only flexrestore imports. cpu_* "
    "are the same imports in process CPU time, which a busy machine inflates less than the wall clock. "
    "floor_top_level_ms imports only the top-level packages (e.g. `import pydantic`, which loads a "
    "fraction of what a model needs); it is shown for reference, not used for the ratio. Handler and "
    "floor samples alternate. Bytecode (.pyc) is cached here as usual; Lambda's artifacts carry none "
    "(see README)."
)


# ------------------------------------------------------------------------------------------ warm intake

# A state machine that ends at once: the warm runs start executions of it, so no restore's execution runs
# beside the invocations being timed (the real one is measured in "transitions").
_NOOP_MACHINE = "flexrestore-bench-noop"
_NOOP_DEFINITION = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})


class CallCounter:
    """Counts AWS calls (a botocore ``before-call`` hook on the given clients) and Atlas calls (the
    simulator's log), only while :meth:`counting` is open in the counting thread(s)."""

    def __init__(self, simulator: Any) -> None:
        self.simulator = simulator
        self.aws: Counter[str] = Counter()
        self._active = threading.local()
        self._clients: list[Any] = []

    def watch(self, *clients: Any) -> None:
        for client in clients:
            if any(client is seen for seen in self._clients):
                continue
            client.meta.events.register("before-call", self._before_call)
            self._clients.append(client)

    def _before_call(self, model: Any, **_: Any) -> None:
        if getattr(self._active, "on", 0):
            self.aws[f"{model.service_model.endpoint_prefix}:{model.name}"] += 1

    def unwatch(self) -> None:
        for client in self._clients:
            client.meta.events.unregister("before-call", self._before_call)
        self._clients = []

    @contextmanager
    def active(self) -> Iterator[None]:
        """While open, AWS calls made by this thread count."""
        self._active.on = getattr(self._active, "on", 0) + 1
        try:
            yield
        finally:
            self._active.on -= 1

    def atlas_since(self, start: int) -> Counter[str]:
        return Counter(
            call.operation or f"{call.method} {call.path}" for call in self.simulator.calls[start:]
        )


def _api_event(template: dict[str, Any], key: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(json.dumps(template))
    event["headers"]["Idempotency-Key"] = key
    event["multiValueHeaders"]["Idempotency-Key"] = [key]
    event["requestContext"]["requestId"] = str(uuid.uuid4())
    return event


class BareIntake:
    """POST /restores with nothing but boto3 and httpx: the calls the intake's design needs, and no framework.

    Atlas: the newest COMPLETED snapshot of the source, the target cluster (must be IDLE); the token is
    fetched once and kept, the secret read once (the intake caches both per container). AWS, in the intake's
    order: the restore id's record read (a crashed attempt's leftover would be resumed), the idempotency
    item (conditional put), the target lock (conditional put), the restore record (conditional put),
    StartExecution named after the restore, the execution noted on the record (which takes it off the
    reconciler's list), the record read back (the answer carries the Atlas job when the execution has it),
    the answer stored on the idempotency item. ``minimal`` leaves out the three that serve the crash-resume,
    the reconciler and the job in the answer (read, note, read back). No input model, no router, no
    logging, no metrics, no retries beyond botocore's."""

    MEDIA_TYPE = "application/vnd.atlas.2024-11-13+json"

    def __init__(
        self,
        *,
        atlas_url: str,
        secret_id: str,
        tables: tuple[str, str],
        machine_arn: str,
        minimal: bool = False,
    ) -> None:
        import boto3
        import httpx

        self.dynamodb = boto3.client("dynamodb")
        self.sfn = boto3.client("stepfunctions")
        self.secrets = boto3.client("secretsmanager")
        self.restores_table, self.idempotency_table = tables
        self.machine_arn = machine_arn
        self.secret_id = secret_id
        self.minimal = minimal
        self.http = httpx.Client(base_url=atlas_url, timeout=10.0)
        self.token: str | None = None

    def clients(self) -> tuple[Any, ...]:
        return (self.dynamodb, self.sfn, self.secrets)

    def _token(self) -> str:
        if self.token is None:
            secret = json.loads(self.secrets.get_secret_value(SecretId=self.secret_id)["SecretString"])
            answer = self.http.post(
                "/api/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(secret["clientId"], secret["clientSecret"]),
            )
            answer.raise_for_status()
            self.token = str(answer.json()["access_token"])
        return self.token

    def _get(self, path: str, **params: Any) -> Any:
        answer = self.http.get(
            "/api/atlas/v2" + path,
            params=params or None,
            headers={"Accept": self.MEDIA_TYPE, "Authorization": f"Bearer {self._token()}"},
        )
        answer.raise_for_status()
        return answer.json()

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        request = json.loads(event["body"])
        caller = event["requestContext"]["identity"]["userArn"]
        key = f"bare:{caller}:{event['headers']['Idempotency-Key']}"
        group, cluster = request["groupId"], request["clusterName"]
        target, project = request["targetDeploymentItemName"], request.get("targetProjectId", group)
        page = self._get(
            f"/groups/{group}/flexClusters/{cluster}/backup/snapshots",
            pageNum=1,
            itemsPerPage=100,
            includeCount="true",
        )
        done = [s for s in page["results"] if s.get("status") == "COMPLETED"]
        snapshot = max(done, key=lambda s: s.get("finishTime", ""))
        if self._get(f"/groups/{project}/flexClusters/{target}").get("stateName") != "IDLE":
            return {"statusCode": 409, "body": "{}"}
        restore_id = uuid.uuid5(uuid.NAMESPACE_URL, key).hex
        record_key = {"id": {"S": restore_id}}
        if not self.minimal and "Item" in self.dynamodb.get_item(
            TableName=self.restores_table, Key=record_key, ConsistentRead=True
        ):
            return {"statusCode": 409, "body": "{}"}  # (the intake would resume it)
        now = datetime.now(UTC)
        at = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        expires = int(now.timestamp())
        self.dynamodb.put_item(
            TableName=self.idempotency_table,
            Item={
                "id": {"S": key},
                "status": {"S": "INPROGRESS"},
                "expiration": {"N": str(expires + 86400)},
                "in_progress_expiration": {"N": str(expires * 1000 + 28000)},
            },
            ConditionExpression="attribute_not_exists(id)",
        )
        lock_id = f"lock#{project}#{target}"
        self.dynamodb.put_item(
            TableName=self.restores_table,
            Item={
                "id": {"S": lock_id},
                "kind": {"S": "lock"},
                "restoreId": {"S": restore_id},
                "targetProjectId": {"S": project},
                "targetDeploymentItemName": {"S": target},
                "acquiredAt": {"S": at},
                "requestedAt": {"S": at},
                "expiresAt": {"N": str(expires + 7200)},
            },
            ConditionExpression="attribute_not_exists(id) OR restoreId = :me OR expiresAt < :now",
            ExpressionAttributeValues={":me": {"S": restore_id}, ":now": {"N": str(expires)}},
        )
        record: dict[str, Any] = {
            "id": {"S": restore_id},
            "kind": {"S": "restore"},
            "restoreId": {"S": restore_id},
            "source": {"S": f"{group}/{cluster}"},
            "requestedAt": {"S": at},
            "requestedBy": {"M": {"trigger": {"S": "api"}, "caller": {"S": caller}}},
            "reason": {"S": request.get("reason", "")},
            "groupId": {"S": group},
            "clusterName": {"S": cluster},
            "snapshotId": {"S": snapshot["id"]},
            "targetDeploymentItemName": {"S": target},
            "targetProjectId": {"S": project},
            "lockId": {"S": lock_id},
            "status": {"S": "ACCEPTED"},
            "timeline": {"L": [{"M": {"status": {"S": "ACCEPTED"}, "at": {"S": at}}}]},
            "handoff": {"S": "PENDING"},
        }
        self.dynamodb.put_item(
            TableName=self.restores_table, Item=record, ConditionExpression="attribute_not_exists(id)"
        )
        execution_arn = self.sfn.start_execution(
            stateMachineArn=self.machine_arn,
            name=restore_id,
            input=json.dumps(
                {
                    "restoreId": restore_id,
                    "groupId": group,
                    "clusterName": cluster,
                    "snapshotId": snapshot["id"],
                    "targetDeploymentItemName": target,
                    "targetProjectId": project,
                    "requestedAt": at,
                    "lockId": lock_id,
                }
            ),
        )["executionArn"]
        answer = {
            "restoreId": restore_id,
            "status": "ACCEPTED",
            "executionArn": execution_arn,
            "location": f"/restores/{restore_id}",
            "snapshotId": snapshot["id"],
        }
        if not self.minimal:
            self.dynamodb.update_item(
                TableName=self.restores_table,
                Key=record_key,
                UpdateExpression="SET executionArn = :arn REMOVE handoff",
                ConditionExpression="attribute_exists(id)",
                ExpressionAttributeValues={":arn": {"S": execution_arn}},
            )
            item = self.dynamodb.get_item(TableName=self.restores_table, Key=record_key, ConsistentRead=True)
            job = item.get("Item", {}).get("restoreJobId", {}).get("S")
            answer["restoreJobId"] = job
        body = json.dumps(answer)
        self.dynamodb.update_item(
            TableName=self.idempotency_table,
            Key={"id": {"S": key}},
            UpdateExpression="SET #s = :done, #d = :body",
            ExpressionAttributeNames={"#s": "status", "#d": "data"},
            ExpressionAttributeValues={":done": {"S": "COMPLETED"}, ":body": {"S": body}},
        )
        return {"statusCode": 202, "headers": {"Location": f"/restores/{restore_id}"}, "body": body}


WARM_NOTES = (
    "Both sides run in this process against the same offline services: moto (DynamoDB, Step Functions, "
    "Secrets Manager) and the Atlas simulator on loopback HTTP, after {warm_up} untimed warm-up "
    "requests each (adapters, clients, the Atlas token and the cached secret built; the intake's "
    "powertools Logger writes its INFO lines and metrics to /dev/null, as the template's LogLevel "
    "says). Each request has its own Idempotency-Key; the target's lock is released between requests, "
    "untimed; the sides take turns. The intake's API answer normally waits up to 5 s (on the clock) for "
    "the execution's create step to report the Atlas job; that wait is Step Functions and the create "
    "Lambda at work, not the intake. Here the API path runs with that wait at 0 s "
    "(triggers.http.JOB_WAIT_SECONDS set to 0 for the run; the EventBridge triggers never wait), which "
    "leaves the one read of the record that every answer makes, and StartExecution starts a one-state "
    "machine that ends at once, so no execution runs beside a timed request; the real machine's work is "
    "in 'transitions' and 'calls_per_restore'. 'bare' is a plain boto3 + httpx script making the same "
    "calls as the intake (calls.intake and calls.bare, counted on one request each from the simulator's "
    "log and a botocore before-call hook), so 'ratio' is the cost of the framework: router and "
    "validation, the request model, the idempotency utility, the record codec, logging and metrics. "
    "'bare_minimal' leaves out the three calls the intake's design adds (the restore id's record read "
    "before claiming it, for a crashed attempt's leftover; the execution noted on the record, which "
    "takes it off the reconciler's list; the record read back for the answer): 'ratio_vs_minimal'. "
    "cpu_* are the same requests in process CPU time, which a busy machine inflates less than the wall "
    "clock. The milliseconds are moto's and the simulator's, not AWS's or Atlas's."
)


def warm_intake(samples: int) -> dict[str, Any]:
    from flexrestore.aws.clients import client
    from flexrestore.aws.locks import lock_id_for
    from flexrestore.clock import VirtualClock
    from flexrestore.local.capture import handler_output_to
    from flexrestore.local.harness import (
        ACCOUNT_ID,
        ATLAS_SECRET_ID,
        IDEMPOTENCY_TABLE,
        REGION,
        RESTORES_TABLE,
        OfflineStack,
    )
    from flexrestore.local.inputs import load_event
    from flexrestore.triggers import http

    template = load_event(REPO / "events" / "api-post-restore.json")
    request = json.loads(template["body"])
    lock = {"id": {"S": lock_id_for(request["groupId"], request["targetDeploymentItemName"])}}
    noop_arn = f"arn:aws:states:{REGION}:{ACCOUNT_ID}:stateMachine:{_NOOP_MACHINE}"
    environment = {"STATE_MACHINE_ARN": noop_arn, "POWERTOOLS_LOG_LEVEL": "INFO"}

    saved_wait = http.JOB_WAIT_SECONDS
    http.JOB_WAIT_SECONDS = 0.0
    try:
        with (
            handler_output_to(Path(os.devnull)),
            OfflineStack(scenario="ok", clock=VirtualClock(), env_overrides=environment) as stack,
        ):
            sfn = client("stepfunctions")
            sfn.create_state_machine(
                name=_NOOP_MACHINE,
                definition=_NOOP_DEFINITION,
                roleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/flexrestore-offline",
            )
            bare = {
                name: BareIntake(
                    atlas_url=stack.atlas_base_url,
                    secret_id=ATLAS_SECRET_ID,
                    tables=(RESTORES_TABLE, IDEMPOTENCY_TABLE),
                    machine_arn=noop_arn,
                    minimal=name == "bare_minimal",
                )
                for name in ("bare", "bare_minimal")
            }
            settled: set[str] = set()

            def settle() -> None:
                """Untimed, after each request: its execution ended, the target free again."""
                for arn in stack.executions():
                    if arn not in settled:
                        stack.wait_for_execution(arn)
                        settled.add(arn)
                client("dynamodb").delete_item(TableName=RESTORES_TABLE, Key=lock)

            def run(side: str, counting: Callable[[], Any] = nullcontext) -> tuple[float, float]:
                event = _api_event(template, f"bench-{side}-{uuid.uuid4().hex}")
                call: Callable[[], dict[str, Any]] = (
                    (lambda: stack.invoke("intake", event))
                    if side == "intake"
                    else (lambda: bare[side](event))
                )
                with stack.conductor.participating(), counting():
                    started, cpu = time.perf_counter(), time.process_time()
                    answer = call()
                    elapsed = (time.perf_counter() - started) * 1000, (time.process_time() - cpu) * 1000
                if answer.get("statusCode") != 202:
                    raise RuntimeError(f"{side}: expected 202, got {answer.get('statusCode')}: {answer}")
                settle()
                return elapsed

            sides = ("intake", "bare", "bare_minimal")
            for _ in range(WARM_UP):
                for side in sides:
                    run(side)
            timings: dict[str, list[tuple[float, float]]] = {side: [] for side in sides}
            for _ in range(samples):  # in turn, so drift in the machine's load hits every side alike
                for side in sides:
                    timings[side].append(run(side))

            counter = CallCounter(stack.simulator)
            services = ("dynamodb", "stepfunctions", "secretsmanager", "sns", "events", "cloudwatch")
            counter.watch(*(client(service) for service in services))
            for script in bare.values():
                counter.watch(*script.clients())
            calls: dict[str, Any] = {}
            for side in sides:
                counter.aws.clear()
                start = len(stack.simulator.calls)
                run(side, counter.active)
                atlas = counter.atlas_since(start)
                calls[side] = {
                    "atlas": dict(sorted(atlas.items())),
                    "aws": dict(sorted(counter.aws.items())),
                    "total": sum(atlas.values()) + sum(counter.aws.values()),
                }
            counter.unwatch()
    finally:
        http.JOB_WAIT_SECONDS = saved_wait

    wall = {side: [w for w, _ in samples_of] for side, samples_of in timings.items()}
    cpu = {side: _median([c for _, c in samples_of]) for side, samples_of in timings.items()}
    median, bare_median = _median(wall["intake"]), _median(wall["bare"])
    minimal_median = _median(wall["bare_minimal"])
    return {
        "median_ms": median,
        "p95_ms": _p95(wall["intake"]),
        "bare_median_ms": bare_median,
        "bare_p95_ms": _p95(wall["bare"]),
        "ratio": _ratio(median, bare_median),
        "within_target": median <= TARGETS["warm_intake_ratio"] * bare_median,
        "bare_minimal_median_ms": minimal_median,
        "ratio_vs_minimal": _ratio(median, minimal_median),
        "cpu_median_ms": cpu["intake"],
        "bare_cpu_median_ms": cpu["bare"],
        "cpu_ratio": _ratio(cpu["intake"], cpu["bare"]),
        "samples": samples,
        "calls": calls,
        "notes": WARM_NOTES.format(warm_up=WARM_UP),
        "samples_ms": [round(x, 2) for x in wall["intake"]],
        "bare_samples_ms": [round(x, 2) for x in wall["bare"]],
        "bare_minimal_samples_ms": [round(x, 2) for x in wall["bare_minimal"]],
    }


# ------------------------------------------------------------------------------- one whole restore


def whole_restore(scenario: str) -> dict[str, Any]:
    """One API restore end to end on the real state machine: its transitions and every call it made."""
    from flexrestore.aws.clients import client
    from flexrestore.clock import VirtualClock
    from flexrestore.local.capture import handler_output_to
    from flexrestore.local.harness import HANDLERS, OfflineStack
    from flexrestore.local.inputs import load_event

    event = load_event(REPO / "events" / "api-post-restore.json")
    with (
        handler_output_to(Path(os.devnull)),
        OfflineStack(scenario=scenario, clock=VirtualClock()) as stack,
    ):
        counter = CallCounter(stack.simulator)
        services = ("dynamodb", "stepfunctions", "secretsmanager", "sns", "events", "cloudwatch")
        counter.watch(*(client(service) for service in services))
        for name, path in HANDLERS.items():
            module, _, attribute = path.rpartition(".")
            handler = getattr(importlib.import_module(module), attribute)

            def counted(event: Any, context: Any, handler: Callable[..., Any] = handler) -> Any:
                with counter.active():  # the handlers' calls, not the harness's own reads
                    return handler(event, context)

            stack.functions[name] = counted
        answer = stack.invoke("intake", event)
        if answer.get("statusCode") != 202:
            raise RuntimeError(f"{scenario}: the intake answered {answer.get('statusCode')}")
        arns = stack.executions()
        for arn in arns:
            stack.wait_for_execution(arn, timeout_s=300)
        counter.unwatch()
        record = stack.record(json.loads(answer["body"])["restoreId"]) or {}
        atlas = counter.atlas_since(0)
        return {
            "finalStatus": record.get("finalStatus"),
            "transitions": sum(stack.state_transitions(arn) for arn in arns),
            "calls": {
                "atlas": dict(sorted(atlas.items())),
                "atlas_total": sum(atlas.values()),
                "aws": dict(sorted(counter.aws.items())),
                "aws_total": sum(counter.aws.values()),
            },
        }


# ------------------------------------------------------------------------------------- package bytes


def package_bytes(run_package: bool) -> tuple[dict[str, Any], str]:
    """Per function and layer: files, unpacked and zipped bytes of what ``make package`` built."""
    from tests.infrastructure.artifact_sizes import sizes
    from tests.infrastructure.checks import load_sam_template

    functions = sorted(  # every function of the template (several share a handler module)
        logical_id
        for logical_id, resource in load_sam_template()["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    )
    empty: dict[str, Any] = dict.fromkeys([*functions, "DependenciesLayer"])
    if not run_package:
        return empty, "not measured: skipped (--no-package or --quick); `make package` builds and prints them"
    started = time.perf_counter()
    built = subprocess.run(
        ["bash", str(REPO / "tests" / "infrastructure" / "package.sh")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if built.returncode != 0:
        why = (built.stderr.strip() or built.stdout.strip()).splitlines()
        return empty, "not measured: `make package` could not run here: " + " ".join(why[:3])
    build = REPO / ".aws-sam" / "build"
    result: dict[str, Any] = {}
    for name in empty:
        if (build / name).is_dir():
            files, unpacked, zipped = sizes(build / name)
            result[name] = {"files": files, "unpacked": unpacked, "zipped": zipped}
        else:
            result[name] = None
    seconds = time.perf_counter() - started
    return result, (
        f"from `make package` (sam build, python3.13, arm64) run by this benchmark ({seconds:.0f} s): "
        "files, unpacked bytes (Lambda's 250 MB limit counts these) and the zip `sam deploy` uploads "
        "(tests/infrastructure/artifact_sizes.py). Every function's code is the same runtime package; "
        "DependenciesLayer is shared by all of them."
    )


# ---------------------------------------------------------------------------------------------- main


def metadata(samples: dict[str, int], quick: bool) -> dict[str, Any]:
    def git(*args: str) -> str | None:
        answer = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
        return answer.stdout.strip() if answer.returncode == 0 else None

    return {
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "machine_cores": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "git_commit": git("rev-parse", "HEAD"),
        "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "samples": samples,
        "quick": quick,
        "targets": TARGETS,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="where to write the JSON")
    parser.add_argument("--samples", type=int, help="samples per measurement (default: 15 cold, 60 warm)")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_SAMPLES} samples, no package build")
    parser.add_argument("--no-package", action="store_true", help="do not run `make package`")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    count = QUICK_SAMPLES if args.quick else args.samples
    samples = {name: count or default for name, default in SAMPLES.items()}
    meta = metadata(samples, args.quick)
    cold = cold_start(samples["cold_start"])
    warm = warm_intake(samples["warm_intake"])
    restores = {scenario: whole_restore(scenario) for scenario in ("ok", "slow")}
    packaged, package_notes = package_bytes(run_package=not (args.quick or args.no_package))
    meta["duration_seconds"] = round(time.perf_counter() - started, 1)
    results = {
        "metadata": meta,
        "cold_start": cold,
        "warm_intake": warm,
        "transitions": {scenario: r["transitions"] for scenario, r in restores.items()},
        "calls_per_restore": {scenario: r["calls"] for scenario, r in restores.items()},
        "package_bytes": packaged,
        "notes": {
            "cold_start": COLD_START_NOTES,
            "transitions": (
                "Billed state transitions (states entered plus retried task attempts) of one restore sent "
                "as events/api-post-restore.json, from the execution's history in moto, which runs "
                "src/flexrestore/statemachine/restore.asl.json. ok: Atlas restores in 60 s; slow: 30 min. "
                "Final statuses: " + ", ".join(f"{s} {r['finalStatus']}" for s, r in restores.items())
            ),
            "calls_per_restore": (
                "The same restores: every Atlas call (the simulator's log, by operation; 'token' is the "
                "OAuth token) and every AWS call the functions made (botocore before-call hook, by "
                "service:operation), intake, create, polls, record and notify included. Each restore runs on "
                "a fresh stack, so its first Atlas call fetches a token and the secret is read once."
            ),
            "package_bytes": package_notes,
        },
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(summary(results))
    print(f"written to {args.output} in {meta['duration_seconds']} s")
    if args.output.resolve() == DEFAULT_OUTPUT and not args.quick and update_readme(results):
        print(f"README.md: the figures now quote {DEFAULT_OUTPUT.relative_to(REPO)}")
    return 0


def summary(results: dict[str, Any]) -> str:
    lines = ["cold start (import, ms)     median   floor   ratio   CPU ratio   (target <= 1.3)"]
    for name, figures in results["cold_start"].items():
        lines.append(
            f"  {name:<24} {figures['median_ms']:>7.1f} {figures['floor_ms']:>7.1f} {figures['ratio']:>7.2f}"
            f" {figures['cpu_ratio']:>11.2f}"
        )
    warm = results["warm_intake"]
    lines.append(
        f"warm POST /restores (ms)   median {warm['median_ms']:.2f}  p95 {warm['p95_ms']:.2f}  "
        f"bare {warm['bare_median_ms']:.2f}  ratio {warm['ratio']:.2f} (CPU {warm['cpu_ratio']:.2f})   "
        "(target <= 1.5)"
    )
    calls = {side: figures["total"] for side, figures in warm["calls"].items()}
    lines.append("  calls per request: " + ", ".join(f"{side} {total}" for side, total in calls.items()))
    for scenario, count in results["transitions"].items():
        calls = results["calls_per_restore"][scenario]
        lines.append(
            f"restore [{scenario}]: {count} state transitions, {calls['atlas_total']} Atlas calls, "
            f"{calls['aws_total']} AWS calls"
        )
    packaged = {k: v for k, v in results["package_bytes"].items() if v}
    if packaged:
        lines.append(
            "package (zipped bytes): " + ", ".join(f"{k} {v['zipped']}" for k, v in packaged.items())
        )
    else:
        lines.append("package: " + results["notes"]["package_bytes"])
    return "\n".join(lines)


def readme_figures(results: dict[str, Any]) -> str:
    """The README's tables of the figures (between README_BEGIN and README_END)."""
    meta = results["metadata"]
    samples = meta["samples"]
    load = meta["load_average_at_start"][0]
    lines = [
        f"Last run {meta['timestamp']} at commit {str(meta['git_commit'])[:7]}"
        f"{' (with local changes)' if meta['git_dirty'] else ''}, {meta['python']} on "
        f"{meta['machine_cores']} cores (load average {load} at the start); medians of "
        f"{samples['cold_start']} fresh interpreters per cold-start figure and {samples['warm_intake']} "
        "requests per warm figure.",
        "",
        "| cold start: handler import | median | floor | ratio (target <= 1.3) | ratio in CPU time |",
        "|---|---|---|---|---|",
    ]
    for name, figures in results["cold_start"].items():
        median, floor, ratio, cpu = (figures[k] for k in ("median_ms", "floor_ms", "ratio", "cpu_ratio"))
        lines.append(f"| {name} | {median:.0f} ms | {floor:.0f} ms | {ratio:.2f} | {cpu:.2f} |")
    warm = results["warm_intake"]
    calls = {side: figures["total"] for side, figures in warm["calls"].items()}
    lines += [
        "",
        "| warm POST /restores | median | p95 | calls | ratio (target <= 1.5) |",
        "|---|---|---|---|---|",
        f"| intake handler | {warm['median_ms']:.1f} ms | {warm['p95_ms']:.1f} ms | {calls['intake']} | "
        f"{warm['ratio']:.2f} (in CPU time {warm['cpu_ratio']:.2f}) |",
        f"| bare script, the same calls | {warm['bare_median_ms']:.1f} ms | {warm['bare_p95_ms']:.1f} ms | "
        f"{calls['bare']} | 1 |",
        f"| bare script, minimal calls | {warm['bare_minimal_median_ms']:.1f} ms | - | "
        f"{calls['bare_minimal']} | ({warm['ratio_vs_minimal']:.2f}) |",
        "",
        "| one restore (API, offline) | state transitions | Atlas calls | AWS calls |",
        "|---|---|---|---|",
    ]
    names = {"ok": "ok: Atlas restores in 60 s", "slow": "slow: 30 min"}
    for scenario, count in results["transitions"].items():
        restore = results["calls_per_restore"][scenario]
        atlas, aws = restore["atlas_total"], restore["aws_total"]
        lines.append(f"| {names.get(scenario, scenario)} | {count} | {atlas} | {aws} |")
    packaged = results["package_bytes"]
    lines += ["", "| package (`make package`) | files | unpacked | zipped |", "|---|---|---|---|"]
    for name, figures in packaged.items():
        if figures is None:
            lines.append(f"| {name} | - | - | - |")
        else:
            unpacked, zipped = _human(figures["unpacked"]), _human(figures["zipped"])
            lines.append(f"| {name} | {figures['files']} | {unpacked} | {zipped} |")
    return "\n".join(lines)


def _human(count: int) -> str:
    return f"{count / 1_000_000:.1f} MB" if count >= 1_000_000 else f"{count / 1_000:.0f} kB"


def readme_block(text: str) -> str | None:
    """What the README holds between the markers, or None without them."""
    start, end = text.find(README_BEGIN), text.find(README_END)
    if start < 0 or end < start:
        return None
    return text[start + len(README_BEGIN) : end].strip("\n")


def update_readme(results: dict[str, Any]) -> bool:
    text = README.read_text(encoding="utf-8")
    if readme_block(text) is None:
        return False
    start, end = text.index(README_BEGIN) + len(README_BEGIN), text.index(README_END)
    README.write_text(text[:start] + "\n" + readme_figures(results) + "\n" + text[end:], encoding="utf-8")
    return True


if __name__ == "__main__":
    sys.path[:0] = [str(REPO), str(REPO / "src")]
    raise SystemExit(main())
