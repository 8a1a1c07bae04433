"""Synchronous client of the Atlas Admin API v2 for flex clusters and their backups.

Lambda handlers are synchronous, so is this client: one lazily created ``httpx.Client`` per
:class:`AtlasClient`. Every call sends the versioned media type, has a timeout, and is retried within a
bounded number of attempts and a bounded time on the injected clock (see :mod:`flexrestore.atlas.retry`).
A restore-job create that may have reached Atlas is never blindly re-sent: the client first looks for the
job Atlas may already have made and adopts it. Two restores into one target from one request is the worst
bug this product can have.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import random
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from flexrestore import clock as clock_module
from flexrestore.atlas.auth import DEFAULT_TOKEN_LIFETIME_SECONDS, Credentials, token_cache
from flexrestore.atlas.errors import (
    AtlasAuthError,
    AtlasBadResponse,
    AtlasConflict,
    AtlasError,
    AtlasNotFound,
    AtlasRateLimited,
    AtlasUnavailable,
    error_from_response,
    parse_error_body,
)
from flexrestore.atlas.models import FlexCluster, RestoreJob, Snapshot
from flexrestore.atlas.retry import (
    RetryPolicy,
    equal_jitter_backoff,
    full_jitter_backoff,
    parse_retry_after,
    retry_after_jitter,
)
from flexrestore.domain.jobs import adoptable_job, same_restore, scheduled_key

__all__ = ["AtlasClient", "Credentials"]

# stdlib logging, not powertools Logger: importing the adapter costs no powertools import time; the
# handlers' powertools Logger still receives these records through the root logger.
logger = logging.getLogger("flexrestore.atlas")

MEDIA_TYPE = "application/vnd.atlas.2024-11-13+json"
API_PREFIX = "/api/atlas/v2"
TOKEN_PATH = "/api/oauth/token"
USER_AGENT = "flexrestore/0.1 (atlas-flex-restore)"

# A broken server that always says "more" must not make a list loop forever.
MAX_PAGES = 1000

T = TypeVar("T")
P = ParamSpec("P")
M = TypeVar("M", bound=BaseModel)


class _TransportFailure(AtlasUnavailable):
    """No HTTP answer (timeout, refused or cut). ``request_sent``: whether Atlas may have the request."""

    def __init__(self, message: str, *, request_sent: bool) -> None:
        super().__init__(message, retryable=True)
        self.request_sent = request_sent


# The end of the Lambda invocation this thread works for (epoch seconds on the injected clock), less a margin:
# every retry wait and every request's own timeout draws from it, so one invocation's Atlas calls together
# never outlast the function (set by ``invocation_budget``; unset outside Lambda, then only the per-operation
# ``max_total_wait`` applies).
_invocation_end: ContextVar[float | None] = ContextVar("atlas_invocation_end", default=None)
# A request is not started with less time than this left: it could not get an answer anyway.
MIN_REQUEST_SECONDS = 1.0


@contextlib.contextmanager
def invocation_budget(end: float | None) -> Iterator[None]:
    """Within the block, this thread's Atlas calls (waits and request timeouts) end by ``end``."""
    token = _invocation_end.set(end)
    try:
        yield
    finally:
        _invocation_end.reset(token)


class _OutOfTime(AtlasUnavailable):
    """No time is left in the invocation for another request: it was not sent."""


