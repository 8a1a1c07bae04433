"""The fault matrix: one cell per fault and place it strikes, with the ending a user must see.

Atlas faults strike one phase of a restore, by the Atlas operation that phase calls: ``token`` (the OAuth
token request), ``snapshot`` (listing the source's snapshots), ``target`` (reading the target cluster),
``create`` (the restore-job create) and ``poll`` (reading the job). AWS faults strike one Lambda function
(``intake``, ``create``, ``poll``, ``record``, ``notify``, ``reconcile``), at the boto3 level.

The first three phases run in the intake, while the caller waits: a fault that outlasts the intake's
invocation there ends in a refusal before anything is accepted (503 with Retry-After; an alarm's event is
raised for Lambda's redelivery), which is right for a synchronous caller. From the create on, the restore is
accepted and must end on its own, whatever happens and with nobody retrying.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flexrestore.local.harness import IDEMPOTENCY_TABLE, RESTORES_TABLE
from flexrestore.simulator import DEMO, AtlasSimulator, Fault
from tests.faults.aws import AwsFault, item_kind, table
from tests.faults.world import DEADLINE, FaultWorld

Arrange = Callable[[FaultWorld], None]

ATLAS_PHASES = {
    "token": "token",
    "snapshot": "listFlexBackupSnapshots",
    "target": "getFlexCluster",
    "create": "createFlexRestoreJob",
    "poll": "getFlexRestoreJob",
}
INTAKE_PHASES = ("token", "snapshot", "target")
STEPS = ("intake", "create", "poll", "record", "notify", "reconcile")
ATLAS, AWS = "Atlas faults", "AWS faults"
THROTTLED = "ProvisionedThroughputExceededException"
OUTAGE = 180  # seconds: longer than any one invocation's Atlas budget, shorter than the outage tolerance


@dataclass(frozen=True)
class Expect:
    """How the cell must end. ``final`` None: refused before anything was accepted."""

    final: str | None
    code: str | None = None  # the record's error code, for ERROR
    answer: str = "accepted"  # accepted | refused | timed out | crashed
    lock_until_lease_end: bool = False  # a create that stayed uncertain keeps the target until its lease ends

    @property
    def label(self) -> str:
        if self.final is None:
            return "refused, retry later"
        return f"{self.final} {self.code}" if self.code else self.final


COMPLETED = Expect("COMPLETED")
REFUSED = Expect(None, answer="refused")


@dataclass(frozen=True)
class Cell:
    table: str  # which matrix it belongs to
    row: str  # the fault, in words
    column: str  # where it strikes: an Atlas phase or a Lambda function
    arrange: Arrange
    expect: Expect
    trigger: str = "api"  # the event that goes in once: api (POST /restores) or alarm (its recovery plan)
    credentials: str = "service account"  # or "API key" (HTTP Digest)
    cold: tuple[str, ...] = ()  # functions whose every invocation starts in a fresh container
    known_bug: str | None = None  # a cell that fails until this bug is fixed (strict xfail)

    @property
    def label(self) -> str:
        """The row as the matrix prints it: the fault, and the trigger or credentials if not the usual."""
        extras = [x for x in (self.trigger if self.trigger != "api" else "", self.credentials) if x]
        extras = [x for x in extras if x != "service account"]
        return f"{self.row} ({', '.join(extras)})" if extras else self.row

    @property
    def id(self) -> str:
        return f"{self.column}: {self.label}"


# --- Atlas faults ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AtlasFault:
    row: str
    arm: Callable[[AtlasSimulator, str], None]  # (simulator, operation)
    outlasts_an_invocation: bool = False
    phases: tuple[str, ...] = tuple(ATLAS_PHASES)


def burst(*faults: Fault) -> Callable[[AtlasSimulator, str], None]:
    """The next calls of the operation meet these faults, one each, in order."""

    def arm(sim: AtlasSimulator, operation: str) -> None:
        for fault in faults:
            sim.fail_next(operation, fault)

    return arm


def outage(fault: Fault, seconds: float = OUTAGE) -> Callable[[AtlasSimulator, str], None]:
    def arm(sim: AtlasSimulator, operation: str) -> None:
        sim.fail_for(operation, fault, seconds=seconds)

    return arm


ATLAS_DOWN = AtlasFault("5xx for 3 min", outage(Fault.error(503)), outlasts_an_invocation=True)
ATLAS_FAULTS = (
    AtlasFault("429 Retry-After 5 s, twice", burst(*[Fault.rate_limited(retry_after=5)] * 2)),
    AtlasFault(
        "429 Retry-After 60 s, for 3 min",
        outage(Fault.rate_limited(retry_after=60)),
        outlasts_an_invocation=True,
    ),
    AtlasFault("429 without Retry-After, once", burst(Fault.rate_limited())),
    AtlasFault(
        "429 without Retry-After, for 3 min", outage(Fault.rate_limited()), outlasts_an_invocation=True
    ),
    AtlasFault("5xx burst: 503 then 500", burst(Fault.error(503), Fault.error(500))),
    ATLAS_DOWN,
    AtlasFault("timeout (no answer), once", burst(Fault.timeout())),
    AtlasFault("connection reset, once", burst(Fault.cut())),
    AtlasFault("non-JSON 200, once", burst(Fault.not_json())),
    AtlasFault(
        "bearer token refused as expired",
        burst(Fault.expired_credential()),
        phases=(*INTAKE_PHASES[1:], "create", "poll"),
    ),
)


def atlas_cell(fault: AtlasFault, phase: str) -> Cell:
    operation = ATLAS_PHASES[phase]
    refused = fault.outlasts_an_invocation and phase in INTAKE_PHASES
    return Cell(
        ATLAS,
        fault.row,
        phase,
        lambda world: fault.arm(world.sim, operation),
        REFUSED if refused else COMPLETED,
    )


def create_answer_lost(world: FaultWorld) -> None:
    world.sim.fail_next(
        "createFlexRestoreJob", Fault.lost_answer()
    )  # Atlas stores the job, the answer is cut


def lost_create_then_listing_down(seconds: float) -> Arrange:
    def arrange(world: FaultWorld) -> None:
        world.sim.fail_next("createFlexRestoreJob", Fault.lost_answer())
        world.sim.fail_for("listFlexRestoreJobs", Fault.error(503), seconds=seconds)

    return arrange


def restore_never_finishes(world: FaultWorld) -> None:
    world.sim.set_restore_fate(DEMO.group_id, DEMO.source_cluster, "NEVER")


def restore_fails_in_atlas(world: FaultWorld) -> None:
    world.sim.set_restore_fate(DEMO.group_id, DEMO.source_cluster, "FAILED")


def job_vanishes(world: FaultWorld) -> None:
    world.sim.scenario = "job-vanishes"  # GET restoreJobs/{id} answers 404: Atlas no longer knows the job


def no_fault(world: FaultWorld) -> None:
    pass


def digest_nonce_goes_stale(phase: str) -> Arrange:
    return lambda world: world.sim.fail_next(ATLAS_PHASES[phase], Fault.expired_credential())


ATLAS_CELLS = [
    Cell(ATLAS, "no fault", "none", no_fault, COMPLETED),
    Cell(ATLAS, "no fault", "none", no_fault, COMPLETED, trigger="alarm"),
    Cell(ATLAS, "Atlas fails the restore", "poll", restore_fails_in_atlas, Expect("FAILED")),
    *[atlas_cell(fault, phase) for fault in ATLAS_FAULTS for phase in fault.phases],
    Cell(ATLAS, ATLAS_DOWN.row, "snapshot", atlas_cell(ATLAS_DOWN, "snapshot").arrange, REFUSED, "alarm"),
    Cell(
        ATLAS,
        "timeout after Atlas made the job",
        "create",
        lambda world: world.sim.fail_next("createFlexRestoreJob", Fault.timeout(after_acting=True)),
        COMPLETED,
    ),
    Cell(ATLAS, "create answer lost", "create", create_answer_lost, COMPLETED),
    Cell(ATLAS, "create answer lost", "create", create_answer_lost, COMPLETED, trigger="alarm"),
    Cell(
        ATLAS,
        "create answer lost, listing down 10 min",
        "create",
        lost_create_then_listing_down(600),
        COMPLETED,
    ),
    Cell(
        ATLAS,
        "create answer lost, listing down past the deadline",
        "create",
        lost_create_then_listing_down(DEADLINE + 600),
        Expect("ERROR", "CREATE_UNCERTAIN", lock_until_lease_end=True),
    ),
    Cell(ATLAS, "job vanishes", "poll", job_vanishes, Expect("ERROR", "RESTORE_JOB_NOT_FOUND")),
    Cell(ATLAS, "never finishes", "poll", restore_never_finishes, Expect("TIMED_OUT", "DEADLINE_EXCEEDED")),
    # The same over HTTP Digest (programmatic API key): the nonce goes stale where the token expired (not on
    # the first call, the snapshot listing: its nonce comes from the challenge it has just answered).
    Cell(ATLAS, "no fault", "none", no_fault, COMPLETED, credentials="API key"),
    *[
        Cell(
            ATLAS,
            "Digest nonce goes stale",
            phase,
            digest_nonce_goes_stale(phase),
            COMPLETED,
            credentials="API key",
        )
        for phase in ("target", "create", "poll")
    ],
    Cell(ATLAS, "create answer lost", "create", create_answer_lost, COMPLETED, credentials="API key"),
]


# --- AWS faults --------------------------------------------------------------------------------------------


def arm(*faults: AwsFault) -> Arrange:
    def arrange(world: FaultWorld) -> None:
        for fault in faults:
            world.aws.arm(fault)

    return arrange


def handoff_deferred(*also: AwsFault) -> Arrange:
    """The intake's StartExecution fails, so the reconciler has the hand-off to do (and meets ``also``)."""
    return arm(AwsFault("stepfunctions", "StartExecution", "intake", code="ServiceUnavailable"), *also)


