"""Plans' own validators: Lambda functions invoked synchronously (``lambda:InvokeFunction``, granted by the
template on exactly the ARNs of ValidatorFunctionArns). The adapter reports what happened and judges
nothing (``domain/validation.py`` does): an answer, an error, or no answer in time.

The client waits at most the validator's timeout (plus a few seconds for the answer to travel) and never
invokes twice: a validator may not be idempotent, and a second invocation after a timeout could only be
late again. Lambda throttling is ``DependencyUnavailable`` (the Validate step is retried); everything else
Lambda answers (no such function, access denied) is an ERROR for the verdict.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from flexrestore import clock
from flexrestore.aws.codec import error_code
from flexrestore.domain.errors import DependencyUnavailable
from flexrestore.domain.validation import ValidatorCall

logger = logging.getLogger("flexrestore.validators")

_THROTTLED = frozenset({"TooManyRequestsException", "ThrottlingException", "EC2ThrottledException"})
_LAMBDA_TIMEOUT_TYPES = frozenset({"Sandbox.Timedout", "Function.Timedout"})
_TRAVEL_SECONDS = 5.0


class LambdaValidators:
    def __init__(self) -> None:
        self._clients: dict[int, Any] = {}

    @staticmethod
    def _config(read_timeout: int) -> Any:
        """Wait ``read_timeout`` seconds for an answer; never retry (a validator may not be idempotent)."""
        from botocore.config import Config

        return Config(
            retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=read_timeout
        )

    def invoke(
        self, function_arn: str, document: Mapping[str, Any], *, timeout_seconds: float
    ) -> ValidatorCall:
        import boto3
        from botocore.exceptions import ReadTimeoutError

        started = clock.seconds()
        read_timeout = int(timeout_seconds + _TRAVEL_SECONDS)
        if read_timeout not in self._clients:  # one client per read timeout, kept for the container's life
            self._clients[read_timeout] = boto3.client("lambda", config=self._config(read_timeout))  # type: ignore[call-overload]
        lambda_client = self._clients[read_timeout]
        try:
            answer = lambda_client.invoke(
                FunctionName=function_arn,
                InvocationType="RequestResponse",
                Payload=json.dumps(dict(document), separators=(",", ":"), ensure_ascii=False).encode(),
            )
            raw = answer["Payload"].read()
        except ReadTimeoutError:
            return ValidatorCall("TIMED_OUT", error="no answer in time", seconds=clock.seconds() - started)
        except Exception as exc:
            code = error_code(exc)
            if code in _THROTTLED:
                raise DependencyUnavailable(
                    "VALIDATOR_THROTTLED", f"Lambda throttled the validator {function_arn}", retry_after=30
                ) from None
            logger.warning(
                "the validator %s could not be invoked: %s", function_arn, code or type(exc).__name__
            )
            return ValidatorCall(
                "ERROR",
                error=f"Lambda refused to invoke it ({code or type(exc).__name__})",
                seconds=clock.seconds() - started,
            )
        seconds = clock.seconds() - started
        payload = _decoded(raw)
        if answer.get("FunctionError"):
            kind = payload.get("errorType") if isinstance(payload, dict) else None
            words = payload.get("errorMessage") if isinstance(payload, dict) else None
            if kind in _LAMBDA_TIMEOUT_TYPES or (isinstance(words, str) and "Task timed out" in words):
                return ValidatorCall(
                    "TIMED_OUT", error=f"Lambda stopped it: {words or kind}", seconds=seconds
                )
            return ValidatorCall(
                "ERROR", error=f"it raised {kind or 'an error'}: {words or 'no message'}", seconds=seconds
            )
        return ValidatorCall("ANSWERED", payload=payload, seconds=seconds)


def _decoded(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return raw.decode("utf-8", "replace")[:200]
