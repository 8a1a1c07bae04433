"""An API Gateway stand-in for the offline stack: a signed HTTP front on loopback, so the ``flexrestore``
command (or curl) can be tested end to end without AWS.

    with OfflineStack(clock=VirtualClock()) as stack, OfflineFront(stack) as front:
        front.api_url            # http://127.0.0.1:<port>/v1, what the stack output ApiUrl would say

It is a REST API with AWS_IAM authorization and the stage ``v1``, as template.yaml deploys it. Each request is
checked the way API Gateway checks SigV4 (service ``execute-api``) before anything else:

- no ``Authorization`` header: 403 ``Missing Authentication Token``;
- an ``Authorization`` header that is not ``AWS4-HMAC-SHA256 Credential=..., SignedHeaders=...,
  Signature=...`` or no ``X-Amz-Date``/``Date``: 403 with API Gateway's wording
  (``IncompleteSignatureException``);
- a credential scoped to another region, service, date or terminator: 403 naming what is wrong;
- an ``X-Amz-Date`` more than 5 minutes from now (real time): 403 ``Signature expired`` (or not yet current);
- an access key not in the front's table of principals, or a session token that does not go with it: 403
  ``The security token included in the request is invalid.`` (``UnrecognizedClientException``);
- a signature that differs from the one botocore computes from the request and the principal's secret
  (only the signed headers, the path, the query and the body's SHA-256 count): 403 ``The request signature
  we calculated does not match ...`` (``InvalidSignatureException``);
- a principal without ``execute-api:Invoke`` (``may_invoke=False``): 403 ``User: <arn> is not authorized to
  perform: execute-api:Invoke on resource: ...`` (``AccessDeniedException``).

A request that passes becomes an API Gateway REST proxy event (the shape of ``events/api-*.json``, with
``requestContext.identity.userArn`` = the principal's ARN) for ``stack.invoke("intake", event)``, and the
handler's answer is written back: status, ``headers`` and ``multiValueHeaders``, body. A handler that raises
is API Gateway's 502 ``Internal server error``. Paths outside the stage get 403 ``Forbidden``. Unlike API
Gateway, which answers a path or method it has no resource for with 403 ``Missing Authentication Token``,
the front hands every signed request to the intake, whose not-found route answers it (404 ``NOT_FOUND``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from flexrestore import clock
from flexrestore.local.harness import ACCOUNT_ID, REGION

SERVICE = "execute-api"
STAGE = "v1"
API_ID = "a1b2c3d4e5"
MAX_SKEW = timedelta(minutes=5)
AMZ_DATE = "%Y%m%dT%H%M%SZ"

# The API's resources, as template.yaml declares them: (resource, pattern of the path after the stage).
RESOURCES = (
    ("/restores", re.compile(r"/restores/?")),
    ("/restores/{restoreId}", re.compile(r"/restores/(?P<restoreId>[^/]+)")),
    ("/plans", re.compile(r"/plans/?")),
    ("/plans/{name}", re.compile(r"/plans/(?P<name>[^/]+)")),
    ("/plans/{name}/runs", re.compile(r"/plans/(?P<name>[^/]+)/runs/?")),
    ("/runs", re.compile(r"/runs/?")),
    ("/runs/{runId}", re.compile(r"/runs/(?P<runId>[^/]+)")),
)


@dataclass(frozen=True)
class Principal:
    """An IAM identity the front knows: its access key, secret, ARN, and whether it may invoke the API."""

    access_key_id: str
    secret_access_key: str
    arn: str
    session_token: str | None = None  # temporary credentials: the request must carry this token
    may_invoke: bool = True


# Test principals (made-up keys in AWS's documented example style; they open nothing anywhere).
OPERATOR = Principal(
    "AKIAOPERATOREXAMPLE1",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYOPERATOR1",
    f"arn:aws:iam::{ACCOUNT_ID}:user/operator",
)
ASSUMED_OPERATOR = Principal(
    "ASIAOPERATOREXAMPLE2",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYOPERATOR2",
    f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/flexrestore-operator/alice",
    session_token="IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN",
)
AUDITOR = Principal(  # signs correctly, but has no execute-api:Invoke on the API
    "AKIAAUDITOREXAMPLE03",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYAUDITOR03",
    f"arn:aws:iam::{ACCOUNT_ID}:user/auditor",
    may_invoke=False,
)
PRINCIPALS = (OPERATOR, ASSUMED_OPERATOR, AUDITOR)


@dataclass(frozen=True)
class Refusal:
    """What API Gateway answers instead of calling the integration."""

    status: int
    error_type: str
    body: dict[str, str]


@dataclass
class FrontCall:
    """One request the front answered (for tests)."""

    method: str
    path: str
    status: int
    principal: str | None  # the caller's ARN once the signature was verified


@dataclass
class _Signed:
    principal: Principal
    amz_date: str


def _last(headers: dict[str, list[str]], name: str) -> str | None:
    values = headers.get(name)
    return values[-1] if values else None


def _missing_token() -> Refusal:
    return Refusal(403, "MissingAuthenticationTokenException", {"message": "Missing Authentication Token"})


def _incomplete(message: str) -> Refusal:
    return Refusal(403, "IncompleteSignatureException", {"message": message})


class SigV4Verifier:
    """API Gateway's checks of an IAM-signed request, with the signature recomputed by botocore."""

    def __init__(
        self,
        principals: tuple[Principal, ...] | list[Principal],
        region: str = REGION,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.principals = {p.access_key_id: p for p in principals}
        self.region = region
        self.now = now or (lambda: datetime.now(UTC))

    def verify(self, method: str, url: str, headers: list[tuple[str, str]], body: bytes) -> _Signed | Refusal:
        lower: dict[str, list[str]] = {}
        for name, value in headers:
            lower.setdefault(name.lower(), []).append(value)
        authorization = (lower.get("authorization") or [""])[-1].strip()
        if not authorization:
            return _missing_token()
        parsed = self._parse_authorization(authorization, lower)
        if isinstance(parsed, Refusal):
            return parsed
        credential, signed_headers, signature, amz_date = parsed

        scope = credential.split("/")
        if len(scope) != 5:
            return _incomplete(
                f"Credential should be scoped to a valid region, not '{scope[2] if len(scope) > 2 else ''}'. "
            )
        access_key, date, region, service, terminator = scope
        if region != self.region:
            return _incomplete(f"Credential should be scoped to a valid region, not '{region}'. ")
        if service != SERVICE:
            return _incomplete(f"Credential should be scoped to correct service: '{SERVICE}'. ")
        if terminator != "aws4_request":
            return _incomplete(
                f"Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'. "
            )
        try:
            signed_at = datetime.strptime(amz_date, AMZ_DATE).replace(tzinfo=UTC)
        except ValueError:
            return _incomplete(f"Date must be in ISO-8601 'basic format'. Got '{amz_date}'. ")
        if date != amz_date[:8]:
            return _incomplete(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
                f"'{date}' != '{amz_date[:8]}', from '{amz_date}'."
            )
        now = self.now()
        if signed_at < now - MAX_SKEW:
            return Refusal(
                403,
                "InvalidSignatureException",
                {
                    "message": f"Signature expired: {amz_date} is now earlier than "
                    f"{(now - MAX_SKEW).strftime(AMZ_DATE)} ({now.strftime(AMZ_DATE)} - 5 min.)"
                },
            )
        if signed_at > now + MAX_SKEW:
            return Refusal(
                403,
                "InvalidSignatureException",
                {
                    "message": f"Signature not yet current: {amz_date} is still later than "
                    f"{(now + MAX_SKEW).strftime(AMZ_DATE)} ({now.strftime(AMZ_DATE)} + 5 min.)"
                },
            )

        principal = self.principals.get(access_key)
        token = _last(lower, "x-amz-security-token")
        if principal is None or (principal.session_token or None) != token:
            return Refusal(
                403,
                "UnrecognizedClientException",
                {"message": "The security token included in the request is invalid."},
            )
        expected = self._signature(principal, method, url, lower, signed_headers, body, amz_date)
        if expected is None or not hmac.compare_digest(expected, signature):
            return Refusal(
                403,
                "InvalidSignatureException",
                {
                    "message": "The request signature we calculated does not match the signature you "
                    "provided. Check your AWS Secret Access Key and signing method. Consult the service "
                    "documentation for details."
                },
            )
        return _Signed(principal, amz_date)

    @staticmethod
    def _parse_authorization(
        authorization: str, lower: dict[str, list[str]]
    ) -> tuple[str, list[str], str, str] | Refusal:
        algorithm, _, rest = authorization.partition(" ")
        parameters: dict[str, str] = {}
        for part in (p.strip() for p in rest.split(",")):
            if not part:
                continue
            if "=" not in part:
                return _incomplete(
                    f"'{part}' not a valid key=value pair (missing equal-sign) in Authorization header: "
                    f"'{authorization}'."
                )
            key, _, value = part.partition("=")
            parameters[key.strip()] = value.strip()
        amz_date = (lower.get("x-amz-date") or [""])[-1]
        if not amz_date and lower.get("date"):
            # API Gateway accepts a Date header instead; in the RFC 7231 form it is not ISO-8601 basic.
            amz_date = lower["date"][-1]
        missing = [
            f"Authorization header requires '{name}' parameter."
            for name in ("Credential", "Signature", "SignedHeaders")
            if not parameters.get(name)
        ]
        if not amz_date:
            missing.append(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
            )
        if algorithm != "AWS4-HMAC-SHA256" and not missing:
            missing.append(f"Unsupported Authorization Type: '{algorithm}'.")
        if missing:
            return _incomplete(" ".join(missing) + f" Authorization={authorization}")
        return (
            parameters["Credential"],
            parameters["SignedHeaders"].split(";"),
            parameters["Signature"],
            amz_date,
        )

    def _signature(
        self,
        principal: Principal,
        method: str,
        url: str,
        lower: dict[str, list[str]],
        signed_headers: list[str],
        body: bytes,
        amz_date: str,
    ) -> str | None:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        if "host" not in signed_headers or any(name not in lower for name in signed_headers):
            return None  # a header it says it signed is not there: nothing can match
        claimed = _last(lower, "x-amz-content-sha256")
        if claimed is not None and claimed != hashlib.sha256(body).hexdigest():
            return None  # execute-api signs the payload itself: no UNSIGNED-PAYLOAD, no other body
        request = AWSRequest(
            method=method,
            url=url,
            data=body,
            headers={name: ",".join(v.strip() for v in lower[name]) for name in signed_headers},
        )
        request.context["timestamp"] = amz_date
        auth = SigV4Auth(
            Credentials(principal.access_key_id, principal.secret_access_key, principal.session_token),
            SERVICE,
            self.region,
        )
        canonical = auth.canonical_request(request)
        # botocore lists the headers it signs from the request; make sure they are exactly the claimed ones.
        if auth.signed_headers(auth.headers_to_sign(request)) != ";".join(signed_headers):
            return None
        return str(auth.signature(auth.string_to_sign(request, canonical), request))


@dataclass
class OfflineFront:
    """A ThreadingHTTPServer on 127.0.0.1 (a free port) in front of ``stack``'s intake. A context manager."""

    stack: Any
    principals: tuple[Principal, ...] | list[Principal] = PRINCIPALS
    region: str = REGION
    stage: str = STAGE
    now: Callable[[], datetime] | None = None
    calls: list[FrontCall] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the front is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def api_url(self) -> str:
        """What the stack's ApiUrl output holds: the base URL and the stage."""
        return f"{self.url}/{self.stage}"

    def start(self) -> str:
        verifier = SigV4Verifier(self.principals, self.region, self.now)
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                front._serve(self, verifier)

            do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the calls are in front.calls

            def date_time_string(self, timestamp: float | None = None) -> str:
                # API Gateway's Date is the time the handlers see too: here the stack's (virtual) clock.
                return formatdate(clock.current().now() if timestamp is None else timestamp, usegmt=True)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},  # stop() waits up to one interval; the default is half a second
            daemon=True,
            name="offline-front",
        )
        self._thread.start()
        return self.api_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> OfflineFront:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ------------------------------------------------------------------------------------- requests

    def _serve(self, request: BaseHTTPRequestHandler, verifier: SigV4Verifier) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length > 0 else b""
        raw_path = request.path
        split = urlsplit(raw_path)
        path = split.path
        headers = list(request.headers.items())
        stage_prefix = f"/{self.stage}"
        principal: Principal | None = None
        if path != stage_prefix and not path.startswith(stage_prefix + "/"):
            status, answer_headers, answer_body = self._refusal(
                Refusal(403, "ForbiddenException", {"message": "Forbidden"})
            )
        else:
            host = request.headers.get("Host") or self.url.removeprefix("http://")
            verdict = verifier.verify(request.command, f"http://{host}{raw_path}", headers, body)
            if isinstance(verdict, Refusal):
                status, answer_headers, answer_body = self._refusal(verdict)
            elif not verdict.principal.may_invoke:
                principal = verdict.principal
                resource = (
                    f"arn:aws:execute-api:{self.region}:********{ACCOUNT_ID[-4:]}:{API_ID}/{self.stage}/"
                    f"{request.command}{path.removeprefix(stage_prefix) or '/'}"
                )
                status, answer_headers, answer_body = self._refusal(
                    Refusal(
                        403,
                        "AccessDeniedException",
                        {
                            "Message": f"User: {principal.arn} is not authorized to perform: "
                            f"execute-api:Invoke on resource: {resource}"
                        },
                    )
                )
            else:
                principal = verdict.principal
                event = self._event(
                    request, path.removeprefix(stage_prefix) or "/", split.query, headers, body, principal
                )
                status, answer_headers, answer_body = self._integration(event)
        self.calls.append(FrontCall(request.command, raw_path, status, principal.arn if principal else None))
        request.send_response(status)
        for name, value in answer_headers:
            request.send_header(name, value)
        request.send_header("Content-Length", str(len(answer_body)))
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(answer_body)

    def _refusal(self, refusal: Refusal) -> tuple[int, list[tuple[str, str]], bytes]:
        headers = [
            ("Content-Type", "application/json"),
            ("x-amzn-RequestId", str(uuid.uuid4())),
            ("x-amzn-ErrorType", refusal.error_type),
        ]
        return refusal.status, headers, json.dumps(refusal.body).encode()

    def _event(
        self,
        request: BaseHTTPRequestHandler,
        path: str,
        query: str,
        headers: list[tuple[str, str]],
        body: bytes,
        principal: Principal,
    ) -> dict[str, Any]:
        resource, path_parameters = path, None
        for template, pattern in RESOURCES:
            match = pattern.fullmatch(path)
            if match:
                resource, path_parameters = template, (match.groupdict() or None)
                break
        multi_headers: dict[str, list[str]] = {}
        for name, value in headers:
            multi_headers.setdefault(name, []).append(value)
        multi_query: dict[str, list[str]] = {}
        for name, value in parse_qsl(query, keep_blank_values=True):
            multi_query.setdefault(name, []).append(value)
        try:
            text: str | None = body.decode("utf-8") if body else None
            encoded = False
        except UnicodeDecodeError:
            text, encoded = base64.b64encode(body).decode("ascii"), True
        now = datetime.now(UTC)
        request_id = str(uuid.uuid4())
        user_agent = request.headers.get("User-Agent")
        source_ip = str(request.client_address[0])
        return {
            "resource": resource,
            "path": path,
            "httpMethod": request.command,
            "headers": {name: values[-1] for name, values in multi_headers.items()} or None,
            "multiValueHeaders": multi_headers or None,
            "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": path_parameters,
            "stageVariables": None,
            "requestContext": {
                "resourceId": "offline",
                "resourcePath": resource,
                "httpMethod": request.command,
                "extendedRequestId": request_id[:16],
                "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "path": f"/{self.stage}{path}",
                "accountId": ACCOUNT_ID,
                "protocol": request.request_version,
                "stage": self.stage,
                "domainPrefix": API_ID,
                "requestTimeEpoch": int(now.timestamp() * 1000),
                "requestId": request_id,
                "identity": {
                    "cognitoIdentityPoolId": None,
                    "accountId": ACCOUNT_ID,
                    "cognitoIdentityId": None,
                    "caller": principal.arn.rsplit("/", 1)[-1],
                    "sourceIp": source_ip,
                    "principalOrgId": None,
                    "accessKey": principal.access_key_id,
                    "cognitoAuthenticationType": None,
                    "cognitoAuthenticationProvider": None,
                    "userArn": principal.arn,
                    "userAgent": user_agent,
                    "user": principal.arn.rsplit("/", 1)[-1],
                },
                "domainName": f"{API_ID}.execute-api.{self.region}.amazonaws.com",
                "apiId": API_ID,
            },
            "body": text,
            "isBase64Encoded": encoded,
        }

    def _integration(self, event: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
        request_id = event["requestContext"]["requestId"]
        try:
            answer = self.stack.invoke("intake", event)
        except Exception:  # the Lambda failed: API Gateway answers 502
            return (
                502,
                [("Content-Type", "application/json"), ("x-amzn-RequestId", request_id)],
                json.dumps({"message": "Internal server error"}).encode(),
            )
        if not isinstance(answer, dict) or not isinstance(answer.get("statusCode"), int):
            return (
                502,
                [("Content-Type", "application/json"), ("x-amzn-RequestId", request_id)],
                json.dumps({"message": "Internal server error"}).encode(),
            )
        headers: list[tuple[str, str]] = [("x-amzn-RequestId", request_id)]
        seen = set()
        for name, values in (answer.get("multiValueHeaders") or {}).items():
            for value in values if isinstance(values, list | tuple) else [values]:
                headers.append((str(name), str(value)))
            seen.add(str(name).lower())
        for name, value in (answer.get("headers") or {}).items():
            if str(name).lower() not in seen:
                headers.append((str(name), str(value)))
        body = answer.get("body") or ""
        raw = base64.b64decode(body) if answer.get("isBase64Encoded") else str(body).encode("utf-8")
        return int(answer["statusCode"]), headers, raw
