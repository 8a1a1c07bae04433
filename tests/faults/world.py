"""One fault-matrix cell's world: the offline stack (real handlers, the real state machine run by moto, the
Atlas simulator, one virtual clock), AWS faults per function, every log line captured; then the event goes
in once and only time passes.

    with FaultWorld() as world:
        world.sim.fail_next("createFlexRestoreJob", Fault.lost_answer())   # Atlas faults: the simulator
        world.aws.arm(AwsFault("sns", "Publish", "notify", count=2))        # AWS faults: boto3, per function
        world.submit("api")          # the sample POST /restores, once; nobody retries it
        world.let_time_pass()        # the reconciler every 5 minutes, until everything has settled
        ending = world.ending()      # the record, Atlas's jobs into the target, messages, the target lock
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from flexrestore.aws.locks import TargetLocks, lock_id_for
from flexrestore.clock import VirtualClock
from flexrestore.contracts import RestoreRecord
from flexrestore.local.harness import IDEMPOTENCY_TABLE, RESTORES_TABLE, LambdaTimedOut, OfflineStack
from flexrestore.simulator import DEMO, AtlasSimulator
from tests.faults.aws import AwsFaults, Crash, running_as
from tests.faults.secrets import secret_needles
from tests.integration.intake_support import answer, load

GROUP, SOURCE, TARGET = DEMO.group_id, DEMO.source_cluster, DEMO.scratch_target
# The sample alarm's recovery plan, aimed at the same target as the sample POST: both triggers of a cell
# restore the same thing, so the same checks hold.
ALARM_PLAN = json.dumps(
    {"orders-prod-data-loss": {"groupId": GROUP, "clusterName": SOURCE, "targetDeploymentItemName": TARGET}}
)
RECONCILE_EVERY = 300.0  # template.yaml: the reconciler runs rate(5 minutes)
DEADLINE = 3600  # POLL_DEADLINE_SECONDS (the default)
LEASE = 7200  # TARGET_LOCK_LEASE_SECONDS (the default)
HORIZON = DEADLINE + LEASE + 2 * RECONCILE_EVERY  # every ending is decided (and every lease out) by then

SERVICE_ACCOUNT = {"clientId": DEMO.client_id, "clientSecret": DEMO.client_secret}
API_KEY = {"publicKey": DEMO.public_key, "privateKey": DEMO.private_key}
CREDENTIALS = {"service account": SERVICE_ACCOUNT, "API key": API_KEY}


@dataclass
class Submitted:
    """What the one delivery of the event got back: an API answer, an alarm event's result, or an error."""

    trigger: str
    status: int | None = None  # API: the HTTP status
    body: dict[str, Any] | None = None  # API: the JSON body; alarm: the handler's result
    headers: dict[str, str] = field(default_factory=dict)
    error: str | None = None  # the invocation failed: timed out, crashed, raised for a retry

    def describe(self) -> str:
        if self.error is not None:
            return self.error
        if self.status is not None:
            return f"HTTP {self.status}"
        return f"result {(self.body or {}).get('statusCode')}"


@dataclass
class LockSeen:
    at: float
    holder: str | None  # the restore holding the target's lease then (None: free or expired)
    expires_at: int | None
    record_ended: bool


@dataclass
class Ending:
    """The world once time has passed: what a user (and Atlas) would see."""

    submitted: Submitted
    records: list[dict[str, Any]]  # restore records (GET /restores/{id})
    jobs: list[dict[str, Any]]  # the simulator's own restore jobs into the target, as Atlas would show them
    notifications: list[dict[str, Any]]  # SNS messages about a restore
    other_messages: list[dict[str, Any]]  # SNS messages about no restore (refusals)
    events: list[dict[str, Any]]  # EventBridge outcome events
    lock_holder: str | None  # who holds the target's lease at the end (None: free)
    lock_item: bool  # the lease item is still in the table (released leases are deleted)
    locks_seen: list[LockSeen]  # the lease at every reconciler tick
    executions: list[dict[str, Any]]  # describe_execution of every execution
    atlas_forgot_the_job: bool  # Atlas answered 404 for the job: as far as anyone can see, it is gone
    now: float

    @property
    def record(self) -> dict[str, Any] | None:
        return self.records[0] if len(self.records) == 1 else None


@dataclass
class LogCapture:
    """Every line the handlers write: their JSON logs (powertools' console handlers), every logging record
    at DEBUG (ours, httpx, botocore's at its level), stdout and stderr (metrics, moto's noise)."""

    lines: io.StringIO = field(default_factory=io.StringIO)
    records: io.StringIO = field(default_factory=io.StringIO)
    stdout: io.StringIO = field(default_factory=io.StringIO)
    stderr: io.StringIO = field(default_factory=io.StringIO)

    def text(self) -> dict[str, str]:
        return {
            "log lines": self.lines.getvalue(),
            "logging records": self.records.getvalue(),
            "stdout": self.stdout.getvalue(),
            "stderr": self.stderr.getvalue(),
        }


