"""Pydantic models of what Atlas returns for flex clusters, snapshots and restore jobs.

Field names are snake_case; Atlas's camelCase names are accepted as aliases. The models are tolerant on
purpose: unknown fields are ignored and enum-like fields (``status``, ``state_name``) keep Atlas's raw
string, because Atlas's own docs mention a ``CLOSED`` job status that is not in its enum. An unknown status
means "not finished" and is logged once per value.
"""

from __future__ import annotations

# stdlib logging, not powertools Logger: the adapter stays free of powertools' import cost; handlers that
# use powertools still see these records through the root logger.
import logging
import threading
from collections.abc import Mapping
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

logger = logging.getLogger("flexrestore.atlas")

RESTORE_JOB_STATUSES = frozenset({"PENDING", "QUEUED", "RUNNING", "FAILED", "COMPLETED"})
TERMINAL_JOB_STATUSES = frozenset({"COMPLETED", "FAILED"})
SNAPSHOT_STATUSES = RESTORE_JOB_STATUSES
CLUSTER_STATES = frozenset({"IDLE", "CREATING", "UPDATING", "DELETING", "REPAIRING"})

_reported_unknown: set[tuple[str, str]] = set()
_reported_lock = threading.Lock()


def _report_unknown(kind: str, value: str) -> None:
    """Log an unknown enum value once per process (a poll loop would otherwise log it every poll)."""
    with _reported_lock:
        if (kind, value) in _reported_unknown:
            return
        _reported_unknown.add((kind, value))
    logger.warning("Atlas returned an unknown %s %r; treating it as not finished", kind, value)


class AtlasModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        frozen=True,
    )


class Tag(AtlasModel):
    key: str
    value: str


class ConnectionStrings(AtlasModel):
    standard: str | None = None  # mongodb://...
    standard_srv: str | None = None  # mongodb+srv://...


class ProviderSettings(AtlasModel):
    backing_provider_name: str | None = None  # AWS, AZURE or GCP
    region_name: str | None = None  # e.g. US_EAST_1
    provider_name: str | None = None  # FLEX
    disk_size_gb: float | None = Field(default=None, alias="diskSizeGB")


class FlexCluster(AtlasModel):
    id: str
    name: str
    group_id: str | None = None
    state_name: str | None = None
    mongodb_version: str | None = Field(default=None, alias="mongoDBVersion")
    tags: list[Tag] = Field(default_factory=list)  # Atlas leaves the key out when there are none
    termination_protection_enabled: bool | None = None
    create_date: datetime | None = None
    connection_strings: ConnectionStrings | None = None
    provider_settings: ProviderSettings | None = None

    @model_validator(mode="after")
    def _note_unknown_state(self) -> FlexCluster:
        if self.state_name is not None and self.state_name not in CLUSTER_STATES:
            _report_unknown("cluster stateName", self.state_name)
        return self

    @property
    def tag_map(self) -> dict[str, str]:
        return {tag.key: tag.value for tag in self.tags}

    @property
    def is_idle(self) -> bool:
        return self.state_name == "IDLE"

    def carries_tags(self, tags: Mapping[str, str]) -> bool:
        """True if every given tag is on the cluster with that exact value (others may be there too)."""
        mine = self.tag_map
        return all(mine.get(key) == value for key, value in tags.items())


class Snapshot(AtlasModel):
    id: str
    status: str
    mongodb_version: str | None = Field(default=None, alias="mongoDBVersion")
    scheduled_time: datetime | None = None
    start_time: datetime | None = None
    finish_time: datetime | None = None
    expiration: datetime | None = None

    @model_validator(mode="after")
    def _note_unknown_status(self) -> Snapshot:
        if self.status not in SNAPSHOT_STATUSES:
            _report_unknown("snapshot status", self.status)
        return self

    @property
    def is_completed(self) -> bool:
        return self.status == "COMPLETED"


class RestoreJob(AtlasModel):
    id: str
    status: str
    delivery_type: str | None = None
    snapshot_id: str | None = None
    instance_name: str | None = None
    project_id: str | None = None
    target_deployment_item_name: str | None = None
    target_project_id: str | None = None
    restore_scheduled_date: datetime | None = None
    restore_finished_date: datetime | None = None
    snapshot_finished_date: datetime | None = None
    expiration_date: datetime | None = None

    @model_validator(mode="after")
    def _note_unknown_status(self) -> RestoreJob:
        if self.status not in RESTORE_JOB_STATUSES:
            _report_unknown("restore job status", self.status)
        return self

    @property
    def is_terminal(self) -> bool:
        """Finished for good: only ``COMPLETED`` and ``FAILED`` (unknown values such as ``CLOSED``: no)."""
        return self.status in TERMINAL_JOB_STATUSES

    @property
    def is_known_status(self) -> bool:
        return self.status in RESTORE_JOB_STATUSES
