"""The one settings model. It reads the environment once per container (see ``get_settings``).

Every variable is documented in README.md (Configuration reference) and set by template.yaml.
"""

from __future__ import annotations

import os
from functools import lru_cache
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class SettingsError(RuntimeError):
    """A required setting is missing or malformed. Names the variable, never a secret."""


class Settings(BaseModel):
    # defer_build: the validator is built when the environment is first read (get_settings, on a function's
    # first invocation), not when a handler module is imported, as the contracts' models (contracts/base.py).
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore", defer_build=True)

    # Atlas
    atlas_base_url: str = Field("https://cloud.mongodb.com", alias="ATLAS_BASE_URL")
    atlas_secret_id: str | None = Field(None, alias="ATLAS_SECRET_ID")
    # One Atlas request's timeout. Every retry wait and every request of an invocation also draws from what
    # is left of that Lambda invocation (bootstrap.atlas_budget), so together they never outlast it.
    atlas_timeout_seconds: float = Field(10.0, alias="ATLAS_TIMEOUT_SECONDS", gt=0, le=20)

    # AWS resources
    state_machine_arn: str | None = Field(None, alias="STATE_MACHINE_ARN")
    restores_table: str | None = Field(None, alias="RESTORES_TABLE")
    idempotency_table: str | None = Field(None, alias="IDEMPOTENCY_TABLE")
    notification_topic_arn: str | None = Field(None, alias="NOTIFICATION_TOPIC_ARN")
    event_bus_name: str = Field("default", alias="EVENT_BUS_NAME")

    # Verification plans and runs
    plans_table: str | None = Field(None, alias="PLANS_TABLE")
    runs_table: str | None = Field(None, alias="RUNS_TABLE")
    run_state_machine_arn: str | None = Field(None, alias="RUN_STATE_MACHINE_ARN")
    schedule_group: str | None = Field(None, alias="SCHEDULE_GROUP")
    scheduler_role_arn: str | None = Field(None, alias="SCHEDULER_ROLE_ARN")
    schedule_dead_letter_arn: str | None = Field(None, alias="SCHEDULE_DEAD_LETTER_ARN")

    # Poll loop
    poll_deadline_seconds: int = Field(3600, alias="POLL_DEADLINE_SECONDS", ge=60, le=86400)
    # How long Atlas may stay unreachable (5xx, timeouts, rate limits, unreadable answers) before the poll
    # loop gives up with ERROR. Counted from the first fault of an outage; a good read starts it over, so
    # separate short hiccups during a long restore never add up.
    atlas_outage_tolerance_seconds: int = Field(600, alias="ATLAS_OUTAGE_TOLERANCE_SECONDS", ge=0, le=86400)

    # Alarm-driven recovery: JSON object {alarmName: restore request}
    recovery_plans: str = Field("{}", alias="RECOVERY_PLANS")

    # Target safety (issue: target guards)
    protected_targets: str = Field("", alias="PROTECTED_TARGETS")
    protected_tag_key: str = Field("restore-protected", alias="PROTECTED_TAG_KEY")
    protected_tag_value: str = Field("true", alias="PROTECTED_TAG_VALUE")
    allowed_target_projects: str = Field("", alias="ALLOWED_TARGET_PROJECTS")
    break_glass_principals: str = Field("", alias="BREAK_GLASS_PRINCIPALS")
    target_lock_lease_seconds: int = Field(7200, alias="TARGET_LOCK_LEASE_SECONDS", ge=60)

    # Verification runs: the Lambda functions a plan's validation may name (comma-separated ARNs; the
    # template's ValidatorFunctionArns, which also grants lambda:InvokeFunction on exactly these)
    validator_function_arns: str = Field("", alias="VALIDATOR_FUNCTION_ARNS")

    # Idempotency records live this long (a retried delivery within it gets the first answer)
    idempotency_ttl_seconds: int = Field(86400, alias="IDEMPOTENCY_TTL_SECONDS", ge=60)

    @field_validator("atlas_base_url")
    @classmethod
    def _https_unless_loopback(cls, value: str) -> str:
        """The credentials travel with every request: https, except to a simulator on this machine."""
        url = urlsplit(value)
        loopback = url.hostname in ("localhost", "127.0.0.1", "::1")
        if url.scheme == "https" or (url.scheme == "http" and loopback):
            return value
        raise ValueError("must be an https:// URL (http:// only to localhost, for the local simulator)")

    def require(self, name: str) -> str:
        """The value of a setting this code path cannot work without."""
        value = getattr(self, name)
        if not value:
            alias = type(self).model_fields[name].alias
            raise SettingsError(f"{alias} is not set; template.yaml sets it for the functions that need it")
        return str(value)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    try:
        return Settings.model_validate(dict(os.environ))
    except ValidationError as exc:
        problems = "; ".join(
            f"{error['loc'][0]}: {error['msg']}" for error in exc.errors(include_input=False)
        )
        raise SettingsError(f"invalid configuration: {problems}") from None
