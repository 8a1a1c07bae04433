"""The input of a restore's Step Functions execution (named after the restoreId). Every state passes it on,
so the Lambda tasks read it back from their event, next to the keys the states add (``poll``,
``recorded``, ...); the create step fills in ``restoreJobId`` and ``firstPollSeconds``. See
docs/contracts.md."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from flexrestore.contracts.base import Contract, Timestamp


class InvalidExecutionInput(ValueError):
    """The execution input breaks the contract; names the field and the rule (never retried)."""


def _seconds_or_none(value: Any) -> int | None:
    # The state machine's CheckFirstPollDelay sends anything but a number in [0, 3600] straight to the
    # first look; the Lambdas read it the same way instead of failing on it.
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 3600:
        return int(value)
    return None


def _empty_if_none(value: Any) -> Any:
    return "" if value is None else value


_REQUIRED = "is required and must be a non-empty string"


class ExecutionInput(Contract):
    """What the intake starts the poll loop with."""

    model_config = ConfigDict(title="ExecutionInput", strict=False)

    restore_id: str = Field(min_length=1)
    group_id: str = Field(min_length=1)
    cluster_name: str = Field(min_length=1)
    snapshot_id: str | None = None
    restore_job_id: str | None = Field(
        None, min_length=1, description="the Atlas restore job; the create step fills it in"
    )
    target_deployment_item_name: str = Field(min_length=1)
    target_project_id: Annotated[str, BeforeValidator(_empty_if_none)] = Field(
        "", description="defaults to groupId"
    )
    requested_at: Timestamp
    deadline: Timestamp = Field(description="after this, the restore ends TIMED_OUT")
    first_poll_seconds: Annotated[int | None, BeforeValidator(_seconds_or_none)] = Field(
        None,
        description="the wait before the first look (0 to 3600; the ASL's Choice looks at once otherwise)",
    )
    lock_id: str | None = Field(None, description="the target lock the Record step releases")

    @model_validator(mode="after")
    def _project_defaults_to_source(self) -> ExecutionInput:
        if not self.target_project_id:
            object.__setattr__(self, "target_project_id", self.group_id)
        return self

    @classmethod
    def from_event(cls, event: Any) -> ExecutionInput:
        """Read the input back from a task's event; :class:`InvalidExecutionInput` names the field."""
        if not isinstance(event, dict):
            raise InvalidExecutionInput("the execution input must be a JSON object")
        try:
            return cls.model_validate(event)
        except ValidationError as exc:
            error = exc.errors(include_url=False)[0]
            name = ".".join(str(part) for part in error["loc"]) or "input"
            raise InvalidExecutionInput(f"field '{name}' {_rule(name, error)}") from None


def _rule(name: str, error: Any) -> str:
    """The rule a field broke, in words (never its value)."""
    if error["type"] == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    field = next((f for f in ExecutionInput.model_fields.values() if f.alias == name), None)
    required = field is not None and field.is_required()
    if error["type"] in ("missing", "string_too_short") or (required and error.get("input") is None):
        return _REQUIRED
    if error["type"] == "string_type":
        return "must be a string" if required else "must be a string or null"
    return "is not valid"
