"""Property-based tests of the intake's edges (hypothesis): request bodies for ``POST /restores``, query
strings for ``GET /restores``, path parameters for ``GET /restores/{restoreId}``, and raw EventBridge events
(verification schedules, CloudWatch alarm state changes) handed to the real handler on the offline stack.

Whatever comes in:
- never a 5xx, never an exception out of the handler (except ``UnknownEvent`` for an event that is neither a
  schedule nor an alarm: that one is raised on purpose, for Lambda's retry and dead-letter queue), never a
  stack trace in an answer;
- every 4xx answer names each bad field and its rule (``errors: [{"field", "message"}]``, neither empty, no
  message trailing off after a colon);
- invalid input never reaches Atlas: the simulator sees no call for an answer of 400 ``INVALID_REQUEST``, an
  ignored alarm, or any ``GET``.

Examples are derived deterministically (``derandomize``), so CI runs the same ones every time; about 150 per
property keeps the suite quick. Inputs are built around the valid samples in ``events/`` (fields dropped,
retyped, mangled, added) and also drawn freely.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flexrestore.clock import VirtualClock
from flexrestore.local.harness import OfflineStack
from flexrestore.triggers import UnknownEvent
from tests.integration.intake_support import RECOVERY_PLANS, answer, load

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
pytestmark = pytest.mark.timeout(300)

POST = load("api-post-restore.json")
GET_ONE = load("api-get-restore.json")
# The old "Scheduled Event" shape, which the intake no longer takes (a plan's schedule starts a run instead).
SCHEDULE = {**load("alarm-into-alarm.json"), "detail-type": "Scheduled Event", "source": "aws.events"}
SCHEDULED_REQUEST = json.loads(POST["body"])
PLAN = json.loads(
    (Path(__file__).resolve().parents[2] / "examples" / "plans" / "nightly-fleet.json").read_text()
)
ALARM = load("alarm-into-alarm.json")
REQUEST = json.loads(POST["body"])
REQUEST_FIELDS = [*REQUEST, "targetProjectId", "dryRun", "breakGlass", "confirmRestoreOntoSource"]


@pytest.fixture(scope="module")
def stack() -> Iterator[OfflineStack]:
    with OfflineStack(
        clock=VirtualClock(),
        env_overrides={
            "RECOVERY_PLANS": RECOVERY_PLANS,
            "POWERTOOLS_LOG_LEVEL": "CRITICAL",
            "POWERTOOLS_METRICS_DISABLED": "true",
        },
    ) as offline:
        yield offline


# --- what comes in -----------------------------------------------------------------------------------------

# Text with the characters that break parsers: controls, bidi marks, quotes, digits of other scripts.
tricky_text = st.text(
    st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from(["\x00", "\u202e", "\n", '"', "\\", "/", "%", "²", "⑤", "٣", "-", " "]),
    ),
    max_size=80,
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    tricky_text,
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(tricky_text, inner, max_size=4)),
    max_leaves=12,
)
field_names = st.one_of(st.sampled_from(REQUEST_FIELDS), tricky_text)


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any], names: st.SearchStrategy[str]) -> dict[str, Any]:
    """``base`` with some fields dropped, some set to other values, some added."""
    result = copy.deepcopy(base)
    for name in draw(st.lists(st.sampled_from(sorted(result)), max_size=3, unique=True)) if result else []:
        del result[name]
    for name in draw(st.lists(names, max_size=3)):
        result[name] = draw(json_values)
    return result


request_bodies = st.one_of(
    mutated(REQUEST, field_names), st.dictionaries(field_names, json_values, max_size=6)
)
raw_bodies = st.one_of(
    request_bodies.map(lambda body: json.dumps(body, ensure_ascii=False)),
    json_values.map(json.dumps),
    tricky_text,
)


def post(body: str) -> dict[str, Any]:
    event = copy.deepcopy(POST)
    event["body"] = body
    return event


def get(path: str, query: dict[str, str] | None, path_parameters: dict[str, str] | None) -> dict[str, Any]:
    event = copy.deepcopy(GET_ONE)
    event["path"], event["requestContext"]["path"] = path, "/v1" + path
    event["resource"] = "/restores" if path_parameters is None else "/restores/{restoreId}"
    event["pathParameters"] = path_parameters
    event["queryStringParameters"] = query or None
    event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} if query else None
    return event


query_strings = st.dictionaries(
    st.one_of(st.sampled_from(["limit", "cluster", "groupId", "nextToken"]), tricky_text),
    st.one_of(
        tricky_text,
        st.integers(min_value=-5, max_value=500).map(str),
        st.sampled_from(["²", "¹⁰", "⑤", "٣", "1e2", "0x10", "20.0", "+5", "orders-prod", "A" * 3000]),
    ),
    max_size=4,
)


def schedule_event(draw: st.DrawFn) -> dict[str, Any]:
    event = copy.deepcopy(SCHEDULE)
    request = st.one_of(
        mutated(SCHEDULED_REQUEST, field_names),
        st.lists(mutated(SCHEDULED_REQUEST, field_names), max_size=12),
        json_values,
    )
    event["detail"] = draw(
        st.one_of(
            mutated({"schedule": "nightly-verify", "request": draw(request)}, tricky_text),
            json_values,
        )
    )
    return event


def alarm_event(draw: st.DrawFn) -> dict[str, Any]:
    event = copy.deepcopy(ALARM)
    detail = copy.deepcopy(ALARM["detail"])
    detail["alarmName"] = draw(st.one_of(st.just("orders-prod-data-loss"), tricky_text, json_values))
    detail["state"] = draw(st.one_of(st.just({"value": "ALARM"}), st.just({"value": "OK"}), json_values))
    detail["previousState"] = draw(st.one_of(st.just({"value": "OK"}), json_values))
    event["detail"] = draw(st.one_of(st.just(detail), mutated(detail, tricky_text), json_values))
    return event


@st.composite
def eventbridge_events(draw: st.DrawFn) -> dict[str, Any]:
    event = schedule_event(draw) if draw(st.booleans()) else alarm_event(draw)
    event = draw(
        mutated(event, st.sampled_from(["id", "detail-type", "source", "time", "version", "account"]))
    )
    if draw(st.booleans()):
        event["id"] = draw(st.one_of(tricky_text, json_values))
    return event


# --- what must hold ----------------------------------------------------------------------------------------


def atlas_calls(stack: OfflineStack) -> int:
    """Atlas calls so far, once every restore an earlier example started has run to its end (so that no poll
    loop calls Atlas while this example is judged)."""
    for arn in stack.executions():
        stack.wait_for_execution(arn)
    return len(stack.simulator.calls)


def names_each_field_and_its_rule(body: dict[str, Any]) -> None:
    assert isinstance(body.get("message"), str) and body["message"].strip(), body
    assert not body["message"].rstrip().endswith(":"), body["message"]
    assert isinstance(body.get("errorCode"), str) and body["errorCode"], body
    if body["errorCode"] != "INVALID_REQUEST":
        return
    errors = body.get("errors")
    assert isinstance(errors, list) and errors, body
    for error in errors:
        assert isinstance(error.get("field"), str) and error["field"].strip(), error
        assert isinstance(error.get("message"), str) and error["message"].strip(), error


def a_proper_http_answer(stack: OfflineStack, event: dict[str, Any], *, reaches_atlas: bool) -> None:
    before = atlas_calls(stack)
    status, body, _ = answer(stack.invoke("intake", event))
    assert status < 500, (status, body)
    assert "Traceback" not in json.dumps(body), body
    if status >= 400:
        names_each_field_and_its_rule(body)
    if status == 400 or not reaches_atlas:
        assert atlas_calls(stack) == before, f"{status} {body.get('errorCode')}: Atlas was called"


@FUZZ
@given(raw_bodies)
def test_post_restores_with_any_body(stack: OfflineStack, body: str) -> None:
    a_proper_http_answer(stack, post(body), reaches_atlas=True)


@FUZZ
@given(query_strings)
def test_get_restores_with_any_query(stack: OfflineStack, query: dict[str, str]) -> None:
    a_proper_http_answer(stack, get("/restores", query, None), reaches_atlas=False)


@FUZZ
@given(tricky_text)
def test_get_a_restore_with_any_id(stack: OfflineStack, restore_id: str) -> None:
    event = get(f"/restores/{quote(restore_id, safe='')}", None, {"restoreId": restore_id})
    a_proper_http_answer(stack, event, reaches_atlas=False)


@FUZZ
@given(eventbridge_events())
def test_any_eventbridge_event(stack: OfflineStack, event: dict[str, Any]) -> None:
    before = atlas_calls(stack)
    kind = event.get("detail-type")
    try:
        result = stack.invoke("intake", event)
    except UnknownEvent:
        assert kind != "CloudWatch Alarm State Change", kind
        assert atlas_calls(stack) == before
        return
    assert kind == "CloudWatch Alarm State Change", kind
    assert isinstance(result, dict), result
    assert "Traceback" not in json.dumps(result, default=str)
    restores = [result]
    for outcome in restores:
        status = outcome.get("statusCode")
        assert status is None or status < 500, outcome
        if status is not None and status >= 400:
            names_each_field_and_its_rule(outcome)
    invalid = all(o.get("errorCode") == "INVALID_REQUEST" for o in restores)
    if result.get("status") == "IGNORED" or invalid:
        assert atlas_calls(stack) == before, result


plan_fields = st.one_of(
    st.sampled_from([*PLAN, "targets", "validation", "description", "windowDays"]), tricky_text
)
plan_bodies = st.one_of(
    mutated(PLAN, plan_fields),
    st.builds(
        lambda plan, sources: {**plan, "sources": sources},
        st.just(PLAN),
        st.lists(mutated(PLAN["sources"][0], field_names), max_size=4),
    ),
    json_values,
)


@FUZZ
@given(plan_bodies)
def test_put_a_plan_with_any_body(stack: OfflineStack, body: Any) -> None:
    # A plan is refused or saved: never a 5xx, every refusal names its fields; saving one calls no Atlas.
    event = copy.deepcopy(POST)
    event["httpMethod"], event["path"], event["resource"] = "PUT", "/plans/nightly-fleet", "/plans/{name}"
    event["requestContext"]["path"] = "/v1/plans/nightly-fleet"
    event["body"] = json.dumps(body, ensure_ascii=False)
    a_proper_http_answer(stack, event, reaches_atlas=False)
