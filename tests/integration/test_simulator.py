"""The Atlas simulator seen from the wire: raw httpx calls, a VirtualClock, no project client."""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from flexrestore.clock import VirtualClock
from flexrestore.simulator import DEMO, FLEET, SCENARIOS, AtlasSimulator, RateLimit
from flexrestore.simulator.spec import ResponseValidator, Spec

MEDIA = "application/vnd.atlas.2024-11-13+json"
START = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
GROUP = f"/api/atlas/v2/groups/{DEMO.group_id}/flexClusters"
SOURCE = f"{GROUP}/{DEMO.source_cluster}"
JOBS = f"{SOURCE}/backup/restoreJobs"
SNAPSHOTS = f"{SOURCE}/backup/snapshots"


def _api_error_schema() -> dict[str, Any]:
    schema = copy.deepcopy(Spec.load().operations[0].responses["400"])
    # The spec types `parameters` items as objects, but real Atlas sends scalars (its rate-limit docs show
    # `parameters [path, 55, 10, 5, 60]`); the simulator follows Atlas.
    del schema["properties"]["parameters"]["items"]
    return schema


API_ERROR_VALIDATOR = ResponseValidator(_api_error_schema())


# The simulator speaks plain http: skip building a TLS context for each client (~25 ms apiece).
def get(url: str, **kwargs: Any) -> httpx.Response:
    return httpx.get(url, verify=False, **kwargs)


