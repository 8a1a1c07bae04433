"""The fault matrix: every Atlas fault at every phase it can strike, every AWS fault at every step, through
the whole offline service (the real handlers, the real state machine executed by moto, the Atlas simulator,
one virtual clock), and nobody retries anything.

Each cell (tests/faults/cells.py) arms its fault, hands the event to the intake **once** (the sample
``POST /restores``, or the sample alarm's event, which runs its recovery plan), then lets only time pass:
the clock runs on and the reconciler runs every 5 minutes, as its schedule would, until everything has
settled. Then it
checks what a user (and Atlas) would see:

- at most one restore job into the target, counted in the simulator's own state, not the service's;
- one final restore record, whose status is what Atlas did: COMPLETED iff Atlas's job completed, FAILED iff
  it failed, TIMED_OUT while it still runs at the deadline, ERROR when Atlas has no job (or lost it), and the
  record names that job;
- one SNS notification (and one EventBridge outcome event) telling that ending;
- the target's lock released; except for a create that stayed uncertain until the deadline (Atlas may hold a
  job nobody could see): that restore ends ERROR ``CREATE_UNCERTAIN`` and keeps the target locked until its
  lease runs out, and no longer;
- no secret anywhere: not the Atlas client secret or private key, no bearer token the simulator issued, no
  Authorization header it received nor the Digest ``response=`` in one, in any log line, record,
  notification, event, answer or execution history.

**Refusals before acceptance are a legitimate ending.** A fault that outlasts the intake's own invocation
while it validates (Atlas down while the snapshot or the target is read, the token endpoint down, Secrets
Manager or DynamoDB throttled before the restore is recorded) ends the request before anything was accepted:
the API answers 503 with ``Retry-After`` (an alarm's event is raised, for Lambda's redelivery and then its
dead-letter queue). For those cells the matrix checks that the answer says to retry and that nothing was
created, recorded or locked, and nobody was told of a restore: there is none. From the moment the restore is
recorded, no ending may depend on anybody retrying.

The table of cells and outcomes is printed at the end of the run (tests/faults/report.py).
"""

from __future__ import annotations

import random
import zlib
from typing import Any

import pytest

from flexrestore.clock import parse_iso
from tests.faults.cells import CELLS, Cell, Expect
from tests.faults.secrets import leaks
from tests.faults.world import DEADLINE, LEASE, Ending, FaultWorld

pytestmark = pytest.mark.timeout(120)


def _param(cell: Cell) -> Any:
    marks = [pytest.mark.xfail(strict=True, reason=cell.known_bug)] if cell.known_bug else []
    return pytest.param(cell, marks=marks, id=cell.id)


@pytest.mark.parametrize("cell", [_param(cell) for cell in CELLS])
def test_cell(cell: Cell, record_property: Any) -> None:
    random.seed(zlib.crc32(cell.id.encode()))  # Step Functions' retry jitter: the same run every time
    with FaultWorld(credentials=cell.credentials, cold=cell.cold) as world:
        cell.arrange(world)
        world.submit(cell.trigger)
        world.let_time_pass()
        ending = world.ending()
        secrets_found = leaks(world.haystacks(), world.needles())
        idle_faults = world.faults_that_never_struck()
    record_property(
        "fault_cell",
        {
            "table": cell.table,
            "row": cell.label,
            "column": cell.column,
            "expected": cell.expect.label,
            "outcome": outcome(ending),
            "order": CELLS.index(cell),
        },
    )

    assert idle_faults == [], f"armed faults that never struck: {idle_faults}"
    assert len(ending.jobs) <= 1, f"{len(ending.jobs)} Atlas restore jobs into the target"
    if cell.expect.final is None:
        refused_before_anything_was_accepted(ending)
    else:
        accepted_and_ended(cell.expect, ending)
    assert secrets_found == [], f"secrets leaked: {secrets_found}"


def outcome(ending: Ending) -> str:
    """What the cell ended as, in the matrix's words."""
    record = ending.record
    if len(ending.records) > 1:
        return f"{len(ending.records)} records"
    if record is None:
        submitted = ending.submitted
        return f"refused ({submitted.describe()})" if not ending.jobs else "no record"
    if not record.get("finalStatus"):
        return f"not ended ({record.get('status')})"
    error = record.get("error") or {}
    code = error.get("code") if record["finalStatus"] == "ERROR" else None
    return f"{record['finalStatus']} {code}" if code else str(record["finalStatus"])


# --- the checks, in a user's words ------------------------------------------------------------------------


