"""The Atlas client against the local Atlas simulator (a real HTTP server on loopback), in every scenario,
with both credential kinds. Every test ends by asserting the simulator saw no spec violation.

Nothing sleeps for real: the client and the simulator share one VirtualClock.
"""

from __future__ import annotations

import base64
import itertools
import json
import logging
import random
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from flexrestore import clock
from flexrestore.atlas.auth import Credentials
from flexrestore.atlas.client import AtlasClient
from flexrestore.atlas.errors import (
    AtlasAuthError,
    AtlasBadRequest,
    AtlasBadResponse,
    AtlasConflict,
    AtlasNotFound,
    AtlasRateLimited,
)
from flexrestore.atlas.models import FlexCluster, RestoreJob
from flexrestore.simulator import DEMO, FLEET, SCENARIOS, AtlasSimulator, RateLimit

SECRET_ID = "flexrestore/atlas-credentials"
KINDS = ("service_account", "api_key")
GROUP = DEMO.group_id
SOURCE = DEMO.source_cluster
TARGET = DEMO.scratch_target


def credentials(kind: str, *, wrong: bool = False) -> Credentials:
    if kind == "service_account":
        secret = "mdb_sa_sk_WRONG-value-0000" if wrong else DEMO.client_secret
        return Credentials.service_account(DEMO.client_id, secret, secret_id=SECRET_ID)
    private = "00000000-WRONG-0000-0000-000000000000" if wrong else DEMO.private_key
    return Credentials.api_key(DEMO.public_key, private, secret_id=SECRET_ID)


@pytest.fixture
def sim(vclock: clock.VirtualClock) -> Iterator[AtlasSimulator]:
    with AtlasSimulator(clock=vclock) as simulator:
        yield simulator
        # Belt and braces: every test also asserts this itself, at the point it matters.
        assert simulator.violations == []
        assert simulator.errors == []


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_client(sim: AtlasSimulator, vclock: clock.VirtualClock) -> Iterator[Callable[..., AtlasClient]]:
    made: list[AtlasClient] = []

    def make(kind: str, **kwargs: Any) -> AtlasClient:
        client = AtlasClient(
            sim.base_url, credentials(kind, wrong=kwargs.pop("wrong", False)), clock=vclock, **kwargs
        )
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def assert_clean(sim: AtlasSimulator) -> None:
    assert sim.violations == []
    assert sim.errors == []


def create(client: AtlasClient, target: str = TARGET) -> RestoreJob:
    return client.create_restore_job(
        GROUP, SOURCE, snapshot_id=DEMO.latest_snapshot_id, target_name=target, target_project_id=GROUP
    )


def poll_until_terminal(
    client: AtlasClient, vclock: clock.VirtualClock, job_id: str, *, every: float, limit: float
) -> tuple[RestoreJob, list[str]]:
    seen: list[str] = []
    start = vclock.now()
    job = client.get_restore_job(GROUP, SOURCE, job_id)
    seen.append(job.status)
    while not job.is_terminal and vclock.now() - start < limit:
        vclock.advance(every)
        job = client.get_restore_job(GROUP, SOURCE, job_id)
        if job.status != seen[-1]:
            seen.append(job.status)
    return job, seen


def api_calls(sim: AtlasSimulator, method: str | None = None, operation: str | None = None) -> list[Any]:
    return [
        c
        for c in sim.calls
        if c.operation != "token"
        and (method is None or c.method == method)
        and (operation is None or c.operation == operation)
    ]


# ------------------------------------------------------------------------------------------ scenarios


def test_every_scenario_is_covered_here() -> None:
    covered = {
        "ok",
        "slow",
        "fail",
        "never-finishes",
        "not-found",
        "rate-limited",
        "rate-limited-no-header",
        "flaky",
        "token-expired",
        "job-vanishes",
        "garbage",
        "create-cluster-answer-lost",
        "cluster-never-idle",
        "delete-fails-twice",
    }
    assert set(SCENARIOS) == covered


