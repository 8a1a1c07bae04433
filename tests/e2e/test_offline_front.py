"""The offline front checks SigV4 the way API Gateway does for AWS_IAM methods, and turns a good request into
the REST proxy event the intake expects (the shape of events/api-*.json)."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import botocore.auth
import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from flexrestore.clock import VirtualClock
from flexrestore.local.front import ASSUMED_OPERATOR, OPERATOR, OfflineFront, Principal
from flexrestore.local.harness import REGION, OfflineStack
from flexrestore.simulator import DEMO
from tests.infrastructure.checks import REPO

QUIET = {"POWERTOOLS_LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_DISABLED": "true"}
MISMATCH = "The request signature we calculated does not match the signature you provided."


@pytest.fixture
def front() -> Iterator[OfflineFront]:
    with (
        OfflineStack(clock=VirtualClock(), env_overrides=QUIET) as stack,
        OfflineFront(stack) as front,
    ):
        yield front


def sign(
    method: str,
    url: str,
    *,
    principal: Principal = OPERATOR,
    region: str = REGION,
    service: str = "execute-api",
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> dict[str, str]:
    """The headers botocore's SigV4 puts on the request (as the flexrestore command and the AWS CLI do)."""
    request = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    credentials = Credentials(principal.access_key_id, principal.secret_access_key, principal.session_token)
    SigV4Auth(credentials, service, region).add_auth(request)
    return dict(request.headers.items())


def send(
    method: str, url: str, *, body: bytes = b"", headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.request(method, url, content=body, headers=headers or {}, timeout=30)


def test_an_unsigned_request_is_missing_its_authentication_token(front: OfflineFront) -> None:
    answer = send("GET", f"{front.api_url}/restores")

    assert answer.status_code == 403
    assert answer.json() == {"message": "Missing Authentication Token"}
    assert answer.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert front.calls[-1].principal is None


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        ("Bearer abc", "'abc' not a valid key=value pair (missing equal-sign) in Authorization header"),
        ("AWS4-HMAC-SHA256 foo=bar", "Authorization header requires 'Credential' parameter."),
        (
            "AWS4-HMAC-SHA256 Credential=AKIA/20261101/us-east-1/execute-api/aws4_request",
            "Authorization header requires 'Signature' parameter.",
        ),
    ],
)
def test_a_malformed_authorization_header_is_refused_in_api_gateways_words(
    front: OfflineFront, authorization: str, message: str
) -> None:
    answer = send("GET", f"{front.api_url}/restores", headers={"Authorization": authorization})

    assert answer.status_code == 403
    assert message in answer.json()["message"]
    assert answer.headers["x-amzn-ErrorType"] == "IncompleteSignatureException"


@pytest.mark.parametrize(
    ("region", "service", "message"),
    [
        ("eu-west-1", "execute-api", "Credential should be scoped to a valid region, not 'eu-west-1'. "),
        (REGION, "s3", "Credential should be scoped to correct service: 'execute-api'. "),
    ],
)
def test_a_credential_scoped_elsewhere_is_refused(
    front: OfflineFront, region: str, service: str, message: str
) -> None:
    url = f"{front.api_url}/restores"
    answer = send("GET", url, headers=sign("GET", url, region=region, service=service))

    assert answer.status_code == 403
    assert answer.json() == {"message": message}


def test_a_signature_older_than_five_minutes_has_expired(
    front: OfflineFront, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"{front.api_url}/restores"
    signed_at = datetime.now(UTC) - timedelta(minutes=6)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: signed_at.replace(tzinfo=None))
    headers = sign("GET", url)
    monkeypatch.undo()

    answer = send("GET", url, headers=headers)
    assert answer.status_code == 403
    assert answer.json()["message"].startswith(
        f"Signature expired: {signed_at.strftime('%Y%m%dT%H%M%SZ')} is now earlier than "
    )
    assert answer.json()["message"].endswith(" - 5 min.)")


def test_a_signature_four_minutes_old_is_still_good(
    front: OfflineFront, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"{front.api_url}/restores"
    signed_at = datetime.now(UTC) - timedelta(minutes=4)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: signed_at.replace(tzinfo=None))
    headers = sign("GET", url)
    monkeypatch.undo()

    assert send("GET", url, headers=headers).status_code == 200


def test_a_request_changed_after_signing_does_not_match(front: OfflineFront) -> None:
    url = f"{front.api_url}/restores"
    body = json.dumps({"groupId": DEMO.group_id}).encode()
    headers = sign("POST", url, body=body, headers={"Content-Type": "application/json"})

    tampered_body = send("POST", url, body=body.replace(b"65f1", b"65f2"), headers=headers)
    assert tampered_body.status_code == 403
    assert tampered_body.json()["message"].startswith(MISMATCH)
    assert tampered_body.headers["x-amzn-ErrorType"] == "InvalidSignatureException"

    get_headers = sign("GET", url + "?limit=5")
    tampered_query = send("GET", url + "?limit=50", headers=get_headers)
    assert tampered_query.status_code == 403 and tampered_query.json()["message"].startswith(MISMATCH)

    wrong_secret = Principal(OPERATOR.access_key_id, "some-other-secret", OPERATOR.arn)
    answer = send("GET", url, headers=sign("GET", url, principal=wrong_secret))
    assert answer.status_code == 403 and answer.json()["message"].startswith(MISMATCH)


