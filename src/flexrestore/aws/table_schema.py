"""Key schema of the DynamoDB tables. template.yaml declares the same (a test checks they agree).

RESTORES_TABLE holds three kinds of item, told apart by ``kind``:
- ``restore``: a restore record, ``id`` = restoreId;
- ``refusal``: an audit record of a refused request, ``id`` = ``refusal#<uuid>``;
- ``lock``: a per-target lease, ``id`` = ``lock#<targetProjectId>#<targetName>``.
Index ``byKind`` (kind, requestedAt) lists newest first; ``bySource`` (source, requestedAt) filters by
source cluster, with ``source`` = ``<groupId>/<clusterName>``; ``byHandoff`` (handoff, requestedAt) is sparse:
it holds the restores whose execution has not started yet (``handoff`` = ``PENDING``), for the reconciler.

PLANS_TABLE holds the saved verification plans, key ``name``.

RUNS_TABLE holds verification runs: per run one head item (``runId``, ``item`` = ``run``) and one item per
source (``item`` = ``source#<index, 5 digits>``), so a run of 500 sources never meets DynamoDB's 400 KB item
limit and ``Query(runId)`` reads a whole run. Head items only carry ``kind`` and ``plan``, so the indexes
``byStart`` (kind, startedAt) and ``byPlan`` (plan, startedAt) list runs, newest first. ``byLiveCluster``
(liveCluster) is sparse: it holds the source items whose ephemeral cluster may still exist (``liveCluster`` =
``<projectId>/<cluster name>``, set before the create is sent, removed once Atlas no longer has it or the
deletion guard refused it), for the sweeper.
"""

from __future__ import annotations

from typing import Any

RESTORES_KEY = "id"
PLANS_KEY = "name"
RUNS_KEY = "runId"
RUNS_SORT_KEY = "item"
BY_START_INDEX = "byStart"
BY_PLAN_INDEX = "byPlan"
IDEMPOTENCY_KEY = "id"
BY_KIND_INDEX = "byKind"
BY_SOURCE_INDEX = "bySource"
BY_HANDOFF_INDEX = "byHandoff"
BY_LIVE_CLUSTER_INDEX = "byLiveCluster"
LIVE_CLUSTER_ATTRIBUTE = "liveCluster"


def restores_table_definition(name: str) -> dict[str, Any]:
    """Arguments for ``dynamodb.create_table`` (used by tests and local mode)."""

    def index(index_name: str, partition: str) -> dict[str, Any]:
        return {
            "IndexName": index_name,
            "KeySchema": [
                {"AttributeName": partition, "KeyType": "HASH"},
                {"AttributeName": "requestedAt", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }

    return {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": "id", "AttributeType": "S"},
            {"AttributeName": "kind", "AttributeType": "S"},
            {"AttributeName": "source", "AttributeType": "S"},
            {"AttributeName": "requestedAt", "AttributeType": "S"},
            {"AttributeName": "handoff", "AttributeType": "S"},
        ],
        "KeySchema": [{"AttributeName": RESTORES_KEY, "KeyType": "HASH"}],
        "GlobalSecondaryIndexes": [
            index(BY_KIND_INDEX, "kind"),
            index(BY_SOURCE_INDEX, "source"),
            index(BY_HANDOFF_INDEX, "handoff"),
        ],
    }


def plans_table_definition(name: str) -> dict[str, Any]:
    return {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": PLANS_KEY, "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": PLANS_KEY, "KeyType": "HASH"}],
    }


def runs_table_definition(name: str) -> dict[str, Any]:
    def index(index_name: str, partition: str) -> dict[str, Any]:
        return {
            "IndexName": index_name,
            "KeySchema": [
                {"AttributeName": partition, "KeyType": "HASH"},
                {"AttributeName": "startedAt", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }

    return {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": RUNS_KEY, "AttributeType": "S"},
            {"AttributeName": RUNS_SORT_KEY, "AttributeType": "S"},
            {"AttributeName": "kind", "AttributeType": "S"},
            {"AttributeName": "plan", "AttributeType": "S"},
            {"AttributeName": "startedAt", "AttributeType": "S"},
            {"AttributeName": LIVE_CLUSTER_ATTRIBUTE, "AttributeType": "S"},
        ],
        "KeySchema": [
            {"AttributeName": RUNS_KEY, "KeyType": "HASH"},
            {"AttributeName": RUNS_SORT_KEY, "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [
            index(BY_START_INDEX, "kind"),
            index(BY_PLAN_INDEX, "plan"),
            {
                "IndexName": BY_LIVE_CLUSTER_INDEX,
                "KeySchema": [{"AttributeName": LIVE_CLUSTER_ATTRIBUTE, "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            },
        ],
    }


def idempotency_table_definition(name: str) -> dict[str, Any]:
    """Powertools idempotency's default layout: partition key ``id``, TTL on ``expiration``."""
    return {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": IDEMPOTENCY_KEY, "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": IDEMPOTENCY_KEY, "KeyType": "HASH"}],
    }
