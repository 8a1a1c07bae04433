"""The verification run's Lambda steps (statemachine/run.asl.json; domain/run_steps.py):

- ``begin``: ``{"input": <the run's execution input>, "executionName", "executionArn"}`` -> the state the
  Map iterates over: ``{"runId", "maxConcurrency", "sourceTimeoutSeconds", "sources": [{"index"}, ...]}``;
- ``source``: ``{"runId", "index", "taskToken"}``, one Map iteration, which then waits for its token
  (with ephemeral targets, first the source's cluster is created and waited for: ``TargetNotReady``
  while it is not IDLE yet, retried by the state machine);
- ``validate`` and ``cleanup`` (after the source's restore) are in ``handlers/run_after.py``;
- ``finish``: ``{"runId", "plan", "failure"?}`` -> the run record's head (its sources are in the table).

Atlas and AWS faults raise the typed errors the state machine retries (``SourceDeferred``, ...).
"""

from __future__ import annotations

from typing import Any

from flexrestore import bootstrap
from flexrestore.contracts import RequestedBy
from flexrestore.logs import service_logger

logger = service_logger()


def _requested_by(document: Any) -> RequestedBy:
    if isinstance(document, dict):
        try:
            return RequestedBy.model_validate(document)
        except ValueError:
            pass
    return RequestedBy(trigger="schedule")


@logger.inject_lambda_context(correlation_id_path="executionName")
def begin(event: dict[str, Any], context: Any) -> dict[str, Any]:
    given = event.get("input") or {}
    run_id = str(given.get("runId") or event["executionName"])
    with bootstrap.atlas_budget(context):
        begun = bootstrap.run_begin_steps().begin(
            run_id,
            str(given.get("plan") or ""),
            _requested_by(given.get("requestedBy")),
            execution_arn=event.get("executionArn"),
        )
    return {**begun.to_state(), "plan": given.get("plan")}


# The longest a source step waits in-process for its new cluster to be IDLE (Atlas: about 8 s), and what it
# keeps for the intake flow after that wait.
IDLE_WAIT_SECONDS = 20.0
INTAKE_RESERVE_SECONDS = 10.0


@logger.inject_lambda_context(correlation_id_path="runId")
def source(event: dict[str, Any], context: Any) -> dict[str, Any]:
    wait = max(0.0, min(IDLE_WAIT_SECONDS, bootstrap.seconds_left(context) - INTAKE_RESERVE_SECONDS))
    with bootstrap.atlas_budget(context):
        what = bootstrap.run_source_steps(context).start_source(
            str(event["runId"]), int(event["index"]), str(event["taskToken"]), wait_seconds=wait
        )
    logger.info("run source", extra={"index": event["index"], "happened": what})
    return {"index": event["index"], "happened": what}


@logger.inject_lambda_context(correlation_id_path="runId")
def finish(event: dict[str, Any], context: Any) -> dict[str, Any]:
    record = bootstrap.run_finish_steps().finish(
        str(event["runId"]), str(event.get("plan") or ""), failure=event.get("failure")
    )
    logger.info("run finished", extra={"finalStatus": record.final_status, "summary": record.summary})
    head = record.to_json()
    head.pop("sources", None)  # Step Functions' 256 KB: the sources stay in the runs table
    return head
