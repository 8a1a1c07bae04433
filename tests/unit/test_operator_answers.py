"""How the ``flexrestore`` command reads the API's answers: which exit code each tells, and what watching does
with answers that come and go."""

from __future__ import annotations

import io
from typing import Any

import pytest

from flexrestore.cli import exit_codes
from flexrestore.cli.api import ApiAnswer, CliError, raise_for_answer
from flexrestore.cli.restore import MAX_TRANSIENT_ERRORS, Streams, _watch

RESTORE_ID = "ba63986f866c54f0808366df32f41d81"


def answer(status: int, body: Any, **headers: str) -> ApiAnswer:
    return ApiAnswer(status, {k.lower().replace("_", "-"): v for k, v in headers.items()}, body)


@pytest.mark.parametrize(
    ("given", "code", "words"),
    [
        (
            answer(403, {"message": "target is protected", "errorCode": "PROTECTED_TARGET"}),
            exit_codes.REFUSED,
            "refused (403 PROTECTED_TARGET): target is protected",
        ),
        (
            answer(
                403, {"message": "Missing Authentication Token"}, x_amzn_ErrorType="MissingAuthentication"
            ),
            exit_codes.NOT_AUTHORIZED,
            "check the API URL",
        ),
        (
            answer(403, {"Message": "User: arn:aws:iam::1:user/x is not authorized to perform: execute-api"}),
            exit_codes.NOT_AUTHORIZED,
            "is not authorized to perform",
        ),
        (
            answer(429, {"message": "Too Many Requests"}, x_amzn_ErrorType="TooManyRequestsException"),
            exit_codes.TOOL_ERROR,
            "throttling",
        ),
        (
            answer(
                503, {"message": "Atlas is rate-limiting", "errorCode": "ATLAS_RATE_LIMITED"}, retry_after="7"
            ),
            exit_codes.TOOL_ERROR,
            "the service failed (503 ATLAS_RATE_LIMITED): Atlas is rate-limiting (retry after 7 s)",
        ),
        (
            answer(
                400,
                {
                    "message": "the request is not valid",
                    "errorCode": "INVALID_REQUEST",
                    "errors": [
                        {"field": "groupId", "message": "must be 24 lowercase hexadecimal characters"}
                    ],
                },
            ),
            exit_codes.REFUSED,
            "\n  groupId: must be 24 lowercase hexadecimal characters",
        ),
        (
            answer(502, {"message": "Internal server error"}),
            exit_codes.TOOL_ERROR,
            "the service failed (502)",
        ),
    ],
)
def test_each_answer_tells_its_exit_code(given: ApiAnswer, code: int, words: str) -> None:
    with pytest.raises(CliError) as raised:
        raise_for_answer(given, "start")
    assert raised.value.code == code
    assert words in raised.value.message
    assert raised.value.message.startswith("start: ")


def test_a_2xx_answer_is_no_error() -> None:
    raise_for_answer(answer(202, {"restoreId": RESTORE_ID}), "start")


class ScriptedApi:
    """Answers GET /restores/{id} from a script; a CliError in the script is raised instead."""

    def __init__(self, script: list[ApiAnswer | CliError]) -> None:
        self.script = script
        self.requests = 0

    def request(self, method: str, path: str, **kwargs: Any) -> ApiAnswer:
        assert (method, path) == ("GET", f"/restores/{RESTORE_ID}")
        step = self.script[min(self.requests, len(self.script) - 1)]
        self.requests += 1
        if isinstance(step, CliError):
            raise step
        return step


def record(status: str, final: str | None = None) -> dict[str, Any]:
    return {
        "restoreId": RESTORE_ID,
        "source": "65f1a2b3c4d5e6f708192a3b/orders-prod",
        "targetDeploymentItemName": "orders-verify",
        "requestedAt": "2026-11-01T02:00:00Z",
        "status": status,
        "finalStatus": final,
    }


def watch(script: list[ApiAnswer | CliError], *, json: bool = False) -> tuple[int, str, ScriptedApi]:
    api = ScriptedApi(script)
    out = io.StringIO()
    streams = Streams(out=out, err=io.StringIO(), json=json, sleep=lambda seconds: None)
    code = _watch(api, RESTORE_ID, 10.0, streams)  # type: ignore[arg-type]
    return code, out.getvalue(), api


def test_watching_rides_out_passing_errors_and_shows_the_time_since_the_request() -> None:
    unreachable = CliError("watch: cannot reach the API", exit_codes.TOOL_ERROR)
    code, out, api = watch(
        [
            answer(200, record("PENDING"), date="Sun, 01 Nov 2026 02:00:05 GMT"),
            answer(503, {"message": "busy", "errorCode": "STORE_UNAVAILABLE"}),
            unreachable,
            answer(200, record("RUNNING"), date="Sun, 01 Nov 2026 02:00:50 GMT"),
            answer(200, record("COMPLETED", "COMPLETED"), date="Sun, 01 Nov 2026 02:01:15 GMT"),
        ]
    )

    assert code == exit_codes.OK and api.requests == 5
    lines = out.splitlines()
    assert lines[0].endswith("Atlas PENDING  elapsed 5 s")
    assert lines[1].endswith("Atlas RUNNING  elapsed 50 s")
    assert lines[2].endswith("Atlas COMPLETED  elapsed 1 min 15 s")
    assert f"Restore    {RESTORE_ID}  COMPLETED" in out


@pytest.mark.parametrize(("final", "code"), [("FAILED", 3), ("TIMED_OUT", 4), ("ERROR", 5)])
def test_watching_exits_with_the_outcome(final: str, code: int) -> None:
    exit_code, out, _ = watch([answer(200, record("FAILED", final))], json=True)
    assert exit_code == code
    assert '"finalStatus": "' + final + '"' in out


def test_watching_gives_up_after_too_many_errors_in_a_row() -> None:
    api = ScriptedApi([answer(503, {"message": "down", "errorCode": "ATLAS_UNAVAILABLE"})])
    streams = Streams(out=io.StringIO(), err=io.StringIO(), json=False, sleep=lambda seconds: None)
    with pytest.raises(CliError) as raised:
        _watch(api, RESTORE_ID, 10.0, streams)  # type: ignore[arg-type]
    assert raised.value.code == exit_codes.TOOL_ERROR
    assert api.requests == MAX_TRANSIENT_ERRORS + 1


def test_watching_stops_at_once_when_the_caller_is_refused() -> None:
    refused = answer(403, {"message": "The security token included in the request is invalid."})
    api = ScriptedApi([answer(200, record("RUNNING")), refused])
    streams = Streams(out=io.StringIO(), err=io.StringIO(), json=False, sleep=lambda seconds: None)
    with pytest.raises(CliError) as raised:
        _watch(api, RESTORE_ID, 10.0, streams)  # type: ignore[arg-type]
    assert raised.value.code == exit_codes.NOT_AUTHORIZED
    assert api.requests == 2  # no second try
