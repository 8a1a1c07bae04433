"""The Atlas client a Lambda container uses: built on first use from settings and the secret, then reused
(its OAuth token is cached per container too)."""

from __future__ import annotations

from functools import cache

from flexrestore.atlas.client import AtlasClient, Credentials
from flexrestore.aws import secrets
from flexrestore.settings import get_settings


@cache
def get_atlas_client() -> AtlasClient:
    settings = get_settings()
    secret_id = settings.require("atlas_secret_id")
    credentials = Credentials.from_secret(secret_id, secrets.get_secret_string(secret_id))
    return AtlasClient(settings.atlas_base_url, credentials, timeout=settings.atlas_timeout_seconds)


def reset() -> None:
    get_atlas_client.cache_clear()
    secrets.reset()
