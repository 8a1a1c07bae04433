"""A read-only check against a real Atlas: token, cluster and snapshot reads. Creates nothing.

Skipped unless these are set in the environment:

    ATLAS_CLIENT_ID + ATLAS_CLIENT_SECRET (service account), or ATLAS_PUBLIC_KEY + ATLAS_PRIVATE_KEY (API key)
    ATLAS_LIVE_GROUP_ID    a project id
    ATLAS_LIVE_CLUSTER     a Flex cluster in it
    ATLAS_BASE_URL         optional, default https://cloud.mongodb.com

    .venv/bin/python -m pytest tests/live -m live

The same check also runs against the local simulator in every `make test`, so its code is known to work.
"""

from __future__ import annotations

import json
import os

import pytest

from flexrestore.atlas.auth import Credentials
from flexrestore.atlas.client import AtlasClient
from flexrestore.clock import SystemClock


def check_read_only(client: AtlasClient, group_id: str, cluster_name: str) -> None:
    cluster = client.get_flex_cluster(group_id, cluster_name)
    assert cluster.name == cluster_name
    assert cluster.group_id == group_id
    assert cluster.state_name  # e.g. IDLE

    snapshots = client.list_snapshots(group_id, cluster_name)
    assert all(snapshot.id and snapshot.status for snapshot in snapshots)
    completed = [s for s in snapshots if s.status == "COMPLETED"]
    if completed:
        again = client.get_snapshot(group_id, cluster_name, completed[0].id)
        assert again.id == completed[0].id and again.status == "COMPLETED"

    jobs = client.list_restore_jobs(group_id, cluster_name)
    assert all(job.id for job in jobs)


def _live_secret() -> dict[str, str] | None:
    for id_var, secret_var, id_key, secret_key in (
        ("ATLAS_CLIENT_ID", "ATLAS_CLIENT_SECRET", "clientId", "clientSecret"),
        ("ATLAS_PUBLIC_KEY", "ATLAS_PRIVATE_KEY", "publicKey", "privateKey"),
    ):
        if os.environ.get(id_var) and os.environ.get(secret_var):
            return {id_key: os.environ[id_var], secret_key: os.environ[secret_var]}
    return None


@pytest.mark.live
def test_live_atlas_token_cluster_and_snapshot_reads() -> None:
    secret = _live_secret()
    group_id = os.environ.get("ATLAS_LIVE_GROUP_ID")
    cluster_name = os.environ.get("ATLAS_LIVE_CLUSTER")
    if not (secret and group_id and cluster_name):
        pytest.skip("no live Atlas credentials/ATLAS_LIVE_GROUP_ID/ATLAS_LIVE_CLUSTER in the environment")
    base_url = os.environ.get("ATLAS_BASE_URL", "https://cloud.mongodb.com")
    credentials = Credentials.from_secret("environment", json.dumps(secret))
    with AtlasClient(base_url, credentials, clock=SystemClock(), max_total_wait=30.0) as client:
        check_read_only(client, group_id, cluster_name)


@pytest.mark.parametrize("kind", ["service-account", "api-key"])
def test_the_live_check_passes_against_the_simulator_and_only_reads(kind: str) -> None:
    from flexrestore.clock import VirtualClock
    from flexrestore.simulator import DEMO, AtlasSimulator

    secret = (
        {"clientId": DEMO.client_id, "clientSecret": DEMO.client_secret}
        if kind == "service-account"
        else {"publicKey": DEMO.public_key, "privateKey": DEMO.private_key}
    )
    clock = VirtualClock()
    with AtlasSimulator(clock=clock, scenario="ok") as simulator:
        base_url = simulator.base_url or simulator.start()
        with AtlasClient(
            base_url, Credentials.from_secret("test", json.dumps(secret)), clock=clock
        ) as client:
            check_read_only(client, DEMO.group_id, DEMO.source_cluster)
        calls = list(simulator.calls)
        assert simulator.violations == []
    writes = [c for c in calls if c.method != "GET" and c.path != "/api/oauth/token"]
    assert writes == []
