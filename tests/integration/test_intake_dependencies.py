"""The intake when an AWS dependency throttles, one call at a time: every read and write it needs before a
restore is accepted answers 503 with Retry-After and a message that says to retry, and leaves nothing
behind; reads of the HTTP API answer the same way. (The fault matrix, tests/faults, runs these through whole
flows; here each is one call.)"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from flexrestore.local.harness import IDEMPOTENCY_TABLE, RESTORES_TABLE, OfflineStack
from tests.faults.aws import AwsFault, AwsFaults, item_kind, running_as, table
from tests.integration.intake_support import answer, creates, load, restore_items

THROTTLED = "ProvisionedThroughputExceededException"


@pytest.fixture
def faults(stack: OfflineStack) -> Iterator[AwsFaults]:
    with AwsFaults() as armed, running_as("intake"):
        yield armed


def get_restores(**query: str) -> dict[str, object]:
    event = load("api-get-restore.json")
    event.update(resource="/restores", path="/restores", pathParameters=None)
    event["queryStringParameters"] = query or None
    event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} or None
    return event


@pytest.mark.parametrize(
    "fault",
    [
        AwsFault("dynamodb", "PutItem", "intake", code=THROTTLED, only=table(IDEMPOTENCY_TABLE)),
        AwsFault("dynamodb", "GetItem", "intake", code=THROTTLED, only=table(RESTORES_TABLE)),
        AwsFault("dynamodb", "PutItem", "intake", code="ThrottlingException", only=item_kind("lock")),
        AwsFault("dynamodb", "PutItem", "intake", code=THROTTLED, only=item_kind("restore")),
        AwsFault("secretsmanager", "GetSecretValue", "intake", code="ThrottlingException"),
    ],
    ids=["idempotency write", "restores table read", "lock write", "record write", "secret read"],
)
def test_a_throttled_dependency_before_acceptance_is_503_retry_later_and_leaves_nothing(
    stack: OfflineStack, faults: AwsFaults, fault: AwsFault
) -> None:
    faults.arm(fault)

    status, body, headers = answer(stack.invoke("intake", load("api-post-restore.json")))

    assert fault.struck == 1
    assert status == 503, body
    assert int(headers["Retry-After"]) > 0
    assert "retry" in str(body["message"]).lower()
    assert "Traceback" not in str(body) and "ThrottlingException" not in str(body.get("errorCode"))
    assert creates(stack) == [] and restore_items(stack) == [] and restore_items(stack, "lock") == []


@pytest.mark.parametrize(
    ("event", "operation"),
    [(load("api-get-restore.json"), "GetItem"), (get_restores(cluster="orders-prod"), "Query")],
    ids=["GET /restores/{id}", "GET /restores"],
)
def test_a_throttled_read_of_the_api_is_503_with_retry_after(
    stack: OfflineStack, faults: AwsFaults, event: dict[str, object], operation: str
) -> None:
    faults.arm(AwsFault("dynamodb", operation, "intake", code=THROTTLED))
    status, body, headers = answer(stack.invoke("intake", event))
    assert (status, body["errorCode"]) == (503, "STORE_UNAVAILABLE")
    assert int(headers["Retry-After"]) > 0 and "retry" in str(body["message"])


def test_an_accepted_restore_is_answered_202_even_when_its_answer_cannot_be_kept_for_repeats(
    stack: OfflineStack, faults: AwsFaults
) -> None:
    # The restore is recorded and handed over; then DynamoDB refuses to keep the answer for repeats (the
    # idempotency record's final write). The caller must hear that it was accepted, not "retry later".
    saved = faults.arm(
        AwsFault("dynamodb", "UpdateItem", "intake", code=THROTTLED, only=table(IDEMPOTENCY_TABLE))
    )

    status, body, _ = answer(stack.invoke("intake", load("api-post-restore.json")))

    assert saved.struck == 1
    assert status == 202, body
    (record,) = restore_items(stack)
    assert body["restoreId"] == record["restoreId"]
    # A repeat later (the key's claim has lapsed) continues with the same restore, never a second one.
    from flexrestore.aws.clients import client

    for item in client("dynamodb").scan(TableName=IDEMPOTENCY_TABLE)["Items"]:
        client("dynamodb").delete_item(TableName=IDEMPOTENCY_TABLE, Key={"id": item["id"]})
    again_status, again, _ = answer(stack.invoke("intake", load("api-post-restore.json")))
    assert again_status == 202 and again["restoreId"] == body["restoreId"]
    assert len(restore_items(stack)) == 1 and len(stack.executions()) == 1
