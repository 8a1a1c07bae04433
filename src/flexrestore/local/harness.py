"""The whole service offline, in one process: moto stands in for AWS, the real state machine definition
runs in moto's ASL interpreter, its Lambda tasks call the real handlers in-process, and the local Atlas
simulator answers Atlas calls. Everything shares one clock: with a :class:`~flexrestore.clock.VirtualClock`
a 30-minute restore runs in about a second and nothing sleeps for real.

Used by the e2e tests, the integration tests, local mode (``flexrestore-local``) and the benchmarks::

    from flexrestore.clock import VirtualClock
    from flexrestore.local.harness import OfflineStack

    with OfflineStack(scenario="ok", clock=VirtualClock()) as stack:
        arn = stack.start_execution(execution_input, name=restore_id)
        stack.wait_for_execution(arn)          # the describe_execution answer, once it has ended
        stack.poll_execution(arn, timeout_s=0.2)  # the same, or None while it still runs
        stack.record(restore_id)               # the DynamoDB item, as plain JSON-like data
        stack.notifications()                  # [{"subject", "message", "record"}] from SNS
        stack.events()                         # outcome events from EventBridge
        stack.state_transitions(arn)           # billed transitions, retries included
        stack.atlas_calls()                    # [{"method", "path", "status", ...}]

Verification runs: ``stack.put_plan(plan)``, then ``arn = stack.start_run(name, run_id=...)`` (or
``stack.fire_schedule(name)``, what the plan's schedule does), ``stack.run_sources(run_id)`` while it runs,
``stack.run_record(run_id)`` once it has ended.

``stack.invoke("intake", event)`` calls a handler directly (with a fake Lambda context); ``invoke("sweep",
{})`` is what the sweeper's schedule does. ``stack.register_validator(name, handler)`` deploys a plan's
validator (its ARN, allowed as ValidatorFunctionArns would). To make a
function misbehave, replace it: ``stack.functions["poll"] = my_callable`` (a handler, or an import path
``"package.module.function"``). ``atlas_url=...`` (with ``secret=...`` and a real clock) points the stack at
another Atlas instead of starting the simulator.

Atlas faults: ``stack.simulator.fail_next(operation, Fault...)`` and ``fail_for`` (simulator/faults.py); a
slow or unanswered Atlas call makes the calling handler wait on the stack's clock (simulator/delays.py), so
it can time out as it would against Atlas.

``env_overrides`` adds or replaces environment variables for the stack's lifetime (e.g.
``{"POWERTOOLS_LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_DISABLED": "true"}`` for quiet output; powertools
reads the log level when a handler module is first imported).

Every moto-internal patch lives in this module (moto is pinned to 5.2.x for that reason), and all of them
are undone on exit, as are the environment variables, the process clock and every per-container cache:
stacks are independent of each other. Not thread-safe: one stack at a time per process.
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
import os
import re
import threading
import types
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flexrestore import clock as clock_module
from flexrestore.contracts.events import EVENT_SOURCES
from flexrestore.local.conductor import Conductor, Stopped

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
ASL_PATH = Path(__file__).resolve().parent.parent / "statemachine" / "restore.asl.json"
RUN_ASL_PATH = ASL_PATH.with_name("run.asl.json")
PLACEHOLDER = re.compile(r"\$\{(\w+)\}")

# Short name -> handler import path. Lambda function names are "flexrestore-<short name>".
HANDLERS: dict[str, str] = {
    "intake": "flexrestore.handlers.intake.handler",
    "create": "flexrestore.handlers.create.handler",
    "poll": "flexrestore.handlers.poll.handler",
    "record": "flexrestore.handlers.record.handler",
    "notify": "flexrestore.handlers.notify.handler",
    "reconcile": "flexrestore.handlers.reconcile.handler",
    "run-begin": "flexrestore.handlers.run.begin",
    "run-source": "flexrestore.handlers.run.source",
    "run-finish": "flexrestore.handlers.run.finish",
    "run-validate": "flexrestore.handlers.run_after.validate",
    "run-cleanup": "flexrestore.handlers.run_after.cleanup",
    "sweep": "flexrestore.handlers.sweep.handler",
}
TEMPLATE_PATH = Path(__file__).resolve().parents[3] / "template.yaml"
DEFAULT_TIMEOUT_SECONDS = 30
RESTORES_TABLE = "flexrestore-restores"
IDEMPOTENCY_TABLE = "flexrestore-idempotency"
TOPIC_NAME = "flexrestore-notifications"
STATE_MACHINE_NAME = "flexrestore-restore-poll"
RUN_STATE_MACHINE_NAME = "flexrestore-verification-run"
PLANS_TABLE = "flexrestore-plans"
RUNS_TABLE = "flexrestore-runs"
SCHEDULE_GROUP = "flexrestore"
SCHEDULER_ROLE_NAME = "flexrestore-scheduler"
ATLAS_SECRET_ID = "flexrestore/atlas"
_EXECUTION_JOIN_SECONDS = 60.0


class HarnessError(RuntimeError):
    """The offline stack could not be set up or used as asked."""


def function_name(short_name: str) -> str:
    return f"flexrestore-{short_name}"


def function_arn(short_name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{function_name(short_name)}"


def fill_placeholders(definition: str, values: dict[str, str]) -> str:
    """``${Name}`` -> value, as template.yaml's DefinitionSubstitutions does. Unknown names fail loudly."""
    missing = sorted({name for name in PLACEHOLDER.findall(definition) if name not in values})
    if missing:
        raise HarnessError(f"state machine definition uses placeholders with no value: {', '.join(missing)}")
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], definition)


