"""The Atlas credentials never reach a log line, an answer or a record, over whole flows, at DEBUG: neither
the secret's value nor any bearer token the simulated Atlas issued, Authorization header it received or
Digest response in one (tests/faults/secrets.py; the fault matrix runs the same scan over every cell)."""

from __future__ import annotations

import copy
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from flexrestore.clock import VirtualClock
from flexrestore.local.harness import OfflineStack
from flexrestore.simulator import DEMO
from tests.faults.secrets import leaks, secret_needles
from tests.integration.intake_support import RECOVERY_PLANS, api_post, load, request_body

SERVICE_ACCOUNT = {"clientId": DEMO.client_id, "clientSecret": DEMO.client_secret}
API_KEY = {"publicKey": DEMO.public_key, "privateKey": DEMO.private_key}


@pytest.fixture
def everything_logged() -> Iterator[io.StringIO]:
    """Every record of every logger (ours and httpx at DEBUG, the rest at INFO), formatted."""
    # Every handler module first: powertools takes the first handler of the "flexrestore" logger as its own
    # when a handler's Logger is built, and this plain one has no append_keys (run alone, the test broke).
    from flexrestore.handlers import create, intake, notify, poll, reconcile, record  # noqa: F401

    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    handler.setLevel(logging.DEBUG)
    touched = [logging.getLogger(), logging.getLogger("flexrestore"), logging.getLogger("httpx")]
    levels = [lg.level for lg in touched]
    for lg in touched:
        lg.addHandler(handler)
    for lg in touched[1:]:
        lg.setLevel(logging.DEBUG)
    try:
        yield buffer
    finally:
        for lg, level in zip(touched, levels, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)


def run_flows(stack: OfflineStack) -> list[Any]:
    """Every kind of intake: accepted, replayed, refused, invalid, failing; then the poll loops run out."""
    answers: list[Any] = [
        stack.invoke("intake", load("api-post-restore.json")),
        stack.invoke("intake", load("api-post-restore.json")),
        stack.invoke("intake", load("api-get-restore.json")),
        stack.invoke("intake", load("api-post-restore-bad.json")),
        stack.invoke("intake", api_post(request_body(targetDeploymentItemName=DEMO.busy_cluster))),
        stack.invoke("intake", api_post(request_body(dryRun=True))),
        stack.invoke("intake", load("alarm-into-alarm.json")),
        stack.invoke("intake", load("alarm-into-ok.json")),
    ]
    stack.simulator.scenario = "token-expired"
    other = copy.deepcopy(load("alarm-into-alarm.json"))
    other["id"] = "another-delivery-of-another-alarm"
    answers.append(stack.invoke("intake", other))
    for arn in stack.executions():
        stack.wait_for_execution(arn)
    return answers


def stored_items() -> str:
    from flexrestore.aws.clients import client

    dump = []
    for table in ("flexrestore-restores", "flexrestore-idempotency"):
        dump += client("dynamodb").scan(TableName=table)["Items"]
    return json.dumps(dump)


@pytest.mark.parametrize(
    ("secret", "issued"),
    [(SERVICE_ACCOUNT, "bearer token #"), (API_KEY, "Digest response #")],
    ids=["service-account", "api-key"],
)
def test_secret_values_never_appear_in_logs_answers_or_records(
    secret: dict[str, str],
    issued: str,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    everything_logged: io.StringIO,
) -> None:
    # Our loggers and httpx at DEBUG; the root stays at INFO, as in Lambda. (botocore's own DEBUG output
    # prints every request and response body, secrets included: never enable it in a deployed function.)
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="flexrestore")
    caplog.set_level(logging.DEBUG, logger="httpx")
    with OfflineStack(
        scenario="ok", clock=VirtualClock(), secret=secret, env_overrides={"RECOVERY_PLANS": RECOVERY_PLANS}
    ) as stack:
        answers = run_flows(stack)
        records = stored_items()
        assert sum(1 for c in stack.simulator.calls if c.operation == "createFlexRestoreJob") == 2
        # The secret's value, and every credential the simulated Atlas handed out or was shown: bearer
        # tokens it issued (service account), Authorization headers and their Digest responses (API key).
        needles = secret_needles(secret, stack.simulator)
    assert any(label.startswith(issued) for label in needles), f"the flows used no {issued.rstrip(' #')}"

    captured = capfd.readouterr()
    haystacks = {
        "stdout": captured.out,
        "stderr": captured.err,
        "caplog": caplog.text,
        "all loggers": everything_logged.getvalue(),
        "answers": json.dumps(answers, default=str),
        "records": records,
    }
    assert len(haystacks["all loggers"]) > 1000  # the flows really logged (at DEBUG)
    assert leaks(haystacks, needles) == []
