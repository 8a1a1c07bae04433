"""The deployed API, as the caller's AWS credentials reach it: find the stack, read ``ApiUrl``, sign, send.

- Credentials and region come from the standard AWS chain (environment, ``--profile``, SSO, instance or
  container roles) through a boto3 :class:`boto3.session.Session`; nothing here reads or prints a secret.
- The API's URL is the stack's ``ApiUrl`` output (CloudFormation ``DescribeStacks``), unless ``--api-url``
  (or ``FLEXRESTORE_API_URL``) gives it.
- Every request is signed with botocore's :class:`~botocore.auth.SigV4Auth` for the service ``execute-api``
  in the API's region, and sent with httpx.

Every failure is a :class:`CliError` with a message that says what to do and the exit code that tells it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from flexrestore.cli import exit_codes

SERVICE = "execute-api"
API_URL_OUTPUT = "ApiUrl"
_EXECUTE_API_HOST = re.compile(r"^[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$")
TIMEOUT_SECONDS = 30.0


class CliError(Exception):
    """A failure the command reports in one message and one exit code (never with a secret in it)."""

    def __init__(self, message: str, code: int = exit_codes.TOOL_ERROR, answer: ApiAnswer | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.answer = answer


@dataclass(frozen=True)
class Connection:
    """How to reach the API: ``stack`` to look up, or ``api_url`` directly; AWS ``profile`` and ``region``."""

    stack: str | None
    profile: str | None = None
    region: str | None = None
    api_url: str | None = None


@dataclass(frozen=True)
class ApiAnswer:
    """An HTTP answer of the API: status, headers (names lower-case, last value) and the JSON body."""

    status: int
    headers: Mapping[str, str]
    body: Any

    @property
    def caller_refused(self) -> bool:
        """API Gateway's own 401/403 (signature, credentials, IAM), not an answer of the service, whose
        errors always carry an ``errorCode``."""
        if self.status not in (401, 403):
            return False
        return "x-amzn-errortype" in self.headers or not (
            isinstance(self.body, dict) and "errorCode" in self.body
        )

    @property
    def message(self) -> str:
        body = self.body if isinstance(self.body, dict) else {}
        text = body.get("message") or body.get("Message")
        return str(text) if text else f"HTTP {self.status}"


class Api:
    """A signed client of the restore API."""

    def __init__(self, connection: Connection, *, client: httpx.Client | None = None) -> None:
        import boto3
        from botocore.exceptions import BotoCoreError, ProfileNotFound

        try:
            self.session = boto3.session.Session(
                profile_name=connection.profile, region_name=connection.region
            )
        except ProfileNotFound:
            raise CliError(
                f"no AWS profile named {connection.profile!r} (see `aws configure list-profiles`)",
                exit_codes.TOOL_ERROR,
            ) from None
        try:
            credentials = self.session.get_credentials()
        except BotoCoreError as exc:  # e.g. an expired SSO session, a broken credential_process
            raise CliError(f"cannot load AWS credentials: {exc}", exit_codes.TOOL_ERROR) from None
        if credentials is None:
            raise CliError(
                "no AWS credentials found: pass --profile NAME, set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (with AWS_SESSION_TOKEN for temporary ones), or run "
                "`aws sso login`",
                exit_codes.TOOL_ERROR,
            )
        self._credentials = credentials
        self.base_url = (connection.api_url or self._stack_api_url(connection)).rstrip("/")
        self.region = self._signing_region(self.base_url)
        self._client = client or httpx.Client(timeout=TIMEOUT_SECONDS)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --------------------------------------------------------------------------------- discovery

    def _stack_api_url(self, connection: Connection) -> str:
        from botocore.exceptions import BotoCoreError, ClientError, NoRegionError

        if not connection.stack:
            raise CliError(
                "which stack? pass --stack NAME or set FLEXRESTORE_STACK (or give --api-url)",
                exit_codes.USAGE,
            )
        region = self.session.region_name
        if not region:
            raise CliError(
                "no AWS region: pass --region, set AWS_REGION, or give the profile a region",
                exit_codes.TOOL_ERROR,
            )
        try:
            cloudformation = self.session.client("cloudformation")
            stacks = cloudformation.describe_stacks(StackName=connection.stack)["Stacks"]
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code, message = error.get("Code", ""), error.get("Message", "")
            if code == "ValidationError" and "does not exist" in message:
                raise CliError(
                    f"no CloudFormation stack {connection.stack!r} in {region}: check --stack (or "
                    "FLEXRESTORE_STACK) and --region, or deploy it with `sam deploy`",
                    exit_codes.TOOL_ERROR,
                ) from None
            raise CliError(
                f"cannot read the stack {connection.stack!r} in {region} ({code}): {message}",
                exit_codes.TOOL_ERROR,
            ) from None
        except NoRegionError:
            raise CliError("no AWS region: pass --region or set AWS_REGION", exit_codes.TOOL_ERROR) from None
        except BotoCoreError as exc:
            raise CliError(
                f"cannot read the stack {connection.stack!r} in {region}: {exc}", exit_codes.TOOL_ERROR
            ) from None
        outputs = {o.get("OutputKey"): o.get("OutputValue") for o in (stacks[0].get("Outputs") or [])}
        url = outputs.get(API_URL_OUTPUT)
        if not url:
            raise CliError(
                f"the stack {connection.stack!r} has no {API_URL_OUTPUT} output: is it a flexrestore stack, "
                "and has its deployment finished?",
                exit_codes.TOOL_ERROR,
            )
        return str(url)

    def _signing_region(self, base_url: str) -> str:
        host = httpx.URL(base_url).host
        match = _EXECUTE_API_HOST.match(host)
        if match:
            return match.group(1)  # the API's own region, whatever the profile says
        if self.session.region_name:
            return str(self.session.region_name)
        raise CliError("no AWS region to sign for: pass --region or set AWS_REGION", exit_codes.TOOL_ERROR)

    # ----------------------------------------------------------------------------------- requests

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str | int | None] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> ApiAnswer:
        """One signed request; the answer whatever its status (callers decide what a status means)."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        url = self.base_url + path
        params = {k: str(v) for k, v in (query or {}).items() if v is not None}
        if params:
            url += "?" + urlencode(sorted(params.items()), quote_via=quote)
        data = json.dumps(body, ensure_ascii=False).encode("utf-8") if body is not None else b""
        request = AWSRequest(
            method=method,
            url=url,
            data=data,
            headers={
                "Accept": "application/json",
                **({"Content-Type": "application/json"} if body is not None else {}),
                **dict(headers or {}),
            },
        )
        SigV4Auth(self._credentials.get_frozen_credentials(), SERVICE, self.region).add_auth(request)
        prepared = request.prepare()
        try:
            response = self._client.request(
                method, prepared.url, headers=dict(prepared.headers.items()), content=data
            )
        except httpx.HTTPError as exc:
            raise CliError(
                f"cannot reach the API at {self.base_url}: {type(exc).__name__}: {exc}", exit_codes.TOOL_ERROR
            ) from None
        try:
            parsed: Any = response.json() if response.content else None
        except ValueError:
            parsed = response.text
        return ApiAnswer(response.status_code, {k.lower(): v for k, v in response.headers.items()}, parsed)


