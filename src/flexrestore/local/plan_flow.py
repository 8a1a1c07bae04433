"""Run one verification plan once through the offline stack: :func:`run_plan` -> :class:`PlanRunResult`, or
:class:`PlanRefused` when the API refuses the plan.

As the service does it, through the real handlers:

1. ``PUT /plans/{name}`` through the intake handler (the plan is validated there; a bad plan is its 400);
2. ``POST /plans/{name}/runs`` through the intake handler; or, with ``schedule_input``, what the plan's
   EventBridge Scheduler schedule does when it is due: start the run state machine with that input (the
   shape of ``events/schedule-plan-run.json``; the run is then named after its execution);
3. the run's execution (``statemachine/run.asl.json``, executed by moto) followed to its end: each source
   restored through the one intake flow and the one poll loop (``restore.asl.json``), Atlas being the
   local simulator (``scenario``) on a virtual clock, or another Atlas (``atlas_url`` + ``secret``);
4. ``GET /runs/{runId}`` through the intake handler: the run record.

Nothing here prints: callers watch through the ``saved``, ``started`` and ``progress`` callbacks and
render the result (``local/view.py``, or :meth:`PlanRunResult.to_json` for ``flexrestore-local --plan
--json``). Only :class:`~flexrestore.local.harness.OfflineStack`'s public methods are used.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flexrestore.clock import Clock, SystemClock, VirtualClock, parse_iso
from flexrestore.contracts.run import RunRecord
from flexrestore.local.flow import PROGRESS_INTERVAL_SECONDS
from flexrestore.local.harness import ACCOUNT_ID
from flexrestore.local.validators import register_for

# The run record's keys (GET /runs/{runId}), in order, then what the tool adds: the object
# ``flexrestore-local --plan --json`` prints has exactly PLAN_RESULT_KEYS.
RUN_RECORD_KEYS = tuple(field.alias or name for name, field in RunRecord.model_fields.items())
PLAN_EXTRA_KEYS = (
    "notifications",
    "events",
    "atlas_calls",
    "state_transitions",
    "restore_state_transitions",
    "history_events",
    "virtual_seconds",
    "clusters_left",
)
PLAN_RESULT_KEYS = (*RUN_RECORD_KEYS, *PLAN_EXTRA_KEYS)
# What --plan --json prints when PUT /plans/{name} refuses the plan.
PLAN_REFUSED_KEYS = ("plan", "http_status", "response")

# The simulator's FLEET project for ephemeral targets (flexrestore.simulator.FLEET.verification_group_id).
VERIFICATION_PROJECT = "6700f1eea20000000000b001"

# Who the local tool is to the API (requestContext.identity.userArn): plans and runs record it.
LOCAL_CALLER = f"arn:aws:iam::{ACCOUNT_ID}:user/flexrestore-local"


class PlanRefused(Exception):
    """``PUT /plans/{name}`` answered 4xx: the plan was not saved and nothing ran."""

    def __init__(self, plan: str, http_status: int, response: Any) -> None:
        super().__init__(f"PUT /plans/{plan} answered {http_status}")
        self.plan = plan
        self.http_status = http_status
        self.response = response

    def to_json(self) -> dict[str, Any]:
        """The object ``flexrestore-local --plan --json`` prints: :data:`PLAN_REFUSED_KEYS`."""
        return {"plan": self.plan, "http_status": self.http_status, "response": self.response}


@dataclass(frozen=True)
class PlanSaved:
    """``PUT /plans/{name}``'s answer (200 replaced, 201 created)."""

    plan: str
    http_status: int
    response: dict[str, Any]


@dataclass(frozen=True)
class RunStart:
    """How the run started: ``request`` is ``POST /plans/{name}/runs`` (``http_status`` 202) or
    ``schedule <name>`` (``http_status`` None: EventBridge Scheduler started the execution)."""

    request: str
    http_status: int | None
    run_id: str
    execution_arn: str


