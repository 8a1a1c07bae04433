"""The restore request model: what is accepted, and the plain-words answer for everything that is not."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel, Field, ValidationError

from flexrestore.contracts.patterns import is_target_name
from flexrestore.domain.request import (
    ALLOWED_FIELDS,
    ATLAS_ID_PATTERN,
    CLUSTER_NAME_PATTERN,
    TARGET_NAME_PATTERN,
    InvalidRequest,
    RestoreRequest,
    decode_json_object,
    parse_request,
)

GROUP = "65f1a2b3c4d5e6f708192a3b"
OTHER_GROUP = "65f1a2b3c4d5e6f708192a3c"
SNAPSHOT = "6723a1f0c4d5e6f708193b01"
GOOD = {"groupId": GROUP, "clusterName": "orders-prod", "targetDeploymentItemName": "orders-verify"}


def refused(data: object) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        parse_request(data)
    return caught.value


def fields(error: InvalidRequest) -> list[str]:
    return [e["field"] for e in error.errors]


def test_minimal_request_defaults() -> None:
    request = parse_request(GOOD)
    assert request.group_id == GROUP
    assert request.target_project_id == GROUP  # defaults to the source project
    assert request.explicit_snapshot_id is None
    assert (request.dry_run, request.break_glass, request.confirm_restore_onto_source) == (
        False,
        False,
        False,
    )
    assert request.source == f"{GROUP}/orders-prod"


def test_full_request_round_trips_with_atlas_names() -> None:
    data = {
        **GOOD,
        "snapshotId": SNAPSHOT,
        "targetProjectId": OTHER_GROUP,
        "reason": "quarterly restore drill",
        "dryRun": True,
        "breakGlass": True,
        "confirmRestoreOntoSource": False,
    }
    request = parse_request(data)
    assert request.target_project_id == OTHER_GROUP
    assert request.explicit_snapshot_id == SNAPSHOT
    assert request.to_wire() == data


def test_latest_means_newest_completed() -> None:
    assert parse_request({**GOOD, "snapshotId": "latest"}).explicit_snapshot_id is None


@pytest.mark.parametrize(
    "target",
    ["Prüfung-δοκιμή", "восстановление", "テスト1", "orders_verify.v2", "a(b),c:d&e@f+g'h", "x" * 64, "٣٤٥"],
)
def test_unicode_target_names_are_accepted(target: str) -> None:
    assert parse_request({**GOOD, "targetDeploymentItemName": target}).target_deployment_item_name == target


BAD_REQUESTS = [
    # (what, data, field, words the message must contain)
    ("group id upper case", {**GOOD, "groupId": GROUP.upper()}, "groupId", "24 lowercase hexadecimal"),
    ("group id too short", {**GOOD, "groupId": GROUP[:-1]}, "groupId", "24 lowercase hexadecimal"),
    ("group id trailing newline", {**GOOD, "groupId": GROUP + "\n"}, "groupId", "control"),
    ("snapshot id trailing newline", {**GOOD, "snapshotId": SNAPSHOT + "\n"}, "snapshotId", "control"),
    ("snapshot id bad", {**GOOD, "snapshotId": "newest"}, "snapshotId", '"latest"'),
    ("cluster leading hyphen", {**GOOD, "clusterName": "-orders"}, "clusterName", "Flex cluster name"),
    ("cluster with space", {**GOOD, "clusterName": "orders prod"}, "clusterName", "Flex cluster name"),
    ("cluster too long", {**GOOD, "clusterName": "a" * 65}, "clusterName", "at most 64"),
    ("cluster unicode", {**GOOD, "clusterName": "prüfung"}, "clusterName", "Flex cluster name"),
    ("target with slash", {**GOOD, "targetDeploymentItemName": "a/b"}, "targetDeploymentItemName", "1 to 64"),
    ("target empty", {**GOOD, "targetDeploymentItemName": ""}, "targetDeploymentItemName", "1 to 64"),
    ("target too long", {**GOOD, "targetDeploymentItemName": "x" * 65}, "targetDeploymentItemName", "64"),
    ("target emoji", {**GOOD, "targetDeploymentItemName": "db-🔥"}, "targetDeploymentItemName", "1 to 64"),
    (
        "target RLO",
        {**GOOD, "targetDeploymentItemName": "orders\u202eyfirev"},
        "targetDeploymentItemName",
        "U+202E",
    ),
    (
        "target LRI",
        {**GOOD, "targetDeploymentItemName": "orders\u2066x"},
        "targetDeploymentItemName",
        "U+2066",
    ),
    (
        "target RLM",
        {**GOOD, "targetDeploymentItemName": "orders\u200fx"},
        "targetDeploymentItemName",
        "U+200F",
    ),
    ("target NUL", {**GOOD, "targetDeploymentItemName": "orders\x00"}, "targetDeploymentItemName", "U+0000"),
    ("target C1", {**GOOD, "targetDeploymentItemName": "orders\x85"}, "targetDeploymentItemName", "U+0085"),
    ("cluster ESC", {**GOOD, "clusterName": "orders\x1b[31m"}, "clusterName", "U+001B"),
    ("reason bidi", {**GOOD, "reason": "fine \u202d text"}, "reason", "U+202D"),
    ("reason newline", {**GOOD, "reason": "line one\nline two"}, "reason", "control"),
    ("reason line separator", {**GOOD, "reason": "one\u2028two"}, "reason", "U+2028"),
    ("reason lone surrogate", {**GOOD, "reason": "bad \ud800 text"}, "reason", "U+D800"),
    (
        "target arabic letter mark",
        {**GOOD, "targetDeploymentItemName": "a\u061cb"},
        "targetDeploymentItemName",
        "U+061C",
    ),
    ("reason too long", {**GOOD, "reason": "r" * 501}, "reason", "at most 500"),
    ("target project bad", {**GOOD, "targetProjectId": "not-a-project"}, "targetProjectId", "project id"),
    ("dryRun as string", {**GOOD, "dryRun": "true"}, "dryRun", "boolean"),
    ("dryRun as number", {**GOOD, "dryRun": 1}, "dryRun", "boolean"),
    ("breakGlass as string", {**GOOD, "breakGlass": "yes"}, "breakGlass", "boolean"),
    ("groupId as number", {**GOOD, "groupId": 65}, "groupId", "string"),
    ("clusterName as list", {**GOOD, "clusterName": ["orders-prod"]}, "clusterName", "string"),
    ("reason as object", {**GOOD, "reason": {"text": "x"}}, "reason", "string"),
    ("extra field", {**GOOD, "force": True}, "force", "not a known field"),
    ("snake_case name", {**GOOD, "group_id": GROUP}, "group_id", "not a known field"),
    ("missing group", {k: v for k, v in GOOD.items() if k != "groupId"}, "groupId", "required"),
    (
        "missing target",
        {k: v for k, v in GOOD.items() if k != "targetDeploymentItemName"},
        "targetDeploymentItemName",
        "required",
    ),
    ("breakGlass without reason", {**GOOD, "breakGlass": True}, "breakGlass", "non-empty reason"),
    (
        "breakGlass blank reason",
        {**GOOD, "breakGlass": True, "reason": "   "},
        "breakGlass",
        "non-empty reason",
    ),
    ("null target", {**GOOD, "targetDeploymentItemName": None}, "targetDeploymentItemName", "string"),
]


@pytest.mark.parametrize(("what", "data", "field", "words"), BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS])
def test_bad_requests_name_the_field_and_the_rule(
    what: str, data: dict[str, object], field: str, words: str
) -> None:
    error = refused(data)
    assert field in fields(error), error.errors
    message = next(e["message"] for e in error.errors if e["field"] == field)
    assert words in message
    assert field in error.message
    # Plain words, not pydantic's internals.
    assert "pydantic" not in message and "Traceback" not in message and "String should" not in message


def test_dollar_does_not_accept_a_trailing_newline() -> None:
    """The patterns themselves (not only the control-character rule) end at the very end of the text."""

    class Probe(BaseModel):
        group: str = Field(pattern=ATLAS_ID_PATTERN)
        cluster: str = Field(pattern=CLUSTER_NAME_PATTERN)
        target: str = Field(pattern=TARGET_NAME_PATTERN)

    Probe(group=GROUP, cluster="orders-prod", target="Prüfung")
    for field, value in (("group", GROUP), ("cluster", "orders-prod"), ("target", "Prüfung")):
        data = {"group": GROUP, "cluster": "orders-prod", "target": "Prüfung", field: value + "\n"}
        with pytest.raises(ValidationError) as caught:
            Probe(**data)
        assert [e["loc"] for e in caught.value.errors()] == [(field,)]


# Atlas's own pattern for targetDeploymentItemName; TARGET_NAME_PATTERN leaves the length to max_length.
ATLAS_TARGET_NAME_PATTERN = r"^[\p{L}\p{N}\-_.(),:&@+']{1,64}$"
TARGET_NAMES = [
    "",
    "a",
    "orders-verify",
    "Prüfung_(2026),v1:copy&more@x+y'z",
    "名前",
    "٣٤",
    "x" * 63,
    "x" * 64,
    "x" * 65,
    "ü" * 64,
    "ü" * 65,
    "a b",
    "a/b",
    "a$b",
    "-" * 64,
    "a" * 64 + "!",
    "🙂",
]


@pytest.mark.parametrize("name", TARGET_NAMES, ids=range(len(TARGET_NAMES)))
def test_the_target_name_rule_is_atlas_s_pattern(name: str) -> None:
    """``+`` with max_length 64 accepts and refuses exactly what Atlas's ``{1,64}`` does, with the same
    error, in the request model and in the run-time check of verification plans."""

    class Atlas(BaseModel):
        targetDeploymentItemName: str = Field(pattern=ATLAS_TARGET_NAME_PATTERN, max_length=64)

    def errors(model: type[BaseModel], data: dict[str, object]) -> list[str]:
        try:
            model.model_validate(data)
        except ValidationError as exc:
            return [e["type"] for e in exc.errors() if e["loc"] == ("targetDeploymentItemName",)]
        return []

    request = {**GOOD, "targetDeploymentItemName": name}
    atlas = errors(Atlas, request)
    assert errors(RestoreRequest, request) == atlas
    assert is_target_name(name) == (atlas == [])


def test_every_bad_field_is_named_once() -> None:
    error = refused(
        {"groupId": "x", "clusterName": "-", "targetDeploymentItemName": "", "dryRun": "no", "a": 1}
    )
    assert sorted(fields(error)) == sorted(
        ["groupId", "clusterName", "targetDeploymentItemName", "dryRun", "a"]
    )


def test_errors_never_echo_the_input() -> None:
    secretish = "s3cr3t-" + "z" * 40
    error = refused({**GOOD, "clusterName": secretish, "reason": secretish * 20, "groupId": secretish})
    body = json.dumps(error.body())
    assert "s3cr3t" not in body  # values are never part of the answer
    assert len(body) < 2000


def test_huge_unknown_field_name_is_cut() -> None:
    error = refused({**GOOD, "x" * 5000: 1})
    assert len(error.errors[0]["field"]) <= 67


def test_many_unknown_fields_are_summarised() -> None:
    error = refused({**GOOD, **{f"extra{i}": i for i in range(40)}})
    assert len(error.errors) == 21
    assert error.errors[-1]["message"] == "20 more problems not listed"


@pytest.mark.parametrize("data", [[], "text", 3, None, True])
def test_body_must_be_an_object(data: object) -> None:
    assert fields(refused(data)) == ["body"]


def test_allowed_fields_are_designs_plus_two_safety_flags() -> None:
    assert set(ALLOWED_FIELDS) == {
        "groupId",
        "clusterName",
        "snapshotId",
        "targetDeploymentItemName",
        "targetProjectId",
        "reason",
        "dryRun",
        "breakGlass",
        "confirmRestoreOntoSource",
    }


def test_model_is_frozen() -> None:
    request = parse_request(GOOD)
    with pytest.raises(ValidationError):
        request.cluster_name = "other"  # type: ignore[misc]
    assert isinstance(request, RestoreRequest)


# --- JSON bodies ------------------------------------------------------------------------------------


def test_decode_json_object() -> None:
    assert decode_json_object(json.dumps(GOOD), max_bytes=16384) == GOOD


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("{not json", "not valid JSON (line 1, column 2)"),
        ("", "must be a JSON object"),
        ("   ", "must be a JSON object"),
        ("[1, 2]", "not an array"),
        ('"text"', "not a string"),
        ("null", "not null"),
        ('{"groupId": "a", "groupId": "b"}', "appears more than once"),
        ("[" * 100_00 + "]" * 100_00, "not valid JSON"),
    ],
)
def test_decode_refuses_what_is_not_a_json_object(text: str, words: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        decode_json_object(text, max_bytes=1_000_000)
    assert words in caught.value.errors[0]["message"]


def test_decode_refuses_oversized_bodies_before_parsing() -> None:
    text = json.dumps({**GOOD, "reason": "é" * 9000})  # 18 KB of UTF-8
    with pytest.raises(InvalidRequest) as caught:
        decode_json_object(text, max_bytes=16384)
    assert caught.value.errors == [
        {"field": "body", "message": f"must be at most 16384 bytes (got {len(text.encode())})"}
    ]


def test_an_empty_field_name_is_named_so_a_reader_can_see_it() -> None:
    error = refused({**GOOD, "": 1})
    assert error.errors == [
        {
            "field": '""',
            "message": "is not a known field; allowed fields: " + ", ".join(ALLOWED_FIELDS),
        }
    ]
    assert error.message == 'the restore request is not valid: ""'
    assert not error.message.endswith(": ")
    # nested, as a schedule's request names it
    assert error.prefixed("detail.request").errors[0]["field"] == 'detail.request.""'