def state_transitions(history: list[dict[str, Any]]) -> int:
    """What AWS bills for an execution: every state entered, plus every retried task attempt.

    A Task state entered once and retried n times shows n + 1 ``TaskScheduled`` (or
    ``LambdaFunctionScheduled``) events; each retry is one more transition. Each scheduling belongs to the
    state entered that its ``previousEventId`` chain leads back to (a Map's iterations interleave).
    """
    by_id = {event.get("id"): event for event in history}
    entered = 0
    scheduled_by_entry: Counter[Any] = Counter()
    for event in history:
        kind = str(event["type"])
        if kind.endswith("StateEntered"):
            entered += 1
        elif kind in ("TaskScheduled", "LambdaFunctionScheduled", "ActivityScheduled"):
            scheduled_by_entry[_entered_by(event, by_id)] += 1
    retries = sum(count - 1 for count in scheduled_by_entry.values() if count > 1)
    return entered + retries


def _entered_by(event: dict[str, Any], by_id: dict[Any, dict[str, Any]]) -> Any:
    """The id of the ``*StateEntered`` event an event follows from."""
    seen = 0
    current: dict[str, Any] | None = event
    while current is not None and seen < len(by_id) + 1:
        if str(current["type"]).endswith("StateEntered"):
            return current.get("id")
        current = by_id.get(current.get("previousEventId"))
        seen += 1
    return None


class LambdaTimedOut(Exception):
    """A handler ran past its function's timeout on the stack's clock: Lambda would have stopped it there."""


