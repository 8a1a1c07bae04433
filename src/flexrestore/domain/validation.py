"""Validation of a restored source: the built-in checks (what the Atlas Admin API can tell) and the reading
of a plan's own validator's answer. Plain Python; ``domain/run_steps.py`` gathers the facts and invokes
the validator, the verdict is the run record's source ``validation`` (``contracts/run.py``).

Built-in checks, each PASSED, FAILED or SKIPPED (SKIPPED never fails a validation):

- ``target-idle``: the target is IDLE after the restore;
- ``target-version``: the target runs the snapshot's release series (8.0.x for an 8.0 snapshot);
- ``restore-job``: Atlas reports the restore job COMPLETED with a restoreFinishedDate;
- ``snapshot-age``: the snapshot was taken no longer before the run started than the plan allows
  (``snapshot.maxAgeHours``, else ``windowDays`` with RANDOM_WITHIN_WINDOW; no limit otherwise).

The verdict: FAILED if a built-in check failed (the validator is then not asked); otherwise the
validator's (SUCCEEDED, FAILED, or TIMED_OUT when it answered late or Lambda stopped it); SUCCEEDED when
the plan names no validator. An error, a late answer or an answer of another shape is never success.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from flexrestore.clock import isoformat
from flexrestore.contracts.run import ValidationCheck, ValidationResult, ValidationStatus
from flexrestore.contracts.validator import MAX_CHECKS, MAX_MESSAGE_CHARS

SUCCEEDED: Final = "SUCCEEDED"
FAILED: Final = "FAILED"
TIMED_OUT: Final = "TIMED_OUT"
SKIPPED: Final = "SKIPPED"
PASSED: Final = "PASSED"
VALIDATOR_CHECK: Final = "validator"

_VERSION = re.compile(r"\s*(\d+)\.(\d+)")


def release_series(version: str | None) -> tuple[int, int] | None:
    """``(8, 0)`` for ``8.0.15``; None when there is no usable version."""
    match = _VERSION.match(version or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


@dataclass(frozen=True)
class BuiltInFacts:
    """What Atlas said about a restored source, read by the Validate step. ``*_problem`` says why a read
    failed (the check then fails with it)."""

    target: str
    target_state: str | None
    target_version: str | None
    snapshot_version: str | None
    job_status: str | None
    job_finished_at: datetime | None
    snapshot_taken_at: datetime | None
    run_started_at: datetime
    max_age_hours: int | None
    target_problem: str | None = None
    job_problem: str | None = None


def built_in_checks(facts: BuiltInFacts) -> list[ValidationCheck]:
    checks: list[ValidationCheck] = []
    target = f"target {facts.target!r}"
    if facts.target_problem is not None:
        checks.append(ValidationCheck(name="target-idle", status=FAILED, message=facts.target_problem))
        checks.append(
            ValidationCheck(name="target-version", status=SKIPPED, message="the target could not be read")
        )
    else:
        idle = facts.target_state == "IDLE"
        checks.append(
            ValidationCheck(
                name="target-idle",
                status=PASSED if idle else FAILED,
                message=f"{target} is {facts.target_state or 'in no state Atlas reported'}",
            )
        )
        checks.append(_version_check(target, facts.target_version, facts.snapshot_version))

    if facts.job_problem is not None:
        checks.append(ValidationCheck(name="restore-job", status=FAILED, message=facts.job_problem))
    else:
        done = facts.job_status == "COMPLETED" and facts.job_finished_at is not None
        finished = (
            f" (restoreFinishedDate {isoformat(facts.job_finished_at)})" if facts.job_finished_at else ""
        )
        checks.append(
            ValidationCheck(
                name="restore-job",
                status=PASSED if done else FAILED,
                message=f"Atlas reports the restore job {facts.job_status or 'without a status'}{finished}"
                + ("" if done or facts.job_finished_at else " and no restoreFinishedDate"),
            )
        )
    checks.append(_age_check(facts))
    return checks


def _version_check(target: str, target_version: str | None, snapshot_version: str | None) -> ValidationCheck:
    wanted, have = release_series(snapshot_version), release_series(target_version)
    if wanted is None or have is None:
        return ValidationCheck(
            name="target-version",
            status=SKIPPED,
            message=f"not checked: Atlas gave no usable version (snapshot {snapshot_version!r}, "
            f"target {target_version!r})",
        )
    ok = wanted == have
    return ValidationCheck(
        name="target-version",
        status=PASSED if ok else FAILED,
        message=f"{target} runs {target_version}; the snapshot is of {snapshot_version} "
        f"(release series {wanted[0]}.{wanted[1]})",
    )


def _age_check(facts: BuiltInFacts) -> ValidationCheck:
    if facts.max_age_hours is None:
        return ValidationCheck(name="snapshot-age", status=SKIPPED, message="the plan sets no age limit")
    if facts.snapshot_taken_at is None:
        return ValidationCheck(
            name="snapshot-age", status=FAILED, message="Atlas gave no time the snapshot was taken"
        )
    age = facts.run_started_at - facts.snapshot_taken_at
    hours = age.total_seconds() / 3600
    ok = age <= timedelta(hours=facts.max_age_hours)
    return ValidationCheck(
        name="snapshot-age",
        status=PASSED if ok else FAILED,
        message=f"the snapshot was taken {hours:.1f} h before the run started; the plan allows "
        f"{facts.max_age_hours} h",
    )


def max_age_hours(snapshot: Mapping[str, Any]) -> int | None:
    """The age limit (hours) a plan's ``snapshot`` section sets: maxAgeHours, else windowDays."""
    if snapshot.get("maxAgeHours") is not None:
        return int(snapshot["maxAgeHours"])
    if snapshot.get("windowDays") is not None:
        return int(snapshot["windowDays"]) * 24
    return None


