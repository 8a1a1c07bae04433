"""Credentials secret parsing: both shapes, and clear errors that name the secret, never a value."""

from __future__ import annotations

import json

import pytest

from flexrestore.atlas.auth import Credentials
from flexrestore.atlas.errors import AtlasCredentialsError

SECRET_ID = "prod/atlas-flex-restore"
CLIENT_ID = "mdb_sa_id_0123456789abcdef"
CLIENT_SECRET = "mdb_sa_sk_TOPSECRET_value_42"
PUBLIC_KEY = "pubkeyabc"
PRIVATE_KEY = "11111111-2222-3333-4444-privatekey99"


def test_service_account_secret() -> None:
    creds = Credentials.from_secret(
        SECRET_ID, json.dumps({"clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET})
    )
    assert creds.kind == "service_account"
    assert creds.secret_id == SECRET_ID
    assert creds.secret_values == (CLIENT_ID, CLIENT_SECRET)


def test_api_key_secret() -> None:
    creds = Credentials.from_secret(
        SECRET_ID, json.dumps({"publicKey": PUBLIC_KEY, "privateKey": PRIVATE_KEY})
    )
    assert creds.kind == "api_key"
    assert creds.secret_values == (PUBLIC_KEY, PRIVATE_KEY)


def test_extra_descriptive_fields_are_tolerated() -> None:
    secret = {"clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET, "description": "rotated 2026-10"}
    assert Credentials.from_secret(SECRET_ID, json.dumps(secret)).kind == "service_account"


def test_repr_and_str_reveal_no_value() -> None:
    for creds in (
        Credentials.from_secret(
            SECRET_ID, json.dumps({"clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET})
        ),
        Credentials.from_secret(SECRET_ID, json.dumps({"publicKey": PUBLIC_KEY, "privateKey": PRIVATE_KEY})),
    ):
        for text in (repr(creds), str(creds), f"{creds}", repr([creds])):
            assert SECRET_ID in text
            for value in (CLIENT_ID, CLIENT_SECRET, PUBLIC_KEY, PRIVATE_KEY):
                assert value not in text


@pytest.mark.parametrize(
    ("secret_string", "problem"),
    [
        ("", "is empty"),
        ("   ", "is empty"),
        (f'{{"clientId": "{CLIENT_ID}", "clientSecret": "{CLIENT_SECRET}"', "not valid JSON"),
        (f"clientId={CLIENT_ID}&clientSecret={CLIENT_SECRET}", "not valid JSON"),
        (json.dumps([CLIENT_ID, CLIENT_SECRET]), "not a JSON object"),
        (json.dumps(CLIENT_SECRET), "not a JSON object"),
        (json.dumps({}), "must hold {clientId, clientSecret} or {publicKey, privateKey}"),
        (json.dumps({"user": CLIENT_ID, "password": CLIENT_SECRET}), "must hold {clientId, clientSecret}"),
        (json.dumps({"clientId": CLIENT_ID}), "lacks field 'clientSecret'"),
        (json.dumps({"privateKey": PRIVATE_KEY}), "lacks field 'publicKey'"),
        (json.dumps({"clientId": CLIENT_ID, "clientSecret": ""}), "field 'clientSecret' must not be empty"),
        (json.dumps({"clientId": "  ", "clientSecret": CLIENT_SECRET}), "field 'clientId' must not be empty"),
        (json.dumps({"publicKey": PUBLIC_KEY, "privateKey": 12345}), "field 'privateKey' must be a string"),
        (json.dumps({"clientId": CLIENT_ID, "clientSecret": None}), "field 'clientSecret' must be a string"),
        (
            json.dumps({"clientId": [CLIENT_ID], "clientSecret": CLIENT_SECRET}),
            "field 'clientId' must be a string",
        ),
        (
            json.dumps({"clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET, "privateKey": PRIVATE_KEY}),
            "mixes service-account and API-key fields",
        ),
    ],
)
def test_malformed_secret_names_the_secret_and_the_problem_but_no_value(
    secret_string: str, problem: str
) -> None:
    with pytest.raises(AtlasCredentialsError) as caught:
        Credentials.from_secret(SECRET_ID, secret_string)
    message = str(caught.value)
    assert f"secret '{SECRET_ID}'" in message
    assert problem in message
    for value in (CLIENT_ID, CLIENT_SECRET, PUBLIC_KEY, PRIVATE_KEY, "12345"):
        assert value not in message
        assert value not in repr(caught.value)
    # No chained exception (e.g. the JSON decoder's) can carry the text either.
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__ or caught.value.__context__ is None