@contextlib.contextmanager
def captured_logs() -> Iterator[LogCapture]:
    capture = LogCapture()
    handler = logging.StreamHandler(capture.records)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    handler.setLevel(logging.DEBUG)
    watched = [logging.getLogger(), logging.getLogger("flexrestore")]
    debug = [logging.getLogger(name) for name in ("flexrestore", "httpx")]
    levels = [(lg, lg.level) for lg in debug]
    consoles = _console_handlers()
    streams = [(h, h.stream) for h in consoles]
    for lg in watched:
        lg.addHandler(handler)
    for lg in debug:
        lg.setLevel(logging.DEBUG)
    for console, _ in streams:
        console.stream = capture.lines
    try:
        with contextlib.redirect_stdout(capture.stdout), contextlib.redirect_stderr(capture.stderr):
            yield capture
    finally:
        for console, stream in streams:
            console.stream = stream
        for lg, level in levels:
            lg.setLevel(level)
        for lg in watched:
            lg.removeHandler(handler)


def _console_handlers() -> list[logging.StreamHandler[Any]]:
    """powertools binds a plain StreamHandler to the console when a handler's Logger is first built."""
    from flexrestore.handlers import create, intake, notify, poll, reconcile, record  # noqa: F401

    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    return [
        handler
        for lg in loggers
        if isinstance(lg, logging.Logger)
        for handler in lg.handlers
        if type(handler) is logging.StreamHandler
    ]


def forget_container() -> None:
    """What a fresh Lambda container does not have: the secret's cache, the Atlas client, its token."""
    from flexrestore.atlas import factory
    from flexrestore.atlas.auth import reset_token_cache

    factory.reset()
    reset_token_cache()


