"""Exactly once, on IDEMPOTENCY_TABLE (powertools idempotency): the first answer for a key is stored and
replayed. powertools' own errors leave as the domain's: a concurrent duplicate is RequestInProgress, a key
reused with another request IdempotencyKeyReused, a failing store DependencyUnavailable (but once the work
has run, its answer stands even if the store cannot keep it). An attempt that crashed holds its key only
until its Lambda invocation would have timed out (the context's remaining time).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from flexrestore.aws.clients import client
from flexrestore.domain.errors import DependencyUnavailable, IdempotencyKeyReused, RequestInProgress

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

logger = logging.getLogger("flexrestore.idempotency")

KEY_PREFIX = "flexrestore-intake"
_persistence: tuple[Any, DynamoDBPersistenceLayer] | None = None


def _persistence_layer(table_name: str) -> DynamoDBPersistenceLayer:
    # One per container and DynamoDB client: powertools registers a hook on the client per layer built.
    global _persistence
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    dynamodb = client("dynamodb")
    if _persistence is None or _persistence[0] is not dynamodb or _persistence[1].table_name != table_name:
        _persistence = (dynamodb, DynamoDBPersistenceLayer(table_name=table_name, boto3_client=dynamodb))
    return _persistence[1]


def exactly_once(
    table_name: str, context: Any, expires_after: int
) -> Callable[[str, Mapping[str, Any], Callable[[], dict[str, Any]]], dict[str, Any]]:
    def run(key: str, validation: Mapping[str, Any], work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            IdempotencyAlreadyInProgressError,
            IdempotencyInconsistentStateError,
            IdempotencyPersistenceLayerError,
            IdempotencyValidationError,
        )

        config = IdempotencyConfig(
            event_key_jmespath="key",
            payload_validation_jmespath="validation",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=expires_after,
        )
        if context is not None and hasattr(context, "get_remaining_time_in_millis"):
            config.register_lambda_context(context)

        done: list[dict[str, Any]] = []  # the answer, once the work has run

        def once(payload: Mapping[str, Any]) -> dict[str, Any]:
            done.append(work())
            return done[0]

        guarded = idempotent_function(
            once,
            data_keyword_argument="payload",
            persistence_store=_persistence_layer(table_name),
            config=config,
            key_prefix=KEY_PREFIX,
        )
        try:
            result: dict[str, Any] = guarded(payload={"key": key, "validation": dict(validation)})
        except IdempotencyAlreadyInProgressError:
            raise RequestInProgress("the same request is already being handled") from None
        except IdempotencyValidationError:
            raise IdempotencyKeyReused("the idempotency key was used with a different request") from None
        except (IdempotencyPersistenceLayerError, IdempotencyInconsistentStateError) as exc:
            if done:
                # The work ran (a restore is accepted and handed over); only keeping its answer for repeats
                # failed. The answer stands: a repeat later finds the same restore (its id is the key's).
                logger.warning("answered, but the answer could not be kept: %s", type(exc).__name__)
                return done[0]
            raise DependencyUnavailable(
                "STORE_UNAVAILABLE", "the service could not record this request; retry later"
            ) from exc
        return result

    return run
