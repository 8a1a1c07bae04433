"""Atlas client retry, token and create-adoption logic against a scripted in-memory Atlas (MockTransport).

The simulator tests (test_atlas_client_simulator.py) cover the real HTTP path; these pin down exact
sequences the simulator's scenarios cannot script (a timeout after the job was stored, a 503 with
Retry-After, a Retry-After beyond the budget, ...). No test sleeps: every wait lands on a VirtualClock.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from flexrestore import clock
from flexrestore.atlas.auth import Credentials, reset_token_cache
from flexrestore.atlas.client import MEDIA_TYPE, AtlasClient
from flexrestore.atlas.errors import (
    AtlasAuthError,
    AtlasBadRequest,
    AtlasBadResponse,
    AtlasConflict,
    AtlasRateLimited,
    AtlasUnavailable,
)

BASE = "https://atlas.test"
GROUP = "65f1a2b3c4d5e6f708192a3b"
CLUSTER = "orders-prod"
SNAPSHOT = "6723a1f0c4d5e6f708193b01"
TARGET = "orders-verify"
CLIENT_ID = "mdb_sa_id_unit_client"
CLIENT_SECRET = "mdb_sa_sk_never-print-me-0451"
SECRET_ID = "atlas/flex-restore/test"
JOBS_PATH = f"/api/atlas/v2/groups/{GROUP}/flexClusters/{CLUSTER}/backup/restoreJobs"
CLUSTER_PATH = f"/api/atlas/v2/groups/{GROUP}/flexClusters/{CLUSTER}"

Script = Callable[[httpx.Request], httpx.Response | None]


def api_error(
    status: int, code: str, detail: str = "x", headers: dict[str, str] | None = None
) -> httpx.Response:
    body = {"error": status, "errorCode": code, "detail": detail, "reason": "r", "parameters": []}
    return httpx.Response(status, json=body, headers=headers)


@dataclass
class FakeAtlas:
    """Just enough Atlas: token endpoint, cluster GET, restore jobs list/create/get, with scripted faults."""

    vclock: clock.VirtualClock
    requests: list[httpx.Request] = field(default_factory=list)
    jobs: list[dict[str, Any]] = field(default_factory=list)
    token_requests: int = 0
    tokens_issued: list[str] = field(default_factory=list)
    valid_tokens: set[str] = field(default_factory=set)
    token_lifetime: int = 3600
    token_answer: Callable[[], httpx.Response] | None = None
    # Scripted faults, consumed in order: each returns a response (or raises) or None to fall through.
    faults: list[Script] = field(default_factory=list)

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path == "/api/oauth/token":
            return self._token(request)
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth.removeprefix("Bearer ") not in self.valid_tokens:
            return api_error(401, "UNAUTHORIZED", "bad token")
        if self.faults:
            answer = self.faults.pop(0)(request)
            if answer is not None:
                return answer
        if path == CLUSTER_PATH and request.method == "GET":
            return httpx.Response(
                200, json={"id": "c" * 24, "name": CLUSTER, "groupId": GROUP, "stateName": "IDLE"}
            )
        if path == JOBS_PATH and request.method == "POST":
            return httpx.Response(200, json=self.store_job(request))
        if path == JOBS_PATH and request.method == "GET":
            page = int(request.url.params.get("pageNum", "1"))
            size = int(request.url.params.get("itemsPerPage", "100"))
            results = self.jobs[(page - 1) * size : page * size]
            return httpx.Response(200, json={"results": results, "totalCount": len(self.jobs), "links": []})
        if path.startswith(JOBS_PATH + "/") and request.method == "GET":
            job_id = path.rsplit("/", 1)[1]
            for job in self.jobs:
                if job["id"] == job_id:
                    return httpx.Response(200, json=job)
            return api_error(404, "RESOURCE_NOT_FOUND")
        return api_error(404, "RESOURCE_NOT_FOUND")

    def store_job(self, request: httpx.Request) -> dict[str, Any]:
        body = json.loads(request.content)
        scheduled = datetime.fromtimestamp(self.vclock.now() + 5, tz=UTC)
        job = {
            "id": f"{len(self.jobs) + 1:024x}",
            "status": "PENDING",
            "deliveryType": "RESTORE",
            "snapshotId": body["snapshotId"],
            "instanceName": CLUSTER,
            "projectId": GROUP,
            "targetDeploymentItemName": body["targetDeploymentItemName"],
            "targetProjectId": body["targetProjectId"],
            "restoreScheduledDate": clock.isoformat(scheduled),
        }
        self.jobs.append(job)
        return job

    def _token(self, request: httpx.Request) -> httpx.Response:
        self.token_requests += 1
        if self.token_answer is not None:
            return self.token_answer()
        expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.headers.get("Authorization") != f"Basic {expected}":
            return httpx.Response(401, json={"error": "invalid_client", "error_description": "bad client"})
        token = f"tok-{self.token_requests}-secretish"
        self.tokens_issued.append(token)
        self.valid_tokens.add(token)
        return httpx.Response(
            200, json={"access_token": token, "token_type": "Bearer", "expires_in": self.token_lifetime}
        )

    def api_requests(self, method: str | None = None, path: str | None = None) -> list[httpx.Request]:
        return [
            r
            for r in self.requests
            if r.url.path != "/api/oauth/token"
            and (method is None or r.method == method)
            and (path is None or r.url.path == path)
        ]


@pytest.fixture
def atlas(vclock: clock.VirtualClock) -> FakeAtlas:
    return FakeAtlas(vclock)


def make_client(atlas: FakeAtlas, **kwargs: Any) -> AtlasClient:
    creds = Credentials.service_account(CLIENT_ID, CLIENT_SECRET, secret_id=SECRET_ID)
    return AtlasClient(BASE, creds, transport=httpx.MockTransport(atlas.handler), **kwargs)


def create(client: AtlasClient) -> Any:
    return client.create_restore_job(
        GROUP, CLUSTER, snapshot_id=SNAPSHOT, target_name=TARGET, target_project_id=GROUP
    )


# --------------------------------------------------------------------------------------- wire format


def test_every_call_sends_the_versioned_media_type_and_create_sends_target_project(atlas: FakeAtlas) -> None:
    client = make_client(atlas)
    client.get_flex_cluster(GROUP, CLUSTER)
    job = create(client)
    client.get_restore_job(GROUP, CLUSTER, job.id)
    client.list_restore_jobs(GROUP, CLUSTER)
    api = atlas.api_requests()
    assert len(api) == 4
    assert all(r.headers["Accept"] == MEDIA_TYPE for r in api)
    post = atlas.api_requests("POST")[0]
    assert post.headers["Content-Type"] == MEDIA_TYPE
    assert json.loads(post.content) == {
        "snapshotId": SNAPSHOT,
        "targetDeploymentItemName": TARGET,
        "targetProjectId": GROUP,
    }
    listing = atlas.api_requests("GET", JOBS_PATH)[0]
    assert listing.url.params["pageNum"] == "1"
    assert listing.url.params["itemsPerPage"] == "100"


def test_token_request_is_client_credentials_with_basic_auth(atlas: FakeAtlas) -> None:
    make_client(atlas).get_flex_cluster(GROUP, CLUSTER)
    token_request = next(r for r in atlas.requests if r.url.path == "/api/oauth/token")
    assert token_request.method == "POST"
    assert token_request.headers["Accept"] == "application/json"
    assert token_request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert token_request.content == b"grant_type=client_credentials"
    assert token_request.headers["Authorization"].startswith("Basic ")


# ------------------------------------------------------------------------------------------ token cache


def test_fifty_calls_from_two_clients_share_one_token(atlas: FakeAtlas) -> None:
    first, second = make_client(atlas), make_client(atlas)
    for i in range(50):
        (first if i % 2 else second).get_flex_cluster(GROUP, CLUSTER)
    assert atlas.token_requests == 1
    assert len(atlas.api_requests()) == 50


def test_token_is_renewed_shortly_before_it_expires(atlas: FakeAtlas, vclock: clock.VirtualClock) -> None:
    client = make_client(atlas)
    client.get_flex_cluster(GROUP, CLUSTER)
    vclock.advance(3600 - 61)
    client.get_flex_cluster(GROUP, CLUSTER)
    assert atlas.token_requests == 1
    vclock.advance(2)  # now inside the 60 s margin
    client.get_flex_cluster(GROUP, CLUSTER)
    assert atlas.token_requests == 2
    assert len(atlas.api_requests()) == 3  # renewed ahead of time: no 401 round trip
    assert atlas.api_requests()[-1].headers["Authorization"] == f"Bearer {atlas.tokens_issued[-1]}"


def test_a_revoked_token_is_refreshed_once_and_the_call_retried_once(atlas: FakeAtlas) -> None:
    client = make_client(atlas)
    client.get_flex_cluster(GROUP, CLUSTER)
    atlas.valid_tokens.clear()  # Atlas forgets the token early
    cluster = client.get_flex_cluster(GROUP, CLUSTER)
    assert cluster.name == CLUSTER
    assert atlas.token_requests == 2
    assert len(atlas.api_requests()) == 3


def test_a_401_that_survives_the_refresh_is_an_auth_error_naming_the_secret(atlas: FakeAtlas) -> None:
    client = make_client(atlas)
    atlas.faults = [lambda r: api_error(401, "UNAUTHORIZED"), lambda r: api_error(401, "UNAUTHORIZED")]
    with pytest.raises(AtlasAuthError) as caught:
        client.get_flex_cluster(GROUP, CLUSTER)
    assert atlas.token_requests == 2  # exactly one refresh
    assert len(atlas.api_requests()) == 2  # exactly one retry
    assert f"secret '{SECRET_ID}'" in str(caught.value)
    assert caught.value.status == 401
    assert not caught.value.retryable


def test_a_401_on_create_refreshes_and_creates_exactly_one_job(atlas: FakeAtlas) -> None:
    client = make_client(atlas)
    client.get_flex_cluster(GROUP, CLUSTER)
    atlas.valid_tokens.clear()
    job = create(client)
    assert len(atlas.jobs) == 1
    assert job.id == atlas.jobs[0]["id"]


@pytest.mark.parametrize("status", [400, 401, 403])
def test_token_endpoint_refusal_names_the_secret_not_its_values(atlas: FakeAtlas, status: int) -> None:
    atlas.token_answer = lambda: httpx.Response(status, json={"error": "invalid_client"})
    with pytest.raises(AtlasAuthError) as caught:
        make_client(atlas).get_flex_cluster(GROUP, CLUSTER)
    message = str(caught.value)
    assert f"secret '{SECRET_ID}'" in message
    assert CLIENT_SECRET not in message and CLIENT_ID not in message
    assert atlas.token_requests == 1  # a refusal is not retried
    assert atlas.api_requests() == []


def test_token_endpoint_429_is_retried_on_the_clock(atlas: FakeAtlas, vclock: clock.VirtualClock) -> None:
    answers = [
        httpx.Response(429, json={"error": 429, "errorCode": "RATE_LIMITED"}, headers={"Retry-After": "6"})
    ]

    def token_answer() -> httpx.Response:
        if answers:
            return answers.pop()
        return httpx.Response(200, json={"access_token": "tok-after-wait", "expires_in": 3600})

    atlas.token_answer = token_answer
    atlas.valid_tokens.add("tok-after-wait")
    make_client(atlas).get_flex_cluster(GROUP, CLUSTER)
    assert vclock.slept and vclock.slept[0] >= 6
    assert atlas.token_requests == 2


# ---------------------------------------------------------------------------------------- rate limits


def test_429_with_retry_after_7_waits_at_least_7_seconds_on_the_clock(
    atlas: FakeAtlas, vclock: clock.VirtualClock
) -> None:
    atlas.faults = [lambda r: api_error(429, "RATE_LIMITED_TOKEN_BUCKET", headers={"Retry-After": "7"})]
    start = vclock.now()
    client = make_client(atlas)
    assert client.get_flex_cluster(GROUP, CLUSTER).name == CLUSTER
    assert len(vclock.slept) == 1
    assert 7.0 <= vclock.slept[0] <= 7.7
    assert vclock.now() - start >= 7.0


def test_429_with_http_date_retry_after(atlas: FakeAtlas, vclock: clock.VirtualClock) -> None:
    when = datetime.fromtimestamp(vclock.now() + 30, tz=UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
    atlas.faults = [lambda r: api_error(429, "RATE_LIMITED", headers={"Retry-After": when})]
    make_client(atlas).get_flex_cluster(GROUP, CLUSTER)
    assert 30.0 <= vclock.slept[0] <= 31.0


def test_retry_after_beyond_the_budget_ends_at_once(atlas: FakeAtlas, vclock: clock.VirtualClock) -> None:
    atlas.faults = [lambda r: api_error(429, "RATE_LIMITED_TOKEN_BUCKET", headers={"Retry-After": "120"})]
    with pytest.raises(AtlasRateLimited) as caught:
        make_client(atlas, max_total_wait=60).get_flex_cluster(GROUP, CLUSTER)
    assert caught.value.retry_after == 120
    assert caught.value.status == 429
    assert caught.value.error_code == "RATE_LIMITED_TOKEN_BUCKET"
    assert vclock.slept == []  # did not sleep past (or towards) the budget
    assert len(atlas.api_requests()) == 1


def test_429_without_retry_after_backs_off_from_10_seconds(
    atlas: FakeAtlas, vclock: clock.VirtualClock
) -> None:
    atlas.faults = [lambda r: api_error(429, "RATE_LIMITED"), lambda r: api_error(429, "RATE_LIMITED")]
    make_client(atlas, max_total_wait=120).get_flex_cluster(GROUP, CLUSTER)
    assert len(vclock.slept) == 2
    assert 5.0 <= vclock.slept[0] <= 10.0
    assert 10.0 <= vclock.slept[1] <= 20.0


def test_endless_429_without_header_ends_within_the_budget(
    atlas: FakeAtlas, vclock: clock.VirtualClock
) -> None:
    atlas.faults = [lambda r: api_error(429, "RATE_LIMITED") for _ in range(20)]
    start = vclock.now()
    with pytest.raises(AtlasRateLimited) as caught:
        make_client(atlas, max_total_wait=60).get_flex_cluster(GROUP, CLUSTER)
    assert vclock.now() - start <= 60
    assert caught.value.retry_after is not None  # a hint for the caller's own Retry-After
    assert len(atlas.api_requests()) <= 5


# --------------------------------------------------------------------------------- 5xx and transport


def test_5xx_bursts_are_retried_with_bounded_jittered_backoff(
    atlas: FakeAtlas, vclock: clock.VirtualClock
) -> None:
    atlas.faults = [
        lambda r: api_error(503, "SERVICE_UNAVAILABLE"),
        lambda r: api_error(500, "UNEXPECTED_ERROR"),
    ]
    assert make_client(atlas).get_flex_cluster(GROUP, CLUSTER).name == CLUSTER
    assert len(vclock.slept) == 2
    assert 0 <= vclock.slept[0] <= 1.0
    assert 0 <= vclock.slept[1] <= 2.0


def test_503_with_retry_after_waits_at_least_that(atlas: FakeAtlas, vclock: clock.VirtualClock) -> None:
    atlas.faults = [lambda r: api_error(503, "SERVICE_UNAVAILABLE", headers={"Retry-After": "9"})]
    make_client(atlas).get_flex_cluster(GROUP, CLUSTER)
    assert vclock.slept[0] >= 9


def test_persistent_5xx_gives_up_after_max_attempts(atlas: FakeAtlas, vclock: clock.VirtualClock) -> None:
    atlas.faults = [lambda r: api_error(500, "UNEXPECTED_ERROR") for _ in range(10)]
    with pytest.raises(AtlasUnavailable) as caught:
        make_client(atlas, max_attempts=4).get_flex_cluster(GROUP, CLUSTER)
    assert len(atlas.api_requests()) == 4
    assert len(vclock.slept) == 3
    assert caught.value.status == 500
    assert caught.value.error_code == "UNEXPECTED_ERROR"
    assert caught.value.retryable
    assert "after 4 attempts" in str(caught.value)


def test_total_wait_is_bounded_even_with_many_attempts(atlas: FakeAtlas, vclock: clock.VirtualClock) -> None:
    atlas.faults = [
        lambda r: api_error(503, "SERVICE_UNAVAILABLE", headers={"Retry-After": "4"}) for _ in range(50)
    ]
    start = vclock.now()
    with pytest.raises(AtlasUnavailable):
        make_client(atlas, max_attempts=50, max_total_wait=20).get_flex_cluster(GROUP, CLUSTER)
    assert vclock.now() - start <= 20


@pytest.mark.parametrize(
    "exc", [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("cut")]
)
def test_connection_errors_and_timeouts_are_retried(atlas: FakeAtlas, exc: Exception) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise exc

    atlas.faults = [fail]
    assert make_client(atlas).get_flex_cluster(GROUP, CLUSTER).name == CLUSTER


def test_a_timeout_that_never_clears_is_an_unavailable_error(atlas: FakeAtlas) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow")

    atlas.faults = [fail] * 5
    with pytest.raises(AtlasUnavailable) as caught:
        make_client(atlas).get_flex_cluster(GROUP, CLUSTER)
    assert type(caught.value) is AtlasUnavailable  # the public class: Step Functions matches on its name
    assert caught.value.status is None
    assert caught.value.retryable
    assert "timed out" in str(caught.value) and "gave up after 5 attempts" in str(caught.value)


def test_4xx_reads_are_not_retried(atlas: FakeAtlas, vclock: clock.VirtualClock) -> None:
    atlas.faults = [lambda r: api_error(400, "CANNOT_USE_NON_FLEX_CLUSTER_IN_FLEX_API")]
    with pytest.raises(AtlasBadRequest) as caught:
        make_client(atlas).get_flex_cluster(GROUP, CLUSTER)
    assert caught.value.error_code == "CANNOT_USE_NON_FLEX_CLUSTER_IN_FLEX_API"
    assert vclock.slept == []


def test_garbage_200_on_a_read_is_retried_then_reported(atlas: FakeAtlas) -> None:
    atlas.faults = [lambda r: httpx.Response(200, content=b"<html>oops</html>")] * 5
    with pytest.raises(AtlasBadResponse) as caught:
        make_client(atlas).get_flex_cluster(GROUP, CLUSTER)
    assert caught.value.retryable
    assert len(atlas.api_requests()) == 5


def test_a_body_that_breaks_the_schema_is_a_bad_response(atlas: FakeAtlas) -> None:
    atlas.faults = [lambda r: httpx.Response(200, json={"name": CLUSTER, "stateName": 3})] * 5
    with pytest.raises(AtlasBadResponse, match="FlexCluster"):
        make_client(atlas).get_flex_cluster(GROUP, CLUSTER)


def test_one_garbage_answer_then_a_good_one_succeeds(atlas: FakeAtlas) -> None:
    atlas.faults = [lambda r: httpx.Response(200, content=b"not json")]
    assert make_client(atlas).get_flex_cluster(GROUP, CLUSTER).name == CLUSTER


# ------------------------------------------------------------------------------------------ create


def test_create_whose_answer_is_lost_adopts_the_job_atlas_made(atlas: FakeAtlas) -> None:
    def store_then_time_out(request: httpx.Request) -> httpx.Response:
        atlas.store_job(request)
        raise httpx.ReadTimeout("no answer")

    atlas.faults = [store_then_time_out]
    job = create(make_client(atlas))
    assert len(atlas.jobs) == 1
    assert job.id == atlas.jobs[0]["id"]
    assert len(atlas.api_requests("POST")) == 1  # never re-sent


def test_create_that_got_a_500_after_storing_is_adopted(atlas: FakeAtlas) -> None:
    def store_then_500(request: httpx.Request) -> httpx.Response:
        atlas.store_job(request)
        return api_error(500, "UNEXPECTED_ERROR")

    atlas.faults = [store_then_500]
    job = create(make_client(atlas))
    assert [j["id"] for j in atlas.jobs] == [job.id]


def test_create_that_failed_before_storing_is_resent_once(atlas: FakeAtlas) -> None:
    atlas.faults = [lambda r: api_error(503, "SERVICE_UNAVAILABLE")]
    job = create(make_client(atlas))
    assert len(atlas.jobs) == 1
    assert job.id == atlas.jobs[0]["id"]
    methods = [r.method for r in atlas.api_requests()]
    assert methods == ["POST", "GET", "POST"]  # looked before re-sending


def test_create_with_connection_refused_is_resent_without_looking(atlas: FakeAtlas) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    atlas.faults = [refuse]
    create(make_client(atlas))
    assert [r.method for r in atlas.api_requests()] == ["POST", "POST"]
    assert len(atlas.jobs) == 1


def test_create_rate_limited_is_resent_after_the_wait(atlas: FakeAtlas, vclock: clock.VirtualClock) -> None:
    atlas.faults = [lambda r: api_error(429, "RATE_LIMITED_TOKEN_BUCKET", headers={"Retry-After": "7"})]
    create(make_client(atlas))
    assert [r.method for r in atlas.api_requests()] == ["POST", "POST"]
    assert vclock.slept[0] >= 7
    assert len(atlas.jobs) == 1


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [(400, "MISSING_ATTRIBUTE", AtlasBadRequest), (409, "RESTORE_IN_PROGRESS", AtlasConflict)],
)
def test_create_refused_by_atlas_is_not_retried(
    atlas: FakeAtlas, vclock: clock.VirtualClock, status: int, code: str, cls: type[Exception]
) -> None:
    atlas.faults = [lambda r: api_error(status, code)]
    with pytest.raises(cls):
        create(make_client(atlas))
    assert len(atlas.api_requests()) == 1
    assert vclock.slept == []


def test_create_with_garbage_200_adopts_the_job_instead_of_resending(atlas: FakeAtlas) -> None:
    def store_then_garbage(request: httpx.Request) -> httpx.Response:
        atlas.store_job(request)
        return httpx.Response(200, content=b"\x00garbage")

    atlas.faults = [store_then_garbage]
    job = create(make_client(atlas))
    assert [j["id"] for j in atlas.jobs] == [job.id]
    assert len(atlas.api_requests("POST")) == 1


def test_an_old_finished_job_for_the_same_target_is_not_adopted(
    atlas: FakeAtlas, vclock: clock.VirtualClock
) -> None:
    old = {
        "id": "f" * 24,
        "status": "COMPLETED",
        "deliveryType": "RESTORE",
        "snapshotId": SNAPSHOT,
        "targetDeploymentItemName": TARGET,
        "targetProjectId": GROUP,
        "restoreScheduledDate": clock.isoformat(datetime.fromtimestamp(vclock.now() - 86400, tz=UTC)),
    }
    atlas.jobs.append(old)
    atlas.faults = [lambda r: api_error(502, "BAD_GATEWAY")]
    job = create(make_client(atlas))
    assert job.id != old["id"]
    assert len(atlas.jobs) == 2


def test_a_running_job_for_the_same_target_is_adopted_whoever_made_it(atlas: FakeAtlas) -> None:
    running = {
        "id": "e" * 24,
        "status": "RUNNING",
        "snapshotId": SNAPSHOT,
        "targetDeploymentItemName": TARGET,
        "targetProjectId": GROUP,
    }
    atlas.jobs.append(running)
    atlas.faults = [lambda r: api_error(500, "UNEXPECTED_ERROR")]
    assert create(make_client(atlas)).id == running["id"]
    assert len(atlas.jobs) == 1


def test_create_never_resends_if_the_check_itself_fails(atlas: FakeAtlas) -> None:
    def store_then_cut(request: httpx.Request) -> httpx.Response:
        atlas.store_job(request)
        raise httpx.RemoteProtocolError("Server disconnected without sending a response.")

    # The POST is cut; then every list answers 500.
    atlas.faults = [store_then_cut] + [lambda r: api_error(500, "UNEXPECTED_ERROR")] * 30
    with pytest.raises(AtlasUnavailable) as caught:
        create(make_client(atlas, max_attempts=3, max_total_wait=30))
    assert len(atlas.api_requests("POST")) == 1
    assert len(atlas.jobs) == 1
    assert "may have reached Atlas" in str(caught.value)
    assert not caught.value.retryable


def test_a_job_made_by_the_last_unanswered_attempt_is_still_found(atlas: FakeAtlas) -> None:
    calls = {"n": 0}

    def fail_posts(request: httpx.Request) -> httpx.Response | None:
        if request.method == "POST":
            calls["n"] += 1
            if calls["n"] == 2:  # the last allowed attempt reaches Atlas but the answer is lost
                atlas.store_job(request)
                raise httpx.ReadTimeout("lost")
            return api_error(503, "SERVICE_UNAVAILABLE")
        return None

    atlas.faults = [fail_posts] * 10
    job = create(make_client(atlas, max_attempts=2))
    assert [j["id"] for j in atlas.jobs] == [job.id]


# --------------------------------------------------------------------------------------- pagination


def test_lists_follow_every_page(atlas: FakeAtlas) -> None:
    for i in range(250):
        atlas.jobs.append({"id": f"{i:024x}", "status": "COMPLETED"})
    jobs = make_client(atlas).list_restore_jobs(GROUP, CLUSTER)
    assert [j.id for j in jobs] == [f"{i:024x}" for i in range(250)]
    pages = [r.url.params["pageNum"] for r in atlas.api_requests("GET", JOBS_PATH)]
    assert pages == ["1", "2", "3"]


def test_an_exact_multiple_of_the_page_size_stops_on_total_count(atlas: FakeAtlas) -> None:
    for i in range(200):
        atlas.jobs.append({"id": f"{i:024x}", "status": "COMPLETED"})
    assert len(make_client(atlas).list_restore_jobs(GROUP, CLUSTER)) == 200
    assert len(atlas.api_requests("GET", JOBS_PATH)) == 2


def test_a_page_without_results_is_a_bad_response(atlas: FakeAtlas) -> None:
    atlas.faults = [lambda r: httpx.Response(200, json={"totalCount": 3})] * 5
    with pytest.raises(AtlasBadResponse, match="results"):
        make_client(atlas).list_restore_jobs(GROUP, CLUSTER)


def test_find_restore_job_returns_the_newest_match(atlas: FakeAtlas) -> None:
    def job(job_id: str, day: int, target: str = TARGET) -> dict[str, Any]:
        return {
            "id": job_id,
            "status": "COMPLETED",
            "snapshotId": SNAPSHOT,
            "targetDeploymentItemName": target,
            "targetProjectId": GROUP,
            "restoreScheduledDate": f"2026-10-{day:02d}T02:00:05Z",
        }

    atlas.jobs += [job("a" * 24, 3), job("b" * 24, 9), job("c" * 24, 5), job("d" * 24, 20, "orders-dr")]
    client = make_client(atlas)
    found = client.find_restore_job(
        GROUP, CLUSTER, snapshot_id=SNAPSHOT, target_name=TARGET, target_project_id=GROUP
    )
    assert found is not None and found.id == "b" * 24
    none = client.find_restore_job(
        GROUP, CLUSTER, snapshot_id="0" * 24, target_name=TARGET, target_project_id=GROUP
    )
    assert none is None


# --------------------------------------------------------------------------------------- no secrets


def test_no_secret_or_token_in_errors_or_logs(atlas: FakeAtlas, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, httpx's included
    # powertools Logger(service="flexrestore") may have set the parent to INFO in an earlier test.
    caplog.set_level(logging.DEBUG, logger="flexrestore.atlas")
    seen: list[str] = []
    client = make_client(atlas)
    client.get_flex_cluster(GROUP, CLUSTER)
    atlas.valid_tokens.clear()
    create(client)
    for fault in (
        lambda r: api_error(401, "UNAUTHORIZED"),
        lambda r: api_error(500, "UNEXPECTED_ERROR"),
        lambda r: httpx.Response(200, content=b"garbage"),
    ):
        atlas.faults = [fault] * 12
        try:
            client.get_flex_cluster(GROUP, CLUSTER)
        except Exception as exc:
            seen += [str(exc), repr(exc), str(exc.__cause__)]
    atlas.faults = []
    atlas.token_answer = lambda: httpx.Response(401, json={"error": "invalid_client"})
    reset_token_cache()
    with pytest.raises(AtlasAuthError) as caught:
        client.get_flex_cluster(GROUP, CLUSTER)
    seen += [str(caught.value), repr(caught.value), repr(client), repr(client.credentials)]
    text = "\n".join(seen + [r.getMessage() for r in caplog.records] + [caplog.text])
    assert "atlas GET" in caplog.text  # the DEBUG call log is there, and was scanned
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    for value in [CLIENT_SECRET, CLIENT_ID, basic, *atlas.tokens_issued]:
        assert value not in text


def test_token_limit_refusal_keeps_atlas_words_but_scrubs_echoed_values(atlas: FakeAtlas) -> None:
    atlas.token_answer = lambda: httpx.Response(
        403,
        json={
            "error": "access_denied",
            "error_description": f"Access Token limit reached for client {CLIENT_ID}. Reuse tokens.",
        },
    )
    with pytest.raises(AtlasAuthError) as caught:
        make_client(atlas).get_flex_cluster(GROUP, CLUSTER)
    message = str(caught.value)
    assert "access_denied" in message and "Access Token limit reached" in message
    assert CLIENT_ID not in message and f"secret '{SECRET_ID}'" in message


@pytest.mark.parametrize(
    ("expires_in", "renewed"),
    [('"900"', True), ("900", True), ("null", False), ('"soon"', False), ("-5", False), ("NaN", False)],
)
def test_odd_expires_in_values_fall_back_sanely(
    atlas: FakeAtlas, vclock: clock.VirtualClock, expires_in: str, renewed: bool
) -> None:
    body = f'{{"access_token": "tok-odd", "expires_in": {expires_in}}}'.encode()
    atlas.token_answer = lambda: httpx.Response(200, content=body)
    atlas.valid_tokens.add("tok-odd")
    client = make_client(atlas)
    client.get_flex_cluster(GROUP, CLUSTER)
    vclock.advance(900 - 59)  # inside the 60 s margin of a 900 s token; far from the 3600 s default
    client.get_flex_cluster(GROUP, CLUSTER)
    assert atlas.token_requests == (2 if renewed else 1)


def test_every_request_carries_a_timeout(atlas: FakeAtlas) -> None:
    client = make_client(atlas, timeout=7.5)
    client.get_flex_cluster(GROUP, CLUSTER)
    create(client)
    assert len(atlas.requests) == 3  # token, GET, POST
    for request in atlas.requests:
        timeout = request.extensions["timeout"]
        assert timeout["read"] == 7.5 and timeout["write"] == 7.5 and timeout["pool"] == 7.5
        assert timeout["connect"] == 5.0


def test_a_create_that_lands_late_is_adopted_when_the_resend_meets_409(atlas: FakeAtlas) -> None:
    """The first create times out and Atlas stores it only after our look; the re-send meets 409."""
    first_post: list[httpx.Request] = []

    def time_out_unstored(request: httpx.Request) -> httpx.Response:
        first_post.append(request)
        raise httpx.ReadTimeout("Atlas is slow")

    def empty_list_then_late_store(request: httpx.Request) -> httpx.Response:
        answer = httpx.Response(200, json={"results": [], "totalCount": 0, "links": []})
        atlas.store_job(first_post[0])  # lands just after the look
        return answer

    atlas.faults = [
        time_out_unstored,
        empty_list_then_late_store,
        lambda r: api_error(409, "CANNOT_RESTORE_TO_TARGET_WITH_RUNNING_RESTORE"),
    ]
    job = create(make_client(atlas))
    assert [j["id"] for j in atlas.jobs] == [job.id]
    assert [r.method for r in atlas.api_requests()] == ["POST", "GET", "POST", "GET"]


def test_a_plain_409_without_an_earlier_unanswered_create_is_not_adopted(atlas: FakeAtlas) -> None:
    atlas.jobs.append(
        {"id": "e" * 24, "status": "RUNNING", "snapshotId": SNAPSHOT, "targetDeploymentItemName": TARGET}
    )
    atlas.faults = [lambda r: api_error(409, "CANNOT_RESTORE_TO_TARGET_WITH_RUNNING_RESTORE")]
    with pytest.raises(AtlasConflict):
        create(make_client(atlas))
    assert [r.method for r in atlas.api_requests()] == ["POST"]


def test_without_total_count_a_short_page_is_the_last(atlas: FakeAtlas) -> None:
    pages = [[{"id": f"{i:024x}", "status": "COMPLETED"} for i in range(n)] for n in (100, 100, 7)]

    def page(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json={"results": pages[int(request.url.params["pageNum"]) - 1], "links": []}
        )

    atlas.faults = [page] * 3
    assert len(make_client(atlas).list_restore_jobs(GROUP, CLUSTER)) == 207
    assert len(atlas.api_requests()) == 3


def test_an_overestimated_total_count_stops_on_the_empty_page(atlas: FakeAtlas) -> None:
    def page(request: httpx.Request) -> httpx.Response:
        results = [{"id": "a" * 24, "status": "COMPLETED"}] if request.url.params["pageNum"] == "1" else []
        return httpx.Response(200, json={"results": results, "totalCount": 5, "links": []})

    atlas.faults = [page] * 3
    assert len(make_client(atlas).list_restore_jobs(GROUP, CLUSTER)) == 1
    assert len(atlas.api_requests()) == 2