@functools.cache
def function_timeouts(template: Path = TEMPLATE_PATH) -> dict[str, int]:
    """Each handler's Lambda timeout (seconds) as template.yaml sets it (per function, else Globals)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    # CloudFormation's short-form tags (!Ref, !Sub, ...) read as plain values; only literals matter here.
    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    if not template.is_file():
        return {}
    data = yaml.load(template.read_text(encoding="utf-8"), Loader=Loader)  # noqa: S506 - SafeLoader subclass
    default = int(
        ((data.get("Globals") or {}).get("Function") or {}).get("Timeout") or DEFAULT_TIMEOUT_SECONDS
    )
    timeouts: dict[str, int] = {}
    for resource in (data.get("Resources") or {}).values():
        properties = resource.get("Properties") or {}
        handler = properties.get("Handler") if resource.get("Type") == "AWS::Serverless::Function" else None
        for short, path in HANDLERS.items():
            if handler == path:
                timeouts[short] = int(properties.get("Timeout") or default)
    return timeouts


@dataclass
class FakeLambdaContext:
    """What powertools (and the budget of Atlas calls) reads from a Lambda context: the remaining time runs
    on the stack's clock, from the function's timeout in template.yaml."""

    function_name: str
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = ""
    aws_request_id: str = ""
    log_group_name: str = ""
    log_stream_name: str = ""
    deadline: float | None = None  # on clock_module.current(); None: 300 s, always

    @classmethod
    def for_function(cls, short_name: str, deadline: float | None = None) -> FakeLambdaContext:
        name = function_name(short_name)
        return cls(
            function_name=name,
            invoked_function_arn=function_arn(short_name),
            aws_request_id=str(uuid.uuid4()),
            log_group_name=f"/aws/lambda/{name}",
            log_stream_name="offline",
            deadline=deadline,
        )

    def get_remaining_time_in_millis(self) -> int:
        if self.deadline is None:
            return 300_000
        return max(0, int((self.deadline - clock_module.current().now()) * 1000))


# moto evaluates a DynamoDB write's condition and then writes, with nothing held in between; DynamoDB does
# both atomically. Racing threads could then both pass one attribute_not_exists condition (two holders of
# a target lock, two idempotency records). One lock around moto's writes makes them atomic again, so
# concurrency tests exercise our conditions rather than moto's race.
_DYNAMODB_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")


@contextmanager
def atomic_dynamodb_writes() -> Iterator[None]:
    """While open, moto's DynamoDB writes run one at a time (OfflineStack opens it; plain ``mock_aws``
    tests may too). The originals are restored on exit."""
    from moto.dynamodb.models import DynamoDBBackend

    write_lock = threading.RLock()
    originals = {name: vars(DynamoDBBackend)[name] for name in _DYNAMODB_WRITES}

    def serialized(original: Callable[..., Any]) -> Callable[..., Any]:
        def write(backend: Any, *args: Any, **kwargs: Any) -> Any:
            with write_lock:
                return original(backend, *args, **kwargs)

        return write

    for name, original in originals.items():
        setattr(DynamoDBBackend, name, serialized(original))
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(DynamoDBBackend, name, original)


def _clear_container_caches() -> None:
    """What a fresh Lambda container would not have: cached settings, clients, secrets, adapters."""
    from aws_lambda_powertools.utilities import parameters

    from flexrestore import bootstrap

    bootstrap.forget_adapters()
    parameters.clear_caches()  # type: ignore[no-untyped-call]


class OfflineStack:
    """moto + the real ASL + in-process Lambdas + the Atlas simulator, on one clock. A context manager."""

    def __init__(
        self,
        scenario: str = "ok",
        clock: clock_module.Clock | None = None,
        *,
        env_overrides: dict[str, str] | None = None,
        atlas_url: str | None = None,
        secret: dict[str, str] | None = None,
    ) -> None:
        self.scenario = scenario
        self.clock: clock_module.Clock = clock if clock is not None else clock_module.VirtualClock()
        self.timeouts = {short: function_timeouts().get(short, DEFAULT_TIMEOUT_SECONDS) for short in HANDLERS}
        self.env_overrides = dict(env_overrides or {})
        self.atlas_url = atlas_url
        self.secret = secret
        self.functions: dict[str, Callable[..., Any] | str] = dict(HANDLERS)
        self.lambda_errors: list[dict[str, str]] = []  # every error a Lambda raised inside an execution
        self.simulator: Any = None
        self.atlas_base_url = ""
        self.state_machine_arn = ""
        self.run_state_machine_arn = ""
        self.topic_arn = ""
        self._notifications: list[dict[str, Any]] = []
        self._events: list[dict[str, Any]] = []
        self._threads: dict[str, threading.Thread] = {}
        # Time moves only when every participant waits (local/conductor.py): concurrent waits overlap.
        self.conductor = Conductor(self.clock)
        self._queues: dict[str, str] = {}
        self._exit = ExitStack()

    # ----------------------------------------------------------------------------------- lifecycle

    def __enter__(self) -> OfflineStack:
        try:
            self._start()
        except BaseException:
            self._exit.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._exit.close()

    def _start(self) -> None:
        from moto import mock_aws

        self._exit.callback(_clear_container_caches)
        self._exit.enter_context(self._installed_clock())
        self._start_atlas()
        self._exit.enter_context(self._environment())
        self._exit.enter_context(self._log_level())
        _clear_container_caches()
        self._exit.enter_context(self._moto_patches())
        self._exit.enter_context(_shared_botocore_loader())
        self._exit.enter_context(_one_sns_signing_key())
        self._exit.enter_context(
            mock_aws(
                config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
            )
        )
        # Registered after the mock, so it runs before the mock stops: an execution left running would
        # call moto after it stopped.
        self._exit.callback(self._stop_executions)
        self._create_resources()

    @contextmanager
    def _log_level(self) -> Iterator[None]:
        """The handlers' log level from this stack's POWERTOOLS_LOG_LEVEL: powertools reads it only when the
        first Logger of the process is built, and an earlier stack must not decide it for this one."""
        service = logging.getLogger(os.environ.get("POWERTOOLS_SERVICE_NAME", "flexrestore"))
        previous = service.level
        service.setLevel(os.environ.get("POWERTOOLS_LOG_LEVEL", "INFO").upper())
        try:
            yield
        finally:
            service.setLevel(previous)

    @contextmanager
    def _installed_clock(self) -> Iterator[None]:
        previous = clock_module.use(self.conductor)
        try:
            yield
        finally:
            clock_module.use(previous)

    def _start_atlas(self) -> None:
        if self.atlas_url:
            self.atlas_base_url = self.atlas_url.rstrip("/")
            if self.secret is None:
                raise HarnessError(
                    "atlas_url needs secret={'clientId': ..., 'clientSecret': ...} (or API keys)"
                )
            return
        from flexrestore.simulator import DEMO, AtlasSimulator
        from flexrestore.simulator.delays import honour_delays

        self.simulator = AtlasSimulator(clock=self.clock, scenario=self.scenario)
        self.atlas_base_url = self.simulator.start()
        self._exit.callback(self.simulator.stop)
        # Slow and unanswered calls (sim.fail_next(..., Fault.timeout())) cost time on the stack's clock.
        self._exit.enter_context(honour_delays())
        if self.secret is None:
            self.secret = {"clientId": DEMO.client_id, "clientSecret": DEMO.client_secret}

    @contextmanager
    def _environment(self) -> Iterator[None]:
        self.state_machine_arn = f"arn:aws:states:{REGION}:{ACCOUNT_ID}:stateMachine:{STATE_MACHINE_NAME}"
        self.run_state_machine_arn = (
            f"arn:aws:states:{REGION}:{ACCOUNT_ID}:stateMachine:{RUN_STATE_MACHINE_NAME}"
        )
        self.topic_arn = f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:{TOPIC_NAME}"
        values = {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "POWERTOOLS_SERVICE_NAME": "flexrestore",
            "POWERTOOLS_METRICS_NAMESPACE": "FlexRestore",
            "POWERTOOLS_TRACE_DISABLED": "1",
            "ATLAS_BASE_URL": self.atlas_base_url,
            "ATLAS_SECRET_ID": ATLAS_SECRET_ID,
            "STATE_MACHINE_ARN": self.state_machine_arn,
            "RESTORES_TABLE": RESTORES_TABLE,
            "IDEMPOTENCY_TABLE": IDEMPOTENCY_TABLE,
            "NOTIFICATION_TOPIC_ARN": self.topic_arn,
            "EVENT_BUS_NAME": "default",
            "PLANS_TABLE": PLANS_TABLE,
            "RUNS_TABLE": RUNS_TABLE,
            "RUN_STATE_MACHINE_ARN": self.run_state_machine_arn,
            "SCHEDULE_GROUP": SCHEDULE_GROUP,
            "SCHEDULER_ROLE_ARN": f"arn:aws:iam::{ACCOUNT_ID}:role/{SCHEDULER_ROLE_NAME}",
            "VALIDATOR_FUNCTION_ARNS": "",  # register_validator() adds to it
            **self.env_overrides,
        }
        previous = {name: os.environ.get(name) for name in values}
        os.environ.update(values)
        try:
            yield
        finally:
            for name, value in previous.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    # --------------------------------------------------------------------------------- moto patches

    @contextmanager
    def _moto_patches(self) -> Iterator[None]:
        from moto.awslambda_simple.models import LambdaSimpleBackend
        from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
        from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
        from moto.stepfunctions.parser.asl.component.program.program import Program
        from moto.stepfunctions.parser.asl.component.state.exec import execute_state
        from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import job
        from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.inline_iteration_component import (  # noqa: E501
            InlineIterationComponent,
        )
        from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import (
            WaitFunction,
        )
        from moto.stepfunctions.parser.asl.eval.callback import callback
        from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
        from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
        from moto.stepfunctions.parser.models import StepFunctionsParserBackend
        from moto.stepfunctions.parser.utils import TMP_THREADS

        stack = self
        conductor = self.conductor

        def invoke(
            backend: Any, name: str, qualifier: Any, body: Any, headers: Any, response_headers: Any
        ) -> bytes:
            short = stack._short_name(name)
            try:
                event = json.loads(body or "{}")
                result = stack._call_handler(short, event)
                return json.dumps(result, default=str).encode()
            except Exception as exc:  # a Lambda error: Retry/Catch match on errorType
                error_type = "Sandbox.Timedout" if isinstance(exc, LambdaTimedOut) else type(exc).__name__
                stack.lambda_errors.append(
                    {"function": short, "errorType": error_type, "errorMessage": str(exc)}
                )
                response_headers["x-amz-function-error"] = "Unhandled"
                return json.dumps({"errorType": error_type, "errorMessage": str(exc)}).encode()

        sleep = self.conductor.sleep

        def wait_interval(function: Any, env: Any, wait_seconds: float) -> None:
            sleep(wait_seconds)

        def program_eval(program: Any, env: Any) -> None:
            # moto's Program.eval, with the thread that runs the states taking part in the clock, and the
            # thread that waits for it waiting on an event its end sets (so it is busy again at once, and a
            # TimeoutSeconds runs on the clock).
            timeout = program.timeout_seconds.timeout_seconds if program.timeout_seconds else None
            env.next_state_name = program.start_at.start_at_name
            done = threading.Event()

            def work(environment: Any) -> None:
                try:
                    EvalComponent.eval(program, environment)
                finally:
                    done.set()

            TMP_THREADS.append(conductor.start_thread(work, env))
            if not conductor.wait_event(done, timeout):
                env.set_timed_out()

        def launch_iteration_worker(component: Any, env: Any, eval_input: Any, job_pool: Any) -> Any:
            worker = component._create_worker(env=env, eval_input=eval_input, job_pool=job_pool)
            TMP_THREADS.append(conductor.start_thread(worker.eval))
            return worker

        original_get_executions = vars(StepFunctionsParserBackend)["_get_executions"]

        def executions_with_tokens(backend: Any, execution_status: Any = None) -> list[Any]:
            # moto looks for a task token in every running execution's environment, which an execution
            # started a moment ago (its thread not yet running) does not have yet: skip those.
            found = original_get_executions(backend, execution_status)
            return [e for e in found if getattr(getattr(e, "exec_worker", None), "env", None) is not None]

        def start_worker(worker: Any) -> None:
            arn = worker._evaluation_details.execution_details.arn
            stack._threads[arn] = conductor.start_thread(worker._execution_logic, name="sfn-execution")

        conducted_threading = types.SimpleNamespace(**{**vars(threading), "Event": conductor.event_class()})
        parse_once = staticmethod(_parsing_once(AmazonStateLanguageParser.parse))
        validate_once = staticmethod(_validating_once(StepFunctionsParserBackend._validate_definition))
        replacements: list[tuple[Any, str, Any]] = [
            (AmazonStateLanguageParser, "parse", parse_once),
            (StepFunctionsParserBackend, "_validate_definition", validate_once),
            (LambdaSimpleBackend, "invoke", invoke),
            (WaitFunction, "_wait_interval", wait_interval),
            (ExecutionWorker, "start", start_worker),
            (Program, "eval", program_eval),
            (InlineIterationComponent, "_launch_worker", launch_iteration_worker),
            (StepFunctionsParserBackend, "_get_executions", executions_with_tokens),
            (retrier_decl, "time", types.SimpleNamespace(sleep=sleep)),
            # A task state runs its work in a thread of its own and waits for it (and for a task token)
            # with timeouts: here those threads take part in the clock and the timeouts run on it.
            (execute_state, "Thread", conductor.thread_class()),
            (
                execute_state,
                "threading",
                types.SimpleNamespace(**{**vars(threading), "Event": conductor.event_class()}),
            ),
            (callback, "Event", conductor.event_class()),
            # A Map state waits for its iterations on an event too.
            (job, "threading", conducted_threading),
        ]
        saved = [(owner, attribute, vars(owner)[attribute]) for owner, attribute, _ in replacements]
        for owner, attribute, replacement in replacements:
            setattr(owner, attribute, replacement)
        try:
            with atomic_dynamodb_writes():
                yield
        finally:
            for owner, attribute, original in saved:
                setattr(owner, attribute, original)

    def _short_name(self, name: str) -> str:
        name = name.split(":")[6] if name.startswith("arn:") else name
        return name.removeprefix("flexrestore-")

    def _handler(self, short_name: str) -> Callable[..., Any]:
        target = self.functions.get(short_name)
        if target is None:
            raise HarnessError(f"no handler registered for Lambda function '{short_name}'")
        if callable(target):
            return target
        module_name, _, attribute = target.rpartition(".")
        handler: Callable[..., Any] = getattr(importlib.import_module(module_name), attribute)
        return handler

    # ------------------------------------------------------------------------------------ resources

    def _client(self, service: str) -> Any:
        from flexrestore.aws.clients import client

        return client(service)

    def _create_resources(self) -> None:
        from flexrestore.aws.table_schema import (
            idempotency_table_definition,
            plans_table_definition,
            restores_table_definition,
            runs_table_definition,
        )

        role_arn = self._client("iam").create_role(
            RoleName="flexrestore-offline",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]

        dynamodb = self._client("dynamodb")
        dynamodb.create_table(**restores_table_definition(RESTORES_TABLE))
        dynamodb.create_table(**idempotency_table_definition(IDEMPOTENCY_TABLE))
        dynamodb.create_table(**plans_table_definition(PLANS_TABLE))
        dynamodb.create_table(**runs_table_definition(RUNS_TABLE))
        self._client("iam").create_role(
            RoleName=SCHEDULER_ROLE_NAME,
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )
        self._client("scheduler").create_schedule_group(Name=SCHEDULE_GROUP)

        secrets = self._client("secretsmanager")
        secrets.create_secret(Name=ATLAS_SECRET_ID, SecretString=json.dumps(self.secret))

        sns = self._client("sns")
        self.topic_arn = sns.create_topic(Name=TOPIC_NAME)["TopicArn"]
        notifications_url, notifications_arn = self._queue("flexrestore-notifications-inbox")
        # Not raw delivery: the Subject only travels in SNS's JSON envelope.
        sns.subscribe(TopicArn=self.topic_arn, Protocol="sqs", Endpoint=notifications_arn)
        self._queues["notifications"] = notifications_url

        events = self._client("events")
        events_url, events_arn = self._queue("flexrestore-events-inbox")
        events.put_rule(Name="flexrestore-outcomes", EventPattern=json.dumps({"source": list(EVENT_SOURCES)}))
        events.put_targets(Rule="flexrestore-outcomes", Targets=[{"Id": "inbox", "Arn": events_arn}])
        self._queues["events"] = events_url

        lambdas = self._client("lambda")
        for short, target in HANDLERS.items():
            lambdas.create_function(
                FunctionName=function_name(short),
                Runtime="python3.12",
                Role=role_arn,
                Handler=target.removeprefix("flexrestore."),
                Code={"ZipFile": b"offline: the harness calls the handler in-process"},
                Timeout=self.timeouts[short],
            )

        definition = fill_placeholders(
            ASL_PATH.read_text(encoding="utf-8"),
            {
                "CreateFunctionArn": function_arn("create"),
                "PollFunctionArn": function_arn("poll"),
                "RecordFunctionArn": function_arn("record"),
                "NotifyFunctionArn": function_arn("notify"),
                "RestoresTableName": RESTORES_TABLE,
            },
        )
        sfn = self._client("stepfunctions")
        self.state_machine_arn = sfn.create_state_machine(
            name=STATE_MACHINE_NAME, definition=definition, roleArn=role_arn, type="STANDARD"
        )["stateMachineArn"]
        run_definition = fill_placeholders(
            RUN_ASL_PATH.read_text(encoding="utf-8"),
            {
                "RunBeginFunctionArn": function_arn("run-begin"),
                "RunSourceFunctionArn": function_arn("run-source"),
                "RunFinishFunctionArn": function_arn("run-finish"),
                "RunValidateFunctionArn": function_arn("run-validate"),
                "RunCleanupFunctionArn": function_arn("run-cleanup"),
            },
        )
        self.run_state_machine_arn = sfn.create_state_machine(
            name=RUN_STATE_MACHINE_NAME, definition=run_definition, roleArn=role_arn, type="STANDARD"
        )["stateMachineArn"]

    def _queue(self, name: str) -> tuple[str, str]:
        sqs = self._client("sqs")
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return url, arn

    def _stop_executions(self) -> None:
        sfn = self._client("stepfunctions")
        for arn, thread in list(self._threads.items()):
            # A just-started execution may not accept a stop yet: try until it does or has ended.
            for _ in range(100):
                if not thread.is_alive():
                    break
                try:
                    sfn.stop_execution(executionArn=arn, error="StackClosed", cause="the stack was closed")
                    break
                except Exception:
                    thread.join(0.05)
            thread.join(_EXECUTION_JOIN_SECONDS)

    # ---------------------------------------------------------------------------------- operations

    def invoke(self, short_name: str, event: Any) -> Any:
        """Call a handler in-process, as Lambda would: a context whose remaining time runs on the stack's
        clock from the function's timeout in template.yaml, and :class:`LambdaTimedOut` when it runs past it.
        Its exceptions propagate. Executions it starts run at once; their waits hold until it has answered."""
        with self.conductor.participating():
            return self._call_handler(short_name, event)

    def _call_handler(self, short_name: str, event: Any) -> Any:
        timeout = self.timeouts.get(short_name, DEFAULT_TIMEOUT_SECONDS)
        deadline = self.clock.now() + timeout
        try:
            with self.conductor.invocation(deadline):
                return self._handler(short_name)(event, FakeLambdaContext.for_function(short_name, deadline))
        except Stopped:
            raise LambdaTimedOut(
                f"{function_name(short_name)}: Task timed out after {timeout:.2f} seconds"
            ) from None

    def register_validator(
        self, name: str, handler: Callable[..., Any], *, timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS
    ) -> str:
        """Deploy ``handler`` as the Lambda function ``name`` (a plan's validator, ``validation.lambdaArn``)
        and allow it, as the template's ValidatorFunctionArns would: its ARN joins VALIDATOR_FUNCTION_ARNS.
        Invocations run it in-process, as any function of the stack, stopped at ``timeout_seconds`` on the
        clock. Returns its ARN, for the plan."""
        from flexrestore import bootstrap

        arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"
        self.functions[name] = handler
        self.timeouts[name] = timeout_seconds
        allowed = [a for a in os.environ.get("VALIDATOR_FUNCTION_ARNS", "").split(",") if a]
        if arn not in allowed:
            os.environ["VALIDATOR_FUNCTION_ARNS"] = ",".join([*allowed, arn])
            self.env_overrides["VALIDATOR_FUNCTION_ARNS"] = os.environ["VALIDATOR_FUNCTION_ARNS"]
            bootstrap.forget_adapters()  # the settings are read again
        return arn

    def start_execution(self, execution_input: dict[str, Any], name: str | None = None) -> str:
        """Start the poll loop; ``name`` defaults to the input's restoreId (docs/contracts.md)."""
        name = name or str(execution_input.get("restoreId") or uuid.uuid4().hex)
        answer = self._client("stepfunctions").start_execution(
            stateMachineArn=self.state_machine_arn, name=name, input=json.dumps(execution_input)
        )
        return str(answer["executionArn"])

    def put_plan(self, plan: dict[str, Any], *, caller: str | None = None) -> dict[str, Any]:
        """Save a plan as ``PUT /plans/{name}`` does (validated; its schedule created); the saved entry."""
        from flexrestore import bootstrap

        with self.conductor.participating():
            saved = bootstrap.plan_catalog().save(str(plan.get("name")), plan, caller=caller)
        return saved.entry.to_json()

    def start_run(
        self,
        plan_name: str,
        *,
        run_id: str | None = None,
        requested_by: dict[str, Any] | None = None,
        execution_name: str | None = None,
    ) -> str:
        """Start a verification run of a saved plan, as ``POST /plans/{name}/runs`` or its schedule would;
        the execution's ARN (named after ``run_id``, a fresh one by default, unless ``execution_name``
        names it otherwise: a run started again under another execution, as a redrive would)."""
        run_id = run_id or uuid.uuid4().hex
        document: dict[str, Any] = {
            "runId": run_id,
            "plan": plan_name,
            "requestedBy": requested_by
            or {"trigger": "api", "caller": f"arn:aws:iam::{ACCOUNT_ID}:user/tester"},
        }
        answer = self._client("stepfunctions").start_execution(
            stateMachineArn=self.run_state_machine_arn,
            name=execution_name or run_id,
            input=json.dumps(document),
        )
        return str(answer["executionArn"])

    def fire_schedule(self, plan_name: str, execution_input: dict[str, Any] | None = None) -> str:
        """What EventBridge Scheduler does when the plan's schedule is due: start the schedule's target with
        its input (an execution with a generated name). Fails if the plan has no schedule.
        ``execution_input`` replaces the schedule's input (e.g. ``events/schedule-plan-run.json``)."""
        schedule = self._client("scheduler").get_schedule(Name=plan_name, GroupName=SCHEDULE_GROUP)
        target = schedule["Target"]
        document = target["Input"] if execution_input is None else json.dumps(execution_input)
        answer = self._client("stepfunctions").start_execution(
            stateMachineArn=target["Arn"], name=uuid.uuid4().hex, input=document
        )
        return str(answer["executionArn"])

    def schedules(self) -> list[dict[str, Any]]:
        """The schedules in the stack's schedule group (name, expression, timezone, target input)."""
        scheduler = self._client("scheduler")
        found = []
        for summary in scheduler.list_schedules(GroupName=SCHEDULE_GROUP).get("Schedules", []):
            schedule = scheduler.get_schedule(Name=summary["Name"], GroupName=SCHEDULE_GROUP)
            found.append(
                {
                    "name": schedule["Name"],
                    "expression": schedule["ScheduleExpression"],
                    "timezone": schedule.get("ScheduleExpressionTimezone"),
                    "input": json.loads(schedule["Target"]["Input"]),
                    "targetArn": schedule["Target"]["Arn"],
                }
            )
        return found

    def run_record(self, run_id: str) -> dict[str, Any] | None:
        from flexrestore.aws.runs import RunTable

        record = RunTable(RUNS_TABLE).get_run(run_id)
        return record.to_json() if record is not None else None

    def run_sources(self, run_id: str) -> list[dict[str, Any]]:
        """Where each source of a run is, while the run goes on or after it: ``index``, ``clusterName``,
        ``targetDeploymentItemName``, ``restoreId`` (None until its restore is made), ``status`` and, for its
        restore, ``requestedAt`` and ``durationSeconds``. ``status`` is ``WAITING`` until the source's restore
        is made, then the restore record's status (``ACCEPTED``, ``CREATING``, Atlas's job status), then its
        ``finalStatus``; a source that ended without a restore has its own ending (``REFUSED``). ``ended``
        once the source has ended (its restore's final record is written: Atlas's job may say COMPLETED a
        moment before); ``error`` is the code of why it did not complete, if it has one. [] until the run
        has begun (resolved its sources)."""
        from flexrestore.aws.runs import RunTable
        from flexrestore.aws.store import RestoreStore

        restores = RestoreStore(RESTORES_TABLE)
        found: list[dict[str, Any]] = []
        for source in RunTable(RUNS_TABLE).sources(run_id):
            record = restores.get(source.restore_id) if source.restore_id else None
            error, ended = None, source.outcome is not None or (record is not None and record.ended)
            if source.outcome is not None:
                status: str = source.outcome.final_status
                error = source.outcome.error
            elif record is not None:
                status = record.final_status or record.status or "ACCEPTED"
                error = record.error
            else:
                status = "WAITING"
            found.append(
                {
                    "index": source.index,
                    "clusterName": source.planned.get("cluster_name"),
                    "targetDeploymentItemName": source.planned.get("target_deployment_item_name"),
                    "restoreId": source.restore_id,
                    "status": status,
                    "ended": ended,
                    "requestedAt": record.to_json()["requestedAt"] if record is not None else None,
                    "durationSeconds": record.duration_seconds if record is not None else None,
                    "error": error.code if error is not None else None,
                }
            )
        return found

    def poll_execution(self, execution_arn: str, timeout_s: float = 0.0) -> dict[str, Any] | None:
        """Wait at most ``timeout_s`` (real time; it runs on the stack's clock) for the execution to end: its
        description once it has ended, None while it is still running. For loops that show progress."""
        thread = self._threads.get(execution_arn)
        if thread is None:
            raise HarnessError(f"no execution {execution_arn} was started in this stack")
        thread.join(timeout_s)
        if thread.is_alive():
            return None
        description: dict[str, Any] = self._client("stepfunctions").describe_execution(
            executionArn=execution_arn
        )
        return description

    def wait_for_execution(
        self, execution_arn: str, timeout_s: float = _EXECUTION_JOIN_SECONDS
    ) -> dict[str, Any]:
        """Wait until the execution ends; its description. Still running after ``timeout_s`` of real time
        is an error here (a test's loop that never ends); :meth:`poll_execution` answers None instead."""
        description = self.poll_execution(execution_arn, timeout_s)
        if description is None:
            raise HarnessError(f"execution {execution_arn} still running after {timeout_s} s of real time")
        return description

    def executions(self) -> list[str]:
        """ARNs of every execution started in this stack (by the harness or by the intake handler)."""
        return list(self._threads)

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        sfn = self._client("stepfunctions")
        events: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = sfn.get_execution_history(
                executionArn=execution_arn, maxResults=1000, **({"nextToken": token} if token else {})
            )
            events.extend(page["events"])
            token = page.get("nextToken")
            if not token:
                return events

    def state_transitions(self, execution_arn: str) -> int:
        return state_transitions(self.history(execution_arn))

    def _drain(self, queue: str) -> list[dict[str, Any]]:
        sqs = self._client("sqs")
        bodies: list[dict[str, Any]] = []
        while True:
            answer = sqs.receive_message(QueueUrl=self._queues[queue], MaxNumberOfMessages=10)
            messages = answer.get("Messages", [])
            if not messages:
                return bodies
            for message in messages:
                bodies.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self._queues[queue], ReceiptHandle=message["ReceiptHandle"])

    def notifications(self) -> list[dict[str, Any]]:
        """Every SNS message so far: ``subject``, ``message`` and the JSON ``record`` it ends with."""
        for envelope in self._drain("notifications"):
            message = str(envelope.get("Message", ""))
            self._notifications.append(
                {"subject": envelope.get("Subject"), "message": message, "record": _trailing_json(message)}
            )
        return list(self._notifications)

    def events(self) -> list[dict[str, Any]]:
        """Every event the service put on the bus so far (sources ``flexrestore.restores`` and
        ``flexrestore.runs``), as a rule delivers it: ``source``, ``detail-type``, ``resources``, ``detail``,
        ..."""
        self._events.extend(self._drain("events"))
        return list(self._events)

    def record(self, restore_id: str) -> dict[str, Any] | None:
        from flexrestore.aws.store import RestoreStore

        record = RestoreStore(RESTORES_TABLE).get(restore_id)
        return record.to_json() if record is not None else None

    def put_record(self, item: dict[str, Any]) -> None:
        """Write an item in RESTORES_TABLE as is (a test's stand-in for the intake's record)."""
        from flexrestore.aws.codec import to_item

        self._client("dynamodb").put_item(TableName=RESTORES_TABLE, Item=to_item(item))

    def atlas_calls(self) -> list[dict[str, Any]]:
        """Every request the Atlas simulator answered (empty against an external Atlas)."""
        if self.simulator is None:
            return []
        return [
            {
                "method": call.method,
                "path": call.path,
                "status": call.status,
                "auth": getattr(call, "auth_kind", None),
                "violation": getattr(call, "violation", None),
            }
            for call in self.simulator.calls
        ]

    def atlas_client(self) -> Any:
        """The Atlas client the handlers use (same settings, secret and clock)."""
        from flexrestore import bootstrap

        return bootstrap.atlas()