def test_ok_full_restore_flow(
    sim: AtlasSimulator, vclock: clock.VirtualClock, make_client: Any, kind: str
) -> None:
    client = make_client(kind)
    cluster = client.get_flex_cluster(GROUP, SOURCE)
    assert cluster.name == SOURCE
    assert cluster.state_name == "IDLE"
    assert cluster.mongodb_version == "8.0.15"
    assert cluster.tag_map == {DEMO.protected_tag_key: DEMO.protected_tag_value}

    snapshots = client.list_snapshots(GROUP, SOURCE)
    assert {s.id for s in snapshots if s.is_completed} == set(DEMO.completed_snapshot_ids)
    assert any(s.status == "FAILED" for s in snapshots)
    latest = client.get_snapshot(GROUP, SOURCE, DEMO.latest_snapshot_id)
    assert latest.is_completed and latest.mongodb_version == "8.0.15"

    created_at = vclock.now()
    job = create(client)
    assert job.status == "PENDING"
    assert job.target_deployment_item_name == TARGET
    assert job.target_project_id == GROUP
    assert job.snapshot_id == DEMO.latest_snapshot_id
    assert job.restore_scheduled_date is not None

    final, seen = poll_until_terminal(client, vclock, job.id, every=5, limit=600)
    assert final.status == "COMPLETED"
    assert seen == ["PENDING", "QUEUED", "RUNNING", "COMPLETED"]
    assert final.restore_finished_date is not None
    assert final.restore_scheduled_date is not None
    took = final.restore_finished_date.timestamp() - final.restore_scheduled_date.timestamp()
    assert took == pytest.approx(60, abs=1)
    assert vclock.now() - created_at < 120

    assert [j.id for j in client.list_restore_jobs(GROUP, SOURCE)] == [job.id]
    found = client.find_restore_job(
        GROUP, SOURCE, snapshot_id=DEMO.latest_snapshot_id, target_name=TARGET, target_project_id=GROUP
    )
    assert found is not None and found.id == job.id
    assert len(sim.jobs) == 1
    # Every API call carried the versioned media type and the right credential kind.
    expected_auth = "bearer" if kind == "service_account" else "digest"
    authed = [c for c in api_calls(sim) if c.status != 401]
    assert authed and all(c.auth_kind == expected_auth for c in authed)
    post = api_calls(sim, "POST")[-1]
    assert post.body == {
        "snapshotId": DEMO.latest_snapshot_id,
        "targetDeploymentItemName": TARGET,
        "targetProjectId": GROUP,
    }
    assert_clean(sim)


def test_slow_restore_takes_thirty_minutes_and_the_token_outlives_it(
    sim: AtlasSimulator, vclock: clock.VirtualClock, make_client: Any, kind: str
) -> None:
    sim.scenario = "slow"
    client = make_client(kind)
    job = create(client)
    vclock.advance(600)
    assert client.get_restore_job(GROUP, SOURCE, job.id).status == "RUNNING"
    final, _ = poll_until_terminal(client, vclock, job.id, every=60, limit=3600)
    assert final.status == "COMPLETED"
    assert final.restore_finished_date is not None
    assert final.restore_scheduled_date is not None
    took = final.restore_finished_date.timestamp() - final.restore_scheduled_date.timestamp()
    assert took == pytest.approx(1800, abs=1)
    if kind == "service_account":
        assert sim.token_requests == 1
    assert_clean(sim)


def test_fail_ends_in_failed_which_is_terminal(
    sim: AtlasSimulator, vclock: clock.VirtualClock, make_client: Any, kind: str
) -> None:
    sim.scenario = "fail"
    client = make_client(kind)
    job = create(client)
    final, seen = poll_until_terminal(client, vclock, job.id, every=10, limit=600)
    assert final.status == "FAILED"
    assert final.is_terminal
    assert seen[-1] == "FAILED"
    assert_clean(sim)


def test_never_finishes_stays_non_terminal_and_tokens_renew_on_time(
    sim: AtlasSimulator, vclock: clock.VirtualClock, make_client: Any, kind: str
) -> None:
    sim.scenario = "never-finishes"
    client = make_client(kind)
    job = create(client)
    final, _ = poll_until_terminal(client, vclock, job.id, every=300, limit=6 * 3600)
    assert final.status == "RUNNING"
    assert not final.is_terminal
    if kind == "service_account":
        # 6 h of polling with 1 h tokens: renewed ahead of expiry, never through a 401.
        assert 6 <= sim.token_requests <= 8
        assert [c for c in api_calls(sim) if c.status == 401] == []
    assert_clean(sim)


def test_not_found_is_a_typed_error_and_create_is_not_retried(
    sim: AtlasSimulator, vclock: clock.VirtualClock, make_client: Any, kind: str
) -> None:
    sim.scenario = "not-found"
    client = make_client(kind)
    with pytest.raises(AtlasNotFound) as caught:
        client.get_flex_cluster(GROUP, SOURCE)
    assert caught.value.status == 404
    assert caught.value.error_code == "CLUSTER_NOT_FOUND"
    assert not caught.value.retryable
    with pytest.raises(AtlasNotFound):
        create(client)
    assert [c.status for c in api_calls(sim, "POST") if c.status != 401] == [404]  # sent once
    assert sim.jobs == {}
    assert vclock.slept == []
    assert_clean(sim)


def test_unknown_cluster_in_ok_scenario_is_not_found(
    sim: AtlasSimulator, make_client: Any, kind: str
) -> None:
    with pytest.raises(AtlasNotFound, match="CLUSTER_NOT_FOUND"):
        make_client(kind).get_flex_cluster(GROUP, "no-such-cluster")
    assert_clean(sim)