def _public_errors(operation: Callable[P, T]) -> Callable[P, T]:
    """Only the domain's public error classes leave the client: the state machine's retriers match on the
    class name (``AtlasUnavailable``), so the private transport subclass must not escape."""

    @functools.wraps(operation)
    def call(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return operation(*args, **kwargs)
        except _TransportFailure as failure:
            public = AtlasUnavailable(failure.message, retryable=True)
            raise public from failure.__cause__
        except _OutOfTime as out_of_time:
            raise AtlasUnavailable(out_of_time.message, retryable=False) from None

    return call


def _may_have_reached_atlas(error: AtlasError) -> bool:
    """True if Atlas may have acted on the request although we got no usable answer."""
    if isinstance(error, _TransportFailure):
        return error.request_sent
    return error.status is not None and error.status >= 500


def _describe_validation_error(exc: ValidationError) -> str:
    """Where the body broke the schema, without echoing any input value."""
    problems = [
        f"{'.'.join(str(part) for part in err['loc']) or 'body'}: {err['msg']}"
        for err in exc.errors(include_url=False, include_input=False)[:5]
    ]
    return "; ".join(problems)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """httpx's default TLS context, built once per process: reading the CA bundle costs about 30 ms, and
    local mode and the tests build a client per stack (a Lambda container builds one anyway)."""
    return httpx.create_ssl_context()


class AtlasClient:
    """Atlas Admin API v2 client for one base URL and one set of credentials."""

    def __init__(
        self,
        base_url: str,
        credentials: Credentials,
        *,
        clock: clock_module.Clock | None = None,
        timeout: float = 10.0,
        max_attempts: int = 5,
        max_total_wait: float = 60.0,
        page_size: int = 100,
        transport: httpx.BaseTransport | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        if not 1 <= page_size <= 500:
            raise ValueError("page_size must be between 1 and 500 (Atlas's itemsPerPage range)")
        self.base_url = base_url.rstrip("/")
        self.credentials = credentials
        self.policy = RetryPolicy(max_attempts=max_attempts, max_total_wait=max_total_wait)
        self.page_size = page_size
        self._clock_override = clock
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 5.0))
        self._transport = transport
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._http: httpx.Client | None = None
        self._http_lock = threading.Lock()
        self._digest: httpx.DigestAuth | None = None
        if credentials.kind == "api_key":
            public_key, private_key = credentials.secret_values
            self._digest = httpx.DigestAuth(public_key, private_key)

    def __repr__(self) -> str:
        return f"AtlasClient(base_url={self.base_url!r}, credentials={self.credentials!r})"

    # ----------------------------------------------------------------------------------------- lifecycle

    @property
    def clock(self) -> clock_module.Clock:
        # Resolved per call, so a client cached per container follows clock.use() in tests and local mode.
        return self._clock_override or clock_module.current()

    def _budget_end(self) -> float:
        """When this operation's retries must stop: its own budget, and never after the invocation's end."""
        own = self.clock.now() + self.policy.max_total_wait
        end = _invocation_end.get()
        return own if end is None else min(own, end)

    def _request_timeout(self, operation: str) -> httpx.Timeout:
        """This request's timeout: the configured one, cut to the time left in the invocation."""
        end = _invocation_end.get()
        if end is None:
            return self._timeout
        left = end - self.clock.now()
        if left < MIN_REQUEST_SECONDS:
            raise _OutOfTime(
                f"Atlas {operation} not sent: {max(left, 0):.1f} s left in this invocation", retryable=False
            )
        total = min(self._timeout.read or left, left)
        return httpx.Timeout(total, connect=min(self._timeout.connect or total, total))

    def _client(self) -> httpx.Client:
        if self._http is None:
            with self._http_lock:
                if self._http is None:
                    self._http = httpx.Client(
                        base_url=self.base_url,
                        timeout=self._timeout,
                        headers={"User-Agent": USER_AGENT},
                        transport=self._transport,
                        follow_redirects=False,
                        verify=_tls_context(),
                    )
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def __enter__(self) -> AtlasClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---------------------------------------------------------------------------------------- operations

    @_public_errors
    def get_flex_cluster(self, group_id: str, name: str) -> FlexCluster:
        return self._call("GET", self._cluster_path(group_id, name), parse=self._model(FlexCluster))

    @_public_errors
    def list_snapshots(self, group_id: str, name: str) -> list[Snapshot]:
        return self._list_all(self._cluster_path(group_id, name) + "/backup/snapshots", Snapshot)

    @_public_errors
    def get_snapshot(self, group_id: str, name: str, snapshot_id: str) -> Snapshot:
        path = self._cluster_path(group_id, name) + f"/backup/snapshots/{quote(snapshot_id, safe='')}"
        return self._call("GET", path, parse=self._model(Snapshot))

    @_public_errors
    def get_restore_job(self, group_id: str, name: str, job_id: str) -> RestoreJob:
        path = self._cluster_path(group_id, name) + f"/backup/restoreJobs/{quote(job_id, safe='')}"
        return self._call("GET", path, parse=self._model(RestoreJob))

    @_public_errors
    def list_restore_jobs(self, group_id: str, name: str) -> list[RestoreJob]:
        return self._list_all(self._cluster_path(group_id, name) + "/backup/restoreJobs", RestoreJob)

    @_public_errors
    def find_restore_job(
        self, group_id: str, name: str, *, snapshot_id: str, target_name: str, target_project_id: str
    ) -> RestoreJob | None:
        """The newest restore job of this cluster for that snapshot and target, or ``None``."""
        jobs = self.list_restore_jobs(group_id, name)
        target = {
            "snapshot_id": snapshot_id,
            "target_name": target_name,
            "target_project_id": target_project_id,
        }
        matches = [job for job in jobs if same_restore(job, **target)]
        return max(matches, key=scheduled_key, default=None)

    @_public_errors
    def create_restore_job(
        self, group_id: str, name: str, *, snapshot_id: str, target_name: str, target_project_id: str
    ) -> RestoreJob:
        """Create a restore job (Atlas answers 200 with the job, usually PENDING).

        Retried on 429 (Atlas refused before acting) and on failures after which Atlas may or may not have
        made the job (5xx, timeouts, cut connections). After such a failure the next attempt first lists
        the cluster's restore jobs and adopts one for the same snapshot and target; only if there is none
        is the create sent again. Other 4xx answers are not retried.
        """
        path = self._cluster_path(group_id, name) + "/backup/restoreJobs"
        # targetProjectId is optional in the spec but Atlas rejects a flex restore without it.
        body = {
            "snapshotId": snapshot_id,
            "targetDeploymentItemName": target_name,
            "targetProjectId": target_project_id,
        }
        target = (snapshot_id, target_name, target_project_id)
        deadline = self._budget_end()
        uncertain_since: float | None = None  # set once a create may have reached Atlas unanswered
        attempt = 0
        while True:
            attempt += 1
            if uncertain_since is not None:
                existing = self._adoptable_job(
                    group_id, name, target, since=uncertain_since, deadline=deadline
                )
                if existing is not None:
                    return existing
            attempt_started = self.clock.now()
            try:
                response = self._send("POST", path, json_body=body, attempt=attempt)
            except AtlasError as error:
                if isinstance(error, AtlasConflict) and uncertain_since is not None:
                    # The earlier, unanswered create may have landed after we looked: that job is ours.
                    late = self._adoptable_job(
                        group_id, name, target, since=uncertain_since, deadline=deadline
                    )
                    if late is not None:
                        return late
                if not error.retryable:
                    raise
                if uncertain_since is None and _may_have_reached_atlas(error):
                    uncertain_since = attempt_started
                try:
                    self._wait_before_retry(error, attempt, deadline)
                except AtlasError:
                    if uncertain_since is not None:
                        # Out of retries: one last look, so a job Atlas did make is never reported as failed.
                        last_look = self._adoptable_job(
                            group_id, name, target, since=uncertain_since, deadline=self.clock.now()
                        )
                        if last_look is not None:
                            return last_look
                    raise
                continue
            try:
                return self._model(RestoreJob)(_json_body(response, "POST " + path))
            except AtlasBadResponse as error:
                # A 2xx means Atlas made the job even if its body is unreadable: find it, never re-send.
                existing = self._adoptable_job(
                    group_id, name, target, since=attempt_started, deadline=deadline
                )
                if existing is not None:
                    return existing
                error.retryable = False
                raise

    @_public_errors
    def list_flex_clusters(self, group_id: str) -> list[FlexCluster]:
        """Every flex cluster of the project (all pages)."""
        return self._list_all(f"{API_PREFIX}/groups/{quote(group_id, safe='')}/flexClusters", FlexCluster)

    @_public_errors
    def create_flex_cluster(
        self,
        group_id: str,
        name: str,
        *,
        provider: str,
        region: str,
        tags: Mapping[str, str],
        termination_protection: bool = False,
    ) -> FlexCluster:
        """Create a flex cluster (Atlas answers 201 with it, ``CREATING``; it is ``IDLE`` seconds to
        minutes later: wait for that before restoring into it).

        Never blindly re-sent. After a failure that may have reached Atlas (5xx, timeout, cut connection)
        the next attempt first GETs the cluster by name and adopts it if it carries every tag in ``tags``;
        only if there is none is the create sent again. A name already taken (409, or 400
        ``DUPLICATE_CLUSTER_NAME``) is looked up the same way. A cluster of that name without those tags
        was not made by this create: :class:`AtlasConflict` (``DUPLICATE_CLUSTER_NAME``), never adopted.
        Give ``tags`` that only this create uses (a run id): with no tags nothing can be proved ours, so
        nothing is ever adopted. A DELETING cluster is not adopted either. 429 is retried (Atlas refused
        before acting); other 4xx are not (a per-project cluster limit is reported, never retried).
        """
        path = f"{API_PREFIX}/groups/{quote(group_id, safe='')}/flexClusters"
        body: dict[str, Any] = {
            "name": name,
            "providerSettings": {"backingProviderName": provider, "regionName": region},
            "terminationProtectionEnabled": termination_protection,
        }
        if tags:
            body["tags"] = [{"key": key, "value": value} for key, value in tags.items()]
        deadline = self._budget_end()
        uncertain = False  # set once a create may have reached Atlas unanswered
        attempt = 0
        while True:
            attempt += 1
            if uncertain:
                existing = self._adoptable_cluster(group_id, name, tags, deadline=deadline)
                if existing is not None:
                    return existing
            try:
                response = self._send("POST", path, json_body=body, attempt=attempt)
            except AtlasError as error:
                if not error.retryable:
                    taken = isinstance(error, AtlasConflict) or error.error_code == "DUPLICATE_CLUSTER_NAME"
                    if taken or uncertain:
                        # The name is taken (409, or 400 DUPLICATE_CLUSTER_NAME as Atlas's older error table
                        # has it), or an earlier, unanswered create may have landed after we looked: ours if
                        # it carries our tags, else say so plainly.
                        found = self._adoptable_cluster(group_id, name, tags, deadline=deadline)
                        if found is not None:
                            return found
                    raise
                uncertain = uncertain or _may_have_reached_atlas(error)
                try:
                    self._wait_before_retry(error, attempt, deadline)
                except AtlasError:
                    if uncertain:  # out of retries: one last look, so a cluster Atlas made is not lost
                        last_look = self._adoptable_cluster(group_id, name, tags, deadline=self.clock.now())
                        if last_look is not None:
                            return last_look
                    raise
                continue
            try:
                return self._model(FlexCluster)(_json_body(response, "POST " + path))
            except AtlasBadResponse as error:
                # A 2xx means Atlas made the cluster even if its body is unreadable: find it, never re-send.
                made = self._adoptable_cluster(group_id, name, tags, deadline=deadline)
                if made is not None:
                    return made
                error.retryable = False
                raise

    @_public_errors
    def delete_flex_cluster(self, group_id: str, name: str) -> None:
        """Delete a flex cluster (Atlas answers 204; it is DELETING, then gone).

        Idempotent, so retried like a read on 429, 5xx and transport failures. Already gone (404
        ``CLUSTER_NOT_FOUND``) or already being deleted (400 ``CLUSTER_ALREADY_REQUESTED_DELETION``, e.g.
        an earlier attempt whose answer was lost) returns normally. A termination-protected cluster, a
        dedicated one or an unknown project raise.
        """
        path = self._cluster_path(group_id, name)
        deadline = self._budget_end()
        attempt = 0
        while True:
            attempt += 1
            try:
                self._send("DELETE", path, attempt=attempt)
                return
            except AtlasError as error:
                if error.status == 404 and error.error_code in ("CLUSTER_NOT_FOUND", None):
                    return
                if error.status == 400 and error.error_code == "CLUSTER_ALREADY_REQUESTED_DELETION":
                    return
                if not error.retryable:
                    raise
                self._wait_before_retry(error, attempt, deadline)

    def _adoptable_cluster(
        self, group_id: str, name: str, tags: Mapping[str, str], *, deadline: float
    ) -> FlexCluster | None:
        """The cluster ``name`` if an earlier create of ours made it; None if there is no such cluster.

        Ours means it carries every tag in ``tags`` (and ``tags`` is not empty). Raises AtlasConflict for a
        cluster of that name that is not ours or is being deleted, and a non-retryable AtlasUnavailable if
        the look itself fails (the create is then not re-sent).
        """
        try:
            cluster = self._call(
                "GET", self._cluster_path(group_id, name), parse=self._model(FlexCluster), deadline=deadline
            )
        except AtlasNotFound:
            return None
        except AtlasError as error:
            raise AtlasUnavailable(
                f"a flex cluster create for {name!r} may have reached Atlas and reading the cluster to check "
                f"failed ({error}); not re-sending it. Check project {group_id}'s clusters before retrying",
                status=error.status,
                error_code=error.error_code,
                detail=error.detail,
                retryable=False,
                retry_after=error.retry_after,
            ) from error
        if not tags or not cluster.carries_tags(tags):
            wanted = ", ".join(f"{key}={value}" for key, value in tags.items()) or "none given"
            raise AtlasConflict(
                f"a flex cluster named {name!r} already exists in project {group_id} and was not created by "
                f"this request (it does not carry the tags {wanted}); not adopting it",
                status=409,
                error_code="DUPLICATE_CLUSTER_NAME",
                retryable=False,
            )
        if cluster.state_name == "DELETING":
            raise AtlasConflict(
                f"the flex cluster {name!r} in project {group_id} carries this request's tags but is being "
                "deleted; create it again once it is gone",
                status=409,
                error_code="DUPLICATE_CLUSTER_NAME",
                retryable=False,
            )
        logger.info(
            "adopted flex cluster %s (state %s) made by an earlier unanswered create",
            name,
            cluster.state_name,
        )
        return cluster

    # ---------------------------------------------------------------------------------------- internals

    @staticmethod
    def _cluster_path(group_id: str, name: str) -> str:
        return f"{API_PREFIX}/groups/{quote(group_id, safe='')}/flexClusters/{quote(name, safe='')}"

    @staticmethod
    def _model(model: type[M]) -> Callable[[Any], M]:
        def parse(data: Any) -> M:
            try:
                return model.model_validate(data)
            except ValidationError as exc:
                raise AtlasBadResponse(
                    f"Atlas answered with a {model.__name__} that breaks the schema: "
                    f"{_describe_validation_error(exc)}",
                    retryable=True,
                ) from None

        return parse

    def _adoptable_job(
        self,
        group_id: str,
        name: str,
        target: tuple[str, str, str],
        *,
        since: float,
        deadline: float,
    ) -> RestoreJob | None:
        """A job for ``target`` that an earlier, unanswered create may have made (domain/jobs.py's rule)."""
        snapshot_id, target_name, target_project_id = target
        try:
            jobs = self._list_all(
                self._cluster_path(group_id, name) + "/backup/restoreJobs", RestoreJob, deadline=deadline
            )
        except AtlasError as error:
            raise AtlasUnavailable(
                f"a restore-job create for {target_name!r} may have reached Atlas and listing the restore "
                f"jobs to check failed ({error}); not re-sending it. Check the restore jobs of "
                f"{name!r} before retrying",
                status=error.status,
                error_code=error.error_code,
                detail=error.detail,
                retryable=False,
                retry_after=error.retry_after,
            ) from error
        adopted = adoptable_job(
            jobs,
            snapshot_id=snapshot_id,
            target_name=target_name,
            target_project_id=target_project_id,
            attempted_at=datetime.fromtimestamp(since, tz=UTC),
        )
        if adopted is not None:
            logger.info(
                "adopted restore job %s (status %s) made by an earlier unanswered create for %s",
                adopted.id,
                adopted.status,
                target_name,
            )
        return adopted

    def _list_all(self, path: str, model: type[M], *, deadline: float | None = None) -> list[M]:
        """Every item of a paginated list: stops on an empty page, at totalCount, or on a short page."""
        if deadline is None:
            deadline = self._budget_end()
        parse_item = self._model(model)

        def parse_page(data: Any) -> tuple[list[M], int | None]:
            if not isinstance(data, dict) or not isinstance(data.get("results"), list):
                raise AtlasBadResponse(
                    f"Atlas answered GET {path} with a page that has no 'results' list", retryable=True
                )
            total = data.get("totalCount")
            return [parse_item(item) for item in data["results"]], total if isinstance(total, int) else None

        items: list[M] = []
        for page_number in range(1, MAX_PAGES + 1):
            params = {"pageNum": page_number, "itemsPerPage": self.page_size, "includeCount": True}
            results, total = self._call("GET", path, params=params, parse=parse_page, deadline=deadline)
            items.extend(results)
            # totalCount (an estimate, says the spec) when given; otherwise a short page is the last one.
            if not results or (len(items) >= total if total is not None else len(results) < self.page_size):
                return items
        raise AtlasBadResponse(f"Atlas GET {path} returned more than {MAX_PAGES} pages", retryable=False)

    def _call(
        self,
        method: str,
        path: str,
        *,
        parse: Callable[[Any], T],
        params: dict[str, Any] | None = None,
        deadline: float | None = None,
    ) -> T:
        """A read: retried on 429, 5xx, transport failures and unreadable 2xx bodies, within the budget."""
        if deadline is None:
            deadline = self._budget_end()
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._send(method, path, params=params, attempt=attempt)
                return parse(_json_body(response, f"{method} {path}"))
            except AtlasError as error:
                if not error.retryable:
                    raise
                self._wait_before_retry(error, attempt, deadline)

    def _wait_before_retry(self, error: AtlasError, attempt: int, deadline: float) -> None:
        """Sleep on the injected clock before attempt ``attempt + 1``; re-raise ``error`` if out of budget."""
        if attempt >= self.policy.max_attempts:
            raise _gave_up(error, f"after {attempt} attempts")
        # The next attempt needs time to be sent and answered: a wait that leaves none is not started.
        remaining = deadline - self.clock.now() - MIN_REQUEST_SECONDS
        if remaining <= 0:
            raise _gave_up(error, f"after {attempt} attempts: the time for retries is spent")
        if error.status == 429:
            if error.retry_after is not None:
                if error.retry_after > remaining:
                    # Waiting would overrun the budget: let the caller decide (e.g. answer 503 + Retry-After).
                    raise _gave_up(error, f"Retry-After exceeds the remaining budget of {remaining:.0f} s")
                delay = error.retry_after + min(
                    retry_after_jitter(error.retry_after, rng=self._rng), remaining - error.retry_after
                )
            else:
                delay = equal_jitter_backoff(
                    attempt, base=self.policy.rate_limit_base, cap=self.policy.rate_limit_cap, rng=self._rng
                )
                if delay > remaining:
                    raise AtlasRateLimited(
                        f"{error.message} (gave up: the next back-off of {delay:.0f} s exceeds the "
                        f"remaining retry budget)",
                        status=error.status,
                        error_code=error.error_code,
                        detail=error.detail,
                        retry_after=delay,
                    )
        else:
            delay = full_jitter_backoff(
                attempt, base=self.policy.backoff_base, cap=self.policy.backoff_cap, rng=self._rng
            )
            if error.retry_after is not None:  # a 503 may carry Retry-After too
                if error.retry_after > remaining:
                    raise _gave_up(error, f"Retry-After exceeds the remaining budget of {remaining:.0f} s")
                delay = max(delay, error.retry_after)
            delay = min(delay, remaining)
        logger.info(
            "Atlas call failed (%s); retrying in %.1f s (attempt %d of %d)",
            error.error_code or error.status or type(error).__name__,
            delay,
            attempt + 1,
            self.policy.max_attempts,
        )
        self.clock.sleep(delay)

    # ----------------------------------------------------------------------------------------- one send

    def _send(
        self,
        method: str,
        path: str,
        *,
        attempt: int,
        params: dict[str, Any] | None = None,
        json_body: dict[str, Any] | None = None,
    ) -> httpx.Response:
        """One attempt: authenticate, send, and return a 2xx response or raise the typed error.

        With a service account, a 401 means the token stopped working early (revoked, or Atlas's clock
        disagrees with ours): the token is refreshed once and the request sent once more. Atlas refused the
        first request before acting on it, so this is safe for a create as well.
        """
        http = self._client()
        headers = {"Accept": MEDIA_TYPE}
        content: bytes | None = None
        if json_body is not None:
            headers["Content-Type"] = MEDIA_TYPE
            content = json.dumps(json_body).encode()
        operation = f"{method} {path}"

        if self._digest is not None:
            response = self._exchange(http, method, path, headers, content, params, self._digest, attempt)
        else:
            token = self._access_token(http, attempt)
            headers["Authorization"] = f"Bearer {token}"
            response = self._exchange(http, method, path, headers, content, params, None, attempt)
            if response.status_code == 401:
                token_cache.invalidate(self._token_key, token)
                token = self._access_token(http, attempt)
                headers["Authorization"] = f"Bearer {token}"
                response = self._exchange(http, method, path, headers, content, params, None, attempt)

        if response.is_success:
            return response
        retry_after = parse_retry_after(response.headers.get("Retry-After"), now=self.clock.now())
        error = error_from_response(
            response.status_code, response.content, operation=operation, retry_after=retry_after
        )
        if isinstance(error, AtlasAuthError):
            raise self._auth_error(error, response.status_code)
        raise error

    def _exchange(
        self,
        http: httpx.Client,
        method: str,
        path: str,
        headers: dict[str, str],
        content: bytes | None,
        params: dict[str, Any] | None,
        auth: httpx.Auth | None,
        attempt: int,
    ) -> httpx.Response:
        # Elapsed is a measurement of real I/O time, not a "now" or a wait, so it uses the monotonic
        # counter; the injected virtual clock would always report 0 s.
        timeout = self._request_timeout(f"{method} {path}")
        started = time.perf_counter()
        try:
            response = http.request(
                method,
                path,
                headers=headers,
                content=content,
                params=params,
                auth=auth if auth is not None else httpx.USE_CLIENT_DEFAULT,
                timeout=timeout,
            )
        except httpx.HTTPError as exc:
            elapsed = time.perf_counter() - started
            logger.debug(
                "atlas %s %s -> %s attempt=%d elapsed=%.3fs",
                method,
                path,
                type(exc).__name__,
                attempt,
                elapsed,
            )
            raise _transport_failure(exc, f"{method} {path}") from exc
        elapsed = time.perf_counter() - started
        logger.debug(
            "atlas %s %s -> %d attempt=%d elapsed=%.3fs", method, path, response.status_code, attempt, elapsed
        )
        return response

    # ---------------------------------------------------------------------------------------- OAuth token

    @property
    def _token_key(self) -> tuple[str, str]:
        return (self.base_url, self.credentials.secret_values[0])

    def _access_token(self, http: httpx.Client, attempt: int) -> str:
        """The container's cached token, fetched (once, under a lock) when missing or about to expire."""
        key = self._token_key
        token = token_cache.get(key, now=self.clock.now())
        if token is not None:
            return token
        with token_cache.lock_for(key):
            token = token_cache.get(key, now=self.clock.now())  # another thread may have fetched it
            if token is not None:
                return token
            token, expires_in = self._fetch_token(http, attempt)
            token_cache.put(key, token, expires_in=expires_in, now=self.clock.now())
            return token

    def _fetch_token(self, http: httpx.Client, attempt: int) -> tuple[str, float]:
        client_id, client_secret = self.credentials.secret_values
        timeout = self._request_timeout(f"POST {TOKEN_PATH}")
        started = time.perf_counter()
        try:
            response = http.post(
                TOKEN_PATH,
                data={"grant_type": "client_credentials"},
                headers={"Accept": "application/json"},
                auth=httpx.BasicAuth(client_id, client_secret),
                timeout=timeout,
            )
        except httpx.HTTPError as exc:
            logger.debug("atlas POST %s -> %s attempt=%d", TOKEN_PATH, type(exc).__name__, attempt)
            # The API request itself was never sent: for a create this failure is unambiguous.
            failure = _transport_failure(exc, f"POST {TOKEN_PATH}")
            failure.request_sent = False
            raise failure from exc
        logger.debug(
            "atlas POST %s -> %d attempt=%d elapsed=%.3fs",
            TOKEN_PATH,
            response.status_code,
            attempt,
            time.perf_counter() - started,
        )
        if response.status_code in (400, 401, 403):
            error_code, detail = parse_error_body(response.content)
            # Atlas's words matter here ("Access Token limit reached" is a 403 too), but a credential
            # value must not ride along if a server ever echoes one.
            detail = self._scrub(detail)
            raise AtlasAuthError(
                f"Atlas refused the service-account credentials in secret {self.credentials.secret_id!r} "
                f"(token endpoint answered HTTP {response.status_code}"
                + (f" {error_code}" if error_code else "")
                + (f": {detail}" if detail else "")
                + "); check the clientId/clientSecret stored there",
                status=response.status_code,
                error_code=error_code,
                detail=detail,
                retryable=False,
            )
        if not response.is_success:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), now=self.clock.now())
            raise error_from_response(
                response.status_code,
                response.content,
                operation=f"POST {TOKEN_PATH}",
                retry_after=retry_after,
            )
        try:
            data = json.loads(response.content)
        except (ValueError, UnicodeDecodeError):
            data = None
        access_token = data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(access_token, str) or not access_token:
            raise AtlasBadResponse(
                f"Atlas token endpoint answered HTTP {response.status_code} without an access_token",
                status=response.status_code,
                retryable=True,
            )
        expires_in = data.get("expires_in") if isinstance(data, dict) else None
        try:
            lifetime = float(expires_in) if expires_in is not None else DEFAULT_TOKEN_LIFETIME_SECONDS
        except (TypeError, ValueError):
            lifetime = DEFAULT_TOKEN_LIFETIME_SECONDS
        if not 0 < lifetime < float("inf"):
            lifetime = DEFAULT_TOKEN_LIFETIME_SECONDS
        return access_token, lifetime

    def _scrub(self, text: str | None) -> str | None:
        if text is None:
            return None
        for value in self.credentials.secret_values:
            text = text.replace(value, "***")
        return text

    def _auth_error(self, error: AtlasError, status: int) -> AtlasAuthError:
        kind = "service-account token" if self.credentials.kind == "service_account" else "API key"
        secret = self.credentials.secret_id
        if status == 401:
            message = f"Atlas refused the {kind} from secret {secret!r}: {error.message}"
        else:
            message = (
                f"the {kind} from secret {secret!r} may not make this call "
                f"(missing role or API access list): {error.message}"
            )
        return AtlasAuthError(
            message, status=error.status, error_code=error.error_code, detail=error.detail, retryable=False
        )