class FaultWorld:
    def __init__(
        self,
        *,
        credentials: str = "service account",
        cold: Iterable[str] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.secret = CREDENTIALS[credentials]
        self.cold = frozenset(cold)  # functions whose every invocation starts in a fresh container
        self.env = {"POWERTOOLS_LOG_LEVEL": "DEBUG", "RECOVERY_PLANS": ALARM_PLAN, **(env or {})}
        self.aws = AwsFaults()
        self.submitted: Submitted | None = None
        self.reconciler_runs: list[Any] = []
        self.locks_seen: list[LockSeen] = []
        self._exit = ExitStack()

    # --- set-up ---------------------------------------------------------------------------------------------

    def __enter__(self) -> FaultWorld:
        try:
            self.logs = self._exit.enter_context(captured_logs())
            self.stack = self._exit.enter_context(
                OfflineStack(scenario="ok", clock=VirtualClock(), secret=self.secret, env_overrides=self.env)
            )
            self._exit.enter_context(self.aws)
            for short in list(self.stack.functions):
                self.stack.functions[short] = self._as_function(short, _resolve(self.stack.functions[short]))
        except BaseException:
            self._exit.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._exit.close()

    @property
    def sim(self) -> AtlasSimulator:
        simulator: AtlasSimulator = self.stack.simulator
        return simulator

    def now(self) -> float:
        return self.stack.clock.now()

    def _as_function(self, short: str, handler: Callable[..., Any]) -> Callable[..., Any]:
        def function(event: Any, context: Any) -> Any:
            if short in self.cold:
                forget_container()
            with running_as(short):
                return handler(event, context)

        return function

    # --- the event, once ------------------------------------------------------------------------------------

    def submit(self, trigger: str) -> Submitted:
        """The sample POST /restores (``api``) or the sample alarm going into ALARM (``alarm``: its recovery
        plan), handed to the intake once; whatever happens, it is not delivered again."""
        from flexrestore.triggers.eventbridge import IntakeFailed

        event = load("api-post-restore.json" if trigger == "api" else "alarm-into-alarm.json")
        submitted = Submitted(trigger)
        try:
            result = self.stack.invoke("intake", event)
        except LambdaTimedOut:
            submitted.error = "intake timed out" + (" (API Gateway: 502)" if trigger == "api" else "")
        except Crash:
            submitted.error = "intake crashed"
        except IntakeFailed as exc:
            submitted.error = f"raised for a redelivery: {exc.status} {exc.code}"  # Lambda's, then the DLQ
        else:
            if trigger == "api":
                submitted.status, submitted.body, submitted.headers = answer(result)
            else:
                submitted.body = result
        self.submitted = submitted
        return submitted

    # --- time passes ----------------------------------------------------------------------------------------

    def let_time_pass(self, horizon: float = HORIZON) -> None:
        """The clock runs on; every 5 minutes the reconciler runs, as its schedule would. Stops once every
        execution has ended, every restore has ended and been told, and the target is free (or at the
        horizon: the deadline and a lease later)."""
        start = self.now()
        conductor = self.stack.conductor
        with conductor.participating():
            while True:
                conductor.sleep(RECONCILE_EVERY)
                self._reconcile()
                if self._look() or self.now() - start >= horizon:
                    break
        for arn in self.stack.executions():
            self.stack.wait_for_execution(arn)

    def _reconcile(self) -> None:
        try:
            self.reconciler_runs.append(self.stack.invoke("reconcile", {}))
        except (Exception, LambdaTimedOut) as exc:  # the next run, 5 minutes later, tries again
            self.reconciler_runs.append({"error": f"{type(exc).__name__}: {exc}"})

    def _holder(self) -> Any:
        return TargetLocks(RESTORES_TABLE).holder(GROUP, TARGET)

    def _look(self) -> bool:
        """Note who holds the target now; True once everything has settled."""
        records, holder = self._restore_records(), self._holder()
        self.locks_seen.append(
            LockSeen(
                at=self.now(),
                holder=holder.restore_id if holder else None,
                expires_at=holder.expires_at if holder else None,
                record_ended=all(r.get("finalStatus") for r in records),
            )
        )
        if any(self.stack.poll_execution(arn, 0.0) is None for arn in self.stack.executions()):
            return False
        told = all(
            r.get("finalStatus") and (r.get("notification") or {}).get("status") == "SENT" for r in records
        )
        return told and holder is None

    # --- what is left ---------------------------------------------------------------------------------------

    def _items(self, table: str) -> list[dict[str, Any]]:
        from flexrestore.aws.clients import client
        from flexrestore.aws.codec import from_item

        return [from_item(item) for item in client("dynamodb").scan(TableName=table)["Items"]]

    def _restore_records(self) -> list[dict[str, Any]]:
        """Every restore record, as GET /restores/{id} would show it."""
        items = [item for item in self._items(RESTORES_TABLE) if item.get("kind") == "restore"]
        return [RestoreRecord.model_validate(item).to_json() for item in items]

    def ending(self) -> Ending:
        assert self.submitted is not None, "submit the event first"
        messages = self.stack.notifications()
        lock_item = any(item["id"] == lock_id_for(GROUP, TARGET) for item in self._items(RESTORES_TABLE))
        holder = self._holder()
        sfn = self.stack._client("stepfunctions")
        return Ending(
            submitted=self.submitted,
            records=self._restore_records(),
            jobs=[
                job
                for job in self.sim.jobs.values()
                if (job["targetProjectId"], job["targetDeploymentItemName"]) == (GROUP, TARGET)
            ],
            notifications=[m for m in messages if (m.get("record") or {}).get("restoreId")],
            other_messages=[m for m in messages if not (m.get("record") or {}).get("restoreId")],
            events=self.stack.events(),
            lock_holder=holder.restore_id if holder else None,
            lock_item=lock_item,
            locks_seen=list(self.locks_seen),
            executions=[sfn.describe_execution(executionArn=arn) for arn in self.stack.executions()],
            atlas_forgot_the_job=any(
                c.operation == "getFlexRestoreJob" and c.status == 404 for c in self.sim.calls
            ),
            now=self.now(),
        )

    def faults_that_never_struck(self) -> list[str]:
        """Armed faults that met no call: a cell whose fault never struck proves nothing."""
        atlas = [f"Atlas {rule}" for rule in self.sim.faults.never_struck()]
        aws = [f"{f.function}: {f.service} {f.operation}" for f in self.aws.faults if f.struck == 0]
        return atlas + aws

    # --- the secret scan ------------------------------------------------------------------------------------

    def haystacks(self) -> dict[str, str]:
        """Everything the cell produced that people or machines could read: log lines, stdout/stderr,
        records (both tables), notifications, events, answers, execution histories, Lambda errors."""
        histories = {arn: self.stack.history(arn) for arn in self.stack.executions()}
        return {
            **self.logs.text(),
            "records": json.dumps(self._items(RESTORES_TABLE) + self._items(IDEMPOTENCY_TABLE), default=str),
            "notifications": json.dumps(self.stack.notifications(), default=str),
            "events": json.dumps(self.stack.events(), default=str),
            "answers": json.dumps(
                [vars(self.submitted) if self.submitted else None, *self.reconciler_runs], default=str
            ),
            "executions": json.dumps(histories, default=str),
            "lambda errors": json.dumps(self.stack.lambda_errors, default=str),
        }

    def needles(self) -> dict[str, str]:
        """What must never show (tests/faults/secrets.py)."""
        return secret_needles(self.secret, self.sim)


def _resolve(target: Callable[..., Any] | str) -> Callable[..., Any]:
    if callable(target):
        return target
    module, _, attribute = target.rpartition(".")
    handler: Callable[..., Any] = getattr(importlib.import_module(module), attribute)
    return handler