@contextmanager
def _shared_botocore_loader() -> Iterator[None]:
    """One botocore data loader for every session while the stack is open. moto gives each mock a new
    default boto3 session, and each new session read the service models from disk again (about 25 ms per
    client); the loader only caches what it read, so sharing it changes nothing else."""
    import botocore.loaders
    import botocore.session

    original = botocore.session.create_loader
    botocore.session.create_loader = _cached_loader  # type: ignore[assignment]
    try:
        yield
    finally:
        botocore.session.create_loader = original


@contextmanager
def _one_sns_signing_key() -> Iterator[None]:
    """One RSA key for the messages moto's SNS signs while the stack is open. moto makes a 2048-bit key per
    subscription (about 60 ms, on every stack's first Publish); nothing here checks SNS signatures."""
    from moto.sns.models import Subscription

    original = Subscription.private_key
    Subscription.private_key = _sns_signing_key  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        Subscription.private_key = original  # type: ignore[method-assign]


@functools.cache
def _signing_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _sns_signing_key(subscription: Any) -> Any:
    return _signing_key()


@functools.cache
def _cached_loader(search_path: str | None = None) -> Any:
    import botocore.loaders

    return botocore.loaders.create_loader(search_path)


_SYNTAX_TREES: dict[str, Any] = {}
_VALID_DEFINITIONS: set[str] = set()


