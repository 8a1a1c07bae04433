"""The two ways into the simulated Atlas: OAuth 2.0 client credentials (service accounts) and HTTP Digest
(programmatic API keys), as Atlas offers them: a bearer token from ``POST /api/oauth/token`` (Basic auth with
the client id and secret, valid 3600 s), or Digest with realm "MMS Public API" and short-lived nonces. Token
lifetimes run on the simulator clock.

Secrets never leave this module: errors name no credential, and nothing here logs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs
from urllib.request import parse_http_list, parse_keqv_list

from flexrestore.simulator.problems import AtlasProblem

REALM = "MMS Public API"
TOKEN_LIFETIME_SECONDS = 3600
NONCE_LIFETIME_SECONDS = 300.0  # modeled: Atlas nonces are short-lived; clients must accept a fresh challenge
MAX_ACTIVE_TOKENS = 100  # per service account, Atlas's limit (beyond it: 403 access_denied)


@dataclass
class TokenAnswer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Authenticator:
    now: Callable[[], float]
    service_accounts: dict[str, str] = field(default_factory=dict)  # clientId -> clientSecret
    api_keys: dict[str, str] = field(default_factory=dict)  # publicKey -> privateKey
    token_requests: int = 0
    # Off unless set: Atlas limits token requests per IP + client ("limited to 10 requests every 1 minutes").
    token_requests_per_minute: int | None = None
    _token_request_times: dict[str, list[float]] = field(default_factory=dict)
    _tokens: dict[str, tuple[str, float]] = field(default_factory=dict)  # token -> (clientId, expires at)
    _nonces: dict[str, float] = field(default_factory=dict)  # nonce -> issued at
    _seen: set[tuple[str, str, str]] = field(default_factory=set)  # (nonce, nc, cnonce) already used
    _expire_next: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def issued_tokens(self) -> list[str]:
        """Every access token issued so far (for tests that prove none leaks), oldest first."""
        with self.lock:
            return list(self._tokens)

    def can_expire(self, authorization: str | None) -> bool:
        """Whether the credential presented could have expired: a bearer token this endpoint issued, or a
        Digest nonce already used by an earlier call (a nonce just handed out in a challenge cannot)."""
        scheme, _, value = (authorization or "").partition(" ")
        with self.lock:
            if scheme.lower() == "bearer":
                return value.strip() in self._tokens
            if scheme.lower() == "digest":
                nonce = parse_keqv_list(parse_http_list(value)).get("nonce")
                return any(seen[0] == nonce for seen in self._seen)
        return False

    def expire_next_credential(self) -> None:
        """token-expired scenario: the next API call's token (or Digest nonce) is refused once as expired."""
        with self.lock:
            self._expire_next = True

    # -- POST /api/oauth/token -------------------------------------------------------------------------

    def issue_token(self, headers: Mapping[str, str], body: bytes) -> TokenAnswer:
        """Client-credentials grant. Errors use the OAuth 2.0 shape (RFC 6749 §5.2), as Atlas's token
        endpoint does (``error: access_denied`` for the token limit)."""
        with self.lock:
            self.token_requests += 1
            client = _basic_credentials(headers.get("authorization"))
            limited = self._token_rate_limited(client[0] if client else "")
            if limited is not None:
                return limited
            if client is None or not _same(self.service_accounts.get(client[0]), client[1]):
                return TokenAnswer(
                    401, {"error": "invalid_client", "error_description": "Invalid client credentials."}
                )
            media = (headers.get("content-type") or "").split(";")[0].strip().lower()
            form = (
                parse_qs(body.decode("utf-8", "replace"))
                if media == "application/x-www-form-urlencoded"
                else {}
            )
            if form.get("grant_type") != ["client_credentials"]:
                return TokenAnswer(
                    400,
                    {
                        "error": "unsupported_grant_type",
                        "error_description": "Send grant_type=client_credentials as a urlencoded form.",
                    },
                )
            now = self.now()
            active = sum(1 for owner, ends in self._tokens.values() if owner == client[0] and ends > now)
            if active >= MAX_ACTIVE_TOKENS:
                return TokenAnswer(
                    403,
                    {
                        "error": "access_denied",
                        "error_description": "Access Token limit reached for this service account. "
                        "Reuse tokens until they expire.",
                    },
                )
            token = secrets.token_urlsafe(32)
            self._tokens[token] = (client[0], now + TOKEN_LIFETIME_SECONDS)
            return TokenAnswer(
                200, {"access_token": token, "token_type": "Bearer", "expires_in": TOKEN_LIFETIME_SECONDS}
            )

    def _token_rate_limited(self, client_id: str) -> TokenAnswer | None:
        if self.token_requests_per_minute is None:
            return None
        now = self.now()
        recent = [t for t in self._token_request_times.get(client_id, []) if t > now - 60]
        if len(recent) >= self.token_requests_per_minute:
            self._token_request_times[client_id] = recent
            retry_after = max(1, math.ceil(recent[0] + 60 - now))
            problem = AtlasProblem(
                429,
                "RATE_LIMITED",
                f"Resource /api/oauth/token is limited to {self.token_requests_per_minute} requests "
                "every 1 minutes.",
                parameters=["/api/oauth/token", self.token_requests_per_minute, 1],
            )
            return TokenAnswer(429, problem.body(), {"Retry-After": str(retry_after)})
        self._token_request_times[client_id] = [*recent, now]
        return None

    # -- API calls -------------------------------------------------------------------------------------

    def authenticate(
        self, method: str, target: str, authorization: str | None, *, expire: bool = False
    ) -> tuple[str, AtlasProblem | None]:
        """(auth kind, refusal or None) for an API call; ``target`` is the raw request path with query.
        ``expire``: the credential this call presents (bearer token, Digest nonce) is refused as expired."""
        with self.lock:
            pending = self._expire_next
            if expire:
                self._expire_next = True
            try:
                return self._authenticate(method, target, authorization)
            finally:
                if expire and self._expire_next:  # refused for another reason: leave the flag as it was
                    self._expire_next = pending

    def _authenticate(
        self, method: str, target: str, authorization: str | None
    ) -> tuple[str, AtlasProblem | None]:
        scheme, _, value = (authorization or "").partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer":
            return "bearer", self._check_bearer(value.strip())
        if scheme == "digest":
            return "digest", self._check_digest(method, target, value)
        kind = "basic" if scheme == "basic" else "none"
        return kind, self._unauthorized("You are not authorized for this resource.", challenge=True)

    def _check_bearer(self, token: str) -> AtlasProblem | None:
        entry = self._tokens.get(token)
        now = self.now()
        if entry is None or entry[1] <= now:
            return self._expired()
        if self._expire_next:
            self._expire_next = False
            self._tokens[token] = (entry[0], now)
            return self._expired()
        return None

    def _expired(self) -> AtlasProblem:
        problem = self._unauthorized("Invalid or expired access token.", challenge=False)
        problem.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        return problem

    def _check_digest(self, method: str, target: str, value: str) -> AtlasProblem | None:
        fields = parse_keqv_list(parse_http_list(value))
        wanted = ("username", "realm", "nonce", "uri", "response", "qop", "nc", "cnonce")
        if any(name not in fields for name in wanted) or fields["qop"] != "auth" or fields["realm"] != REALM:
            return self._unauthorized("Malformed Digest authorization.", challenge=True)
        if fields.get("algorithm", "MD5").upper() != "MD5":
            return self._unauthorized("Unsupported Digest algorithm; use MD5.", challenge=True)
        issued = self._nonces.get(fields["nonce"])
        if issued is None:
            return self._unauthorized("Unknown Digest nonce.", challenge=True)
        if self.now() - issued > NONCE_LIFETIME_SECONDS or self._expire_next:
            self._expire_next = False
            self._nonces.pop(fields["nonce"], None)
            return self._unauthorized("Digest nonce expired.", challenge=True, stale=True)
        if fields["uri"] != target:
            return self._unauthorized("Digest uri does not match the request.", challenge=True)
        password = self.api_keys.get(fields["username"])
        if password is None:
            return self._unauthorized("You are not authorized for this resource.", challenge=True)
        ha1 = _md5(f"{fields['username']}:{REALM}:{password}")
        ha2 = _md5(f"{method}:{fields['uri']}")
        expected = _md5(f"{ha1}:{fields['nonce']}:{fields['nc']}:{fields['cnonce']}:auth:{ha2}")
        if not hmac.compare_digest(expected, fields["response"].lower()):
            return self._unauthorized("You are not authorized for this resource.", challenge=True)
        use = (fields["nonce"], fields["nc"], fields["cnonce"])
        if use in self._seen:
            return self._unauthorized("Digest nonce count replayed.", challenge=True)
        self._seen.add(use)
        return None

    def _unauthorized(self, detail: str, *, challenge: bool, stale: bool = False) -> AtlasProblem:
        problem = AtlasProblem(401, "UNAUTHORIZED", detail)
        if challenge:
            now = self.now()
            for nonce, issued in list(self._nonces.items()):
                if now - issued > NONCE_LIFETIME_SECONDS:
                    del self._nonces[nonce]
            nonce = secrets.token_hex(16)
            self._nonces[nonce] = now
            stale_part = ", stale=TRUE" if stale else ""
            problem.headers["WWW-Authenticate"] = (
                f'Digest realm="{REALM}", domain="", nonce="{nonce}", algorithm=MD5, qop="auth"{stale_part}'
            )
        return problem


def _basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    scheme, _, value = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def _same(expected: str | None, given: str) -> bool:
    return expected is not None and hmac.compare_digest(expected.encode(), given.encode())


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()
