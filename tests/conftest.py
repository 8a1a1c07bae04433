"""Shared fixtures: every test starts with fresh settings, fresh AWS clients and the system clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from flexrestore import clock
from flexrestore.aws import clients
from flexrestore.settings import get_settings


@pytest.fixture(autouse=True)
def _fresh_process_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Fake AWS credentials so nothing can ever reach a real account.
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_METRICS_NAMESPACE": "FlexRestore",
        "POWERTOOLS_SERVICE_NAME": "flexrestore",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    clients.reset()
    previous = clock.current()
    yield
    clock.use(previous)
    get_settings.cache_clear()
    clients.reset()
