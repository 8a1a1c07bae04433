"""AtlasSimulator: a real HTTP server on 127.0.0.1 that speaks the Atlas flex cluster and flex backup
contract.

Each request goes: token endpoint, or auth -> spec check -> rate limit and scenario fault -> operation.
Every request is logged as a :class:`Call`; a request that broke the spec is answered like Atlas answers it
and also listed in ``violations``. The server runs on a daemon thread in-process; restore jobs and cluster
states move only with the clock.
"""

from __future__ import annotations

import contextlib
import json
import math
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from flexrestore import clock as clock_module
from flexrestore.clock import Clock
from flexrestore.simulator.auth import Authenticator
from flexrestore.simulator.faults import DELAY_HEADER, NEVER, TOKEN_OPERATION, Fault, FaultPlan
from flexrestore.simulator.problems import AtlasProblem
from flexrestore.simulator.seed import DEMO, seed_demo, seed_fleet
from flexrestore.simulator.spec import VERSIONED_MEDIA_TYPE, Match, Spec
from flexrestore.simulator.state import AtlasState, Page, RateLimit, Timings

TOKEN_PATH = "/api/oauth/token"
# What the garbage scenario answers on reads: a 200 that is not JSON (an HTML page from some proxy).
GARBAGE_BODY = (
    b"<html><head><title>Atlas</title></head><body>upstream sent an incomplete response</body></html>"
)


@dataclass(frozen=True)
class Call:
    """One request as the simulator saw it. ``status`` is 0 when the connection was dropped unanswered.
    ``body`` is the parsed JSON request body (the token endpoint's form without any secret), else None."""

    method: str
    path: str
    query: dict[str, str]
    status: int
    auth_kind: str  # bearer | digest | basic | none
    violation: str | None
    body: Any = None
    operation: str | None = None  # the spec's short operation id (getFlexRestoreJob, ...), "token" or None
    at: float = 0.0  # simulator clock when the request arrived
    fault: str | None = None  # the injected fault that struck it (``fail_next`` / ``fail_for``), if any


@dataclass
class _CallFacts:
    """What is learnt about a call while answering it."""

    body: Any = None
    auth_kind: str = "none"
    operation: str | None = None
    violation: str | None = None
    fault: str | None = None


@dataclass
class _Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = VERSIONED_MEDIA_TYPE
    raw: bytes | None = None
    drop: bool = False
    delay: float = 0.0  # seconds late Atlas would have answered (math.inf: never); see simulator/faults.py


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, simulator: AtlasSimulator) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.simulator = simulator
        self.open_connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.open_connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.open_connections.discard(request)
        super().shutdown_request(request)

    def close_all_connections(self) -> None:
        with self.connections_lock:
            for connection in list(self.open_connections):
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like Atlas behind its load balancer
    disable_nagle_algorithm = True  # headers and body go out in two writes: avoid the 40 ms delayed-ACK stall
    server: _Server

    def do_GET(self) -> None:
        self.server.simulator._serve(self)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        """Silence: the call log is the record, and nothing secret may reach stderr."""


