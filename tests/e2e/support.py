"""Start a restore the way the intake does (Atlas job, record item, execution), without the intake handler."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flexrestore import clock
from flexrestore.aws.locks import TargetLocks, lock_id_for
from flexrestore.domain import polling
from flexrestore.local.harness import RESTORES_TABLE, OfflineStack
from flexrestore.simulator import DEMO


@dataclass
class StartedRestore:
    restore_id: str
    job_id: str
    execution_arn: str
    execution_input: dict[str, Any]
    lock_id: str | None


def start_restore(
    stack: OfflineStack, *, deadline_seconds: int = 3600, take_lock: bool = False, execute: bool = True
) -> StartedRestore:
    """Create the Atlas job through the client, write the intake's record, start the poll loop (unless
    ``execute`` is false: then the caller drives the Lambdas itself and ``execution_arn`` is empty)."""
    requested_at = clock.utcnow()
    restore_id = uuid.uuid4().hex
    job = stack.atlas_client().create_restore_job(
        DEMO.group_id,
        DEMO.source_cluster,
        snapshot_id=DEMO.latest_snapshot_id,
        target_name=DEMO.scratch_target,
        target_project_id=DEMO.group_id,
    )
    lock_id = None
    if take_lock:
        lock_id = TargetLocks(RESTORES_TABLE).acquire(
            DEMO.group_id, DEMO.scratch_target, restore_id=restore_id, lease_seconds=7200
        )
        assert lock_id == lock_id_for(DEMO.group_id, DEMO.scratch_target)
    requested = clock.isoformat(requested_at)
    stack.put_record(
        {
            "id": restore_id,
            "kind": "restore",
            "restoreId": restore_id,
            "source": f"{DEMO.group_id}/{DEMO.source_cluster}",
            "groupId": DEMO.group_id,
            "clusterName": DEMO.source_cluster,
            "snapshotId": DEMO.latest_snapshot_id,
            "targetDeploymentItemName": DEMO.scratch_target,
            "targetProjectId": DEMO.group_id,
            "requestedAt": requested,
            "requestedBy": {"trigger": "api", "caller": "arn:aws:iam::123456789012:user/ops"},
            "reason": "e2e",
            "restoreJobId": job.id,
            "status": job.status,
            "timeline": [{"status": job.status, "at": requested}],
        }
    )
    execution_input = {
        "restoreId": restore_id,
        "groupId": DEMO.group_id,
        "clusterName": DEMO.source_cluster,
        "snapshotId": DEMO.latest_snapshot_id,
        "restoreJobId": job.id,
        "targetDeploymentItemName": DEMO.scratch_target,
        "targetProjectId": DEMO.group_id,
        "requestedAt": requested,
        "deadline": clock.isoformat(requested_at + timedelta(seconds=deadline_seconds)),
        "firstPollSeconds": polling.first_poll_seconds(clock.utcnow(), job.restore_scheduled_date),
        "lockId": lock_id,
    }
    arn = stack.start_execution(execution_input, name=restore_id) if execute else ""
    return StartedRestore(restore_id, job.id, arn, execution_input, lock_id)