def test_rate_limited_waits_at_least_retry_after_on_the_clock(
    sim: AtlasSimulator, vclock: clock.VirtualClock, make_client: Any, kind: str
) -> None:
    sim.scenario = "rate-limited"  # each (operation, project) bucket starts empty; 1 token every 10 s
    client = make_client(kind)
    start = vclock.now()
    assert client.get_flex_cluster(GROUP, SOURCE).name == SOURCE
    assert vclock.now() - start >= 10
    assert vclock.slept[0] >= 10
    job = create(client)
    assert len(sim.jobs) == 1 and job.id in sim.jobs
    limited = [c for c in api_calls(sim) if c.status == 429]
    assert [c.operation for c in limited] == ["getFlexCluster", "createFlexRestoreJob"]  # one per bucket
    # Retry-After honoured: each operation was not asked again before its bucket's refill 10 s later.
    for refused in limited:
        later = [c for c in api_calls(sim) if c.operation == refused.operation and c.at > refused.at]
        assert later and later[0].at >= refused.at + 10 and later[0].status == 200
    assert_clean(sim)


def test_rate_limited_beyond_the_budget_gives_up_with_retry_after(
    sim: AtlasSimulator, vclock: clock.VirtualClock, make_client: Any, kind: str
) -> None:
    sim.rate_limit = RateLimit(refill_seconds=300)  # the first token comes back 300 s after the first call
    sim.scenario = "rate-limited"
    client = make_client(kind, max_total_wait=60)
    with pytest.raises(AtlasRateLimited) as caught:
        client.get_flex_cluster(GROUP, SOURCE)
    assert caught.value.retry_after == 300
    assert caught.value.retryable
    assert vclock.slept == []
    assert_clean(sim)


def test_rate_limited_without_header_backs_off_and_succeeds(
    sim: AtlasSimulator, vclock: clock.VirtualClock, make_client: Any, kind: str
) -> None:
    sim.scenario = "rate-limited-no-header"
    client = make_client(kind)
    start = vclock.now()
    assert client.get_flex_cluster(GROUP, SOURCE).name == SOURCE
    assert len(vclock.slept) == 2
    assert 5 <= vclock.slept[0] <= 10 and 10 <= vclock.slept[1] <= 20
    assert vclock.now() - start <= 60
    job = create(client)
    assert list(sim.jobs) == [job.id]
    assert_clean(sim)


def test_flaky_bursts_are_retried_and_create_makes_exactly_one_job(
    sim: AtlasSimulator, vclock: clock.VirtualClock, make_client: Any, kind: str
) -> None:
    sim.scenario = "flaky"
    client = make_client(kind)
    assert client.get_flex_cluster(GROUP, SOURCE).name == SOURCE
    assert len(client.list_snapshots(GROUP, SOURCE)) == 4
    job = create(client)
    assert list(sim.jobs) == [job.id]
    final, _ = poll_until_terminal(client, vclock, job.id, every=10, limit=600)
    assert final.status == "COMPLETED"
    statuses = {c.status for c in api_calls(sim)}
    assert {500, 503} <= statuses
    # Before each re-sent create the client looked for a job already made.
    ops = [c.operation for c in api_calls(sim) if c.status != 401 and c.operation != "getFlexCluster"]
    posts = [i for i, op in enumerate(ops) if op == "createFlexRestoreJob"]
    for earlier, later in itertools.pairwise(posts):
        assert "listFlexRestoreJobs" in ops[earlier:later]
    assert_clean(sim)


def test_token_expired_refreshes_exactly_once(
    sim: AtlasSimulator, vclock: clock.VirtualClock, make_client: Any, kind: str
) -> None:
    client = make_client(kind)
    client.get_flex_cluster(GROUP, SOURCE)
    sim.scenario = "token-expired"
    assert client.get_flex_cluster(GROUP, SOURCE).name == SOURCE
    assert client.get_flex_cluster(GROUP, SOURCE).name == SOURCE
    if kind == "service_account":
        assert sim.token_requests == 2  # the first token, and exactly one refresh
    else:
        assert sim.token_requests == 0
    assert vclock.slept == []  # an auth refresh is not a back-off
    assert_clean(sim)


def test_token_expired_during_a_create_makes_one_job(
    sim: AtlasSimulator, make_client: Any, kind: str
) -> None:
    client = make_client(kind)
    client.get_flex_cluster(GROUP, SOURCE)
    sim.scenario = "token-expired"
    job = create(client)
    assert list(sim.jobs) == [job.id]
    assert_clean(sim)


def test_job_vanishes_is_not_found_on_get(
    sim: AtlasSimulator, vclock: clock.VirtualClock, make_client: Any, kind: str
) -> None:
    client = make_client(kind)
    job = create(client)
    sim.scenario = "job-vanishes"
    with pytest.raises(AtlasNotFound) as caught:
        client.get_restore_job(GROUP, SOURCE, job.id)
    assert caught.value.error_code == "RESOURCE_NOT_FOUND"
    assert vclock.slept == []
    assert_clean(sim)