def refused_before_anything_was_accepted(ending: Ending) -> None:
    submitted = ending.submitted
    if submitted.trigger == "api":
        assert submitted.status == 503, f"the API answered {submitted.describe()}: {submitted.body}"
        assert int(submitted.headers["Retry-After"]) > 0, "a 503 says when to come back"
        assert submitted.body is not None and "retry" in submitted.body["message"].lower()
    else:
        assert (submitted.error or "").startswith("raised for a redelivery: 503"), submitted.describe()
    assert ending.jobs == [], "nothing was created in Atlas"
    assert ending.records == [], "no restore was recorded"
    assert not ending.lock_item, "the target was not locked"
    assert ending.notifications == [], "nobody was told of a restore that does not exist"


def accepted_and_ended(expect: Expect, ending: Ending) -> None:
    answered_as_expected(expect, ending)
    assert len(ending.records) == 1, f"{len(ending.records)} restore records"
    record = ending.records[0]
    assert record.get("finalStatus") == expect.final, f"the restore ended {outcome(ending)}"
    if expect.code:
        assert (record.get("error") or {}).get("code") == expect.code, record.get("error")
    matches_what_atlas_did(record, ending)
    told_once(record, ending)
    if expect.lock_until_lease_end:
        lock_kept_until_its_lease_ends(record, ending)
    else:
        assert not ending.lock_item, "the target's lock was released"


def answered_as_expected(expect: Expect, ending: Ending) -> None:
    submitted = ending.submitted
    if expect.answer == "accepted":
        if submitted.trigger == "api":
            assert submitted.status == 202, f"the API answered {submitted.describe()}: {submitted.body}"
        else:
            assert (submitted.body or {}).get("statusCode") == 202, submitted.describe()
    elif expect.answer == "timed out":
        assert (submitted.error or "").startswith("intake timed out"), submitted.describe()
    else:
        assert submitted.error == "intake crashed", submitted.describe()


def matches_what_atlas_did(record: dict[str, Any], ending: Ending) -> None:
    job = ending.jobs[0] if ending.jobs else None
    final, code = record["finalStatus"], (record.get("error") or {}).get("code")
    if code == "CREATE_UNCERTAIN":
        return  # Atlas could not be asked; the lock check below holds the target meanwhile
    if job is None:
        assert final == "ERROR", f"ended {final} though Atlas has no job"
        return
    assert record.get("restoreJobId") == job["id"], "the record names the job Atlas made"
    if ending.atlas_forgot_the_job:
        assert final == "ERROR", f"ended {final} though Atlas no longer knows the job"
        return
    atlas = job["status"]
    assert (final == "COMPLETED") == (atlas == "COMPLETED"), f"ended {final}, Atlas's job is {atlas}"
    assert (final == "FAILED") == (atlas == "FAILED"), f"ended {final}, Atlas's job is {atlas}"
    if final == "TIMED_OUT":
        assert atlas in ("PENDING", "QUEUED", "RUNNING"), f"timed out, but Atlas's job is {atlas}"
    assert final != "ERROR", f"ended ERROR ({code}) though Atlas's job is {atlas}"


def told_once(record: dict[str, Any], ending: Ending) -> None:
    about = [m for m in ending.notifications if m["record"]["restoreId"] == record["restoreId"]]
    assert len(about) == 1, f"{len(about)} SNS notifications of the restore"
    assert about[0]["record"]["finalStatus"] == record["finalStatus"]
    events = [e for e in ending.events if e["detail"].get("restoreId") == record["restoreId"]]
    assert len(events) == 1, f"{len(events)} EventBridge outcome events"
    assert events[0]["detail"]["finalStatus"] == record["finalStatus"]


def lock_kept_until_its_lease_ends(record: dict[str, Any], ending: Ending) -> None:
    restore_id = record["restoreId"]
    requested = parse_iso(record["requestedAt"]).timestamp()
    held = [seen for seen in ending.locks_seen if seen.holder == restore_id and seen.expires_at]
    assert held, "the target stayed locked by the restore"
    expires = held[0].expires_at or 0
    assert DEADLINE < expires - requested <= LEASE + 1, "the lease outlasts the deadline, and no more"
    assert any(seen.record_ended for seen in held), "the lock is kept after the restore ended"
    for seen in ending.locks_seen:
        if seen.at < expires:
            assert seen.holder == restore_id, (
                f"released {seen.at - requested:.0f} s in, before its lease ended"
            )
        else:
            assert seen.holder is None, "held after its lease ended"
    assert ending.lock_holder is None and ending.now > expires, "free once the lease has run out"