class AtlasSimulator:
    """In-process Atlas. ``start()`` returns the base URL; also usable as a context manager."""

    def __init__(
        self,
        clock: Clock | None = None,
        scenario: str = "ok",
        *,
        rate_limit: RateLimit | None = None,
        timings: Timings | None = None,
    ) -> None:
        self._clock = clock
        self.spec = Spec.load()
        self.state = AtlasState(
            now=self._now, timings=timings or Timings(), rate_limit=rate_limit or RateLimit()
        )
        self.auth = Authenticator(
            now=self._now,
            service_accounts={DEMO.client_id: DEMO.client_secret},
            api_keys={DEMO.public_key: DEMO.private_key},
        )
        seed_demo(self.state, self._now())
        seed_fleet(self.state, self._now())
        self.scenario = scenario
        self._calls: list[Call] = []
        self._log_lock = threading.Lock()
        self._drop_next_create = False
        self._drop_next_cluster_create = False
        self._authorizations: list[str] = []
        self.faults = FaultPlan(
            operations=frozenset({TOKEN_OPERATION, *(op.short_id for op in self.spec.operations)})
        )
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""
        # Simulator bugs: an exception while answering, or a success body that breaks the spec. Stays empty.
        self.errors: list[str] = []

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> str:
        if self._server is None:
            self._server = _Server(self)
            host, port = self._server.server_address[:2]
            self.base_url = f"http://{host!s}:{port}"
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.01},
                name="atlas-simulator",
                daemon=True,
            )
            self._thread.start()
        return self.base_url

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.close_all_connections()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> AtlasSimulator:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- knobs for tests and the local mode ------------------------------------------------------------

    @property
    def clock(self) -> Clock:
        return self._clock or clock_module.current()

    def _now(self) -> float:
        return self.clock.now()

    @property
    def scenario(self) -> str:
        return self.state.scenario

    @scenario.setter
    def scenario(self, scenario: str) -> None:
        """Switch behaviour at any time; per-operation fault counters start again."""
        self.state.set_scenario(scenario)
        if scenario == "token-expired":
            self.auth.expire_next_credential()

    @property
    def rate_limit(self) -> RateLimit:
        """The token-bucket figures of the rate-limited scenario (see :class:`RateLimit`)."""
        return self.state.rate_limit

    @rate_limit.setter
    def rate_limit(self, limit: RateLimit) -> None:
        """New figures; every bucket starts again."""
        self.state.set_rate_limit(limit)

    @property
    def timings(self) -> Timings:
        """Durations on the simulator clock; change a field at any time (read when a thing is made)."""
        return self.state.timings

    @property
    def max_clusters_per_project(self) -> int | None:
        """Off (None) by default; set it to make flex cluster creates beyond that many clusters in a project
        answer 400 CLUSTER_LIMIT_REACHED."""
        return self.state.max_clusters_per_project

    @max_clusters_per_project.setter
    def max_clusters_per_project(self, limit: int | None) -> None:
        self.state.max_clusters_per_project = limit

    @property
    def calls(self) -> list[Call]:
        with self._log_lock:
            return list(self._calls)

    @property
    def violations(self) -> list[Call]:
        return [call for call in self.calls if call.violation is not None]

    @property
    def token_requests(self) -> int:
        return self.auth.token_requests

    @property
    def token_requests_per_minute(self) -> int | None:
        """Off (None) by default; set it to make the token endpoint answer 429 beyond that rate."""
        return self.auth.token_requests_per_minute

    @token_requests_per_minute.setter
    def token_requests_per_minute(self, limit: int | None) -> None:
        self.auth.token_requests_per_minute = limit

    @property
    def jobs(self) -> dict[str, dict[str, Any]]:
        """Every restore job as Atlas would return it now (copies)."""
        return self.state.job_bodies(self.base_url)

    def add_cluster(
        self,
        group_id: str,
        name: str,
        *,
        state_name: str = "IDLE",
        mongodb_version: str = "8.0.15",
        tags: Mapping[str, str] | None = None,
        dedicated: bool = False,
        termination_protection: bool = False,
    ) -> str:
        return self.state.add_cluster(
            group_id,
            name,
            state_name=state_name,
            mongodb_version=mongodb_version,
            tags=tags,
            dedicated=dedicated,
            termination_protection=termination_protection,
        )

    def add_snapshot(
        self,
        group_id: str,
        cluster: str,
        *,
        status: str = "COMPLETED",
        finished: datetime | None = None,
        mongodb_version: str | None = None,
    ) -> str:
        return self.state.add_snapshot(
            group_id, cluster, status=status, finished=finished, mongodb_version=mongodb_version
        )

    def set_target_busy(self, group_id: str, name: str, busy: bool = True) -> None:
        """Mark a target as having a restore in progress started elsewhere (Atlas UI, another tool):
        creates into it get 409. Jobs made through this simulator make their target busy on their own."""
        with self.state.lock:
            if busy:
                self.state.busy_targets.add((group_id, name))
            else:
                self.state.busy_targets.discard((group_id, name))

    def drop_connection_after_next_create(self) -> None:
        """The next successful restore-job create is stored, then the socket is closed with no response."""
        with self._log_lock:
            self._drop_next_create = True

    def drop_connection_after_next_cluster_create(self) -> None:
        """The next successful flex cluster create is stored, then the socket is closed with no response."""
        with self._log_lock:
            self._drop_next_cluster_create = True

    def fail_next(self, operation: str, fault: Fault, *, count: int = 1, skip: int = 0) -> None:
        """The next ``count`` calls of ``operation`` (a spec short id, or ``"token"``) meet ``fault``, after
        ``skip`` calls of it that are let through; combines with any scenario (simulator/faults.py)."""
        self.faults.arm(operation, fault, count=count, skip=skip)

    def fail_for(self, operation: str, fault: Fault, *, seconds: float) -> None:
        """Every call of ``operation`` meets ``fault`` for the next ``seconds`` on the clock (an outage)."""
        if not seconds > 0:
            raise ValueError("seconds must be more than 0")
        self.faults.arm(operation, fault, until=self._now() + seconds)

    def clear_faults(self) -> None:
        """Disarm every ``fail_next`` and ``fail_for`` rule."""
        self.faults.clear()

    @property
    def authorizations(self) -> list[str]:
        """Every ``Authorization`` header value the simulator received, in order (Basic, Bearer, Digest):
        what a test checks never leaks into logs, records or answers."""
        with self._log_lock:
            return list(self._authorizations)

    @property
    def issued_tokens(self) -> list[str]:
        """Every bearer access token the token endpoint issued, in order."""
        return self.auth.issued_tokens()

    def fail_next_deletes(self, name: str, count: int = 1, *, group_id: str | None = None) -> None:
        """The next ``count`` deletes of flex cluster ``name`` (in ``group_id``, or any project) answer
        500 UNEXPECTED_ERROR and delete nothing; 0 cancels. Combines with any scenario."""
        self.state.fail_next_deletes(name, count, group_id)

    def keep_creating(self, name: str, *, group_id: str | None = None, keep: bool = True) -> None:
        """Flex clusters of that name (in ``group_id``, or any project) made from now on, and one CREATING
        now, stay CREATING; ``keep=False`` lets them become IDLE (at once if their create time is past).
        The per-cluster form of cluster-never-idle, so it combines with any scenario."""
        self.state.keep_creating(name, group_id=group_id, keep=keep)

    def set_restore_fate(
        self, group_id: str, cluster_name: str, fate: str | None, *, duration_seconds: float | None = None
    ) -> None:
        """How restore jobs created from this source cluster from now on end, whatever the scenario:
        ``"COMPLETED"`` or ``"FAILED"`` ``duration_seconds`` after restoreScheduledDate (default: the
        ``Timings`` ok or fail duration), or ``"NEVER"`` (stays RUNNING). ``None`` forgets it."""
        self.state.set_restore_fate(group_id, cluster_name, fate, duration_seconds)

    def cluster_names(self, group_id: str) -> list[str]:
        """The names of the project's clusters Atlas would list now."""
        return self.state.cluster_names(group_id)

    def cluster_state(self, group_id: str, name: str) -> str | None:
        """The stateName a GET would answer now, or None when the cluster does not exist (any more)."""
        return self.state.cluster_state(group_id, name)

    # -- request handling ------------------------------------------------------------------------------

    def _serve(self, handler: _Handler) -> None:
        method = handler.command
        target = handler.path
        split = urlsplit(target)
        query = parse_qs(split.query, keep_blank_values=True)
        arrived = self._now()
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        headers = {name.lower(): value for name, value in handler.headers.items()}
        if "authorization" in headers:
            with self._log_lock:
                self._authorizations.append(headers["authorization"])
        call = _CallFacts(body=_json_or_none(body))
        try:
            if split.path == TOKEN_PATH and method == "POST":
                call.auth_kind, call.operation = "basic", TOKEN_OPERATION
                form = parse_qs(body.decode("utf-8", "replace"))
                call.body = {k: v[-1] for k, v in form.items() if k == "grant_type"}  # never a secret

                def issue() -> _Reply:
                    answer = self.auth.issue_token(headers, body)
                    return _Reply(answer.status, answer.body, answer.headers, content_type="application/json")

                struck = self.faults.take(TOKEN_OPERATION, arrived)
                if struck is None:
                    reply = issue()
                else:
                    call.fault = struck.describe()
                    reply = _struck(struck, issue)
            else:
                reply = self._answer_api(method, target, query, headers, body, call)
        except Exception as error:  # a simulator bug: answer like Atlas's 500 and keep it for the tests
            self.errors.append(f"{method} {split.path}: {type(error).__name__}: {error}")
            problem = AtlasProblem(500, "UNEXPECTED_ERROR", "Unexpected error.")
            reply = _Reply(500, problem.body(), content_type="application/json")
        self._log(
            Call(
                method=method,
                path=split.path,
                query={name: values[-1] for name, values in query.items()},
                status=0 if reply.drop or reply.delay == math.inf else reply.status,
                auth_kind=call.auth_kind,
                violation=call.violation,
                body=call.body,
                operation=call.operation,
                at=arrived,
                fault=call.fault,
            )
        )
        _write(handler, reply, query)

    def _answer_api(
        self,
        method: str,
        target: str,
        query: Mapping[str, list[str]],
        headers: Mapping[str, str],
        body: bytes,
        call: _CallFacts,
    ) -> _Reply:
        """Auth, then the spec, then the scenario's fault, then the operation; any refusal is an ApiError."""
        try:
            expiring = self._expiring_credential(method, target, headers.get("authorization"))
            if expiring is not None:
                call.fault = expiring.describe()
            call.auth_kind, refusal = self.auth.authenticate(
                method, target, headers.get("authorization"), expire=expiring is not None
            )
            if refusal is not None:
                raise refusal
            found = self.spec.match(method, urlsplit(target).path)
            call.operation = found.operation.short_id
            parsed = self.spec.check_request(found, query, headers, body)
            values = found.path_values
            struck = self.faults.take(found.operation.short_id, self._now())
            if struck is not None:
                call.fault = struck.describe()
                return _struck(struck, lambda: self._served(found, query, parsed))
            fault, limits = self.state.admit(
                found.operation.operation_id, found.operation.template, values["groupId"], values.get("name")
            )
            if fault is not None:
                fault.headers = {**limits, **fault.headers}
                raise fault
            try:
                reply = self._operate(found, query, parsed)
            except AtlasProblem as problem:
                problem.headers = {**limits, **problem.headers}
                raise
            reply.headers = {**limits, **reply.headers}
            self._check_own_answer(found, reply)
            return reply
        except AtlasProblem as problem:
            call.violation = problem.violation
            return _Reply(problem.status, problem.body(), dict(problem.headers), "application/json")

    def _expiring_credential(self, method: str, target: str, authorization: str | None) -> Fault | None:
        """An armed ``Fault.expired_credential()`` for this call's operation (spent), or None. Only a call
        that presents an issued bearer token, or a Digest nonce used before, has a credential to expire."""
        if not self.auth.can_expire(authorization):
            return None
        try:
            operation = self.spec.match(method, urlsplit(target).path).operation.short_id
        except AtlasProblem:
            return None  # no such operation: auth and the spec answer it as they would
        return self.faults.take(operation, self._now(), expiring=True)

    def _served(self, found: Match, query: Mapping[str, list[str]], body: Any) -> _Reply:
        """The operation done and answered as it would be without a fault (a fault that strikes after it)."""
        try:
            reply = self._operate(found, query, body)
        except AtlasProblem as problem:
            return _Reply(problem.status, problem.body(), dict(problem.headers), "application/json")
        self._check_own_answer(found, reply)
        return reply

    def _operate(self, found: Match, query: Mapping[str, list[str]], body: Any) -> _Reply:
        values = found.path_values
        group_id, name = values["groupId"], values.get("name", "")
        base = self.base_url
        operation = found.operation.operation_id
        if operation == "createFlexCluster":
            cluster = self.state.create_cluster(base, group_id, body)
            # create-cluster-answer-lost, or else the knob: stored, then the connection is cut.
            drop = self.state.lose_create_answer(group_id, body["name"])
            if not drop:
                with self._log_lock:
                    drop, self._drop_next_cluster_create = self._drop_next_cluster_create, False
            return _Reply(201, cluster, drop=drop)
        if operation == "deleteFlexCluster":
            self.state.delete_cluster(group_id, name)
            return _Reply(204)
        if operation == "createGroupFlexClusterBackupRestoreJob":
            job = self.state.create_job(base, group_id, name, body)
            with self._log_lock:
                drop, self._drop_next_create = self._drop_next_create, False
            return _Reply(200, job, drop=drop)
        if operation == "downloadGroupFlexClusterBackup":
            self.state.flex_cluster(group_id, name)
            raise AtlasProblem(
                400, "FEATURE_UNSUPPORTED", "Snapshot downloads are not available in the Atlas simulator."
            )
        readers: dict[str, Callable[[], dict[str, Any]]] = {
            "listFlexClusters": lambda: self.state.list_clusters(base, group_id, Page.from_query(query)),
            "getGroupFlexCluster": lambda: self.state.get_cluster(base, group_id, name),
            "listGroupFlexClusterBackupSnapshots": lambda: self.state.list_snapshots(
                base, group_id, name, Page.from_query(query)
            ),
            "getGroupFlexClusterBackupSnapshot": lambda: self.state.get_snapshot(
                base, group_id, name, values["snapshotId"]
            ),
            "listGroupFlexClusterBackupRestoreJobs": lambda: self.state.list_jobs(
                base, group_id, name, Page.from_query(query)
            ),
            "getGroupFlexClusterBackupRestoreJob": lambda: self.state.get_job(
                base, group_id, name, values["restoreJobId"]
            ),
        }
        result = readers[operation]()
        if self.scenario == "garbage":
            return _Reply(200, raw=GARBAGE_BODY)
        return _Reply(200, result)

    def _check_own_answer(self, found: Match, reply: _Reply) -> None:
        """Every success answer must match the spec's response for its status (a body that breaks the
        schema, or a body where none is documented or none where one is): a mismatch is a simulator bug."""
        if reply.raw is None:
            for problem in self.spec.check_response(found.operation, reply.status, reply.body):
                self.errors.append(f"response of {found.operation.short_id} breaks the spec: {problem}")

    def _log(self, call: Call) -> None:
        with self._log_lock:
            self._calls.append(call)


