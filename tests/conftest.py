"""Shared fixtures: every test starts with fresh settings, fresh AWS clients, no cached Atlas token and the
system clock."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from flexrestore import clock
from flexrestore.atlas.auth import reset_token_cache
from flexrestore.aws import clients
from flexrestore.settings import get_settings


@pytest.fixture(autouse=True, scope="session")
def _boto3_clients_built_once() -> Iterator[None]:
    """Building a boto3 client costs about 15 ms and every offline stack builds its own (aws/clients.py is
    reset per stack and per test): thousands in the suite. A client keeps no AWS state (moto's backends
    do, fresh per stack, and moto intercepts every client built after it was imported), so one client per
    service, settings and environment serves every test; the code still asks for its clients lazily."""
    import os

    import boto3

    original = boto3.client
    built: dict[str, Any] = {}
    environment = ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    environment += ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL")

    def client(*args: Any, **kwargs: Any) -> Any:
        config = kwargs.get("config")
        options = sorted(getattr(config, "_user_provided_options", {}).items()) if config else None
        settings = {k: v for k, v in kwargs.items() if k != "config"}
        key = repr((args, sorted(settings.items()), options, [os.environ.get(n) for n in environment]))
        if key not in built:
            built[key] = original(*args, **kwargs)
        return built[key]

    boto3.client = client  # type: ignore[assignment]
    yield
    boto3.client = original  # type: ignore[assignment]


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
    reset_token_cache()
    previous = clock.current()
    yield
    clock.use(previous)
    get_settings.cache_clear()
    clients.reset()
    reset_token_cache()


@pytest.fixture
def vclock() -> clock.VirtualClock:
    """A virtual clock installed process-wide for the test (the autouse fixture puts the old one back)."""
    virtual = clock.VirtualClock()
    clock.use(virtual)
    return virtual


@pytest.fixture(autouse=True)
def _every_atlas_call_follows_the_spec(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Suite-wide: every simulator a test starts must end with zero spec violations and zero simulator
    errors, unless the test is marked ``spec_violations_expected`` (tests of the simulator's own checks)."""
    from flexrestore.simulator import AtlasSimulator

    started: list[AtlasSimulator] = []
    original_init = AtlasSimulator.__init__

    def tracking_init(self: AtlasSimulator, *args: object, **kwargs: object) -> None:
        original_init(self, *args, **kwargs)  # type: ignore[arg-type]
        started.append(self)

    monkeypatch.setattr(AtlasSimulator, "__init__", tracking_init)
    yield
    if request.node.get_closest_marker("spec_violations_expected"):
        return
    violations = [
        f"{call.method} {call.path}: {call.violation}" for sim in started for call in sim.violations
    ]
    errors = [error for sim in started for error in sim.errors]
    assert not violations, f"requests that break the Atlas spec: {violations}"
    assert not errors, f"simulator errors: {errors}"


@pytest.fixture(autouse=True)
def _every_api_answer_is_documented(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Suite-wide: every answer the intake gives an API request on an offline stack (through ``invoke`` or
    the offline front) is one docs/openapi.json lists for its operation: status, headers, body schema."""
    from flexrestore.local.harness import OfflineStack
    from tests.published import assert_documented_answer

    problems: list[str] = []
    original = OfflineStack._call_handler

    def checked(self: OfflineStack, short_name: str, event: Any) -> Any:
        result = original(self, short_name, event)
        if short_name == "intake" and isinstance(event, dict) and "httpMethod" in event:
            try:
                assert_documented_answer(event, result)
            except AssertionError as exc:
                problems.append(str(exc))
        return result

    monkeypatch.setattr(OfflineStack, "_call_handler", checked)
    yield
    assert not problems, f"answers docs/openapi.json does not describe: {problems}"


# --- the fault matrix's table at the end of the run (tests/faults/report.py) ------------------------------


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    from tests.faults import report as matrix

    matrix.runtest_logreport(report)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    from tests.faults import report as matrix

    matrix.terminal_summary(terminalreporter)
