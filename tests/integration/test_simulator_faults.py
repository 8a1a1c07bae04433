"""The simulator's precise fault knobs (simulator/faults.py): the next N calls of one operation, or every call
for a while, meet an error status, a cut connection, a lost answer, a non-JSON 200, a timeout or a slow
answer; and the client side that turns late answers into time on the clock (simulator/delays.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from flexrestore import clock as clock_module
from flexrestore.clock import VirtualClock
from flexrestore.simulator import DEMO, AtlasSimulator, Fault
from flexrestore.simulator.delays import honour_delays

MEDIA = "application/vnd.atlas.2024-11-13+json"
SOURCE = f"/api/atlas/v2/groups/{DEMO.group_id}/flexClusters/{DEMO.source_cluster}"
JOBS = f"{SOURCE}/backup/restoreJobs"
CREATE_BODY = {
    "snapshotId": DEMO.latest_snapshot_id,
    "targetDeploymentItemName": DEMO.scratch_target,
    "targetProjectId": DEMO.group_id,
}


@pytest.fixture
def clock() -> VirtualClock:
    virtual = VirtualClock(datetime(2026, 11, 1, 2, 0, tzinfo=UTC))
    clock_module.use(virtual)  # the process clock too: honour_delays waits on it
    return virtual


@pytest.fixture
def sim(clock: VirtualClock) -> Iterator[AtlasSimulator]:
    with AtlasSimulator(clock=clock) as simulator:
        yield simulator
        assert simulator.errors == []


def token(sim: AtlasSimulator) -> httpx.Response:
    return httpx.post(
        f"{sim.base_url}/api/oauth/token",
        auth=(DEMO.client_id, DEMO.client_secret),
        data={"grant_type": "client_credentials"},
        verify=False,
    )


@pytest.fixture
def api(sim: AtlasSimulator) -> Iterator[httpx.Client]:
    bearer = token(sim).json()["access_token"]
    headers = {"Accept": MEDIA, "Authorization": f"Bearer {bearer}"}
    with httpx.Client(base_url=sim.base_url, headers=headers, verify=False, timeout=10.0) as client:
        yield client


def create(api: httpx.Client) -> httpx.Response:
    return api.post(JOBS, json=CREATE_BODY, headers={"Content-Type": MEDIA})


def test_the_next_calls_of_one_operation_get_the_status_then_it_is_served(
    api: httpx.Client, sim: AtlasSimulator
) -> None:
    sim.fail_next("getFlexCluster", Fault.error(503, retry_after=7), count=2)
    cluster = f"/api/atlas/v2/groups/{DEMO.group_id}/flexClusters/{DEMO.scratch_target}"

    answers = [api.get(cluster) for _ in range(3)]

    assert [a.status_code for a in answers] == [503, 503, 200]
    assert answers[0].headers["Retry-After"] == "7"
    assert answers[0].json()["errorCode"] == "SERVICE_UNAVAILABLE"
    assert api.get(f"{SOURCE}/backup/snapshots").status_code == 200  # other operations are not touched
    assert [c.fault for c in sim.calls if c.operation == "getFlexCluster"] == [
        "HTTP 503 Retry-After 7",
        "HTTP 503 Retry-After 7",
        None,
    ]


def test_skip_lets_calls_through_before_the_fault_strikes(api: httpx.Client, sim: AtlasSimulator) -> None:
    sim.fail_next("listFlexBackupSnapshots", Fault.rate_limited(), count=1, skip=1)
    statuses = [api.get(f"{SOURCE}/backup/snapshots").status_code for _ in range(3)]
    assert statuses == [200, 429, 200]


def test_a_rate_limit_fault_has_atlas_error_code_and_no_retry_after_unless_given(
    api: httpx.Client, sim: AtlasSimulator
) -> None:
    sim.fail_next("listFlexBackupSnapshots", Fault.rate_limited())
    answer = api.get(f"{SOURCE}/backup/snapshots")
    assert answer.status_code == 429 and "Retry-After" not in answer.headers
    assert answer.json()["errorCode"] == "RATE_LIMITED_TOKEN_BUCKET"


def test_an_outage_lasts_for_its_time_on_the_clock(
    api: httpx.Client, sim: AtlasSimulator, clock: VirtualClock
) -> None:
    sim.fail_for("listFlexRestoreJobs", Fault.error(500), seconds=60)
    assert api.get(JOBS).status_code == 500
    clock.advance(59)
    assert api.get(JOBS).status_code == 500
    clock.advance(1)
    assert api.get(JOBS).status_code == 200


def test_a_cut_connection_does_nothing_and_a_lost_answer_keeps_the_job(
    api: httpx.Client, sim: AtlasSimulator
) -> None:
    sim.fail_next("createFlexRestoreJob", Fault.cut())
    with pytest.raises(httpx.RemoteProtocolError):
        create(api)
    assert sim.jobs == {}

    sim.fail_next("createFlexRestoreJob", Fault.lost_answer())
    with pytest.raises(httpx.RemoteProtocolError):
        create(api)
    (job,) = sim.jobs.values()
    assert job["targetDeploymentItemName"] == DEMO.scratch_target
    assert [c.status for c in sim.calls if c.operation == "createFlexRestoreJob"] == [0, 0]


def test_a_non_json_answer_still_does_the_operation(api: httpx.Client, sim: AtlasSimulator) -> None:
    sim.fail_next("createFlexRestoreJob", Fault.not_json())
    answer = create(api)
    assert answer.status_code == 200 and answer.text.startswith("<html>")
    assert len(sim.jobs) == 1


def test_the_token_endpoint_can_fail_too(sim: AtlasSimulator) -> None:
    sim.fail_next("token", Fault.error(500))
    assert token(sim).status_code == 500
    assert sim.issued_tokens == []
    answer = token(sim)
    assert sim.issued_tokens == [answer.json()["access_token"]]


def test_credentials_seen_and_tokens_issued_are_listed(api: httpx.Client, sim: AtlasSimulator) -> None:
    api.get(JOBS)
    (issued,) = sim.issued_tokens
    basic, bearer = sim.authorizations
    assert basic.startswith("Basic ") and bearer == f"Bearer {issued}"


def test_unknown_operations_and_counts_are_refused(sim: AtlasSimulator) -> None:
    with pytest.raises(ValueError, match="unknown operation 'createRestoreJob'"):
        sim.fail_next("createRestoreJob", Fault.error(500))
    with pytest.raises(ValueError, match="count"):
        sim.fail_next("token", Fault.error(500), count=0)
    with pytest.raises(ValueError, match="4xx or 5xx"):
        Fault.error(200)


def test_clear_faults_disarms_every_rule(api: httpx.Client, sim: AtlasSimulator) -> None:
    sim.fail_for("listFlexRestoreJobs", Fault.error(500), seconds=600)
    sim.clear_faults()
    assert api.get(JOBS).status_code == 200


# --- time on the wire ------------------------------------------------------------------------------------


def test_without_the_client_side_an_unanswered_call_is_a_gateway_timeout(
    api: httpx.Client, sim: AtlasSimulator
) -> None:
    sim.fail_next("listFlexRestoreJobs", Fault.timeout())
    answer = api.get(JOBS)
    assert answer.status_code == 504 and answer.headers["X-Simulator-Delay"] == "never"
    assert [c.status for c in sim.calls if c.operation == "listFlexRestoreJobs"] == [0]


def test_an_unanswered_call_times_out_after_the_read_timeout_on_the_clock(
    api: httpx.Client, sim: AtlasSimulator, clock: VirtualClock
) -> None:
    sim.fail_next("createFlexRestoreJob", Fault.timeout(after_acting=True))
    before = clock.now()
    with honour_delays(), pytest.raises(httpx.ReadTimeout):
        create(api)
    assert clock.now() - before == 10.0  # the client's read timeout, on the virtual clock
    assert len(sim.jobs) == 1  # Atlas did it; the answer never came

    sim.fail_next("createFlexRestoreJob", Fault.timeout())
    with honour_delays(), pytest.raises(httpx.ReadTimeout):
        create(api)
    assert len(sim.jobs) == 1  # this one never reached Atlas


def test_a_slow_answer_arrives_late_or_times_out(
    api: httpx.Client, sim: AtlasSimulator, clock: VirtualClock
) -> None:
    sim.fail_next("listFlexRestoreJobs", Fault.slow(4))
    before = clock.now()
    with honour_delays():
        assert api.get(JOBS).status_code == 200
        assert clock.now() - before == 4.0
        sim.fail_next("listFlexRestoreJobs", Fault.slow(30))
        with pytest.raises(httpx.ReadTimeout):
            api.get(JOBS)
    assert clock.now() - before == 14.0


def test_an_expired_credential_fault_refuses_the_token_presented_once(
    api: httpx.Client, sim: AtlasSimulator
) -> None:
    sim.fail_next("listFlexRestoreJobs", Fault.expired_credential(), skip=1)
    assert api.get(JOBS).status_code == 200
    refused = api.get(JOBS)
    assert refused.status_code == 401 and 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
    assert api.get(JOBS).status_code == 401  # that token stays expired ...
    fresh = token(sim).json()["access_token"]
    assert api.get(JOBS, headers={"Authorization": f"Bearer {fresh}"}).status_code == 200  # a new one works
    assert [(c.status, c.fault) for c in sim.calls if c.path == JOBS] == [
        (200, None),
        (401, "credential refused as expired"),
        (401, None),
        (200, None),
    ]


def test_an_expired_credential_fault_with_digest_is_one_stale_challenge(sim: AtlasSimulator) -> None:
    auth = httpx.DigestAuth(DEMO.public_key, DEMO.private_key)
    with httpx.Client(base_url=sim.base_url, auth=auth, headers={"Accept": MEDIA}, verify=False) as client:
        assert client.get(JOBS).status_code == 200  # a challenge, then the answer
        sim.fail_next("listFlexRestoreJobs", Fault.expired_credential())
        refused = client.get(JOBS)
        assert refused.status_code == 200  # httpx answers the stale challenge on its own
    statuses = [(c.status, c.fault) for c in sim.calls if c.path == JOBS]
    assert statuses == [(401, None), (200, None), (401, "credential refused as expired"), (200, None)]
    digests = [a for a in sim.authorizations if a.startswith("Digest ")]
    assert len(digests) == 3 and all('response="' in a for a in digests)