def dynamodb(step: str, **how: object) -> Arrange:
    """Every DynamoDB call the function makes is throttled (``count`` calls, or for ``seconds``)."""
    fault = AwsFault("dynamodb", "*", step, code=THROTTLED, **how)  # type: ignore[arg-type]
    return handoff_deferred(fault) if step == "reconcile" else arm(fault)


def secrets_manager(step: str) -> Arrange:
    return arm(AwsFault("secretsmanager", "GetSecretValue", step, code="ThrottlingException", seconds=120))


def hang(step: str, service: str, operation: str, **how: object) -> Arrange:
    fault = AwsFault(service, operation, step, hang=True, **how)  # type: ignore[arg-type]
    return handoff_deferred(fault) if step == "reconcile" else arm(fault)


def never_started() -> list[AwsFault]:
    """Step Functions refuses every start for 2 hours, the intake's and the reconciler's: the restore can
    only end, at its deadline, without ever reaching Atlas (the reconciler ends it HANDOFF_FAILED)."""
    return [
        AwsFault("stepfunctions", "StartExecution", step, code="ServiceUnavailable", seconds=7200)
        for step in ("intake", "reconcile")
    ]


HANDOFF_FAILS = Expect("ERROR", "HANDOFF_FAILED")
TIMED_OUT_AT_INTAKE = Expect("COMPLETED", answer="timed out")