# --- the plan's validator -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ValidatorCall:
    """How an invocation of the plan's validator went (the adapter's report, no judgement yet).

    ``ANSWERED``: the function returned ``payload`` (decoded JSON, or the raw text if it was not JSON);
    ``ERROR``: the function raised or could not be invoked (``error``); ``TIMED_OUT``: no answer within
    the time allowed, or Lambda stopped the function at its own timeout. ``seconds``: how long it took."""

    outcome: Literal["ANSWERED", "ERROR", "TIMED_OUT"]
    payload: Any = None
    error: str | None = None
    seconds: float = 0.0


def judge_validator(
    call: ValidatorCall, *, timeout_seconds: int
) -> tuple[ValidationStatus, str, list[ValidationCheck]]:
    """The verdict a validator's invocation earns: ``(status, message, checks)``. Only a well-formed
    ``{"status": "SUCCEEDED", "message": "..."}`` within ``timeout_seconds`` is SUCCEEDED."""
    if call.outcome == "TIMED_OUT" or (call.outcome == "ANSWERED" and call.seconds > timeout_seconds):
        why = call.error or f"it answered after {call.seconds:.0f} s"
        message = f"the validator did not answer within {timeout_seconds} s ({clean(why)})"
        return TIMED_OUT, message, [_validator_check(FAILED, message)]
    if call.outcome == "ERROR":
        message = f"the validator failed: {clean(call.error or 'no reason given')}"
        return FAILED, message, [_validator_check(FAILED, message)]
    answer = call.payload
    problem = _answer_problem(answer)
    if problem is not None:
        message = f"the validator's answer is not a verdict ({problem}); recorded as FAILED"
        return FAILED, message, [_validator_check(FAILED, message)]
    assert isinstance(answer, dict)
    status: ValidationStatus = SUCCEEDED if answer["status"] == SUCCEEDED else FAILED
    message = clean(answer["message"])
    own, dropped = _own_checks(answer.get("checks"))
    checks = [_validator_check(PASSED if status == SUCCEEDED else FAILED, message), *own]
    if dropped:
        checks.append(
            ValidationCheck(
                name=f"{VALIDATOR_CHECK}:checks",
                status=SKIPPED,
                message=f"{dropped} of the validator's checks were left out (not of the documented shape, "
                f"or beyond {MAX_CHECKS})",
            )
        )
    return status, message, checks


def _answer_problem(answer: Any) -> str | None:
    if not isinstance(answer, dict):
        return f"expected a JSON object, got {_kind(answer)}"
    status = answer.get("status")
    if status not in (SUCCEEDED, FAILED):
        shown = clean(str(status))[:40] if isinstance(status, str) else _kind(status)
        return f"status must be SUCCEEDED or FAILED, got {shown}"
    if not isinstance(answer.get("message"), str):
        return f"message must be a string, got {_kind(answer.get('message'))}"
    return None


def _kind(value: Any) -> str:
    if value is None:
        return "nothing (null or missing)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object" if isinstance(value, dict) else type(value).__name__


def _own_checks(checks: Any) -> tuple[list[ValidationCheck], int]:
    if checks is None:
        return [], 0
    if not isinstance(checks, list):
        return [], 1
    kept: list[ValidationCheck] = []
    dropped = 0
    for check in checks:
        if (
            len(kept) < MAX_CHECKS
            and isinstance(check, dict)
            and isinstance(check.get("name"), str)
            and check.get("status") in (PASSED, FAILED, SKIPPED)
            and isinstance(check.get("message"), str | None)
        ):
            kept.append(
                ValidationCheck(
                    name=f"{VALIDATOR_CHECK}:{clean(check['name'])[:100]}",
                    status=check["status"],
                    message=clean(check.get("message")) or None,
                )
            )
        else:
            dropped += 1
    return kept, dropped


def _validator_check(status: str, message: str) -> ValidationCheck:
    return ValidationCheck(name=VALIDATOR_CHECK, status=status, message=message)  # type: ignore[arg-type]


def verdict(
    checks: Sequence[ValidationCheck],
    *,
    validator: str | None,
    validator_verdict: tuple[ValidationStatus, str, list[ValidationCheck]] | None,
    at: datetime,
) -> ValidationResult:
    """The source's validation: the built-in ``checks`` decide first; then the validator's verdict."""
    failed = [c for c in checks if c.status == FAILED]
    if failed:
        message = "built-in checks failed: " + "; ".join(f"{c.name}: {c.message}" for c in failed)
        skipped = [
            ValidationCheck(name=VALIDATOR_CHECK, status=SKIPPED, message="not asked: built-in checks failed")
        ]
        return ValidationResult(
            status=FAILED,
            message=clean(message),
            checks=[*checks, *(skipped if validator else [])],
            validator=validator,
            at=at,
        )
    if validator_verdict is None:
        return ValidationResult(
            status=SUCCEEDED, message="the built-in checks passed", checks=list(checks), at=at
        )
    status, message, own = validator_verdict
    return ValidationResult(
        status=status, message=message, checks=[*checks, *own], validator=validator, at=at
    )


def skipped(message: str, *, at: datetime, validator: str | None = None) -> ValidationResult:
    """Nothing to validate: the restore did not complete (or never started)."""
    return ValidationResult(status=SKIPPED, message=clean(message), validator=validator, at=at)


def clean(text: str | None, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` on one line, without control characters, at most ``limit`` characters (validators and
    Atlas write these)."""
    flat = " ".join("".join(ch if ch.isprintable() else " " for ch in (text or "")).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
