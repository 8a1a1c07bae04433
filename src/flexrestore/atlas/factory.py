"""The Atlas client a Lambda container uses: built on first use from settings and the secret, then reused
(its OAuth token is cached per container too). A rotated secret is picked up once powertools' secret
cache expires: the client is rebuilt when the secret's value changes."""

from __future__ import annotations

import hashlib

from flexrestore.atlas.client import AtlasClient, Credentials
from flexrestore.aws import secrets
from flexrestore.settings import get_settings

_cached: tuple[str, AtlasClient] | None = None


def get_atlas_client() -> AtlasClient:
    global _cached
    settings = get_settings()
    secret_id = settings.require("atlas_secret_id")
    secret_string = secrets.get_secret_string(secret_id)
    # A digest, so the cache key never holds the secret itself.
    fingerprint = hashlib.sha256(f"{settings.atlas_base_url}\0{secret_string}".encode()).hexdigest()
    if _cached is None or _cached[0] != fingerprint:
        credentials = Credentials.from_secret(secret_id, secret_string)
        client = AtlasClient(
            settings.atlas_base_url,
            credentials,
            timeout=settings.atlas_timeout_seconds,
        )
        if _cached is not None:
            _cached[1].close()  # the rotated-out client's connections
        _cached = (fingerprint, client)
    return _cached[1]


def reset() -> None:
    global _cached
    _cached = None
    secrets.reset()