# --------------------------------------------------------------------------------------------- helpers


def _json_body(response: httpx.Response, operation: str) -> Any:
    try:
        return json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        content_type = response.headers.get("Content-Type", "no content type")
        raise AtlasBadResponse(
            f"Atlas answered {operation} with HTTP {response.status_code} but a body that is not JSON "
            f"({content_type}, {len(response.content)} bytes)",
            status=response.status_code,
            retryable=True,
        ) from None


def _transport_failure(exc: httpx.HTTPError, operation: str) -> _TransportFailure:
    # Connection never established: Atlas cannot have seen the request. Anything later (write or read
    # timeout, connection cut) may have reached it.
    not_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
    kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "failed"
    return _TransportFailure(
        f"Atlas {operation} {kind} without an answer ({type(exc).__name__})", request_sent=not not_sent
    )


def _gave_up(error: AtlasError, why: str) -> AtlasError:
    """``error`` with why the retries stopped; a private subclass leaves as its public class, because the
    state machine's retriers match on the error's class name (``AtlasUnavailable``)."""
    message = f"{error.message} (gave up {why})"
    if isinstance(error, _TransportFailure):
        public = AtlasUnavailable(message, retryable=True)
        public.__cause__ = error.__cause__
        return public
    error.message = message
    error.args = (message,)
    return error
