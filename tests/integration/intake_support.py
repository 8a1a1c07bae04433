"""What the intake's integration tests share: the sample events and variations of them, the sample alarm's
recovery plan, and readers of what a flow left behind (Atlas creates, table items, execution input, metrics).
The offline stack they run on is the ``stack`` fixture in conftest.py."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

from flexrestore.local.harness import RESTORES_TABLE, OfflineStack
from flexrestore.simulator import DEMO

EVENTS = Path(__file__).resolve().parents[2] / "events"
# The default/local recovery plan the alarm sample relies on (template.yaml and local mode set the same).
RECOVERY_PLANS = json.dumps(
    {
        "orders-prod-data-loss": {
            "groupId": DEMO.group_id,
            "clusterName": DEMO.source_cluster,
            "targetDeploymentItemName": DEMO.recovery_target,
            "reason": "orders-prod lost data: restore its latest snapshot into orders-dr",
        }
    }
)
CREATE_PATH = re.compile(r"/flexClusters/[^/]+/backup/restoreJobs$")


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return data


def api_post(body: Any, *, key: str | None = None, raw: str | None = None, **headers: str) -> dict[str, Any]:
    """The POST sample with another body / Idempotency-Key / headers."""
    event = load("api-post-restore.json")
    event["body"] = raw if raw is not None else json.dumps(body, ensure_ascii=False)
    event["headers"].pop("Idempotency-Key")
    if key is not None:
        event["headers"]["Idempotency-Key"] = key
    event["headers"].update(headers)
    event["multiValueHeaders"] = {k: [v] for k, v in event["headers"].items()}
    event["requestContext"]["requestId"] = f"req-{abs(hash((event['body'], key))) % 10**12}"
    return event


def request_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(load("api-post-restore.json")["body"])
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def answer(response: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
    headers = {k: v[-1] for k, v in (response.get("multiValueHeaders") or {}).items()}
    headers.update(response.get("headers") or {})
    return response["statusCode"], json.loads(response["body"]), headers


def creates(stack: OfflineStack) -> list[Any]:
    return [c for c in stack.simulator.calls if c.method == "POST" and CREATE_PATH.search(c.path)]


def settled(stack: OfflineStack) -> list[dict[str, Any]]:
    """Every execution started so far, run to its end (the Atlas create is its first step)."""
    return [stack.wait_for_execution(arn) for arn in stack.executions()]


def restore_items(stack: OfflineStack, kind: str = "restore") -> list[dict[str, Any]]:
    from flexrestore.aws.clients import client
    from flexrestore.aws.codec import from_item

    items = client("dynamodb").scan(TableName=RESTORES_TABLE)["Items"]
    return [from_item(i) for i in items if i["kind"]["S"] == kind]


def execution_input(stack: OfflineStack, arn: str) -> dict[str, Any]:
    from flexrestore.aws.clients import client

    data: dict[str, Any] = json.loads(client("stepfunctions").describe_execution(executionArn=arn)["input"])
    return data


def emf(text: str, name: str) -> list[dict[str, Any]]:
    """The EMF metric documents named ``name`` in captured stdout."""
    found = []
    for line in text.splitlines():
        if line.startswith('{"_aws"'):
            document = json.loads(line)
            if name in document:
                found.append(document)
    return found


def deliver_concurrently(stack: OfflineStack, event: dict[str, Any], deliveries: int) -> list[Any]:
    """``deliveries`` threads hand the same event to the intake at the same moment; each result is the
    handler's answer or the exception it raised (an EventBridge delivery that fails is retried by Lambda)."""
    start = threading.Barrier(deliveries)
    results: list[Any] = [None] * deliveries

    def deliver(index: int) -> None:
        start.wait()
        try:
            results[index] = stack.invoke("intake", json.loads(json.dumps(event)))
        except Exception as exc:
            results[index] = exc

    threads = [threading.Thread(target=deliver, args=(i,)) for i in range(deliveries)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results
