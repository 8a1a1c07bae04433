"""Atlas credentials and the per-container OAuth token cache.

Two credential kinds, chosen by the shape of the secret (docs/contracts.md, "Configuration"):

* service account ``{"clientId", "clientSecret"}``: OAuth 2.0 client credentials. Atlas allows 100 live
  tokens per service account and about 10 token requests a minute, so a token is fetched once and shared
  by every :class:`~flexrestore.atlas.client.AtlasClient` in the container (module-level cache keyed by
  base URL + client id) until shortly before it expires;
* programmatic API key ``{"publicKey", "privateKey"}``: HTTP Digest (``httpx.DigestAuth``).

Nothing here ever puts a credential value or a token into a message, a repr or a log line.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import SecretStr

from flexrestore.atlas.errors import AtlasCredentialsError

CredentialKind = Literal["service_account", "api_key"]

_SERVICE_ACCOUNT_FIELDS = ("clientId", "clientSecret")
_API_KEY_FIELDS = ("publicKey", "privateKey")

# A token is not used in its last minute: a call started just before expiry must not arrive just after it.
TOKEN_EXPIRY_MARGIN_SECONDS = 60.0
# Atlas documents 3600 s; used only if the token response leaves expires_in out.
DEFAULT_TOKEN_LIFETIME_SECONDS = 3600.0


@dataclass(frozen=True, repr=False)
class Credentials:
    """Atlas credentials read from one secret. ``repr``/``str`` show the secret id and kind, never values."""

    secret_id: str
    kind: CredentialKind
    key_id: SecretStr
    """clientId (service account) or publicKey (API key)."""
    key_secret: SecretStr = field(compare=False)
    """clientSecret (service account) or privateKey (API key)."""

    @classmethod
    def service_account(
        cls,
        client_id: str,
        client_secret: str,
        *,
        secret_id: str = "<inline>",  # noqa: S107 - a label
    ) -> Credentials:
        return cls(secret_id, "service_account", SecretStr(client_id), SecretStr(client_secret))

    @classmethod
    def api_key(
        cls,
        public_key: str,
        private_key: str,
        *,
        secret_id: str = "<inline>",  # noqa: S107 - a label
    ) -> Credentials:
        return cls(secret_id, "api_key", SecretStr(public_key), SecretStr(private_key))

    @classmethod
    def from_secret(cls, secret_id: str, secret_string: str | None) -> Credentials:
        """Parse the secret's JSON. Any problem → :class:`AtlasCredentialsError` naming ``secret_id`` only."""
        expected = "must hold {clientId, clientSecret} or {publicKey, privateKey}"
        if secret_string is None or not secret_string.strip():
            raise AtlasCredentialsError(f"secret {secret_id!r} is empty; it {expected}")
        try:
            data: Any = json.loads(secret_string)
        except ValueError:
            # The decoder's message can quote part of the text: leave it out.
            raise AtlasCredentialsError(f"secret {secret_id!r} is not valid JSON; it {expected}") from None
        if not isinstance(data, dict):
            raise AtlasCredentialsError(f"secret {secret_id!r} is not a JSON object; it {expected}")

        has_service_account = any(name in data for name in _SERVICE_ACCOUNT_FIELDS)
        has_api_key = any(name in data for name in _API_KEY_FIELDS)
        if has_service_account and has_api_key:
            raise AtlasCredentialsError(
                f"secret {secret_id!r} mixes service-account and API-key fields; it {expected}, not both"
            )
        if not has_service_account and not has_api_key:
            raise AtlasCredentialsError(f"secret {secret_id!r} {expected}")

        names = _SERVICE_ACCOUNT_FIELDS if has_service_account else _API_KEY_FIELDS
        values: list[str] = []
        for name in names:
            value = data.get(name)
            if name not in data:
                raise AtlasCredentialsError(f"secret {secret_id!r} lacks field {name!r}; it {expected}")
            if not isinstance(value, str):
                raise AtlasCredentialsError(f"secret {secret_id!r}: field {name!r} must be a string")
            if not value.strip():
                raise AtlasCredentialsError(f"secret {secret_id!r}: field {name!r} must not be empty")
            values.append(value.strip())
        kind: CredentialKind = "service_account" if has_service_account else "api_key"
        return cls(secret_id, kind, SecretStr(values[0]), SecretStr(values[1]))

    def __repr__(self) -> str:
        return f"Credentials(secret_id={self.secret_id!r}, kind={self.kind!r})"

    __str__ = __repr__

    @property
    def secret_values(self) -> tuple[str, str]:
        """Both values, for the auth code only (and for tests that prove they leak nowhere)."""
        return self.key_id.get_secret_value(), self.key_secret.get_secret_value()


@dataclass
class _CachedToken:
    access_token: str = field(repr=False)
    expires_at: float


class TokenCache:
    """Thread-safe store of OAuth access tokens, one per (base URL, client id)."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str], _CachedToken] = {}
        self._guard = threading.Lock()
        self._key_locks: dict[tuple[str, str], threading.Lock] = {}

    def lock_for(self, key: tuple[str, str]) -> threading.Lock:
        """A lock per key, held while fetching: concurrent threads wait for one fetch, not mint many."""
        with self._guard:
            return self._key_locks.setdefault(key, threading.Lock())

    def get(self, key: tuple[str, str], *, now: float) -> str | None:
        with self._guard:
            token = self._tokens.get(key)
        if token is None or now >= token.expires_at:
            return None
        return token.access_token

    def put(self, key: tuple[str, str], access_token: str, *, expires_in: float, now: float) -> None:
        margin = min(TOKEN_EXPIRY_MARGIN_SECONDS, expires_in / 2)
        with self._guard:
            self._tokens[key] = _CachedToken(access_token, now + expires_in - margin)

    def invalidate(self, key: tuple[str, str], access_token: str) -> None:
        """Drop the token only if it is still the one that failed (another thread may have replaced it)."""
        with self._guard:
            token = self._tokens.get(key)
            if token is not None and token.access_token == access_token:
                del self._tokens[key]

    def clear(self) -> None:
        with self._guard:
            self._tokens.clear()


# One cache per container (module level), shared by every AtlasClient.
token_cache = TokenCache()


def reset_token_cache() -> None:
    """Forget every cached token (tests; a container never needs it)."""
    token_cache.clear()
