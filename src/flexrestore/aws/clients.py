"""Lazily built, per-container boto3 clients.

Clients are never created at import time: a client built before a test's moto mock starts is never
mocked, and importing boto3 is a large part of a cold start. ``reset()`` clears the cache (tests).
"""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def client(service: str) -> Any:
    import boto3  # deferred: ~150 ms of import that only the paths using AWS pay
    from botocore.config import Config

    # Standard retry mode: exponential back-off with jitter on throttling and 5xx, bounded attempts.
    config = Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=5, read_timeout=10)
    return boto3.client(service, config=config)  # type: ignore[call-overload]


def reset() -> None:
    client.cache_clear()
