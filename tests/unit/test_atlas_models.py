"""Atlas models accept Atlas's camelCase bodies and tolerate what Atlas may add later."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from flexrestore.atlas.models import FlexCluster, RestoreJob, Snapshot

JOB = {
    "id": "6a1b2c3d4e5f60718293a4b5",
    "status": "PENDING",
    "deliveryType": "RESTORE",
    "snapshotId": "6a1b2c3d4e5f60718293a400",
    "instanceName": "orders-prod",
    "projectId": "65f1a2b3c4d5e6f708192a3b",
    "targetDeploymentItemName": "orders-verify",
    "targetProjectId": "65f1a2b3c4d5e6f708192a3b",
    "restoreScheduledDate": "2026-11-01T02:00:05Z",
    "expirationDate": "2026-11-01T08:00:05Z",
    "snapshotFinishedDate": "2026-10-31T23:05:00Z",
    "links": [{"href": "https://example.invalid/x", "rel": "self"}],
    "someFieldAtlasAddsNextYear": {"nested": True},
}


def test_restore_job_reads_atlas_camel_case() -> None:
    job = RestoreJob.model_validate(JOB)
    assert job.id == JOB["id"]
    assert job.snapshot_id == JOB["snapshotId"]
    assert job.target_deployment_item_name == "orders-verify"
    assert job.target_project_id == "65f1a2b3c4d5e6f708192a3b"
    assert job.restore_scheduled_date == datetime(2026, 11, 1, 2, 0, 5, tzinfo=UTC)
    assert job.restore_finished_date is None
    assert job.status == "PENDING"
    assert not job.is_terminal
    assert job.is_known_status


def test_restore_job_accepts_snake_case_names_too() -> None:
    job = RestoreJob(id="a" * 24, status="RUNNING", target_deployment_item_name="t")
    assert job.target_deployment_item_name == "t"


@pytest.mark.parametrize(
    ("status", "terminal", "known"),
    [
        ("PENDING", False, True),
        ("QUEUED", False, True),
        ("RUNNING", False, True),
        ("COMPLETED", True, True),
        ("FAILED", True, True),
        ("CLOSED", False, False),
        ("", False, False),
    ],
)
def test_only_completed_and_failed_are_terminal(status: str, terminal: bool, known: bool) -> None:
    job = RestoreJob.model_validate({**JOB, "status": status})
    assert job.status == status  # kept raw
    assert job.is_terminal is terminal
    assert job.is_known_status is known


def test_unknown_status_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="flexrestore.atlas")
    for _ in range(3):
        RestoreJob.model_validate({**JOB, "status": "CLOSED_FOR_LOGGING_TEST"})
    lines = [r for r in caplog.records if "CLOSED_FOR_LOGGING_TEST" in r.getMessage()]
    assert len(lines) == 1
    assert lines[0].name == "flexrestore.atlas"
    assert "not finished" in lines[0].getMessage()


def test_restore_job_without_id_or_status_is_rejected() -> None:
    with pytest.raises(ValueError, match="id"):
        RestoreJob.model_validate({"status": "PENDING"})
    with pytest.raises(ValueError, match="status"):
        RestoreJob.model_validate({"id": "a" * 24})


def test_snapshot_reads_mongodb_version_alias_and_dates() -> None:
    snap = Snapshot.model_validate(
        {
            "id": "6a1b2c3d4e5f60718293a400",
            "status": "COMPLETED",
            "mongoDBVersion": "8.0.15",
            "scheduledTime": "2026-10-31T23:00:00Z",
            "startTime": "2026-10-31T23:00:10Z",
            "finishTime": "2026-10-31T23:05:00Z",
            "expiration": "2026-11-08T23:00:00Z",
            "links": [],
        }
    )
    assert snap.mongodb_version == "8.0.15"
    assert snap.finish_time == datetime(2026, 10, 31, 23, 5, tzinfo=UTC)
    assert snap.is_completed


def test_snapshot_with_unknown_status_is_kept_and_not_usable() -> None:
    snap = Snapshot.model_validate({"id": "b" * 24, "status": "ARCHIVED"})
    assert snap.status == "ARCHIVED"
    assert not snap.is_completed


def test_flex_cluster_reads_tags_state_and_version() -> None:
    cluster = FlexCluster.model_validate(
        {
            "id": "c" * 24,
            "groupId": "65f1a2b3c4d5e6f708192a3b",
            "name": "orders-prod",
            "stateName": "IDLE",
            "mongoDBVersion": "8.0.15",
            "tags": [{"key": "restore-protected", "value": "true"}],
            "terminationProtectionEnabled": False,
            "createDate": "2026-01-01T00:00:00Z",
            "providerSettings": {
                "backingProviderName": "AWS",
                "providerName": "FLEX",
                "regionName": "US_EAST_1",
            },
            "connectionStrings": {"standardSrv": "mongodb+srv://orders-prod.example.invalid"},
        }
    )
    assert cluster.group_id == "65f1a2b3c4d5e6f708192a3b"
    assert cluster.state_name == "IDLE"
    assert cluster.mongodb_version == "8.0.15"
    assert cluster.tag_map == {"restore-protected": "true"}
    assert cluster.termination_protection_enabled is False
    assert cluster.create_date is not None and cluster.create_date.year == 2026
    assert cluster.is_idle
    assert cluster.provider_settings is not None
    assert cluster.provider_settings.backing_provider_name == "AWS"
    assert cluster.provider_settings.region_name == "US_EAST_1"
    assert cluster.provider_settings.provider_name == "FLEX"
    assert cluster.provider_settings.disk_size_gb is None
    assert cluster.connection_strings is not None
    assert cluster.connection_strings.standard_srv == "mongodb+srv://orders-prod.example.invalid"
    assert cluster.connection_strings.standard is None


def test_flex_cluster_disk_size_and_tag_checks() -> None:
    cluster = FlexCluster.model_validate(
        {
            "id": "c" * 24,
            "name": "frv-x-001",
            "stateName": "CREATING",
            "providerSettings": {"diskSizeGB": 5.0, "unknownField": 1},
            "tags": [{"key": "run", "value": "r-1"}, {"key": "created-by", "value": "flexrestore"}],
        }
    )
    assert cluster.provider_settings is not None and cluster.provider_settings.disk_size_gb == 5.0
    assert not cluster.is_idle
    assert cluster.carries_tags({"run": "r-1"})
    assert cluster.carries_tags({"run": "r-1", "created-by": "flexrestore"})
    assert cluster.carries_tags({})  # nothing asked: vacuously true (the client never adopts on no tags)
    assert not cluster.carries_tags({"run": "r-2"})
    assert not cluster.carries_tags({"run": "r-1", "owner": "me"})
    assert cluster.connection_strings is None


def test_flex_cluster_tolerates_unknown_state_and_missing_tags() -> None:
    cluster = FlexCluster.model_validate({"id": "c" * 24, "name": "x", "stateName": "PAUSED"})
    assert cluster.state_name == "PAUSED"
    assert cluster.tags == []