def raise_for_answer(answer: ApiAnswer, what: str) -> None:
    """Turn a non-2xx answer into a :class:`CliError` with the right exit code."""
    if 200 <= answer.status < 300:
        return
    if answer.caller_refused:
        unknown_path = " (API Gateway also says this for a path it does not know: check the API URL)"
        raise CliError(
            f"{what}: AWS refused the request ({answer.status} {answer.headers.get('x-amzn-errortype', '')}"
            f"): {answer.message}. The caller needs execute-api:Invoke on this API, and the request "
            "must be signed with valid credentials for the API's region (--profile, --region)"
            + (unknown_path if answer.message == "Missing Authentication Token" else ""),
            exit_codes.NOT_AUTHORIZED,
            answer,
        )
    body = answer.body if isinstance(answer.body, dict) else {}
    code = body.get("errorCode")
    label = f"{answer.status} {code}" if code else str(answer.status)
    details = "".join(
        f"\n  {e.get('field')}: {e.get('message')}" for e in body.get("errors") or [] if isinstance(e, dict)
    )
    retry = answer.headers.get("retry-after")
    hint = f" (retry after {retry} s)" if retry else ""
    if answer.status == 429 and not code:  # API Gateway's throttling: try again later
        raise CliError(
            f"{what}: the API is throttling requests (429): {answer.message}; try again shortly",
            exit_codes.TOOL_ERROR,
            answer,
        )
    if 400 <= answer.status < 500:
        raise CliError(
            f"{what}: refused ({label}): {answer.message}{hint}{details}", exit_codes.REFUSED, answer
        )
    raise CliError(
        f"{what}: the service failed ({label}): {answer.message}{hint}{details}",
        exit_codes.TOOL_ERROR,
        answer,
    )
