"""The secret scan the fault matrix runs over every cell would catch a leak: a secret planted in a log line,
a record, a notification or an answer is found and named, whichever credential it is."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import pytest

from flexrestore.local.harness import RESTORES_TABLE
from tests.faults.secrets import leaks
from tests.faults.world import FaultWorld

Plant = Callable[[FaultWorld, str], None]


def in_a_log_line(world: FaultWorld, value: str) -> None:
    logging.getLogger("flexrestore.intake").info("calling Atlas with %s", value)


def in_a_record(world: FaultWorld, value: str) -> None:
    world.stack._client("dynamodb").put_item(
        TableName=RESTORES_TABLE, Item={"id": {"S": "planted"}, "note": {"S": f"Authorization: {value}"}}
    )


def in_a_notification(world: FaultWorld, value: str) -> None:
    world.stack._client("sns").publish(TopicArn=world.stack.topic_arn, Subject="planted", Message=value)


def in_an_answer(world: FaultWorld, value: str) -> None:
    assert world.submitted is not None and world.submitted.body is not None
    world.submitted.body["message"] = f"retry with {value}"


@pytest.mark.parametrize(
    ("credentials", "secret", "plant", "where"),
    [
        ("service account", "bearer token #1", in_a_log_line, "log lines"),
        ("service account", "bearer token #1", in_a_log_line, "logging records"),
        ("service account", "the Atlas clientSecret", in_a_notification, "notifications"),
        ("service account", "the Basic credentials", in_an_answer, "answers"),
        ("API key", "Digest response #2", in_a_record, "records"),
        ("API key", "the Atlas privateKey", in_a_log_line, "log lines"),
    ],
    ids=lambda value: value if isinstance(value, str) else value.__name__,
)
def test_a_planted_secret_is_found_and_named(credentials: str, secret: str, plant: Plant, where: str) -> None:
    with FaultWorld(credentials=credentials) as world:
        world.submit("api")
        world.let_time_pass()
        needles = world.needles()
        assert leaks(world.haystacks(), needles) == []  # a clean run first
        plant(world, needles[secret])
        found = leaks(world.haystacks(), needles)
    assert f"{secret} in {where}" in found


def test_the_needles_hold_every_credential_the_simulator_saw() -> None:
    with FaultWorld() as world:
        world.submit("api")
        world.let_time_pass()
        needles = world.needles()
        issued, seen = world.sim.issued_tokens, world.sim.authorizations
    assert issued and all(token in needles.values() for token in issued)
    assert seen and all(header in needles.values() for header in seen)
    assert json.dumps(needles).count("Bearer ") == len([h for h in seen if h.startswith("Bearer ")])
