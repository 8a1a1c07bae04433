"""Poll Lambda: one look at the Atlas restore job (domain/poll.py). Returns the ending as an observation,
or raises ``RestoreStillRunning``, which the state machine's retrier turns into the next look."""

from __future__ import annotations

from typing import Any

from flexrestore import bootstrap
from flexrestore.contracts import ExecutionInput
from flexrestore.logs import service_logger

logger = service_logger()


@logger.inject_lambda_context(correlation_id_path="restoreId")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    with bootstrap.atlas_budget(context):
        return bootstrap.poller().look(ExecutionInput.from_event(event)).to_dict()
