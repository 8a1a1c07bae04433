"""Exit codes of the ``flexrestore`` command, shared by ``flexrestore-local --fail-on-outcome``.

A restore's ending maps to one code, so a script or a CI job can tell them apart without parsing output.
"""

from __future__ import annotations

OK = 0  # the command did what it was asked; a watched restore ended COMPLETED
TOOL_ERROR = 1  # the tool could not do its job: no stack, no credentials, API unreachable, a 5xx answer
USAGE = 2  # bad arguments (argparse's own code)
FAILED = 3  # the restore ended FAILED (Atlas failed it)
TIMED_OUT = 4  # the restore ended TIMED_OUT (not finished within the service's deadline)
ERROR = 5  # the restore ended ERROR (the service could not follow it to its end)
REFUSED = 6  # the service refused the request (4xx: a guard, a bad request, a busy target, not found)
NOT_AUTHORIZED = 7  # API Gateway refused the caller (403: not signed, bad signature, no execute-api:Invoke)
RUN_PARTIAL = 8  # a watched verification run ended PARTIAL (some sources verified, not all)
RUN_FAILED = 9  # a watched verification run ended FAILED (no source completed)
INTERRUPTED = 130  # Ctrl-C

# A restore's final status -> the exit code that tells it.
OUTCOME_CODES = {
    "COMPLETED": OK,
    "FAILED": FAILED,
    "TIMED_OUT": TIMED_OUT,
    "ERROR": ERROR,
    "REFUSED": REFUSED,
}

HELP = """exit codes:
  0  done (a watched restore ended COMPLETED, a watched run SUCCEEDED)
  1  the tool failed (no stack, no credentials, API unreachable, a 5xx answer)
  2  bad usage
  3  the restore ended FAILED
  4  the restore ended TIMED_OUT
  5  the restore ended ERROR
  6  refused by the service (4xx: a target guard, a bad request, a busy target, not found)
  7  not authorized by API Gateway (unsigned, wrong signature or credentials, no execute-api:Invoke)
  8  a watched verification run ended PARTIAL
  9  a watched verification run ended FAILED (no source completed)
  130 interrupted"""


def outcome_code(final_statuses: list[str]) -> int:
    """The code of the first restore that did not end COMPLETED (unknown statuses count as ERROR); 0 if
    every one did."""
    for status in final_statuses:
        if status != "COMPLETED":
            return OUTCOME_CODES.get(status, ERROR)
    return OK


# A verification run's final status -> the exit code that tells it.
RUN_CODES = {"SUCCEEDED": OK, "PARTIAL": RUN_PARTIAL, "FAILED": RUN_FAILED}


def run_code(final_status: str) -> int:
    """The code of a run's final status (a run without one counts as FAILED)."""
    return RUN_CODES.get(final_status, RUN_FAILED)