@dataclass(frozen=True)
class SourceProgress:
    """One source while the run goes on (``OfflineStack.run_sources``). ``seconds``: since its restore was
    requested while it runs, its RTO (``durationSeconds``) once it has ended, None without a restore.
    ``status`` may be Atlas's ending (``COMPLETED``) a moment before the source has ``ended``."""

    index: int
    cluster_name: str | None
    target: str | None
    status: str
    seconds: float | None
    ended: bool
    error: str | None


@dataclass(frozen=True)
class RunProgress:
    run_id: str
    elapsed_seconds: float
    sources: tuple[SourceProgress, ...]
    atlas_calls: int


@dataclass(frozen=True)
class PlanRunResult:
    """How one run of a plan went: the run record (``GET /runs/{runId}``) and what the tool saw around it.
    Its JSON-like parts are plain (JSON-safe) lists and dicts."""

    record: dict[str, Any]
    notifications: list[dict[str, Any]]
    events: list[dict[str, Any]]
    atlas_calls: list[dict[str, Any]]
    state_transitions: int  # the run's execution, billed (retries included)
    restore_state_transitions: int  # summed over its sources' restore executions
    history_events: int  # the run execution's history (Step Functions keeps at most 25,000)
    virtual_seconds: float
    clusters_left: list[str] | None = None  # ephemeral targets: the project's clusters after the run

    @property
    def final_status(self) -> str | None:
        """``SUCCEEDED``, ``PARTIAL`` or ``FAILED``."""
        status = self.record.get("finalStatus")
        return str(status) if status is not None else None

    def to_json(self) -> dict[str, Any]:
        """The object ``flexrestore-local --plan --json`` prints: the run record's keys, then
        :data:`PLAN_EXTRA_KEYS` (:data:`PLAN_RESULT_KEYS` in all)."""
        extras = {key: getattr(self, key) for key in PLAN_EXTRA_KEYS}
        return dict(_json_safe({**self.record, **extras}))


SavedCallback = Callable[[PlanSaved], None]
StartedCallback = Callable[[RunStart], None]
RunProgressCallback = Callable[[RunProgress], None]


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def api_event(
    method: str,
    path: str,
    resource: str,
    path_parameters: dict[str, str],
    body: Any = None,
) -> dict[str, Any]:
    """An API Gateway REST proxy event for the intake, from the local caller (as ``events/api-*.json``)."""
    headers = {"Accept": "application/json", "Content-Type": "application/json"}
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "path": f"/v1{path}",
            "accountId": ACCOUNT_ID,
            "stage": "v1",
            "requestId": str(uuid.uuid4()),
            "identity": {"userArn": LOCAL_CALLER, "caller": "flexrestore-local", "sourceIp": "127.0.0.1"},
        },
        "body": None if body is None else json.dumps(body, ensure_ascii=False),
        "isBase64Encoded": False,
    }


def _call(stack: Any, event: dict[str, Any]) -> tuple[int, Any]:
    """The intake's answer to an API event: (status, body parsed)."""
    response = stack.invoke("intake", event)
    body: Any = response.get("body")
    with contextlib.suppress(TypeError, ValueError):
        body = json.loads(body)
    return int(response["statusCode"]), body


