"""The seeds every simulator starts with: DEMO (a few clusters for the sample events) and FLEET (a project
of 24 sources with their scratch targets, for verification runs over many clusters).

Ids are fixed 24-hex constants so tests, sample events and the local mode can name them. Snapshot dates
are relative to the simulator clock at start-up: DEMO's are taken at 01:00 UTC on the previous days,
FLEET's between 01:00 and 03:00 UTC, at a different minute for each source and day.
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


def _fleet_id(kind: int, index: int) -> str:
    """A fixed 24-hex id: ``6700f1ee``, a kind byte, zeros, a 2-byte index."""
    return f"6700f1ee{kind:02x}{0:010x}{index:04x}"


@dataclass(frozen=True)
class FleetSeed:
    """A production project of 24 flex sources ``fleet-01`` ... ``fleet-24``, each with its scratch target
    ``fleet-NN-verify`` (IDLE) in the same project, and an empty-looking verification project for
    ephemeral targets.

    * Sources are tagged ``verify=nightly`` except ``untagged_sources`` (22 tagged) and are
      termination-protected; sources and targets run MongoDB 8.0.x (a source and its target the same).
    * Every source but ``failed_snapshots_source`` has one COMPLETED snapshot a day for the past
      ``snapshot_days`` days (retention 8 days), at slightly different times; that one has only FAILED
      snapshots.
    * ``protected_target_source``'s target carries ``restore-protected=true``: a guard refuses it.
    * ``slow_source``'s restores take ``slow_restore_seconds`` (a fate the seed sets with the simulator's
      per-source fate knob; the scenario decides the others').
    * The verification project holds one cluster, ``decoy_cluster``, whose name starts with the ephemeral
      prefix ``frv-`` but which the service never made: it must never be deleted.
    """

    group_id: str = "6700f1eea10000000000a001"
    verification_group_id: str = "6700f1eea20000000000b001"
    size: int = 24
    source_prefix: str = "fleet-"
    target_suffix: str = "-verify"
    verify_tag_key: str = "verify"
    verify_tag_value: str = "nightly"
    untagged_sources: tuple[str, ...] = ("fleet-23", "fleet-24")
    protected_target_source: str = "fleet-05"
    failed_snapshots_source: str = "fleet-13"
    slow_source: str = "fleet-08"
    slow_restore_seconds: float = 900.0
    snapshot_days: int = 7
    protected_tag_key: str = "restore-protected"
    protected_tag_value: str = "true"
    ephemeral_prefix: str = "frv-"
    decoy_cluster: str = "frv-decoy0-001"
    decoy_cluster_id: str = _fleet_id(4, 1)

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(f"{self.source_prefix}{n:02d}" for n in range(1, self.size + 1))

    @property
    def nightly_sources(self) -> tuple[str, ...]:
        return tuple(name for name in self.sources if name not in self.untagged_sources)

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(self.target_of(name) for name in self.sources)

    @property
    def protected_target(self) -> str:
        return self.target_of(self.protected_target_source)

    def target_of(self, source: str) -> str:
        return f"{source}{self.target_suffix}"

    def index_of(self, source: str) -> int:
        """1 for fleet-01 ... 24 for fleet-24."""
        number = source.removeprefix(self.source_prefix)
        if number == source or not number.isdigit() or source != f"{self.source_prefix}{int(number):02d}":
            raise KeyError(f"{source!r} is not a FLEET source")
        if not 1 <= int(number) <= self.size:
            raise KeyError(f"{source!r} is not a FLEET source")
        return int(number)

    def source_id(self, source: str) -> str:
        return _fleet_id(1, self.index_of(source))

    def target_id(self, source: str) -> str:
        return _fleet_id(2, self.index_of(source))

    def mongodb_version_of(self, source: str) -> str:
        """8.0.13, 8.0.14 or 8.0.15: the source's version, and its target's."""
        return f"8.0.{13 + self.index_of(source) % 3}"

    def snapshot_ids(self, source: str) -> tuple[str, ...]:
        """The source's snapshots, newest (yesterday's) first."""
        index = self.index_of(source)
        return tuple(_fleet_id(3, index * 16 + days_ago) for days_ago in range(1, self.snapshot_days + 1))

    def snapshot_minute(self, source: str, days_ago: int) -> int:
        """Minutes after 01:00 UTC that the source's snapshot of ``days_ago`` was scheduled (0 to 119)."""
        return (self.index_of(source) * 11 + days_ago * 17) % 120


FLEET = FleetSeed()


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


def seed_fleet(state: AtlasState, now: float) -> None:
    """Put the FLEET projects, clusters, snapshots and the slow source's restore fate into ``state``."""
    day = datetime.fromtimestamp(now, tz=UTC).replace(hour=1, minute=0, second=0, microsecond=0)
    created = day - timedelta(days=60)
    state.add_group(FLEET.group_id)
    state.add_group(FLEET.verification_group_id)
    nightly = {FLEET.verify_tag_key: FLEET.verify_tag_value}
    for source in FLEET.sources:
        version = FLEET.mongodb_version_of(source)
        state.add_cluster(
            FLEET.group_id,
            source,
            mongodb_version=version,
            tags=nightly if source not in FLEET.untagged_sources else None,
            termination_protection=True,
            created=created,
            cluster_id=FLEET.source_id(source),
        )
        protected = source == FLEET.protected_target_source
        state.add_cluster(
            FLEET.group_id,
            FLEET.target_of(source),
            mongodb_version=version,
            tags={FLEET.protected_tag_key: FLEET.protected_tag_value} if protected else None,
            created=created,
            cluster_id=FLEET.target_id(source),
        )
        status = "FAILED" if source == FLEET.failed_snapshots_source else "COMPLETED"
        for days_ago, snapshot_id in enumerate(FLEET.snapshot_ids(source), start=1):
            minute = FLEET.snapshot_minute(source, days_ago)
            state.add_snapshot(
                FLEET.group_id,
                source,
                status=status,
                scheduled=day - timedelta(days=days_ago) + timedelta(minutes=minute),
                snapshot_id=snapshot_id,
            )
    state.set_restore_fate(FLEET.group_id, FLEET.slow_source, "COMPLETED", FLEET.slow_restore_seconds)
    state.add_cluster(
        FLEET.verification_group_id,
        FLEET.decoy_cluster,
        tags={"team": "data-platform"},
        created=day - timedelta(days=2),
        cluster_id=FLEET.decoy_cluster_id,
    )
