"""Create Lambda: the first task of a restore's execution asks Atlas for the restore job (domain/hand_off.py).
Returns the state with ``restoreJobId`` and ``firstPollSeconds`` filled in, or with ``poll.observation`` when
the restore ends here, and ``ended`` saying which (the state machine's Choice reads a key that is always
there); Atlas faults raise their types for the state machine's retriers."""

from __future__ import annotations

from typing import Any

from flexrestore import bootstrap
from flexrestore.contracts import ExecutionInput
from flexrestore.domain.hand_off import Ended, Known
from flexrestore.logs import service_logger

logger = service_logger()


@logger.inject_lambda_context(correlation_id_path="restoreId")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    with bootstrap.atlas_budget(context):
        result = bootstrap.create_step().run(ExecutionInput.from_event(event))
    if isinstance(result, Known):
        return {**event, "ended": False}
    if isinstance(result, Ended):
        return {**event, "ended": True, "poll": {"observation": result.observation.to_dict()}}
    return {
        **event,
        "ended": False,
        "restoreJobId": result.job.id,
        "firstPollSeconds": result.first_poll_seconds,
    }