def run_plan(
    plan: dict[str, Any],
    *,
    scenario: str = "ok",
    atlas_url: str | None = None,
    secret: dict[str, str] | None = None,
    schedule_input: dict[str, Any] | None = None,
    saved: SavedCallback | None = None,
    started: StartedCallback | None = None,
    progress: RunProgressCallback | None = None,
) -> PlanRunResult:
    """Save ``plan`` and run it once (see the module). Raises :class:`PlanRefused` when the API refuses
    the plan, RuntimeError when it answers anything else it should not."""
    from flexrestore.local.harness import OfflineStack

    clock: Clock = SystemClock() if atlas_url else VirtualClock()
    name = str(plan["name"])
    # The simulator's verification project may receive restores, as a deployment with ephemeral targets
    # lists its verification project in AllowedTargetProjects (README: Ephemeral targets).
    env = {} if atlas_url else {"ALLOWED_TARGET_PROJECTS": VERIFICATION_PROJECT}
    with OfflineStack(
        scenario=scenario, clock=clock, atlas_url=atlas_url, secret=secret, env_overrides=env
    ) as stack:
        if atlas_url is None:
            register_for(stack, plan)  # the plan's validator, where local mode has a stand-in for it
        start = clock.now()
        status, body = _call(stack, api_event("PUT", f"/plans/{name}", "/plans/{name}", {"name": name}, plan))
        if 400 <= status < 500:
            raise PlanRefused(name, status, body)
        if status not in (200, 201):
            raise RuntimeError(f"PUT /plans/{name} answered {status}: {body}")
        if saved is not None:
            saved(PlanSaved(name, status, body))

        if schedule_input is None:
            request = f"POST /plans/{name}/runs"
            status, body = _call(
                stack, api_event("POST", f"/plans/{name}/runs", "/plans/{name}/runs", {"name": name})
            )
            if status != 202:
                raise RuntimeError(f"{request} answered {status}: {body}")
            run_id, arn, http_status = str(body["runId"]), str(body["executionArn"]), status
        else:
            request = f"schedule {name}"
            arn = stack.fire_schedule(name, schedule_input)
            # The run state machine names the run after its execution unless the input gives a runId.
            run_id, http_status = str(schedule_input.get("runId") or arn.rsplit(":", 1)[-1]), None
        if started is not None:
            started(RunStart(request, http_status, run_id, arn))

        while stack.poll_execution(arn, timeout_s=PROGRESS_INTERVAL_SECONDS) is None:
            if progress is not None:
                progress(_progress(stack, run_id, clock, start))
        # The run has ended once every restore has told it so; their executions end just after.
        restores = [other for other in stack.executions() if other != arn]
        for other in restores:
            while stack.poll_execution(other, timeout_s=PROGRESS_INTERVAL_SECONDS) is None:
                pass
        if progress is not None:
            progress(_progress(stack, run_id, clock, start))

        status, record = _call(stack, api_event("GET", f"/runs/{run_id}", "/runs/{runId}", {"runId": run_id}))
        if status != 200 or not isinstance(record, dict):
            raise RuntimeError(f"GET /runs/{run_id} answered {status}: {record}")
        return PlanRunResult(
            record=_json_safe(record),
            notifications=_json_safe(stack.notifications()),
            events=_json_safe(stack.events()),
            atlas_calls=[
                {"method": c["method"], "path": c["path"], "status": c["status"]} for c in stack.atlas_calls()
            ],
            state_transitions=stack.state_transitions(arn),
            restore_state_transitions=sum(stack.state_transitions(other) for other in restores),
            history_events=len(stack.history(arn)),
            virtual_seconds=round(clock.now() - start, 3),
            clusters_left=_clusters_left(stack, plan),
        )


def _clusters_left(stack: Any, plan: dict[str, Any]) -> list[str] | None:
    """With ephemeral targets: the clusters the simulator still has in the plan's ephemeral project once
    the run has ended (what a person checks: nothing of the run left behind). None otherwise, or against
    another Atlas."""
    targets = plan.get("targets")
    if stack.simulator is None or not isinstance(targets, dict) or not targets.get("projectId"):
        return None
    return sorted(stack.simulator.cluster_names(str(targets["projectId"])))


def _progress(stack: Any, run_id: str, clock: Clock, start: float) -> RunProgress:
    found = stack.run_sources(run_id)
    now = clock.now()  # after the reading: the clock may have moved on while it read
    sources = []
    for source in found:
        status, ended = str(source["status"]), bool(source["ended"])
        seconds: float | None = None
        if ended and source.get("durationSeconds") is not None:
            seconds = float(source["durationSeconds"])
        elif not ended and source.get("requestedAt"):
            seconds = max(0.0, now - parse_iso(str(source["requestedAt"])).timestamp())
        sources.append(
            SourceProgress(
                index=int(source["index"]),
                cluster_name=source.get("clusterName"),
                target=source.get("targetDeploymentItemName"),
                status=status,
                seconds=seconds,
                ended=ended,
                error=source.get("error"),
            )
        )
    return RunProgress(run_id, now - start, tuple(sources), len(stack.atlas_calls()))
