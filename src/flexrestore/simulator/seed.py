"""The DEMO seed every simulator starts with (CONTRACTS.md, "Atlas simulator").

Ids are fixed 24-hex constants so tests, sample events and the local mode can name them. Snapshot dates
are relative to the simulator clock at start-up: one snapshot a day at 01:00 UTC on the previous days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flexrestore.simulator.state import AtlasState


@dataclass(frozen=True)
class DemoSeed:
    group_id: str = "65f1a2b3c4d5e6f708192a3b"
    other_group_id: str = "65f1a2b3c4d5e6f708192a3c"
    source_cluster: str = "orders-prod"
    scratch_target: str = "orders-verify"
    recovery_target: str = "orders-dr"
    busy_cluster: str = "orders-busy"
    dedicated_cluster: str = "analytics-dedicated"
    mongodb_version: str = "8.0.15"
    protected_tag_key: str = "restore-protected"
    protected_tag_value: str = "true"
    # orders-prod snapshots, newest first: three COMPLETED dailies, then an older FAILED one.
    latest_snapshot_id: str = "6723a1f0c4d5e6f708193b01"
    previous_snapshot_id: str = "6723a1f0c4d5e6f708193b02"
    oldest_completed_snapshot_id: str = "6723a1f0c4d5e6f708193b03"
    failed_snapshot_id: str = "6723a1f0c4d5e6f708193b04"
    # A second source and its scratch target (a schedule verifying several clusters), newest snapshot first.
    billing_source_cluster: str = "billing-prod"
    billing_scratch_target: str = "billing-verify"
    billing_latest_snapshot_id: str = "6723a1f0c4d5e6f708193c01"
    billing_previous_snapshot_id: str = "6723a1f0c4d5e6f708193c02"
    # Service account (OAuth client credentials) and programmatic API key (HTTP Digest).
    client_id: str = "mdb_sa_id_65f1a2b3c4d5e6f708192a40"
    client_secret: str = "mdb_sa_sk_demo-simulator-secret-value"  # not a real secret: simulator only
    public_key: str = "demopubk"
    private_key: str = "3b1c2d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d"  # not a real secret: simulator only

    @property
    def completed_snapshot_ids(self) -> tuple[str, str, str]:
        return (self.latest_snapshot_id, self.previous_snapshot_id, self.oldest_completed_snapshot_id)


DEMO = DemoSeed()


def seed_demo(state: AtlasState, now: float) -> None:
    """Put the DEMO projects, clusters and snapshots into ``state``."""
    today = datetime.fromtimestamp(now, tz=UTC).replace(hour=1, minute=0, second=0, microsecond=0)
    created = today - timedelta(days=60)
    state.add_group(DEMO.group_id)
    state.add_group(DEMO.other_group_id)
    state.add_cluster(
        DEMO.group_id,
        DEMO.source_cluster,
        tags={DEMO.protected_tag_key: DEMO.protected_tag_value},
        termination_protection=True,
        created=created,
        cluster_id="65f1a2b3c4d5e6f708192b01",
    )
    for name, state_name, cluster_id in (
        (DEMO.scratch_target, "IDLE", "65f1a2b3c4d5e6f708192b02"),
        (DEMO.recovery_target, "IDLE", "65f1a2b3c4d5e6f708192b03"),
        (DEMO.busy_cluster, "UPDATING", "65f1a2b3c4d5e6f708192b04"),
    ):
        state.add_cluster(DEMO.group_id, name, state_name=state_name, created=created, cluster_id=cluster_id)
    state.add_cluster(
        DEMO.group_id,
        DEMO.dedicated_cluster,
        dedicated=True,
        created=created,
        cluster_id="65f1a2b3c4d5e6f708192b05",
    )
    # The second source, protected like the first, with its scratch target and two COMPLETED dailies.
    state.add_cluster(
        DEMO.group_id,
        DEMO.billing_source_cluster,
        tags={DEMO.protected_tag_key: DEMO.protected_tag_value},
        termination_protection=True,
        created=created,
        cluster_id="65f1a2b3c4d5e6f708192b06",
    )
    state.add_cluster(
        DEMO.group_id, DEMO.billing_scratch_target, created=created, cluster_id="65f1a2b3c4d5e6f708192b07"
    )
    billing_snapshots = (DEMO.billing_latest_snapshot_id, DEMO.billing_previous_snapshot_id)
    for days_ago, snapshot_id in enumerate(billing_snapshots, start=1):
        state.add_snapshot(
            DEMO.group_id,
            DEMO.billing_source_cluster,
            scheduled=today - timedelta(days=days_ago),
            snapshot_id=snapshot_id,
        )
    for days_ago, snapshot_id in enumerate(DEMO.completed_snapshot_ids, start=1):
        state.add_snapshot(
            DEMO.group_id,
            DEMO.source_cluster,
            scheduled=today - timedelta(days=days_ago),
            snapshot_id=snapshot_id,
        )
    state.add_snapshot(
        DEMO.group_id,
        DEMO.source_cluster,
        status="FAILED",
        scheduled=today - timedelta(days=4),
        snapshot_id=DEMO.failed_snapshot_id,
    )
