"""Key schema of the two DynamoDB tables. template.yaml declares the same (a test checks they agree).

RESTORES_TABLE holds three kinds of item, told apart by ``kind``:
- ``restore``: a restore record, ``id`` = restoreId;
- ``refusal``: an audit record of a refused request, ``id`` = ``refusal#<uuid>``;
- ``lock``: a per-target lease, ``id`` = ``lock#<targetProjectId>#<targetName>``.
Index ``byKind`` (kind, requestedAt) lists newest first; ``bySource`` (source, requestedAt) filters by
source cluster, with ``source`` = ``<groupId>/<clusterName>``; ``byHandoff`` (handoff, requestedAt) is sparse:
it holds the restores whose execution has not started yet (``handoff`` = ``PENDING``), for the reconciler.
"""

from __future__ import annotations

from typing import Any

RESTORES_KEY = "id"
IDEMPOTENCY_KEY = "id"
BY_KIND_INDEX = "byKind"
BY_SOURCE_INDEX = "bySource"
BY_HANDOFF_INDEX = "byHandoff"


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


def idempotency_table_definition(name: str) -> dict[str, Any]:
    """Powertools idempotency's default layout: partition key ``id``, TTL on ``expiration``."""
    return {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": IDEMPOTENCY_KEY, "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": IDEMPOTENCY_KEY, "KeyType": "HASH"}],
    }