def _validating_once(validate: Callable[[str], None]) -> Callable[[str], None]:
    """moto's check of a definition at CreateStateMachine (a full build of its program, about 30 ms) done once
    per definition: every stack creates the same two. A definition that fails is checked again every time."""

    def validate_once(definition: str) -> None:
        if definition not in _VALID_DEFINITIONS:
            validate(definition)
            _VALID_DEFINITIONS.add(definition)

    return validate_once


def _parsing_once(parse: Callable[[str], tuple[Any, Any]]) -> Callable[[str], tuple[Any, Any]]:
    """moto's ``AmazonStateLanguageParser.parse`` (``parse``) with its ANTLR tree kept per definition: the
    parse takes about 0.3 s, and moto parses at create_state_machine and again at every execution start.
    The tree is only read afterwards; the evaluation components are built fresh every time (executions
    share nothing), and a broken definition fails every time as before (failures are not kept)."""
    from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

    def parse_once(definition: str) -> tuple[Any, Any]:
        tree = _SYNTAX_TREES.get(definition)
        if tree is None:
            program, tree = parse(definition)
            _SYNTAX_TREES[definition] = tree
            return program, tree
        return Preprocessor().visit(tree), tree

    return parse_once


def _trailing_json(message: str) -> Any:
    start = message.find("\n{")
    if start < 0:
        return None
    try:
        return json.loads(message[start + 1 :])
    except ValueError:
        return None
