"""The poll loop's Lambdas one call at a time, on the offline stack (moto + Atlas simulator, virtual clock):
live progress, tolerance of a DynamoDB outage while polling, undocumented statuses, idempotent recording,
metrics, and EventBridge refusing an entry."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.stub import Stubber

from flexrestore.atlas.errors import AtlasUnavailable
from flexrestore.aws import clients
from flexrestore.aws.notifier import Notifier, OutcomeEventRejected
from flexrestore.clock import VirtualClock
from flexrestore.contracts import ErrorInfo, InvalidExecutionInput
from flexrestore.contracts.events import OutcomeEvent
from flexrestore.domain.errors import RestoreStillRunning
from flexrestore.local.harness import OfflineStack
from flexrestore.settings import get_settings
from flexrestore.simulator import RateLimit
from tests.e2e.support import StartedRestore, start_restore

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def stack(clock: VirtualClock) -> Iterator[OfflineStack]:
    with OfflineStack(scenario="ok", clock=clock) as offline:
        yield offline


@pytest.fixture
def restore(stack: OfflineStack) -> Iterator[StartedRestore]:
    # No execution: the test is the loop, calling the Lambdas at times of its choosing.
    yield start_restore(stack, execute=False)


def poll(stack: OfflineStack, restore: StartedRestore) -> dict[str, Any]:
    result: dict[str, Any] = stack.invoke("poll", restore.execution_input)
    return result


def test_each_new_status_is_added_once_to_the_timeline(
    stack: OfflineStack, restore: StartedRestore, clock: VirtualClock
) -> None:
    clock.advance(10)  # scheduled at +5 s, QUEUED for 10 s
    for _ in range(2):
        with pytest.raises(RestoreStillRunning, match=f"restore job {restore.job_id} is QUEUED"):
            poll(stack, restore)
    clock.advance(60)
    assert poll(stack, restore)["finalStatus"] == "COMPLETED"
    record = stack.record(restore.restore_id)
    assert record is not None
    assert [entry["status"] for entry in record["timeline"]] == ["PENDING", "QUEUED", "COMPLETED"]
    assert record["status"] == "COMPLETED"


def test_a_dynamodb_outage_does_not_stop_the_polling(
    stack: OfflineStack, restore: StartedRestore, clock: VirtualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RESTORES_TABLE", "no-such-table")
    get_settings.cache_clear()
    clock.advance(20)
    with pytest.raises(RestoreStillRunning):
        poll(stack, restore)
    clock.advance(60)
    assert poll(stack, restore)["finalStatus"] == "COMPLETED"


# The simulator answers a status its spec does not list: its self-check rightly flags that.
@pytest.mark.spec_violations_expected
def test_an_undocumented_status_keeps_polling_and_shows_in_the_timeline(
    stack: OfflineStack, restore: StartedRestore, clock: VirtualClock
) -> None:
    stack.simulator.state.jobs[restore.job_id].outcome = "CLOSED"  # the word restoreFinishedDate's text uses
    clock.advance(120)
    with pytest.raises(RestoreStillRunning, match="is CLOSED"):
        poll(stack, restore)
    record = stack.record(restore.restore_id)
    assert record is not None
    assert record["timeline"][-1]["status"] == "CLOSED"


def test_bad_execution_input_names_the_field_and_never_calls_atlas(
    stack: OfflineStack, restore: StartedRestore
) -> None:
    calls = len(stack.atlas_calls())
    with pytest.raises(InvalidExecutionInput, match="field 'deadline'"):
        stack.invoke("poll", {**restore.execution_input, "deadline": "soon"})
    assert len(stack.atlas_calls()) == calls


def test_recording_twice_writes_once_and_counts_once(
    stack: OfflineStack, restore: StartedRestore, clock: VirtualClock, capsys: pytest.CaptureFixture[str]
) -> None:
    clock.advance(80)
    state = {**restore.execution_input, "poll": {"observation": poll(stack, restore)}}
    capsys.readouterr()
    first = stack.invoke("record", {"input": state, "executionArn": "arn:execution"})
    clock.advance(30)
    again = stack.invoke("record", {"input": state, "executionArn": "arn:execution"})

    assert first["finalStatus"] == "COMPLETED"
    assert again == first == stack.record(restore.restore_id)
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    counted = [blob for blob in metrics if "RestoreCompleted" in blob]
    timed = [blob for blob in metrics if "RestoreDurationSeconds" in blob]
    assert len(counted) == len(timed) == 1
    assert timed[0]["RestoreDurationSeconds"] == [65.0]
    for blob in (counted[0], timed[0]):
        assert blob["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "FlexRestore"
        assert blob["service"] == "flexrestore"  # the dimension the template's alarms select on


def test_an_event_bridge_refusal_is_an_error_not_a_silent_loss(stack: OfflineStack) -> None:
    events = clients.client("events")
    with Stubber(events) as stubbed:
        stubbed.add_response(
            "put_events",
            {
                "FailedEntryCount": 1,
                "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}],
            },
        )
        with pytest.raises(OutcomeEventRejected, match="InternalFailure: try again"):
            Notifier(stack.topic_arn, "default").put_event(
                OutcomeEvent(
                    "flexrestore.restores", "Flex Restore Succeeded", ErrorInfo(code="a", message="b")
                )
            )


def recorded_state(stack: OfflineStack, restore: StartedRestore, clock: VirtualClock) -> dict[str, Any]:
    """The state the Notify step gets: execution input, the poll's observation, the saved record."""
    clock.advance(80)
    state = {**restore.execution_input, "poll": {"observation": poll(stack, restore)}}
    record = stack.invoke("record", {"input": state, "executionArn": "arn:execution"})
    return {**state, "recorded": {"record": record}}