def test_garbage_reads_are_bad_responses_after_bounded_retries(
    sim: AtlasSimulator, vclock: clock.VirtualClock, make_client: Any, kind: str
) -> None:
    client = make_client(kind)
    job = create(client)
    sim.scenario = "garbage"
    with pytest.raises(AtlasBadResponse) as caught:
        client.get_restore_job(GROUP, SOURCE, job.id)
    assert caught.value.retryable
    assert "not JSON" in str(caught.value)
    gets = [c for c in api_calls(sim, "GET") if c.status == 200]
    assert len(gets) == 5  # max_attempts
    assert len(vclock.slept) == 4  # back-offs between the 5 attempts, all on the virtual clock
    assert sum(vclock.slept) <= 60
    sim.scenario = "ok"
    assert client.get_restore_job(GROUP, SOURCE, job.id).id == job.id
    assert_clean(sim)


# --------------------------------------------------------------------------------- the must-haves


def test_fifty_calls_in_one_container_make_exactly_one_token_request(
    sim: AtlasSimulator, make_client: Any
) -> None:
    clients = [make_client("service_account") for _ in range(5)]  # handlers may build several
    for i in range(50):
        clients[i % 5].get_flex_cluster(GROUP, SOURCE)
    assert sim.token_requests == 1
    assert len([c for c in api_calls(sim) if c.status == 200]) == 50
    assert_clean(sim)


def test_connection_dropped_after_atlas_stored_the_create_still_one_job(
    sim: AtlasSimulator, make_client: Any, kind: str
) -> None:
    client = make_client(kind)
    sim.drop_connection_after_next_create()
    job = create(client)
    assert list(sim.jobs) == [job.id]
    assert job.target_deployment_item_name == TARGET
    creates = [c for c in api_calls(sim, "POST") if c.status != 401]
    assert [c.status for c in creates] == [0]  # sent once, its answer lost, never re-sent
    assert_clean(sim)


def test_a_second_create_into_a_busy_target_is_refused_not_retried(
    sim: AtlasSimulator, vclock: clock.VirtualClock, make_client: Any, kind: str
) -> None:
    client = make_client(kind)
    create(client)
    with pytest.raises(AtlasConflict) as caught:
        create(client)
    assert caught.value.status == 409
    assert len(sim.jobs) == 1
    assert vclock.slept == []
    assert_clean(sim)


def test_dedicated_cluster_is_a_bad_request_with_atlas_error_code(
    sim: AtlasSimulator, make_client: Any, kind: str
) -> None:
    with pytest.raises(AtlasBadRequest) as caught:
        make_client(kind).get_flex_cluster(GROUP, DEMO.dedicated_cluster)
    assert caught.value.error_code == "CANNOT_USE_NON_FLEX_CLUSTER_IN_FLEX_API"
    assert_clean(sim)


def test_pagination_against_the_simulator(
    sim: AtlasSimulator, vclock: clock.VirtualClock, make_client: Any
) -> None:
    for _ in range(7):
        sim.add_snapshot(GROUP, SOURCE)
    client = make_client("service_account", page_size=3)
    snapshots = client.list_snapshots(GROUP, SOURCE)
    assert len(snapshots) == 11
    assert len({s.id for s in snapshots}) == 11
    pages = [c.query["pageNum"] for c in api_calls(sim, "GET", "listFlexBackupSnapshots")]
    assert pages == ["1", "2", "3", "4"]
    assert_clean(sim)


def test_bad_credentials_name_the_secret_not_its_values(
    sim: AtlasSimulator, make_client: Any, kind: str
) -> None:
    client = make_client(kind, wrong=True)
    with pytest.raises(AtlasAuthError) as caught:
        client.get_flex_cluster(GROUP, SOURCE)
    message = str(caught.value)
    assert f"secret '{SECRET_ID}'" in message
    assert caught.value.status == 401
    for value in (*client.credentials.secret_values, DEMO.client_secret, DEMO.private_key):
        assert value not in message and value not in repr(caught.value)
    assert sim.jobs == {}
    assert_clean(sim)