def _struck(fault: Fault, serve: Callable[[], _Reply]) -> _Reply:
    """The answer to a call an injected fault struck (simulator/faults.py); ``serve`` does the operation."""
    if fault.status is not None:
        problem = fault.problem()
        return _Reply(problem.status, problem.body(), dict(problem.headers), "application/json")
    reply = serve() if fault.after_acting else _Reply(0)
    if fault.drop:
        return _Reply(0, drop=True)
    if fault.garbage:
        return _Reply(200, raw=GARBAGE_BODY, headers=reply.headers, content_type="text/html; charset=utf-8")
    if fault.delay == math.inf:
        # Never answered: a client honouring the delay header times out; any other sees a gateway timeout.
        timeout = Fault.error(504).problem()
        return _Reply(
            504, timeout.body(), {DELAY_HEADER: NEVER}, content_type="application/json", delay=math.inf
        )
    reply.headers = {**reply.headers, DELAY_HEADER: f"{fault.delay:g}"}
    reply.delay = fault.delay
    return reply


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError):
        return None


def _write(handler: _Handler, reply: _Reply, query: Mapping[str, list[str]]) -> None:
    if reply.drop:
        # Atlas has stored the job; the client's connection is cut before any response byte.
        handler.close_connection = True
        with contextlib.suppress(OSError):
            handler.connection.shutdown(socket.SHUT_RDWR)
        return
    content_type: str | None = reply.content_type
    if reply.raw is not None:
        payload = reply.raw
    elif reply.body is None:
        payload, content_type = b"", None  # a 204: no body, no Content-Type
    else:
        body = reply.body
        if query.get("envelope") == ["true"] and reply.status < 400:
            # Atlas's envelope: lists carry `status` beside `results`; single resources are wrapped.
            body = (
                {**body, "status": reply.status}
                if "results" in body
                else {"status": reply.status, "content": body}
            )
        indent = 2 if query.get("pretty") == ["true"] else None
        payload = json.dumps(body, indent=indent).encode()
    try:
        handler.send_response(reply.status)
        if content_type is not None:
            handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(payload)))
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(payload)
    except OSError:
        handler.close_connection = True  # the client went away; nothing to answer
