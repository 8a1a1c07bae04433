"""The contract between a verification run and a plan's own validator (a Lambda function the plan names in
``validation.lambdaArn``): what the run sends (:class:`ValidatorInput`) and what it expects back
(:class:`ValidatorOutput`). docs/validators.md explains it; the JSON Schemas are
``docs/schemas/validator-input.json`` and ``docs/schemas/validator-output.json``.

The run invokes the validator synchronously once per source whose restore completed and whose built-in
checks passed. Anything but a well-formed answer (an error, a timeout, another shape, another status) is
recorded as FAILED or TIMED_OUT with the reason, never as success. New input fields may appear within
``version`` 1; a validator ignores what it does not know.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import ConfigDict, Field

from flexrestore.contracts.base import Contract, Timestamp
from flexrestore.contracts.run import ValidationCheck

VALIDATOR_INPUT_VERSION: Final = "1"
MAX_MESSAGE_CHARS: Final = 1000
MAX_CHECKS: Final = 50


class ValidatorRun(Contract):
    run_id: str
    plan: str = Field(description="the plan's name")
    index: int = Field(description="the source's place in the run")


class ValidatorSource(Contract):
    group_id: str = Field(description="the source cluster's project")
    cluster_name: str


class ValidatorSnapshot(Contract):
    id: str
    taken_at: Timestamp | None = Field(None, description="when Atlas finished taking it")
    mongodb_version: str | None = Field(None, alias="mongoDBVersion")


class ValidatorRestore(Contract):
    restore_id: str
    restore_job_id: str | None = None
    final_status: str = Field(description="always COMPLETED: only completed restores are validated")
    requested_at: Timestamp
    finished_at: Timestamp | None = Field(None, description="Atlas's restoreFinishedDate")
    duration_seconds: int | None = Field(None, description="the measured RTO")


class ValidatorConnectionStrings(Contract):
    standard: str | None = Field(None, description="mongodb://...")
    standard_srv: str | None = Field(None, description="mongodb+srv://...")


class ValidatorTarget(Contract):
    name: str = Field(description="the cluster the snapshot was restored into")
    project_id: str
    ephemeral: bool = Field(description="created by the run for this source (deleted after validation)")
    state_name: str | None = Field(None, description="Atlas's stateName when the run read it")
    mongodb_version: str | None = Field(None, alias="mongoDBVersion")
    connection_strings: ValidatorConnectionStrings = Field(
        description="from Atlas; no credentials: the validator reads its own from Secrets Manager"
    )


class ValidatorInput(Contract):
    """What the run sends a plan's validator (the Lambda invocation's payload)."""

    model_config = ConfigDict(title="ValidatorInput")

    version: Literal["1"] = VALIDATOR_INPUT_VERSION
    run: ValidatorRun
    source: ValidatorSource
    snapshot: ValidatorSnapshot
    restore: ValidatorRestore
    target: ValidatorTarget
    timeout_seconds: int = Field(description="an answer later than this is recorded TIMED_OUT")


class ValidatorOutput(Contract):
    """What a validator answers: ``status`` SUCCEEDED or FAILED and a ``message`` for people; optionally
    its own ``checks``. Any other answer is recorded FAILED (with what was wrong with it)."""

    model_config = ConfigDict(title="ValidatorOutput")

    status: Literal["SUCCEEDED", "FAILED"]
    message: str = Field(description=f"for people; kept up to {MAX_MESSAGE_CHARS} characters")
    checks: list[ValidationCheck] = Field(
        default_factory=list,
        description=f"optional: what it checked (at most {MAX_CHECKS} kept), each PASSED, FAILED or SKIPPED",
    )