def test_an_unknown_access_key_or_a_missing_session_token_is_an_invalid_token(front: OfflineFront) -> None:
    url = f"{front.api_url}/restores"
    stranger = Principal("AKIASTRANGEREXAMPLE0", "whatever", "arn:aws:iam::999999999999:user/stranger")
    without_token = Principal(ASSUMED_OPERATOR.access_key_id, ASSUMED_OPERATOR.secret_access_key, "")

    for principal in (stranger, without_token):
        answer = send("GET", url, headers=sign("GET", url, principal=principal))
        assert answer.status_code == 403
        assert answer.json() == {"message": "The security token included in the request is invalid."}

    answer = send("GET", url, headers=sign("GET", url, principal=ASSUMED_OPERATOR))
    assert answer.status_code == 200


def test_a_path_outside_the_stage_is_forbidden(front: OfflineFront) -> None:
    url = f"{front.url}/restores"
    answer = send("GET", url, headers=sign("GET", url))

    assert answer.status_code == 403
    assert answer.json() == {"message": "Forbidden"}


def test_a_signed_request_becomes_the_proxy_event_the_intake_expects(front: OfflineFront) -> None:
    seen: list[dict[str, Any]] = []
    module, _, name = str(front.stack.functions["intake"]).rpartition(".")

    def recording(event: dict[str, Any], context: Any) -> Any:
        seen.append(event)
        return getattr(importlib.import_module(module), name)(event, context)

    front.stack.functions["intake"] = recording
    body = json.dumps(
        {
            "groupId": DEMO.group_id,
            "clusterName": DEMO.source_cluster,
            "targetDeploymentItemName": DEMO.scratch_target,
        }
    ).encode()
    url = f"{front.api_url}/restores"
    headers = sign(
        "POST",
        url,
        body=body,
        headers={"Content-Type": "application/json", "Idempotency-Key": "front-test-1"},
    )
    answer = send("POST", url, body=body, headers=headers)

    assert answer.status_code == 202, answer.text
    restore_id = answer.json()["restoreId"]
    assert answer.headers["Location"] == f"/restores/{restore_id}"  # from the answer's multiValueHeaders

    get_url = f"{front.api_url}/restores/{restore_id}?x=1&x=2"
    fetched = send("GET", get_url, headers=sign("GET", get_url))
    assert fetched.status_code == 200 and fetched.json()["restoreId"] == restore_id

    post, get = seen
    sample = json.loads((REPO / "events" / "api-get-restore.json").read_text())
    for event in (post, get):
        assert set(event) == set(sample)
        assert set(event["requestContext"]) == set(sample["requestContext"])
        assert set(event["requestContext"]["identity"]) == set(sample["requestContext"]["identity"])
        assert event["requestContext"]["identity"]["userArn"] == OPERATOR.arn
        assert event["requestContext"]["stage"] == "v1"
        assert event["isBase64Encoded"] is False
    assert (post["resource"], post["path"], post["httpMethod"]) == ("/restores", "/restores", "POST")
    assert post["body"] == body.decode() and post["headers"]["Idempotency-Key"] == "front-test-1"
    assert post["multiValueHeaders"]["Idempotency-Key"] == ["front-test-1"]
    assert post["pathParameters"] is None and post["queryStringParameters"] is None
    assert get["resource"] == "/restores/{restoreId}" and get["path"] == f"/restores/{restore_id}"
    assert get["requestContext"]["path"] == f"/v1/restores/{restore_id}"
    assert get["pathParameters"] == {"restoreId": restore_id}
    assert get["queryStringParameters"] == {"x": "2"}
    assert get["multiValueQueryStringParameters"] == {"x": ["1", "2"]}
    assert get["body"] is None


def test_an_unknown_route_is_answered_by_the_handler(front: OfflineFront) -> None:
    url = f"{front.api_url}/backups"
    answer = send("GET", url, headers=sign("GET", url))

    assert answer.status_code == 404
    assert answer.json()["errorCode"] == "NOT_FOUND"


def test_a_handler_that_raises_is_a_502(front: OfflineFront) -> None:
    def broken(event: dict[str, Any], context: Any) -> Any:
        raise RuntimeError("boom")

    front.stack.functions["intake"] = broken
    url = f"{front.api_url}/restores"
    answer = send("GET", url, headers=sign("GET", url))

    assert answer.status_code == 502
    assert answer.json() == {"message": "Internal server error"}
