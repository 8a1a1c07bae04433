"""The offline stack the intake's integration tests run on (a test module may define its own ``stack``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from flexrestore.clock import VirtualClock
from flexrestore.local.harness import OfflineStack
from tests.integration.intake_support import RECOVERY_PLANS


@pytest.fixture
def stack() -> Iterator[OfflineStack]:
    """moto + the real state machine + the Atlas simulator ("ok") on a virtual clock, with the sample
    alarm's recovery plan configured."""
    with OfflineStack(
        scenario="ok", clock=VirtualClock(), env_overrides={"RECOVERY_PLANS": RECOVERY_PLANS}
    ) as s:
        yield s
