"""Starting executions (Step Functions): a restore's, named after the restoreId; a verification run's,
named after the run id; and answering a run's task token when one of its restores has ended.

The execution is named after the restoreId, so a retried start cannot make a second loop: Step Functions
answers ``ExecutionAlreadyExists`` (or, for the same input while it runs, returns the same execution), and
the retry continues with the execution that is already there.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from flexrestore.aws.clients import client
from flexrestore.aws.codec import error_code
from flexrestore.contracts import ExecutionInput
from flexrestore.domain.ports import ExecutionState

logger = logging.getLogger("flexrestore.executions")


class Executions:
    def __init__(self, state_machine_arn: str) -> None:
        self.machine_arn = state_machine_arn

    def execution_arn(self, name: str) -> str:
        # arn:aws:states:<region>:<account>:stateMachine:<machine> → ...:execution:<machine>:<name>
        prefix, _, machine = self.machine_arn.rpartition(":stateMachine:")
        return f"{prefix}:execution:{machine}:{name}"

    def start_execution(self, name: str, execution_input: ExecutionInput) -> str:
        """Start the execution ``name`` (or find the one a crashed attempt started); its ARN."""
        sfn = client("stepfunctions")
        try:
            answer = sfn.start_execution(
                stateMachineArn=self.machine_arn,
                name=name,
                input=json.dumps(execution_input.to_json(), separators=(",", ":"), ensure_ascii=False),
            )
            return str(answer["executionArn"])
        except Exception as exc:
            if error_code(exc) != "ExecutionAlreadyExists":
                raise
        arn = self.execution_arn(name)
        existing = sfn.describe_execution(executionArn=arn)
        logger.info("execution %s already exists (%s); continuing with it", name, existing.get("status"))
        return str(existing["executionArn"])

    def describe(self, execution_arn: str) -> ExecutionState:
        """Where the execution is, and its output (JSON) once it has succeeded."""
        answer = client("stepfunctions").describe_execution(executionArn=execution_arn)
        output = answer.get("output")
        try:
            parsed = json.loads(output) if output else None
        except ValueError:
            parsed = None
        return ExecutionState(
            status=str(answer.get("status")),
            output=parsed if isinstance(parsed, dict) else None,
            error=answer.get("error"),
            cause=answer.get("cause"),
        )


class RunStarts:
    """Starting a verification run: the run state machine's execution, named after the run id."""

    def __init__(self, run_state_machine_arn: str) -> None:
        self.machine = Executions(run_state_machine_arn)

    def start_run(self, run_id: str, execution_input: Mapping[str, Any]) -> str:
        sfn = client("stepfunctions")
        try:
            answer = sfn.start_execution(
                stateMachineArn=self.machine.machine_arn,
                name=run_id,
                input=json.dumps(dict(execution_input), separators=(",", ":"), ensure_ascii=False),
            )
            return str(answer["executionArn"])
        except Exception as exc:
            if error_code(exc) != "ExecutionAlreadyExists":
                raise
        return self.machine.execution_arn(run_id)


class RunStatus:
    """Whether a verification run's execution still runs (the sweeper: a run whose execution ended without
    finishing the run crashed). Only executions of the run state machine are looked at."""

    def __init__(self, run_state_machine_arn: str) -> None:
        prefix, _, machine = run_state_machine_arn.rpartition(":stateMachine:")
        self.executions_prefix = f"{prefix}:execution:{machine}:"

    def status(self, execution_arn: str) -> str | None:
        """RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED (or None: Step Functions does not know it, or it
        is not an execution of the run state machine)."""
        if not execution_arn.startswith(self.executions_prefix):
            return None
        try:
            answer = client("stepfunctions").describe_execution(executionArn=execution_arn)
        except Exception as exc:
            if error_code(exc) == "ExecutionDoesNotExist":
                return None
            raise
        return str(answer["status"])


class TaskCallbacks:
    """Answers a verification run's waiting Map iteration (its task token) when a restore has ended."""

    _GONE = frozenset({"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"})

    def restore_ended(self, task_token: str, output: Mapping[str, Any]) -> bool:
        try:
            client("stepfunctions").send_task_success(
                taskToken=task_token, output=json.dumps(dict(output), separators=(",", ":"))
            )
        except Exception as exc:
            if error_code(exc) in self._GONE:
                logger.info("the run no longer waits for this restore (%s)", error_code(exc))
                return False
            raise
        return True