def test_no_secret_token_or_authorization_in_errors_or_logs(
    sim: AtlasSimulator, vclock: clock.VirtualClock, make_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger: ours, httpx, httpcore
    # powertools Logger(service="flexrestore") may have set the parent to INFO in an earlier test.
    caplog.set_level(logging.DEBUG, logger="flexrestore.atlas")
    texts: list[str] = []
    for kind in KINDS:
        client = make_client(kind)
        for scenario in SCENARIOS:
            sim.scenario = scenario
            target = DEMO.recovery_target if kind == "api_key" else TARGET
            for call in (
                lambda c=client: c.get_flex_cluster(GROUP, SOURCE),
                lambda c=client: c.list_restore_jobs(GROUP, SOURCE),
                lambda c=client, t=target: create(c, t),
            ):
                try:
                    call()
                except Exception as exc:
                    texts += [str(exc), repr(exc), str(exc.__cause__), repr(exc.__cause__)]
            vclock.advance(3600)  # lets running jobs finish so the next create is not refused
        bad = make_client(kind, wrong=True)
        sim.scenario = "ok"
        with pytest.raises(AtlasAuthError) as caught:
            bad.get_flex_cluster(GROUP, SOURCE)
        texts += [str(caught.value), repr(caught.value), repr(bad), repr(bad.credentials)]
    # Every token the simulator ever issued (reaching into it: tests only).
    tokens = list(sim.auth._tokens)
    assert len(tokens) >= 2
    assert "atlas GET" in caplog.text
    haystack = "\n".join([*texts, caplog.text, *(r.getMessage() for r in caplog.records)])
    basic = base64.b64encode(f"{DEMO.client_id}:{DEMO.client_secret}".encode()).decode()
    for needle in (
        DEMO.client_secret,
        DEMO.private_key,
        DEMO.client_id,
        basic,
        "Authorization",
        "Digest username",
        *tokens,
    ):
        assert needle not in haystack
    assert_clean(sim)


def test_threads_in_one_container_share_one_token_fetch(sim: AtlasSimulator, make_client: Any) -> None:
    import threading

    clients = [make_client("service_account") for _ in range(8)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(clients))

    def work(client: AtlasClient) -> None:
        try:
            barrier.wait()
            for _ in range(5):
                client.get_flex_cluster(GROUP, SOURCE)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert sim.token_requests == 1
    assert len([c for c in api_calls(sim) if c.status == 200]) == 40
    assert_clean(sim)


# ------------------------------------------------------------------------------------ flex clusters

VERIFY = FLEET.verification_group_id
RUN_TAGS = {"created-by": "flexrestore", "verification-run": "run-0001"}


def create_cluster(client: AtlasClient, name: str, tags: dict[str, str] | None = None) -> FlexCluster:
    return client.create_flex_cluster(
        VERIFY, name, provider="AWS", region="US_EAST_1", tags=RUN_TAGS if tags is None else tags
    )


def clusters_named(sim: AtlasSimulator, name: str, group: str = VERIFY) -> int:
    return sum(1 for key in sim.state.clusters if key == (group, name))


def test_flex_cluster_lifecycle_through_the_client(
    sim: AtlasSimulator, vclock: clock.VirtualClock, make_client: Any, kind: str
) -> None:
    client = make_client(kind)
    made = create_cluster(client, "frv-life-001")

    assert made.state_name == "CREATING" and not made.is_idle
    assert made.group_id == VERIFY and made.mongodb_version == "8.0.15"
    assert made.tag_map == RUN_TAGS and made.carries_tags({"created-by": "flexrestore"})
    assert not made.carries_tags({"created-by": "someone-else"})
    assert made.termination_protection_enabled is False
    assert made.provider_settings is not None
    assert (made.provider_settings.backing_provider_name, made.provider_settings.region_name) == (
        "AWS",
        "US_EAST_1",
    )
    assert (made.provider_settings.provider_name, made.provider_settings.disk_size_gb) == ("FLEX", 5.0)
    assert made.connection_strings is not None and made.connection_strings.standard_srv is not None
    assert made.connection_strings.standard_srv.startswith("mongodb+srv://frv-life-001.")
    assert made.create_date is not None and made.create_date.timestamp() == vclock.now()
    post = api_calls(sim, "POST")[-1]
    assert post.body == {
        "name": "frv-life-001",
        "providerSettings": {"backingProviderName": "AWS", "regionName": "US_EAST_1"},
        "terminationProtectionEnabled": False,
        "tags": [{"key": k, "value": v} for k, v in RUN_TAGS.items()],
    }

    seen = [made.state_name]
    while not client.get_flex_cluster(VERIFY, "frv-life-001").is_idle:
        vclock.advance(3)  # Terraform's pace
        seen.append("CREATING")
    assert 10 <= vclock.now() - made.create_date.timestamp() <= 13
    assert [c.name for c in client.list_flex_clusters(VERIFY)] == [FLEET.decoy_cluster, "frv-life-001"]

    client.delete_flex_cluster(VERIFY, "frv-life-001")
    assert client.get_flex_cluster(VERIFY, "frv-life-001").state_name == "DELETING"
    client.delete_flex_cluster(VERIFY, "frv-life-001")  # already being deleted: fine
    vclock.advance(40)
    with pytest.raises(AtlasNotFound, match="CLUSTER_NOT_FOUND"):
        client.get_flex_cluster(VERIFY, "frv-life-001")
    client.delete_flex_cluster(VERIFY, "frv-life-001")  # already gone: fine
    assert [c.status for c in api_calls(sim, "DELETE") if c.status != 401] == [204, 400, 404]
    assert len([c for c in api_calls(sim, "POST") if c.status != 401]) == 1
    assert_clean(sim)


def test_list_flex_clusters_reads_every_page(sim: AtlasSimulator, make_client: Any) -> None:
    client = make_client("service_account", page_size=5)

    clusters = client.list_flex_clusters(FLEET.group_id)

    assert len(clusters) == 48 and len({c.id for c in clusters}) == 48
    assert {c.name for c in clusters} == set(FLEET.sources) | set(FLEET.targets)
    pages = [c.query["pageNum"] for c in api_calls(sim, "GET", "listFlexClusters")]
    assert pages == [str(n) for n in range(1, 11)]
    assert_clean(sim)


def test_create_adopts_the_cluster_after_a_lost_answer(
    sim: AtlasSimulator, vclock: clock.VirtualClock, make_client: Any, kind: str
) -> None:
    sim.scenario = "create-cluster-answer-lost"
    client = make_client(kind)

    cluster = create_cluster(client, "frv-lost-001")

    assert cluster.name == "frv-lost-001" and cluster.tag_map == RUN_TAGS
    assert clusters_named(sim, "frv-lost-001") == 1  # exactly one cluster exists
    assert [c.name for c in client.list_flex_clusters(VERIFY)] == [FLEET.decoy_cluster, "frv-lost-001"]
    ops = [(c.operation, c.status) for c in api_calls(sim) if c.status != 401]
    assert ops[:2] == [("createFlexCluster", 0), ("getFlexCluster", 200)]  # looked, adopted, never re-sent
    assert [c for c in api_calls(sim, "POST") if c.status != 401 and c.status != 0] == []
    assert_clean(sim)


def test_create_adopts_after_faults_combined_with_a_lost_answer(
    sim: AtlasSimulator, make_client: Any
) -> None:
    sim.scenario = "flaky"  # the first 2 creates and the first 2 reads fail with 503, 500
    sim.drop_connection_after_next_cluster_create()  # ... and the create that works loses its answer
    client = make_client("service_account", rng=random.Random(7))

    cluster = create_cluster(client, "frv-combo-001")

    assert cluster.name == "frv-combo-001"
    assert clusters_named(sim, "frv-combo-001") == 1
    ops = [(c.operation, c.status) for c in api_calls(sim)]
    posts = [status for op, status in ops if op == "createFlexCluster"]
    assert posts == [503, 500, 0]
    # Before each re-sent create the client read the cluster by name (and found none).
    indexes = [i for i, (op, _) in enumerate(ops) if op == "createFlexCluster"]
    for earlier, later in itertools.pairwise(indexes):
        assert ("getFlexCluster", 404) in ops[earlier:later]
    assert ops[-1] == ("getFlexCluster", 200)
    assert_clean(sim)


def test_create_never_adopts_a_cluster_it_did_not_make(
    sim: AtlasSimulator, vclock: clock.VirtualClock, make_client: Any, kind: str
) -> None:
    client = make_client(kind)

    with pytest.raises(AtlasConflict, match="was not created by this request") as caught:
        create_cluster(client, FLEET.decoy_cluster)

    assert caught.value.error_code == "DUPLICATE_CLUSTER_NAME" and not caught.value.retryable
    assert "verification-run=run-0001" in str(caught.value)
    assert sim.cluster_state(VERIFY, FLEET.decoy_cluster) == "IDLE"
    assert api_calls(sim, "DELETE") == []
    # A second create of a name this client made, with other tags, is not adopted either.
    create_cluster(client, "frv-mine-001")
    with pytest.raises(AtlasConflict):
        create_cluster(client, "frv-mine-001", tags={"verification-run": "run-0002"})
    assert vclock.slept == []
    assert_clean(sim)


def test_a_cluster_found_after_an_unanswered_create_without_our_tags_is_not_adopted(
    sim: AtlasSimulator, vclock: clock.VirtualClock
) -> None:
    """Someone else makes a cluster of that name while our create times out unanswered."""

    class SomeoneElseFirst(httpx.BaseTransport):
        def __init__(self) -> None:
            self.inner = httpx.HTTPTransport()
            self.timed_out = False

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            if request.method == "POST" and request.url.path.endswith("/flexClusters") and not self.timed_out:
                self.timed_out = True
                sim.add_cluster(VERIFY, "frv-race-001", tags={"team": "data-platform"})
                raise httpx.ReadTimeout("no answer", request=request)
            return self.inner.handle_request(request)

    client = AtlasClient(
        sim.base_url, credentials("service_account"), clock=vclock, transport=SomeoneElseFirst()
    )
    with client, pytest.raises(AtlasConflict, match="not created by this request"):
        create_cluster(client, "frv-race-001")

    assert [c.operation for c in api_calls(sim)] == ["getFlexCluster"]  # looked, never re-sent
    assert sim.state.clusters[(VERIFY, "frv-race-001")].tags == {"team": "data-platform"}
    assert_clean(sim)


def test_a_taken_name_answered_as_a_400_is_looked_up_too(
    sim: AtlasSimulator, vclock: clock.VirtualClock
) -> None:
    """Atlas's older error table has DUPLICATE_CLUSTER_NAME as a 400 (the simulator answers 409)."""

    class DuplicateAs400(httpx.BaseTransport):
        def __init__(self) -> None:
            self.inner = httpx.HTTPTransport()

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            response = self.inner.handle_request(request)
            if response.status_code == 409:
                response.read()
                body = {**json.loads(response.content), "error": 400, "reason": "Bad Request"}
                return httpx.Response(400, json=body, request=request)
            return response

    client = AtlasClient(
        sim.base_url, credentials("service_account"), clock=vclock, transport=DuplicateAs400()
    )
    with client:
        made = create_cluster(client, "frv-twice-001")
        assert create_cluster(client, "frv-twice-001").id == made.id  # a retried invocation: adopted
        with pytest.raises(AtlasConflict, match="not created by this request"):
            create_cluster(client, FLEET.decoy_cluster)
    assert clusters_named(sim, "frv-twice-001") == 1
    assert_clean(sim)


def test_without_tags_a_lost_create_is_never_adopted(sim: AtlasSimulator, make_client: Any) -> None:
    sim.scenario = "create-cluster-answer-lost"
    client = make_client("service_account")

    with pytest.raises(AtlasConflict, match="tags none given"):
        create_cluster(client, "frv-untagged-001", tags={})

    assert clusters_named(sim, "frv-untagged-001") == 1
    assert len(api_calls(sim, "POST")) == 1
    assert_clean(sim)


def test_a_cluster_of_ours_being_deleted_is_not_adopted(
    sim: AtlasSimulator, vclock: clock.VirtualClock, make_client: Any
) -> None:
    client = make_client("service_account")
    create_cluster(client, "frv-again-001")
    vclock.advance(10)
    client.delete_flex_cluster(VERIFY, "frv-again-001")

    with pytest.raises(AtlasConflict, match="being deleted"):
        create_cluster(client, "frv-again-001")

    vclock.advance(40)
    assert create_cluster(client, "frv-again-001").state_name == "CREATING"  # gone: a new one
    assert_clean(sim)


def test_a_cluster_limit_is_reported_not_retried(
    sim: AtlasSimulator, vclock: clock.VirtualClock, make_client: Any
) -> None:
    sim.max_clusters_per_project = 1  # the decoy fills it
    client = make_client("service_account")

    with pytest.raises(AtlasBadRequest) as caught:
        create_cluster(client, "frv-over-001")

    assert caught.value.error_code == "CLUSTER_LIMIT_REACHED" and not caught.value.retryable
    assert len(api_calls(sim, "POST")) == 1
    assert vclock.slept == []
    assert_clean(sim)


def test_cluster_never_idle_is_seen_as_creating_and_refused_as_a_target(
    sim: AtlasSimulator, vclock: clock.VirtualClock, make_client: Any, kind: str
) -> None:
    sim.scenario = "cluster-never-idle"
    client = make_client(kind)
    client.create_flex_cluster(
        DEMO.group_id, "orders-ephemeral", provider="AWS", region="US_EAST_1", tags=RUN_TAGS
    )
    vclock.advance(1800)

    assert client.get_flex_cluster(GROUP, "orders-ephemeral").state_name == "CREATING"
    with pytest.raises(AtlasConflict) as caught:
        create(client, "orders-ephemeral")
    assert caught.value.error_code == "TARGET_CLUSTER_NOT_IDLE"
    assert sim.jobs == {}
    assert len([c for c in api_calls(sim, "POST", "createFlexRestoreJob") if c.status != 401]) == 1
    assert_clean(sim)


def test_restore_into_a_cluster_still_creating_is_refused_then_works_once_idle(
    sim: AtlasSimulator, vclock: clock.VirtualClock, make_client: Any
) -> None:
    client = make_client("service_account")
    client.create_flex_cluster(
        DEMO.group_id, "orders-ephemeral", provider="AWS", region="US_EAST_1", tags=RUN_TAGS
    )

    with pytest.raises(AtlasConflict, match="TARGET_CLUSTER_NOT_IDLE"):
        create(client, "orders-ephemeral")
    vclock.advance(10)
    assert create(client, "orders-ephemeral").status == "PENDING"
    assert len(sim.jobs) == 1
    assert_clean(sim)


def test_delete_fails_twice_then_the_retried_delete_works(
    sim: AtlasSimulator, vclock: clock.VirtualClock, make_client: Any, kind: str
) -> None:
    client = make_client(kind)
    create_cluster(client, "frv-stubborn-001")
    sim.scenario = "delete-fails-twice"

    client.delete_flex_cluster(VERIFY, "frv-stubborn-001")

    assert [c.status for c in api_calls(sim, "DELETE") if c.status != 401] == [500, 500, 204]
    assert len(vclock.slept) == 2  # back-offs on the virtual clock
    assert sim.cluster_state(VERIFY, "frv-stubborn-001") == "DELETING"
    assert_clean(sim)


def test_delete_of_a_gone_cluster_returns_and_real_refusals_raise(
    sim: AtlasSimulator, vclock: clock.VirtualClock, make_client: Any
) -> None:
    client = make_client("service_account")

    client.delete_flex_cluster(VERIFY, "frv-never-made-001")  # 404 CLUSTER_NOT_FOUND: already gone

    with pytest.raises(AtlasNotFound) as unknown_project:
        client.delete_flex_cluster("0" * 24, "frv-never-made-001")
    assert unknown_project.value.error_code == "RESOURCE_NOT_FOUND"
    with pytest.raises(AtlasBadRequest) as protected:
        client.delete_flex_cluster(GROUP, SOURCE)
    assert protected.value.error_code == "CANNOT_TERMINATE_CLUSTER_WHEN_TERMINATION_PROTECTION_ENABLED"
    with pytest.raises(AtlasBadRequest, match="CANNOT_USE_NON_FLEX_CLUSTER_IN_FLEX_API"):
        client.delete_flex_cluster(GROUP, DEMO.dedicated_cluster)
    assert sim.cluster_state(GROUP, SOURCE) == "IDLE"
    assert vclock.slept == []
    assert_clean(sim)


def test_delete_waits_out_rate_limits_and_faults_together(
    sim: AtlasSimulator, vclock: clock.VirtualClock, make_client: Any
) -> None:
    client = make_client("service_account")
    create_cluster(client, "frv-busy-001")
    sim.scenario = "rate-limited"  # the delete bucket starts empty: a 429 with Retry-After 10 s first
    sim.fail_next_deletes("frv-busy-001", 1)  # ... then one 500

    client.delete_flex_cluster(VERIFY, "frv-busy-001")

    # The 500 spent the token the first wait earned, so its quick retry meets the empty bucket again.
    deletes = api_calls(sim, "DELETE")
    assert [c.status for c in deletes] == [429, 500, 429, 204]
    assert deletes[1].at >= deletes[0].at + 10 and deletes[3].at >= deletes[2].at + 1
    assert deletes[3].at >= deletes[0].at + 20  # the second refill
    assert sim.cluster_state(VERIFY, "frv-busy-001") == "DELETING"
    assert_clean(sim)


# ------------------------------------------------------------------------ the rate-limit defaults


def one_restore(client: AtlasClient, vclock: clock.VirtualClock, source: str) -> str:
    """What the service does for one restore: snapshots, target, create, then polls until done."""
    snapshot = next(s for s in client.list_snapshots(FLEET.group_id, source) if s.is_completed)
    target = FLEET.target_of(source)
    assert client.get_flex_cluster(FLEET.group_id, target).is_idle
    job = client.create_restore_job(
        FLEET.group_id, source, snapshot_id=snapshot.id, target_name=target, target_project_id=FLEET.group_id
    )
    while not job.is_terminal:
        vclock.advance(20)
        job = client.get_restore_job(FLEET.group_id, source, job.id)
    return job.status


def test_default_buckets_let_a_single_restore_through_with_a_few_429s(
    sim: AtlasSimulator, vclock: clock.VirtualClock, make_client: Any
) -> None:
    sim.scenario = "rate-limited"
    client = make_client("service_account", max_total_wait=15, rng=random.Random(3))  # the service's budget

    assert one_restore(client, vclock, "fleet-01") == "COMPLETED"

    refused = [c for c in api_calls(sim) if c.status == 429]
    assert [c.operation for c in refused] == [  # one per operation's first call, Retry-After 10 s each
        "listFlexBackupSnapshots",
        "getFlexCluster",
        "createFlexRestoreJob",
        "getFlexRestoreJob",
    ]
    assert_clean(sim)


def test_default_buckets_are_met_often_by_a_fleet_of_restores_at_concurrency_5(
    sim: AtlasSimulator, vclock: clock.VirtualClock, make_client: Any
) -> None:
    """Five restores at a time, their steps interleaved as five workers would send them (deterministic:
    one thread, the client's waits on the virtual clock)."""
    sim.scenario = "rate-limited"
    client = make_client("service_account", max_total_wait=15, rng=random.Random(3))
    sources = [s for s in FLEET.sources if s != FLEET.failed_snapshots_source]
    outcomes: dict[str, str] = {}

    for batch in (sources[i : i + 5] for i in range(0, len(sources), 5)):
        snapshots = {
            s: next(x for x in client.list_snapshots(FLEET.group_id, s) if x.is_completed) for s in batch
        }
        for source in batch:
            assert client.get_flex_cluster(FLEET.group_id, FLEET.target_of(source)).is_idle
        jobs = {
            source: client.create_restore_job(
                FLEET.group_id,
                source,
                snapshot_id=snapshots[source].id,
                target_name=FLEET.target_of(source),
                target_project_id=FLEET.group_id,
            )
            for source in batch
        }
        while jobs:
            vclock.advance(20)
            for source, job in list(jobs.items()):
                job = client.get_restore_job(FLEET.group_id, source, job.id)
                if job.is_terminal:
                    outcomes[source] = job.status
                    del jobs[source]

    assert set(outcomes) == set(sources) and set(outcomes.values()) == {"COMPLETED"}
    calls = api_calls(sim)
    refused = [c for c in calls if c.status == 429]
    assert len(refused) >= 2 * len(sources)  # about 1 call in 4, where the single restore met 4 in all
    assert {c.operation for c in refused} == {
        "listFlexBackupSnapshots",
        "getFlexCluster",
        "createFlexRestoreJob",
        "getFlexRestoreJob",
    }
    assert len(refused) / len(calls) > 0.2
    assert_clean(sim)