def post(url: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(url, verify=False, **kwargs)


def connect(**kwargs: Any) -> httpx.Client:
    return httpx.Client(verify=False, **kwargs)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(START)


@pytest.fixture
def sim(clock: VirtualClock) -> Iterator[AtlasSimulator]:
    with AtlasSimulator(clock=clock) as simulator:
        yield simulator
        assert simulator.errors == []


def fetch_token(
    sim: AtlasSimulator, client_id: str = DEMO.client_id, secret: str = DEMO.client_secret
) -> httpx.Response:
    return post(
        f"{sim.base_url}/api/oauth/token",
        auth=(client_id, secret),
        data={"grant_type": "client_credentials"},
        headers={"Accept": "application/json"},
    )


@pytest.fixture
def api(sim: AtlasSimulator) -> Iterator[httpx.Client]:
    token = fetch_token(sim).json()["access_token"]
    headers = {"Accept": MEDIA, "Authorization": f"Bearer {token}"}
    with connect(base_url=sim.base_url, headers=headers) as client:
        yield client


def create(api: httpx.Client, **overrides: Any) -> httpx.Response:
    body = {
        "snapshotId": DEMO.latest_snapshot_id,
        "targetDeploymentItemName": DEMO.scratch_target,
        "targetProjectId": DEMO.group_id,
        **overrides,
    }
    body = {key: value for key, value in body.items() if value is not None}
    return api.post(JOBS, content=json.dumps(body), headers={"Content-Type": MEDIA})


def assert_api_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert list(API_ERROR_VALIDATOR.iter_errors(body)) == []
    assert body["error"] == status
    assert body["errorCode"] == code
    assert body["detail"]
    return body


def assert_matches_spec(sim: AtlasSimulator, call_path: str, method: str, response: httpx.Response) -> None:
    spec = Spec.load()
    operation = spec.match(method, call_path).operation
    assert spec.check_response(operation, response.status_code, response.json()) == []


# -- authentication ------------------------------------------------------------------------------------


def test_token_flow_issues_a_bearer_token_that_expires_after_an_hour(
    sim: AtlasSimulator, clock: VirtualClock
) -> None:
    answer = fetch_token(sim)

    assert answer.status_code == 200
    token = answer.json()
    assert token["token_type"] == "Bearer" and token["expires_in"] == 3600
    headers = {"Accept": MEDIA, "Authorization": f"Bearer {token['access_token']}"}
    assert get(sim.base_url + SOURCE, headers=headers).status_code == 200
    clock.advance(3599)
    assert get(sim.base_url + SOURCE, headers=headers).status_code == 200
    clock.advance(1)
    expired = get(sim.base_url + SOURCE, headers=headers)
    assert_api_error(expired, 401, "UNAUTHORIZED")
    assert sim.token_requests == 1
    assert [c.auth_kind for c in sim.calls] == ["basic", "bearer", "bearer", "bearer"]
    assert sim.calls[0].body == {"grant_type": "client_credentials"}


def test_token_endpoint_refuses_bad_credentials_without_echoing_them(sim: AtlasSimulator) -> None:
    answer = fetch_token(sim, secret="wrong-secret-value")

    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_client"
    assert "wrong-secret-value" not in answer.text
    assert fetch_token(sim, client_id="nobody").status_code == 401
    assert sim.token_requests == 2
    assert DEMO.client_secret not in repr(sim.calls)


def test_token_endpoint_rate_limit_when_switched_on(sim: AtlasSimulator, clock: VirtualClock) -> None:
    sim.token_requests_per_minute = 2
    assert [fetch_token(sim).status_code for _ in range(2)] == [200, 200]
    clock.advance(30)

    limited = fetch_token(sim)

    body = assert_api_error(limited, 429, "RATE_LIMITED")
    assert "limited to 2 requests every 1 minutes" in body["detail"]
    assert limited.headers["retry-after"] == "30"
    clock.advance(30)
    assert fetch_token(sim).status_code == 200


def test_unknown_bearer_token_is_refused(sim: AtlasSimulator) -> None:
    answer = get(sim.base_url + SOURCE, headers={"Accept": MEDIA, "Authorization": "Bearer made-up"})

    assert_api_error(answer, 401, "UNAUTHORIZED")


def test_digest_challenge_then_httpx_digest_auth_succeeds(sim: AtlasSimulator, clock: VirtualClock) -> None:
    bare = get(sim.base_url + SOURCE, headers={"Accept": MEDIA})
    challenge = bare.headers["www-authenticate"]
    assert bare.status_code == 401
    assert challenge.startswith('Digest realm="MMS Public API"')
    assert "algorithm=MD5" in challenge and 'qop="auth"' in challenge and "nonce=" in challenge

    auth = httpx.DigestAuth(DEMO.public_key, DEMO.private_key)
    with connect(base_url=sim.base_url, headers={"Accept": MEDIA}, auth=auth) as client:
        assert client.get(SOURCE).status_code == 200
        assert client.get(SNAPSHOTS, params={"itemsPerPage": 2}).status_code == 200  # reuses the nonce
        clock.advance(301)  # the nonce is stale now: httpx answers the fresh challenge by itself
        assert create(client).status_code == 200

    kinds = [(c.auth_kind, c.status) for c in sim.calls]
    assert kinds == [
        ("none", 401),
        ("none", 401),
        ("digest", 200),
        ("digest", 200),
        ("digest", 401),
        ("digest", 200),
    ]
    assert len(sim.jobs) == 1
    assert sim.violations == []


def test_digest_with_the_wrong_private_key_is_refused(sim: AtlasSimulator) -> None:
    auth = httpx.DigestAuth(DEMO.public_key, "not-the-key")

    answer = get(sim.base_url + SOURCE, headers={"Accept": MEDIA}, auth=auth)

    assert_api_error(answer, 401, "UNAUTHORIZED")
    assert [c.auth_kind for c in sim.calls] == ["none", "digest"]


# -- DEMO seed -----------------------------------------------------------------------------------------


def test_demo_seed_clusters(api: httpx.Client, sim: AtlasSimulator) -> None:
    source = api.get(SOURCE).json()
    assert source["stateName"] == "IDLE" and source["mongoDBVersion"] == "8.0.15"
    assert {"key": "restore-protected", "value": "true"} in source["tags"]
    assert source["groupId"] == DEMO.group_id and source["name"] == "orders-prod"
    assert api.get(f"{GROUP}/{DEMO.scratch_target}").json()["stateName"] == "IDLE"
    assert api.get(f"{GROUP}/{DEMO.recovery_target}").json()["stateName"] == "IDLE"
    assert api.get(f"{GROUP}/{DEMO.busy_cluster}").json()["stateName"] == "UPDATING"
    assert_api_error(
        api.get(f"{GROUP}/{DEMO.dedicated_cluster}"), 400, "CANNOT_USE_NON_FLEX_CLUSTER_IN_FLEX_API"
    )
    assert_api_error(
        api.get(f"{GROUP}/{DEMO.dedicated_cluster}/backup/snapshots"),
        400,
        "CANNOT_USE_NON_FLEX_CLUSTER_IN_FLEX_API",
    )
    assert_api_error(api.get(f"{GROUP}/no-such-cluster"), 404, "CLUSTER_NOT_FOUND")
    unknown_group = f"/api/atlas/v2/groups/{'0' * 24}/flexClusters/orders-prod"
    assert_api_error(api.get(unknown_group), 404, "RESOURCE_NOT_FOUND")
    assert_matches_spec(sim, SOURCE, "GET", api.get(SOURCE))
    assert sim.violations == []


def test_demo_snapshots_are_daily_at_one_am_before_the_clock_start(
    api: httpx.Client, sim: AtlasSimulator
) -> None:
    listing = api.get(SNAPSHOTS)
    snapshots = listing.json()["results"]

    assert [(s["id"], s["status"], s["scheduledTime"]) for s in snapshots] == [
        (DEMO.latest_snapshot_id, "COMPLETED", "2026-10-31T01:00:00Z"),
        (DEMO.previous_snapshot_id, "COMPLETED", "2026-10-30T01:00:00Z"),
        (DEMO.oldest_completed_snapshot_id, "COMPLETED", "2026-10-29T01:00:00Z"),
        (DEMO.failed_snapshot_id, "FAILED", "2026-10-28T01:00:00Z"),
    ]
    assert snapshots[0]["expiration"] == "2026-11-08T01:00:00Z"
    assert snapshots[0]["finishTime"].endswith("Z")
    assert_matches_spec(sim, SNAPSHOTS, "GET", listing)
    one = api.get(f"{SNAPSHOTS}/{DEMO.latest_snapshot_id}")
    assert one.json() == snapshots[0]
    assert_matches_spec(sim, f"{SNAPSHOTS}/{DEMO.latest_snapshot_id}", "GET", one)
    assert_api_error(api.get(f"{SNAPSHOTS}/{'a' * 24}"), 404, "RESOURCE_NOT_FOUND")


def test_added_clusters_and_snapshots_are_served(api: httpx.Client, sim: AtlasSimulator) -> None:
    sim.add_cluster(DEMO.other_group_id, "billing", mongodb_version="7.0.12", tags={"team": "billing"})
    snapshot_id = sim.add_snapshot(
        DEMO.other_group_id, "billing", finished=datetime(2026, 10, 31, 3, tzinfo=UTC)
    )

    path = f"/api/atlas/v2/groups/{DEMO.other_group_id}/flexClusters/billing"
    assert api.get(path).json()["tags"] == [{"key": "team", "value": "billing"}]
    snapshot = api.get(f"{path}/backup/snapshots/{snapshot_id}").json()
    assert (snapshot["finishTime"], snapshot["mongoDBVersion"]) == ("2026-10-31T03:00:00Z", "7.0.12")


# -- restore jobs ------------------------------------------------------------------------------------


def test_restore_job_advances_with_the_clock_only(
    api: httpx.Client, sim: AtlasSimulator, clock: VirtualClock
) -> None:
    created = create(api)
    job = created.json()
    assert created.status_code == 200
    assert job["status"] == "PENDING"
    assert job["restoreScheduledDate"] == "2026-11-01T02:00:05Z"
    assert job["expirationDate"] == "2026-11-01T08:00:05Z"
    assert job["deliveryType"] == "RESTORE" and "restoreFinishedDate" not in job
    assert (job["snapshotId"], job["instanceName"], job["projectId"]) == (
        DEMO.latest_snapshot_id,
        DEMO.source_cluster,
        DEMO.group_id,
    )
    assert job["snapshotFinishedDate"] == "2026-10-31T01:02:14Z"
    assert_matches_spec(sim, JOBS, "POST", created)

    seen = []
    for step in (0, 6, 20, 39):  # t = 0, 6, 26, 65 s after the create
        clock.advance(step)
        seen.append(api.get(f"{JOBS}/{job['id']}").json()["status"])
    assert seen == ["PENDING", "QUEUED", "RUNNING", "COMPLETED"]
    done = api.get(f"{JOBS}/{job['id']}")
    assert done.json()["restoreFinishedDate"] == "2026-11-01T02:01:05Z"
    assert_matches_spec(sim, f"{JOBS}/{job['id']}", "GET", done)
    assert sim.jobs[job["id"]]["status"] == "COMPLETED"
    assert sim.violations == []


@pytest.mark.parametrize(
    ("scenario", "after", "status"),
    [
        ("slow", 65, "RUNNING"),
        ("slow", 1805, "COMPLETED"),
        ("fail", 50, "FAILED"),
        ("never-finishes", 86400 * 3, "RUNNING"),
    ],
)
def test_scenario_decides_how_a_job_ends(
    api: httpx.Client, sim: AtlasSimulator, clock: VirtualClock, scenario: str, after: int, status: str
) -> None:
    sim.scenario = scenario
    job_id = create(api).json()["id"]

    clock.advance(after)

    fresh = {"Authorization": f"Bearer {fetch_token(sim).json()['access_token']}"}  # tokens last an hour
    assert api.get(f"{JOBS}/{job_id}", headers=fresh).json()["status"] == status


def test_a_jobs_fate_is_fixed_when_it_is_created(
    api: httpx.Client, sim: AtlasSimulator, clock: VirtualClock
) -> None:
    sim.scenario = "fail"
    job_id = create(api).json()["id"]
    sim.scenario = "ok"
    clock.advance(3000)

    assert api.get(f"{JOBS}/{job_id}").json()["status"] == "FAILED"


def test_restore_jobs_list_newest_first_and_paginated(
    api: httpx.Client, sim: AtlasSimulator, clock: VirtualClock
) -> None:
    ids = []
    for target in (DEMO.scratch_target, DEMO.recovery_target, DEMO.source_cluster):
        ids.append(create(api, targetDeploymentItemName=target).json()["id"])
        clock.advance(1)

    first = api.get(JOBS, params={"itemsPerPage": 2, "pageNum": 1})
    second = api.get(JOBS, params={"itemsPerPage": 2, "pageNum": 2, "includeCount": "false"})

    assert [j["id"] for j in first.json()["results"]] == [ids[2], ids[1]]
    assert first.json()["totalCount"] == 3
    assert {link["rel"] for link in first.json()["links"]} == {"self", "next"}
    assert first.json()["links"][0]["href"].endswith("/backup/restoreJobs?pageNum=1&itemsPerPage=2")
    assert [j["id"] for j in second.json()["results"]] == [ids[0]]
    assert "totalCount" not in second.json()
    assert "next" not in {link["rel"] for link in second.json()["links"]}
    assert api.get(JOBS, params={"pageNum": 3, "itemsPerPage": 2}).json()["results"] == []
    assert_matches_spec(sim, JOBS, "GET", first)
    assert sim.violations == []


def test_snapshot_pagination(api: httpx.Client) -> None:
    pages = [api.get(SNAPSHOTS, params={"itemsPerPage": 3, "pageNum": n}).json() for n in (1, 2)]

    assert [len(p["results"]) for p in pages] == [3, 1]
    assert [p["totalCount"] for p in pages] == [4, 4]


def test_second_restore_into_a_busy_target_is_refused_until_the_first_ends(
    api: httpx.Client, sim: AtlasSimulator, clock: VirtualClock
) -> None:
    assert create(api).status_code == 200

    assert_api_error(create(api), 409, "CANNOT_RESTORE_TO_TARGET_WITH_RUNNING_RESTORE")
    assert create(api, targetDeploymentItemName=DEMO.recovery_target).status_code == 200
    clock.advance(66)
    assert create(api).status_code == 200
    assert len(sim.jobs) == 3


def test_target_marked_busy_from_outside_refuses_creates(api: httpx.Client, sim: AtlasSimulator) -> None:
    sim.set_target_busy(DEMO.group_id, DEMO.scratch_target)
    assert_api_error(create(api), 409, "CANNOT_RESTORE_TO_TARGET_WITH_RUNNING_RESTORE")

    sim.set_target_busy(DEMO.group_id, DEMO.scratch_target, busy=False)
    assert create(api).status_code == 200


def test_create_refuses_a_failed_snapshot_and_a_missing_target(
    api: httpx.Client, sim: AtlasSimulator
) -> None:
    assert_api_error(create(api, snapshotId=DEMO.failed_snapshot_id), 400, "SNAPSHOT_NOT_COMPLETED")
    assert_api_error(create(api, targetDeploymentItemName="ghost"), 404, "CLUSTER_NOT_FOUND")
    assert_api_error(create(api, snapshotId="b" * 24), 404, "RESOURCE_NOT_FOUND")
    assert sim.jobs == {}
    assert sim.violations == []


def test_dropped_connection_after_create_keeps_the_job(api: httpx.Client, sim: AtlasSimulator) -> None:
    sim.drop_connection_after_next_create()

    with pytest.raises(httpx.RemoteProtocolError):
        create(api)

    assert len(sim.jobs) == 1
    assert sim.calls[-1].status == 0 and sim.calls[-1].operation == "createFlexRestoreJob"
    listed = api.get(JOBS).json()["results"]
    assert [j["id"] for j in listed] == list(sim.jobs)
    assert create(api, targetDeploymentItemName=DEMO.recovery_target).status_code == 200  # only once


# -- scenarios -----------------------------------------------------------------------------------------


def test_not_found_scenario(api: httpx.Client, sim: AtlasSimulator) -> None:
    sim.scenario = "not-found"

    for path in (SOURCE, SNAPSHOTS, JOBS):
        assert_api_error(api.get(path), 404, "CLUSTER_NOT_FOUND")
    assert_api_error(create(api), 404, "CLUSTER_NOT_FOUND")


CLUSTER_ENDPOINT = "/api/atlas/v2/groups/{groupId}/flexClusters/{name}"


def test_rate_limited_is_a_token_bucket_per_operation_and_project(
    api: httpx.Client, sim: AtlasSimulator, clock: VirtualClock
) -> None:
    sim.scenario = "rate-limited"  # default buckets: capacity 3, 1 token every 10 s, starting empty
    assert sim.rate_limit == RateLimit(capacity=3, refill_amount=1, refill_seconds=10, initial_tokens=0)

    first = api.get(SOURCE)
    body = assert_api_error(first, 429, "RATE_LIMITED_TOKEN_BUCKET")
    assert body["detail"] == (
        f"Rate limit exceeded for {CLUSTER_ENDPOINT}. Please retry after 10 seconds. "
        "Request capacity: 3. Refill rate: 1 per 10 seconds."
    )
    assert body["parameters"] == [CLUSTER_ENDPOINT, 10, 3, 1, 10]
    assert (first.headers["retry-after"], first.headers["ratelimit-limit"]) == ("10", "3")
    assert first.headers["ratelimit-remaining"] == "0"
    clock.advance(3)
    early = api.get(SOURCE)
    assert early.status_code == 429 and early.headers["retry-after"] == "7"  # counts down to the refill
    clock.advance(7)  # the first refill: 1 token
    served = api.get(SOURCE)
    assert (served.status_code, served.headers["ratelimit-remaining"]) == (200, "0")
    assert served.headers["ratelimit-limit"] == "3" and "retry-after" not in served.headers
    empty = api.get(SOURCE)
    assert empty.status_code == 429 and empty.headers["retry-after"] == "10"  # the next refill, 10 s on
    # Each operation has its own bucket, and so has each project.
    other_operation = api.get(SNAPSHOTS)
    assert other_operation.status_code == 429 and other_operation.headers["retry-after"] == "10"
    clock.advance(4)
    other_project = api.get(f"/api/atlas/v2/groups/{FLEET.group_id}/flexClusters/{FLEET.sources[0]}")
    assert other_project.status_code == 429 and other_project.headers["retry-after"] == "10"
    assert api.get(SOURCE).headers["retry-after"] == "6"
    # An idle bucket fills up to its capacity and no further.
    clock.advance(600)
    burst = [api.get(SOURCE) for _ in range(4)]
    assert [a.status_code for a in burst] == [200, 200, 200, 429]
    assert [a.headers["ratelimit-remaining"] for a in burst] == ["2", "1", "0", "0"]
    # A refused call takes no token: one refill later there is exactly one again.
    clock.advance(10)
    assert [api.get(SOURCE).status_code for _ in range(2)] == [200, 429]


def test_rate_limit_figures_are_configurable(
    api: httpx.Client, sim: AtlasSimulator, clock: VirtualClock
) -> None:
    sim.scenario = "rate-limited"
    sim.rate_limit = RateLimit(capacity=3, refill_amount=1, refill_seconds=55)

    first = api.get(SOURCE)
    body = assert_api_error(first, 429, "RATE_LIMITED_TOKEN_BUCKET")
    assert first.headers["retry-after"] == "55"
    assert body["detail"].endswith(
        "Please retry after 55 seconds. Request capacity: 3. Refill rate: 1 per 55 seconds."
    )
    assert body["parameters"][1:] == [55, 3, 1, 55]
    clock.advance(55)
    assert [api.get(SOURCE).status_code for _ in range(2)] == [200, 429]

    sim.rate_limit = RateLimit(capacity=3, refill_amount=1, refill_seconds=55, initial_tokens=3)  # restarts
    answers = [api.get(SOURCE) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["ratelimit-remaining"] for a in answers] == ["2", "1", "0", "0"]
    with pytest.raises(ValueError, match="initial_tokens"):
        RateLimit(capacity=3, initial_tokens=4)


def test_answers_carry_rate_limit_headers_outside_rate_limited(api: httpx.Client) -> None:
    answers = [api.get(SOURCE) for _ in range(3)]

    assert [a.headers["ratelimit-limit"] for a in answers] == ["1200"] * 3  # what real Atlas answered
    assert [a.headers["ratelimit-remaining"] for a in answers] == ["1199", "1198", "1197"]
    assert "retry-after" not in answers[0].headers
    assert api.get(SNAPSHOTS).headers["ratelimit-remaining"] == "1199"  # another bucket


def test_rate_limited_without_header(api: httpx.Client, sim: AtlasSimulator) -> None:
    sim.scenario = "rate-limited-no-header"

    answers = [api.get(SOURCE) for _ in range(3)]

    assert [a.status_code for a in answers] == [429, 429, 200]
    assert all("retry-after" not in a.headers for a in answers)


def test_flaky_fails_twice_per_operation_then_works(api: httpx.Client, sim: AtlasSimulator) -> None:
    sim.scenario = "flaky"

    gets = [api.get(SOURCE).status_code for _ in range(3)]
    creates = [create(api).status_code for _ in range(3)]

    assert gets == [503, 500, 200]
    assert creates == [503, 500, 200]
    assert len(sim.jobs) == 1  # a refused create stores nothing


def test_token_expired_rejects_the_token_in_use_once(sim: AtlasSimulator, api: httpx.Client) -> None:
    assert api.get(SOURCE).status_code == 200
    sim.scenario = "token-expired"

    assert_api_error(api.get(SOURCE), 401, "UNAUTHORIZED")
    assert api.get(SOURCE).status_code == 401  # that token stays expired
    fresh = fetch_token(sim).json()["access_token"]
    assert api.get(SOURCE, headers={"Authorization": f"Bearer {fresh}"}).status_code == 200
    assert sim.token_requests == 2


def test_token_expired_with_digest_sends_a_stale_challenge_once(sim: AtlasSimulator) -> None:
    challenges: list[str] = []

    def keep_challenge(response: httpx.Response) -> None:
        if response.status_code == 401:
            challenges.append(response.headers["www-authenticate"])

    auth = httpx.DigestAuth(DEMO.public_key, DEMO.private_key)
    hooks = {"response": [keep_challenge]}
    with connect(base_url=sim.base_url, headers={"Accept": MEDIA}, auth=auth, event_hooks=hooks) as client:
        assert client.get(SOURCE).status_code == 200
        sim.scenario = "token-expired"
        assert client.get(SOURCE).status_code == 200  # httpx answers the stale challenge itself
        assert client.get(SOURCE).status_code == 200

    assert [c.status for c in sim.calls] == [401, 200, 401, 200, 200]
    assert "stale=TRUE" not in challenges[0] and "stale=TRUE" in challenges[1]


def test_job_vanishes(api: httpx.Client, sim: AtlasSimulator) -> None:
    sim.scenario = "job-vanishes"
    job_id = create(api).json()["id"]

    assert_api_error(api.get(f"{JOBS}/{job_id}"), 404, "RESOURCE_NOT_FOUND")


def test_garbage_answers_reads_with_a_non_json_200(api: httpx.Client, sim: AtlasSimulator) -> None:
    sim.scenario = "garbage"

    answer = api.get(f"{JOBS}")
    assert answer.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        answer.json()
    assert create(api).json()["status"] == "PENDING"  # writes still answer JSON


def test_every_scenario_is_switchable_and_unknown_ones_are_refused(sim: AtlasSimulator) -> None:
    for scenario in SCENARIOS:
        sim.scenario = scenario
        assert sim.scenario == scenario
    with pytest.raises(ValueError, match="unknown scenario 'sunny'"):
        sim.scenario = "sunny"


# -- spec violations -----------------------------------------------------------------------------------


@pytest.mark.spec_violations_expected
def test_missing_version_in_accept_is_a_406_violation(api: httpx.Client, sim: AtlasSimulator) -> None:
    answer = api.get(SOURCE, headers={"Accept": "application/json"})

    assert_api_error(answer, 406, "NOT_ACCEPTABLE")
    assert len(sim.violations) == 1
    assert "Accept header" in (sim.violations[0].violation or "")


@pytest.mark.spec_violations_expected
def test_bad_snapshot_id_in_path_is_a_400_violation(api: httpx.Client, sim: AtlasSimulator) -> None:
    body = assert_api_error(api.get(f"{SNAPSHOTS}/NOT-HEX"), 400, "VALIDATION_ERROR")

    assert body["badRequestDetail"]["fields"][0]["field"] == "snapshotId"
    assert sim.violations[0].path.endswith("/NOT-HEX")


@pytest.mark.spec_violations_expected
def test_missing_target_project_is_refused_like_atlas(api: httpx.Client, sim: AtlasSimulator) -> None:
    body = assert_api_error(create(api, targetProjectId=None), 400, "MISSING_ATTRIBUTE")

    assert body["detail"] == "The required attribute targetProjectId was not specified."
    assert "targetProjectId" in (sim.violations[0].violation or "")
    assert sim.jobs == {}


@pytest.mark.spec_violations_expected
@pytest.mark.parametrize(
    ("overrides", "code", "mentions"),
    [
        ({"snapshotId": None}, "MISSING_ATTRIBUTE", "snapshotId"),
        ({"colour": "blue"}, "INVALID_ATTRIBUTE", "colour"),
        ({"status": "PENDING"}, "VALIDATION_ERROR", "status"),
        ({"targetDeploymentItemName": "bad/name"}, "VALIDATION_ERROR", "targetDeploymentItemName"),
        ({"targetProjectId": "xyz"}, "VALIDATION_ERROR", "targetProjectId"),
    ],
)
def test_bad_create_bodies_are_400_violations(
    api: httpx.Client, sim: AtlasSimulator, overrides: dict[str, Any], code: str, mentions: str
) -> None:
    assert_api_error(create(api, **overrides), 400, code)

    assert mentions in (sim.violations[0].violation or "")
    assert sim.jobs == {}


def test_instance_name_and_unicode_target_names_are_accepted(api: httpx.Client, sim: AtlasSimulator) -> None:
    sim.add_cluster(DEMO.group_id, "bestellungen-prüfung")

    answer = create(api, instanceName=DEMO.source_cluster, targetDeploymentItemName="bestellungen-prüfung")

    assert answer.status_code == 200
    assert sim.violations == []


@pytest.mark.spec_violations_expected
def test_other_request_violations(api: httpx.Client, sim: AtlasSimulator) -> None:
    body = json.dumps(
        {
            "snapshotId": DEMO.latest_snapshot_id,
            "targetDeploymentItemName": "x",
            "targetProjectId": DEMO.group_id,
        }
    )
    assert_api_error(
        api.post(JOBS, content=body, headers={"Content-Type": "application/json"}),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    )
    assert_api_error(
        api.post(JOBS, content=b"{not json", headers={"Content-Type": MEDIA}), 400, "INVALID_JSON"
    )
    assert_api_error(api.get(SNAPSHOTS, params={"itemsPerPage": 501}), 400, "VALIDATION_ERROR")
    assert_api_error(api.get(SNAPSHOTS, params={"pageNum": "one"}), 400, "VALIDATION_ERROR")
    assert_api_error(api.get(SNAPSHOTS, params={"includeCount": "yes"}), 400, "VALIDATION_ERROR")
    assert_api_error(api.get(SNAPSHOTS, params={"sort": "asc"}), 400, "VALIDATION_ERROR")
    assert_api_error(api.get(f"{GROUP}/-leading-dash"), 400, "VALIDATION_ERROR")
    assert_api_error(api.get(f"{SOURCE}/backup/exports"), 404, "RESOURCE_NOT_FOUND")
    assert_api_error(api.delete(JOBS), 405, "METHOD_NOT_ALLOWED")

    assert len(sim.violations) == 9
    assert all(c.status >= 400 for c in sim.violations)


def test_well_formed_calls_record_no_violation(
    api: httpx.Client, sim: AtlasSimulator, clock: VirtualClock
) -> None:
    api.get(SOURCE, params={"pretty": "true", "envelope": "false"})
    api.get(SNAPSHOTS, params={"itemsPerPage": 500, "pageNum": 1, "includeCount": "true"})
    job_id = create(api).json()["id"]
    clock.advance(120)
    api.get(f"{JOBS}/{job_id}")
    api.get(JOBS)

    assert sim.violations == []
    assert [c.status for c in sim.calls] == [200] * 6


def test_envelope_wraps_single_resources(api: httpx.Client) -> None:
    wrapped = api.get(SOURCE, params={"envelope": "true"}).json()

    assert wrapped["status"] == 200 and wrapped["content"]["name"] == DEMO.source_cluster
    assert api.get(SNAPSHOTS, params={"envelope": "true"}).json()["status"] == 200


def test_download_is_answered_as_unsupported(api: httpx.Client, sim: AtlasSimulator) -> None:
    body = json.dumps({"snapshotId": DEMO.latest_snapshot_id})

    answer = api.post(f"{SOURCE}/backup/download", content=body, headers={"Content-Type": MEDIA})

    assert_api_error(answer, 400, "FEATURE_UNSUPPORTED")
    assert sim.violations == []


# -- the call log --------------------------------------------------------------------------------------


def test_call_log_is_complete_under_concurrency(api: httpx.Client, sim: AtlasSimulator) -> None:
    def read() -> None:
        assert api.get(SOURCE).status_code == 200

    threads = [threading.Thread(target=read) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    reads = [c for c in sim.calls if c.operation == "getFlexCluster"]
    assert len(reads) == 16
    assert {(c.method, c.path, c.status, c.auth_kind, c.violation) for c in reads} == {
        ("GET", SOURCE, 200, "bearer", None)
    }


def test_stop_frees_the_port(clock: VirtualClock) -> None:
    simulator = AtlasSimulator(clock=clock)
    url = simulator.start()
    simulator.stop()

    with pytest.raises(httpx.ConnectError):
        get(url + SOURCE, timeout=1)


def test_response_self_check_catches_a_body_that_breaks_the_spec() -> None:
    spec = Spec.load()
    get_job = spec.match("GET", f"{JOBS}/{'c' * 24}").operation

    problems = spec.check_response(get_job, 200, {"id": "short", "status": "DONE", "snapshotId": 7})

    assert len(problems) == 3
    undocumented = spec.check_response(get_job, 201, {})
    assert undocumented == ["status 201 is not documented for getGroupFlexClusterBackupRestoreJob"]


def test_response_self_check_knows_a_204_has_no_body() -> None:
    spec = Spec.load()
    delete = spec.match("DELETE", f"{GROUP}/{DEMO.scratch_target}").operation

    assert spec.check_response(delete, 204, None) == []
    assert spec.check_response(delete, 204, {}) == ["status 204 of deleteFlexCluster has no body"]
    assert spec.check_response(delete, 200, None) == ["status 200 is not documented for deleteFlexCluster"]


# -- flex clusters: create, list, get, delete ------------------------------------------------------------

VERIFY_GROUP = f"/api/atlas/v2/groups/{FLEET.verification_group_id}/flexClusters"
FLEET_GROUP = f"/api/atlas/v2/groups/{FLEET.group_id}/flexClusters"
FLEET_VERSION = re.compile(r"^8\.0\.\d+$")


def create_cluster(
    api: httpx.Client, name: str, *, group: str = VERIFY_GROUP, **overrides: Any
) -> httpx.Response:
    body = {"name": name, "providerSettings": {"backingProviderName": "AWS", "regionName": "US_EAST_1"}}
    body.update(overrides)
    body = {key: value for key, value in body.items() if value is not None}
    return api.post(group, content=json.dumps(body), headers={"Content-Type": MEDIA})


def restore_into(api: httpx.Client, target: str) -> httpx.Response:
    return create(api, targetDeploymentItemName=target)


def test_create_answers_201_creating_then_idle_after_the_create_delay(
    api: httpx.Client, sim: AtlasSimulator, clock: VirtualClock
) -> None:
    created = create_cluster(api, "frv-orders-001")

    assert created.status_code == 201
    assert_matches_spec(sim, VERIFY_GROUP, "POST", created)
    cluster = created.json()
    assert cluster["stateName"] == "CREATING"
    assert "tags" not in cluster  # as real Atlas answers a create without tags
    assert (cluster["name"], cluster["groupId"]) == ("frv-orders-001", FLEET.verification_group_id)
    assert re.fullmatch(r"[a-f0-9]{24}", cluster["id"])
    assert cluster["mongoDBVersion"] == "8.0.15"
    assert cluster["createDate"] == "2026-11-01T02:00:00Z"
    assert cluster["providerSettings"] == {
        "backingProviderName": "AWS",
        "diskSizeGB": 5.0,
        "providerName": "FLEX",
        "regionName": "US_EAST_1",
    }
    assert cluster["connectionStrings"]["standard"].startswith("mongodb://frv-orders-001")
    assert cluster["connectionStrings"]["standardSrv"].startswith("mongodb+srv://frv-orders-001.")
    assert cluster["terminationProtectionEnabled"] is False
    assert created.headers["ratelimit-limit"] == "1200"
    assert sim.calls[-1].operation == "createFlexCluster" and sim.calls[-1].status == 201

    path = f"{VERIFY_GROUP}/frv-orders-001"
    clock.advance(9.9)
    assert api.get(path).json()["stateName"] == "CREATING"
    assert sim.cluster_state(FLEET.verification_group_id, "frv-orders-001") == "CREATING"
    clock.advance(0.1)  # Timings.cluster_create, 10 s
    idle = api.get(path)
    assert idle.json()["stateName"] == "IDLE"
    assert {k: v for k, v in idle.json().items() if k != "stateName"} == {
        k: v for k, v in cluster.items() if k != "stateName"
    }
    assert_matches_spec(sim, path, "GET", idle)
    assert sim.violations == []


def test_create_keeps_tags_and_termination_protection(api: httpx.Client, sim: AtlasSimulator) -> None:
    tags = [{"key": "created-by", "value": "flexrestore"}, {"key": "verify-run", "value": "r-1"}]

    cluster = create_cluster(
        api,
        "frv-tagged-001",
        tags=tags,
        terminationProtectionEnabled=True,
        providerSettings={"backingProviderName": "GCP", "regionName": "CENTRAL_US"},
    ).json()

    assert cluster["tags"] == tags
    assert cluster["terminationProtectionEnabled"] is True
    assert cluster["providerSettings"]["backingProviderName"] == "GCP"
    assert cluster["providerSettings"]["regionName"] == "CENTRAL_US"
    protected = api.delete(f"{VERIFY_GROUP}/frv-tagged-001")
    assert_api_error(protected, 400, "CANNOT_TERMINATE_CLUSTER_WHEN_TERMINATION_PROTECTION_ENABLED")
    assert sim.cluster_state(FLEET.verification_group_id, "frv-tagged-001") == "CREATING"  # not deleted
    assert sim.violations == []


def test_list_flex_clusters_is_paginated_like_the_other_lists(
    api: httpx.Client, sim: AtlasSimulator, clock: VirtualClock
) -> None:
    for name in ("frv-a-001", "frv-b-001"):
        assert create_cluster(api, name).status_code == 201
        clock.advance(1)

    first = api.get(VERIFY_GROUP, params={"itemsPerPage": 2, "pageNum": 1})
    second = api.get(VERIFY_GROUP, params={"itemsPerPage": 2, "pageNum": 2, "includeCount": "false"})

    assert [c["name"] for c in first.json()["results"]] == [FLEET.decoy_cluster, "frv-a-001"]
    assert first.json()["totalCount"] == 3
    assert {link["rel"] for link in first.json()["links"]} == {"self", "next"}
    assert first.json()["links"][0]["href"].endswith("/flexClusters?pageNum=1&itemsPerPage=2")
    assert [c["name"] for c in second.json()["results"]] == ["frv-b-001"]
    assert "totalCount" not in second.json()
    assert api.get(VERIFY_GROUP, params={"pageNum": 3, "itemsPerPage": 2}).json()["results"] == []
    assert_matches_spec(sim, VERIFY_GROUP, "GET", first)
    # A dedicated cluster is not a flex cluster: the flex list leaves it out.
    demo = [c["name"] for c in api.get(GROUP).json()["results"]]
    assert DEMO.source_cluster in demo and DEMO.dedicated_cluster not in demo
    assert_api_error(api.get(f"/api/atlas/v2/groups/{'0' * 24}/flexClusters"), 404, "RESOURCE_NOT_FOUND")
    assert_api_error(
        create_cluster(api, "x", group=f"/api/atlas/v2/groups/{'0' * 24}/flexClusters"),
        404,
        "RESOURCE_NOT_FOUND",
    )
    assert sim.violations == []


def test_delete_answers_204_then_deleting_then_gone(
    api: httpx.Client, sim: AtlasSimulator, clock: VirtualClock
) -> None:
    create_cluster(api, "frv-gone-001")
    clock.advance(10)
    path = f"{VERIFY_GROUP}/frv-gone-001"

    deleted = api.delete(path)

    assert deleted.status_code == 204
    assert deleted.content == b"" and "content-type" not in deleted.headers
    assert deleted.headers["ratelimit-limit"] == "1200"
    assert (sim.calls[-1].operation, sim.calls[-1].status) == ("deleteFlexCluster", 204)
    assert api.get(path).json()["stateName"] == "DELETING"
    assert_api_error(api.delete(path), 400, "CLUSTER_ALREADY_REQUESTED_DELETION")
    assert_api_error(create_cluster(api, "frv-gone-001"), 409, "DUPLICATE_CLUSTER_NAME")  # still taken
    clock.advance(39.9)
    assert api.get(path).json()["stateName"] == "DELETING"
    assert "frv-gone-001" in [c["name"] for c in api.get(VERIFY_GROUP).json()["results"]]
    clock.advance(0.1)  # Timings.cluster_delete, 40 s
    assert_api_error(api.get(path), 404, "CLUSTER_NOT_FOUND")
    assert_api_error(api.delete(path), 404, "CLUSTER_NOT_FOUND")
    assert [c["name"] for c in api.get(VERIFY_GROUP).json()["results"]] == [FLEET.decoy_cluster]
    assert sim.cluster_state(FLEET.verification_group_id, "frv-gone-001") is None
    again = create_cluster(api, "frv-gone-001")  # the name is free again: a new cluster
    assert again.status_code == 201 and again.json()["stateName"] == "CREATING"
    assert sim.violations == []


def test_a_taken_name_is_a_409_and_creates_nothing(api: httpx.Client, sim: AtlasSimulator) -> None:
    body = assert_api_error(create_cluster(api, FLEET.decoy_cluster), 409, "DUPLICATE_CLUSTER_NAME")

    assert body["parameters"] == [FLEET.decoy_cluster, FLEET.verification_group_id]
    decoy = api.get(f"{VERIFY_GROUP}/{FLEET.decoy_cluster}").json()
    assert decoy["id"] == FLEET.decoy_cluster_id and decoy["stateName"] == "IDLE"
    # The same name in another project is another cluster.
    assert create_cluster(api, FLEET.decoy_cluster, group=GROUP).status_code == 201


def test_cluster_limit_per_project_when_switched_on(
    api: httpx.Client, sim: AtlasSimulator, clock: VirtualClock
) -> None:
    sim.max_clusters_per_project = 2  # the decoy is one

    assert create_cluster(api, "frv-one-001").status_code == 201
    refused = assert_api_error(create_cluster(api, "frv-two-001"), 400, "CLUSTER_LIMIT_REACHED")
    assert refused["parameters"] == [FLEET.verification_group_id, 2]
    assert sim.cluster_state(FLEET.verification_group_id, "frv-two-001") is None
    assert create_cluster(api, "frv-two-001", group=GROUP).status_code == 400  # DEMO has more already
    clock.advance(10)
    api.delete(f"{VERIFY_GROUP}/frv-one-001")
    assert create_cluster(api, "frv-two-001").status_code == 400  # a DELETING cluster still counts
    clock.advance(40)
    assert create_cluster(api, "frv-two-001").status_code == 201
    sim.max_clusters_per_project = None
    assert create_cluster(api, "frv-three-001").status_code == 201


def test_a_restore_into_a_target_that_is_not_idle_is_refused(
    api: httpx.Client, sim: AtlasSimulator, clock: VirtualClock
) -> None:
    create_cluster(api, "orders-scratch", group=GROUP)

    creating = assert_api_error(restore_into(api, "orders-scratch"), 409, "TARGET_CLUSTER_NOT_IDLE")
    assert creating["parameters"] == ["orders-scratch", DEMO.group_id, "CREATING"]
    updating = assert_api_error(restore_into(api, DEMO.busy_cluster), 409, "TARGET_CLUSTER_NOT_IDLE")
    assert updating["parameters"][2] == "UPDATING"
    clock.advance(10)
    assert restore_into(api, "orders-scratch").status_code == 200
    clock.advance(66)  # that restore is over
    assert api.delete(f"{GROUP}/orders-scratch").status_code == 204
    deleting = assert_api_error(restore_into(api, "orders-scratch"), 409, "TARGET_CLUSTER_NOT_IDLE")
    assert deleting["parameters"][2] == "DELETING"
    clock.advance(40)
    assert_api_error(restore_into(api, "orders-scratch"), 404, "CLUSTER_NOT_FOUND")
    assert len(sim.jobs) == 1
    assert sim.violations == []


@pytest.mark.spec_violations_expected
@pytest.mark.parametrize(
    ("overrides", "status", "code", "mentions"),
    [
        ({"providerSettings": None}, 400, "MISSING_ATTRIBUTE", "providerSettings"),
        ({"providerSettings": {"backingProviderName": "AWS"}}, 400, "MISSING_ATTRIBUTE", "regionName"),
        (
            {"providerSettings": {"backingProviderName": "AWS", "regionName": "US_EAST_1", "diskSizeGB": 5}},
            400,
            "VALIDATION_ERROR",
            "diskSizeGB",
        ),
        (
            {"providerSettings": {"backingProviderName": "IBM", "regionName": "X"}},
            400,
            "INVALID_ENUM_VALUE",
            "IBM",
        ),
        ({"name": "frv_underscore"}, 400, "VALIDATION_ERROR", "name"),
        ({"name": None}, 400, "MISSING_ATTRIBUTE", "name"),
        ({"tags": [{"key": "", "value": "x"}]}, 400, "VALIDATION_ERROR", "tags"),
        ({"tags": [{"key": "k"}]}, 400, "MISSING_ATTRIBUTE", "value"),
        ({"terminationProtectionEnabled": "yes"}, 400, "VALIDATION_ERROR", "terminationProtectionEnabled"),
        ({"clusterType": "REPLICASET"}, 400, "INVALID_ATTRIBUTE", "clusterType"),
        ({"stateName": "IDLE"}, 400, "INVALID_ATTRIBUTE", "stateName"),
    ],
)
def test_bad_cluster_create_bodies_are_violations_and_create_nothing(
    api: httpx.Client, sim: AtlasSimulator, overrides: dict[str, Any], status: int, code: str, mentions: str
) -> None:
    overrides.setdefault("name", "frv-bad-001")

    assert_api_error(create_cluster(api, **overrides), status, code)

    assert len(sim.violations) == 1
    assert mentions in (sim.violations[0].violation or "")
    assert [c["name"] for c in api.get(VERIFY_GROUP).json()["results"]] == [FLEET.decoy_cluster]


@pytest.mark.spec_violations_expected
def test_other_cluster_request_violations(api: httpx.Client, sim: AtlasSimulator) -> None:
    body = json.dumps(
        {"name": "frv-x-001", "providerSettings": {"backingProviderName": "AWS", "regionName": "R"}}
    )
    assert_api_error(
        api.post(VERIFY_GROUP, content=body, headers={"Content-Type": "application/json"}),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    )
    assert_api_error(api.post(VERIFY_GROUP, headers={"Content-Type": MEDIA}), 400, "VALIDATION_ERROR")
    assert_api_error(api.get(VERIFY_GROUP, params={"itemsPerPage": 0}), 400, "VALIDATION_ERROR")
    assert_api_error(
        api.request("DELETE", f"{VERIFY_GROUP}/{FLEET.decoy_cluster}", content=b"{}"), 400, "VALIDATION_ERROR"
    )
    assert_api_error(api.patch(f"{VERIFY_GROUP}/{FLEET.decoy_cluster}"), 405, "METHOD_NOT_ALLOWED")

    assert len(sim.violations) == 5
    assert api.get(f"{VERIFY_GROUP}/{FLEET.decoy_cluster}").json()["stateName"] == "IDLE"


# -- flex cluster scenarios and knobs ----------------------------------------------------------------------


def test_create_cluster_answer_lost_cuts_the_first_answer_per_name(
    api: httpx.Client, sim: AtlasSimulator
) -> None:
    sim.scenario = "create-cluster-answer-lost"

    with pytest.raises(httpx.RemoteProtocolError):
        create_cluster(api, "frv-lost-001")

    assert (sim.calls[-1].operation, sim.calls[-1].status) == ("createFlexCluster", 0)
    assert api.get(f"{VERIFY_GROUP}/frv-lost-001").json()["stateName"] == "CREATING"  # it was made
    assert_api_error(create_cluster(api, "frv-lost-001"), 409, "DUPLICATE_CLUSTER_NAME")
    with pytest.raises(httpx.RemoteProtocolError):
        create_cluster(api, "frv-lost-002")  # once per name
    names = [c["name"] for c in api.get(VERIFY_GROUP).json()["results"]]
    assert names == [FLEET.decoy_cluster, "frv-lost-001", "frv-lost-002"]


def test_drop_connection_after_next_cluster_create_is_a_one_shot_knob(
    api: httpx.Client, sim: AtlasSimulator
) -> None:
    sim.scenario = "delete-fails-twice"  # knobs combine with any scenario
    sim.drop_connection_after_next_cluster_create()

    with pytest.raises(httpx.RemoteProtocolError):
        create_cluster(api, "frv-drop-001")

    assert sim.cluster_state(FLEET.verification_group_id, "frv-drop-001") == "CREATING"
    assert create_cluster(api, "frv-drop-002").status_code == 201
    assert create(api).status_code == 200  # the restore-job knob is another one


def test_cluster_never_idle_keeps_new_clusters_creating(
    api: httpx.Client, sim: AtlasSimulator, clock: VirtualClock
) -> None:
    create_cluster(api, "frv-before-001")
    sim.scenario = "cluster-never-idle"
    create_cluster(api, "frv-never-001")

    clock.advance(3000)

    fresh = {"Authorization": f"Bearer {fetch_token(sim).json()['access_token']}"}
    assert api.get(f"{VERIFY_GROUP}/frv-never-001", headers=fresh).json()["stateName"] == "CREATING"
    assert api.get(f"{VERIFY_GROUP}/frv-before-001", headers=fresh).json()["stateName"] == "IDLE"
    sim.scenario = "ok"  # fixed when the cluster was made
    assert sim.cluster_state(FLEET.verification_group_id, "frv-never-001") == "CREATING"
    sim.keep_creating("frv-never-001", keep=False)  # released: IDLE at once, its create time is long past
    assert sim.cluster_state(FLEET.verification_group_id, "frv-never-001") == "IDLE"


def test_keep_creating_holds_one_name_until_released(
    api: httpx.Client, sim: AtlasSimulator, clock: VirtualClock
) -> None:
    sim.keep_creating("frv-held-001", group_id=FLEET.verification_group_id)
    create_cluster(api, "frv-held-001")
    create_cluster(api, "frv-free-001")
    clock.advance(600)
    assert sim.cluster_state(FLEET.verification_group_id, "frv-held-001") == "CREATING"
    assert sim.cluster_state(FLEET.verification_group_id, "frv-free-001") == "IDLE"

    create_cluster(api, "orders-soon", group=GROUP)
    sim.keep_creating("orders-soon")  # one CREATING now is held too
    clock.advance(60)
    assert sim.cluster_state(DEMO.group_id, "orders-soon") == "CREATING"

    sim.keep_creating("frv-held-001", group_id=FLEET.verification_group_id, keep=False)
    assert api.get(f"{VERIFY_GROUP}/frv-held-001").json()["stateName"] == "IDLE"
    assert sim.cluster_state(DEMO.group_id, "orders-soon") == "CREATING"


def test_delete_fails_twice_per_cluster_then_deletes(
    api: httpx.Client, sim: AtlasSimulator, clock: VirtualClock
) -> None:
    sim.scenario = "delete-fails-twice"
    for name in ("frv-d-001", "frv-d-002"):
        create_cluster(api, name)
    clock.advance(10)

    first = [api.delete(f"{VERIFY_GROUP}/frv-d-001") for _ in range(3)]

    assert [a.status_code for a in first] == [500, 500, 204]
    assert_api_error(first[0], 500, "UNEXPECTED_ERROR")
    assert api.delete(f"{VERIFY_GROUP}/frv-d-002").status_code == 500  # its own count
    assert sim.cluster_state(FLEET.verification_group_id, "frv-d-002") == "IDLE"  # a 500 deleted nothing
    assert sim.cluster_state(FLEET.verification_group_id, "frv-d-001") == "DELETING"


def test_fail_next_deletes_knob(api: httpx.Client, sim: AtlasSimulator, clock: VirtualClock) -> None:
    sim.scenario = "cluster-never-idle"
    create_cluster(api, "frv-k-001")
    sim.fail_next_deletes("frv-k-001", 2, group_id=DEMO.group_id)  # another project: no effect here
    sim.fail_next_deletes("frv-k-001", 1)

    answers = [api.delete(f"{VERIFY_GROUP}/frv-k-001").status_code for _ in range(2)]

    assert answers == [500, 204]  # a CREATING cluster can be deleted
    create_cluster(api, "frv-k-001", group=GROUP)
    sim.fail_next_deletes("frv-k-001", 0, group_id=DEMO.group_id)  # 0 cancels
    assert api.delete(f"{GROUP}/frv-k-001").status_code == 204


def test_not_found_scenario_spares_listing_and_creating_clusters(
    api: httpx.Client, sim: AtlasSimulator
) -> None:
    sim.scenario = "not-found"

    assert create_cluster(api, "frv-nf-001").status_code == 201
    assert len(api.get(VERIFY_GROUP).json()["results"]) == 2
    assert_api_error(api.get(f"{VERIFY_GROUP}/frv-nf-001"), 404, "CLUSTER_NOT_FOUND")
    assert_api_error(api.delete(f"{VERIFY_GROUP}/frv-nf-001"), 404, "CLUSTER_NOT_FOUND")


def test_flaky_and_garbage_reach_the_cluster_operations(api: httpx.Client, sim: AtlasSimulator) -> None:
    sim.scenario = "flaky"
    assert [create_cluster(api, "frv-f-001").status_code for _ in range(3)] == [503, 500, 201]
    assert [api.get(VERIFY_GROUP).status_code for _ in range(3)] == [503, 500, 200]
    sim.scenario = "garbage"
    listing = api.get(VERIFY_GROUP)
    assert listing.status_code == 200 and listing.content.startswith(b"<html>")


# -- per-source restore fates -----------------------------------------------------------------------------


def fleet_restore(api: httpx.Client, source: str, snapshot: int = 0) -> httpx.Response:
    body = {
        "snapshotId": FLEET.snapshot_ids(source)[snapshot],
        "targetDeploymentItemName": FLEET.target_of(source),
        "targetProjectId": FLEET.group_id,
    }
    return api.post(
        f"{FLEET_GROUP}/{source}/backup/restoreJobs",
        content=json.dumps(body),
        headers={"Content-Type": MEDIA},
    )


def fleet_job_status(api: httpx.Client, source: str, job_id: str, token: str) -> str:
    path = f"{FLEET_GROUP}/{source}/backup/restoreJobs/{job_id}"
    return str(api.get(path, headers={"Authorization": f"Bearer {token}"}).json()["status"])


def test_restore_fates_per_source_beside_the_scenario(
    api: httpx.Client, sim: AtlasSimulator, clock: VirtualClock
) -> None:
    sources = ["fleet-01", "fleet-02", "fleet-03", "fleet-04"]
    sim.set_restore_fate(FLEET.group_id, "fleet-02", "FAILED")
    sim.set_restore_fate(FLEET.group_id, "fleet-03", "NEVER")
    sim.set_restore_fate(FLEET.group_id, "fleet-04", "COMPLETED", duration_seconds=300)
    jobs = {source: fleet_restore(api, source).json()["id"] for source in sources}

    def statuses() -> list[str]:
        token = fetch_token(sim).json()["access_token"]
        return [fleet_job_status(api, source, jobs[source], token) for source in sources]

    clock.advance(65)
    assert statuses() == ["COMPLETED", "FAILED", "RUNNING", "RUNNING"]
    clock.advance(240)  # 300 s after restoreScheduledDate
    assert statuses() == ["COMPLETED", "FAILED", "RUNNING", "COMPLETED"]
    clock.advance(86400)
    assert statuses()[2] == "RUNNING"

    # A source's fate wins over the scenario; the scenario still decides for the others.
    sim.scenario = "fail"
    api.headers["Authorization"] = f"Bearer {fetch_token(sim).json()['access_token']}"  # a day has passed
    again = {
        source: fleet_restore(api, source, snapshot=1).json()["id"] for source in ("fleet-01", "fleet-04")
    }
    clock.advance(305)
    token = fetch_token(sim).json()["access_token"]
    assert fleet_job_status(api, "fleet-01", again["fleet-01"], token) == "FAILED"
    assert fleet_job_status(api, "fleet-04", again["fleet-04"], token) == "COMPLETED"
    # None forgets a fate; a bad fate is refused.
    sim.set_restore_fate(FLEET.group_id, "fleet-04", None)
    assert sim.state.restore_fate(FLEET.group_id, "fleet-04") is None
    with pytest.raises(ValueError, match="unknown restore fate 'SLOW'"):
        sim.set_restore_fate(FLEET.group_id, "fleet-04", "SLOW")


def test_the_fleet_slow_source_takes_fifteen_minutes(
    api: httpx.Client, sim: AtlasSimulator, clock: VirtualClock
) -> None:
    job = fleet_restore(api, FLEET.slow_source).json()

    clock.advance(5 + 899)
    token = fetch_token(sim).json()["access_token"]
    assert fleet_job_status(api, FLEET.slow_source, job["id"], token) == "RUNNING"
    clock.advance(1)
    done = api.get(
        f"{FLEET_GROUP}/{FLEET.slow_source}/backup/restoreJobs/{job['id']}",
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    assert done["status"] == "COMPLETED"
    assert done["restoreFinishedDate"] == "2026-11-01T02:15:05Z"


# -- FLEET seed -------------------------------------------------------------------------------------------


def test_fleet_seed_clusters(api: httpx.Client, sim: AtlasSimulator) -> None:
    listing = api.get(FLEET_GROUP)
    assert_matches_spec(sim, FLEET_GROUP, "GET", listing)
    clusters = {c["name"]: c for c in listing.json()["results"]}

    assert len(FLEET.sources) == 24 and FLEET.sources[0] == "fleet-01" and FLEET.sources[-1] == "fleet-24"
    assert set(clusters) == set(FLEET.sources) | set(FLEET.targets)
    assert listing.json()["totalCount"] == 48
    nightly = {"key": "verify", "value": "nightly"}
    tagged = [name for name in FLEET.sources if nightly in clusters[name].get("tags", [])]
    assert tagged == list(FLEET.nightly_sources) and len(tagged) == 22
    assert all(name not in tagged for name in FLEET.untagged_sources)
    for source in FLEET.sources:
        origin, target = clusters[source], clusters[FLEET.target_of(source)]
        assert origin["id"] == FLEET.source_id(source) and target["id"] == FLEET.target_id(source)
        assert origin["stateName"] == target["stateName"] == "IDLE"
        assert origin["terminationProtectionEnabled"] is True
        assert target["terminationProtectionEnabled"] is False
        assert FLEET_VERSION.match(origin["mongoDBVersion"])
        assert origin["mongoDBVersion"] == target["mongoDBVersion"] == FLEET.mongodb_version_of(source)
    protected = [
        name
        for name, c in clusters.items()
        if {"key": "restore-protected", "value": "true"} in c.get("tags", [])
    ]
    assert protected == [FLEET.protected_target] == ["fleet-05-verify"]
    assert FLEET.protected_target_source in FLEET.nightly_sources
    # The verification project: one decoy whose name has the ephemeral prefix, made by someone else.
    verification = api.get(VERIFY_GROUP).json()["results"]
    assert [c["name"] for c in verification] == [FLEET.decoy_cluster]
    assert FLEET.decoy_cluster.startswith(FLEET.ephemeral_prefix) and FLEET.ephemeral_prefix == "frv-"
    assert verification[0]["stateName"] == "IDLE"
    assert verification[0]["terminationProtectionEnabled"] is False
    assert not any(tag["value"] == "flexrestore" for tag in verification[0]["tags"])


def test_fleet_seed_snapshots(api: httpx.Client, sim: AtlasSimulator) -> None:
    start = START.timestamp()
    times_by_day: dict[int, set[str]] = {}
    for source in FLEET.sources:
        path = f"{FLEET_GROUP}/{source}/backup/snapshots"
        listing = api.get(path)
        snapshots = listing.json()["results"]
        assert_matches_spec(sim, path, "GET", listing)
        assert [s["id"] for s in snapshots] == list(FLEET.snapshot_ids(source))  # newest first
        expected = "FAILED" if source == FLEET.failed_snapshots_source else "COMPLETED"
        assert {s["status"] for s in snapshots} == {expected}
        scheduled = [datetime.fromisoformat(s["scheduledTime"]).timestamp() for s in snapshots]
        for days_ago, (snapshot, moment) in enumerate(zip(snapshots, scheduled, strict=True), start=1):
            assert start - (days_ago + 1) * 86400 < moment < start - (days_ago - 1) * 86400 + 7200
            assert snapshot["mongoDBVersion"] == FLEET.mongodb_version_of(source)
            expiration = datetime.fromisoformat(snapshot["expiration"]).timestamp()
            assert expiration - moment == 8 * 86400 and expiration > start  # all within retention
            times_by_day.setdefault(days_ago, set()).add(snapshot["scheduledTime"][11:16])
        # one a day, at a different time of day each day
        assert len({s["scheduledTime"][:10] for s in snapshots}) == 7
        assert len({s["scheduledTime"][11:16] for s in snapshots}) == 7
    # ... and at a different time of day for the sources on most days
    assert all(len(times) >= 20 for times in times_by_day.values())
    assert FLEET.failed_snapshots_source in FLEET.nightly_sources


def test_every_fleet_source_but_the_failed_one_restores_into_its_target(
    api: httpx.Client, sim: AtlasSimulator
) -> None:
    answers = {source: fleet_restore(api, source) for source in FLEET.sources}

    refused = {source: a.json()["errorCode"] for source, a in answers.items() if a.status_code != 200}
    assert refused == {FLEET.failed_snapshots_source: "SNAPSHOT_NOT_COMPLETED"}
    assert len(sim.jobs) == 23
    assert sim.violations == []