AWS_CELLS = [
    # Secrets Manager: the function's container starts cold and must read the Atlas secret.
    Cell(
        AWS,
        "Secrets Manager throttled for 2 min",
        "intake",
        secrets_manager("intake"),
        REFUSED,
    ),
    Cell(
        AWS,
        "Secrets Manager throttled for 2 min",
        "create",
        secrets_manager("create"),
        COMPLETED,
        cold=("create",),
    ),
    Cell(
        AWS,
        "Secrets Manager throttled for 2 min",
        "poll",
        secrets_manager("poll"),
        COMPLETED,
        cold=("poll",),
    ),
    # DynamoDB: every call of the function, a burst and an outage.
    *[
        Cell(
            AWS,
            "DynamoDB throttled, 2 calls",
            step,
            dynamodb(step, count=2),
            REFUSED if step == "intake" else COMPLETED,
        )
        for step in STEPS
    ],
    *[
        Cell(
            AWS,
            "DynamoDB throttled for 10 min",
            step,
            dynamodb(step, seconds=600),
            REFUSED if step == "intake" else COMPLETED,
        )
        for step in STEPS
    ],
    # ... and each of the intake's writes and reads alone.
    Cell(
        AWS,
        "DynamoDB: restores table read throttled",
        "intake",
        arm(AwsFault("dynamodb", "GetItem", "intake", code=THROTTLED, only=table(RESTORES_TABLE))),
        REFUSED,
    ),
    Cell(
        AWS,
        "DynamoDB: lock write throttled",
        "intake",
        arm(AwsFault("dynamodb", "PutItem", "intake", code=THROTTLED, only=item_kind("lock"))),
        REFUSED,
    ),
    Cell(
        AWS,
        "DynamoDB: record write throttled",
        "intake",
        arm(AwsFault("dynamodb", "PutItem", "intake", code=THROTTLED, only=item_kind("restore"))),
        REFUSED,
    ),
    Cell(
        AWS,
        "DynamoDB: write after the start throttled",
        "intake",
        arm(AwsFault("dynamodb", "UpdateItem", "intake", code=THROTTLED)),
        COMPLETED,
    ),
    Cell(
        AWS,
        "DynamoDB: keeping the answer for repeats throttled",
        "intake",
        arm(AwsFault("dynamodb", "UpdateItem", "intake", code=THROTTLED, only=table(IDEMPOTENCY_TABLE))),
        COMPLETED,
    ),
    Cell(
        AWS,
        "DynamoDB: write after the Atlas create throttled",
        "create",
        arm(AwsFault("dynamodb", "UpdateItem", "create", code=THROTTLED, skip=1)),
        COMPLETED,
    ),
    # Step Functions.
    Cell(AWS, "StartExecution fails once", "intake", handoff_deferred(), COMPLETED),
    Cell(AWS, "StartExecution fails once", "intake", handoff_deferred(), COMPLETED, trigger="alarm"),
    Cell(
        AWS,
        "StartExecution fails once",
        "reconcile",
        handoff_deferred(AwsFault("stepfunctions", "StartExecution", "reconcile", code="ServiceUnavailable")),
        COMPLETED,
    ),
    Cell(
        AWS,
        "StartExecution fails for 2 h",
        "intake",
        arm(*never_started()),
        HANDOFF_FAILS,
    ),
    # SNS and EventBridge.
    Cell(
        AWS,
        "SNS Publish fails twice",
        "notify",
        arm(AwsFault("sns", "Publish", "notify", code="Throttled", count=2)),
        COMPLETED,
    ),
    Cell(
        AWS,
        "SNS Publish fails for 10 min",
        "notify",
        arm(AwsFault("sns", "Publish", "notify", code="Throttled", seconds=600)),
        COMPLETED,
    ),
    Cell(
        AWS,
        "SNS Publish fails twice",
        "reconcile",
        arm(
            *never_started(),
            AwsFault("sns", "Publish", "reconcile", code="Throttled", count=2),
        ),
        HANDOFF_FAILS,
    ),
    Cell(
        AWS,
        "EventBridge PutEvents fails twice",
        "reconcile",
        arm(
            *never_started(), AwsFault("events", "PutEvents", "reconcile", code="InternalException", count=2)
        ),
        HANDOFF_FAILS,
    ),
    Cell(
        AWS,
        "EventBridge PutEvents fails twice",
        "notify",
        arm(AwsFault("events", "PutEvents", "notify", code="InternalException", count=2)),
        COMPLETED,
    ),
    Cell(
        AWS,
        "EventBridge PutEvents fails for 10 min",
        "notify",
        arm(AwsFault("events", "PutEvents", "notify", code="InternalException", seconds=600)),
        COMPLETED,
    ),
    # Lambda timeouts: a call that never returns, so the function runs into its timeout.
    Cell(
        AWS,
        "Lambda timeout",
        "intake",
        hang("intake", "stepfunctions", "StartExecution"),
        TIMED_OUT_AT_INTAKE,
    ),
    Cell(AWS, "Lambda timeout", "create", hang("create", "dynamodb", "UpdateItem", skip=1), COMPLETED),
    Cell(AWS, "Lambda timeout", "poll", hang("poll", "dynamodb", "UpdateItem"), COMPLETED),
    Cell(AWS, "Lambda timeout", "record", hang("record", "dynamodb", "DeleteItem"), COMPLETED),
    Cell(AWS, "Lambda timeout", "notify", hang("notify", "sns", "Publish"), COMPLETED),
    Cell(AWS, "Lambda timeout", "reconcile", hang("reconcile", "stepfunctions", "StartExecution"), COMPLETED),
    # The intake's process dies right after the record is written; nothing delivers the event again.
    *[
        Cell(
            AWS,
            "process dies after the record is written",
            "intake",
            arm(AwsFault("stepfunctions", "StartExecution", "intake", crash=True)),
            Expect("COMPLETED", answer="crashed"),
            trigger=trigger,
        )
        for trigger in ("api", "alarm")
    ],
]

CELLS = [*ATLAS_CELLS, *AWS_CELLS]