def test_a_notify_step_run_again_sends_nothing_twice(
    stack: OfflineStack, restore: StartedRestore, clock: VirtualClock
) -> None:
    state = recorded_state(stack, restore, clock)
    first = stack.invoke("notify", state)
    again = stack.invoke("notify", state)

    assert len(stack.notifications()) == 1
    assert len(stack.events()) == 1
    assert (again["snsMessageId"], again["eventId"]) == (first["snsMessageId"], first["eventId"])
    record = stack.record(restore.restore_id)
    assert record is not None
    assert record["notification"]["status"] == "SENT"
    assert record["notification"]["sns"]["messageId"] == first["snsMessageId"]


def test_without_a_readable_record_notify_falls_back_to_at_least_once(
    stack: OfflineStack, restore: StartedRestore, clock: VirtualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = recorded_state(stack, restore, clock)
    monkeypatch.setenv("RESTORES_TABLE", "no-such-table")  # DynamoDB unreachable for the Notify step
    get_settings.cache_clear()
    answer = stack.invoke("notify", state)
    stack.invoke("notify", state)

    assert answer["status"] == "SENT"
    assert len(stack.notifications()) == 2  # told twice rather than not at all
    assert len(stack.events()) == 2


def atlas_down(stack: OfflineStack) -> None:
    stack.simulator.state.flaky_failures = 10**9  # 503/500 to every call
    stack.simulator.scenario = "flaky"


def test_an_atlas_outage_is_ridden_out_up_to_the_tolerance_and_forgotten_once_atlas_answers(
    stack: OfflineStack, restore: StartedRestore, clock: VirtualClock
) -> None:
    stack.simulator.state.jobs[restore.job_id].duration = 3600  # a long restore
    clock.advance(20)
    atlas_down(stack)
    with pytest.raises(RestoreStillRunning, match="Atlas unreachable since") as first:
        poll(stack, restore)
    record = stack.record(restore.restore_id)
    assert record is not None
    since = record["atlasUnreachableSince"]
    assert record["atlasFault"]["code"] == "AtlasUnavailable"
    clock.advance(300)
    with pytest.raises(RestoreStillRunning, match=f"Atlas unreachable since {since}"):
        poll(stack, restore)  # same outage, same start
    assert since in str(first.value)

    stack.simulator.scenario = "ok"
    with pytest.raises(RestoreStillRunning, match="is RUNNING"):
        poll(stack, restore)
    record = stack.record(restore.restore_id)
    assert record is not None
    assert record["atlasUnreachableSince"] is None
    assert record["atlasFault"] is None

    # A new outage starts its own count.
    clock.advance(400)
    atlas_down(stack)
    with pytest.raises(RestoreStillRunning, match="Atlas unreachable since"):
        poll(stack, restore)
    record = stack.record(restore.restore_id)
    assert record is not None
    assert record["atlasUnreachableSince"] > since


def test_beyond_the_tolerance_the_atlas_fault_is_raised_with_how_long_it_lasted(
    stack: OfflineStack, restore: StartedRestore, clock: VirtualClock
) -> None:
    clock.advance(20)
    atlas_down(stack)
    with pytest.raises(RestoreStillRunning):
        poll(stack, restore)
    clock.advance(600)
    with pytest.raises(
        AtlasUnavailable, match=r"Atlas unreachable since .*, 6\d\d s, beyond the 600 s tolerance"
    ):
        poll(stack, restore)


def test_a_zero_tolerance_hands_every_atlas_fault_to_the_state_machine(
    stack: OfflineStack, restore: StartedRestore, clock: VirtualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ATLAS_OUTAGE_TOLERANCE_SECONDS", "0")
    get_settings.cache_clear()
    clock.advance(20)
    atlas_down(stack)
    with pytest.raises(AtlasUnavailable):
        poll(stack, restore)


def test_without_dynamodb_an_atlas_fault_is_not_tolerated(
    stack: OfflineStack, restore: StartedRestore, clock: VirtualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RESTORES_TABLE", "no-such-table")
    get_settings.cache_clear()
    clock.advance(20)
    atlas_down(stack)
    with pytest.raises(AtlasUnavailable, match="outage not tracked"):
        poll(stack, restore)


def test_no_look_reaches_atlas_before_its_retry_after(
    stack: OfflineStack, restore: StartedRestore, clock: VirtualClock
) -> None:
    clock.advance(20)
    stack.simulator.rate_limit = RateLimit(refill_seconds=120)  # beyond the client's own 15 s budget
    stack.simulator.scenario = "rate-limited"
    with pytest.raises(RestoreStillRunning, match="AtlasRateLimited"):
        poll(stack, restore)
    record = stack.record(restore.restore_id)
    assert record is not None
    not_before = record["atlasRetryNotBefore"]
    calls = len(stack.atlas_calls())

    clock.advance(60)
    with pytest.raises(RestoreStillRunning, match=f"not to call before {not_before} \\(Retry-After\\)"):
        poll(stack, restore)
    assert len(stack.atlas_calls()) == calls  # Atlas was not asked

    clock.advance(70)
    assert poll(stack, restore)["finalStatus"] == "COMPLETED"
    record = stack.record(restore.restore_id)
    assert record is not None
    assert record["atlasRetryNotBefore"] is None


def test_an_atlas_secret_that_cannot_be_read_is_ridden_out_like_an_atlas_outage(
    stack: OfflineStack, restore: StartedRestore, clock: VirtualClock
) -> None:
    from flexrestore.atlas import factory
    from flexrestore.domain.errors import DependencyUnavailable
    from tests.faults.aws import AwsFault, AwsFaults, running_as

    clock.advance(20)
    with AwsFaults() as faults, running_as("poll"):
        throttled = faults.arm(AwsFault("secretsmanager", "GetSecretValue", "poll", seconds=660))
        factory.reset()  # a fresh poll container: it must read the secret first
        with pytest.raises(
            RestoreStillRunning,
            match=r"Atlas unreachable since .* \(DependencyUnavailable: Atlas credentials secret",
        ):
            poll(stack, restore)
        record = stack.record(restore.restore_id)
        assert record is not None and record["atlasFault"]["code"] == "DependencyUnavailable"
        assert record["finalStatus"] is None  # not ended: Atlas goes on restoring meanwhile

        clock.advance(620)  # beyond the tolerance, the state machine decides (its Catch-all: ERROR)
        with pytest.raises(DependencyUnavailable, match="beyond the 600 s tolerance"):
            poll(stack, restore)

        clock.advance(60)  # the secret can be read again: the look goes on as if nothing happened
        assert poll(stack, restore)["finalStatus"] == "COMPLETED"
    assert throttled.struck == 2
