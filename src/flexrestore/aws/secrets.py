"""Secrets Manager, through powertools Parameters (cached per container, so a warm Lambda does not
call Secrets Manager on every invocation)."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from flexrestore.aws.clients import client

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

# Rotation is picked up within this many seconds; Atlas credentials are long-lived, reads are not free.
SECRET_CACHE_SECONDS = 300


class SecretUnavailable(RuntimeError):
    """The secret could not be read. The message names the secret id, never a value."""

    def __init__(self, secret_id: str, why: str) -> None:
        super().__init__(f"Atlas credentials secret '{secret_id}' could not be read: {why}")
        self.secret_id = secret_id


@cache
def _provider() -> SecretsProvider:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    # Our own lazily built client: one built at import time would escape tests' moto mocks.
    return SecretsProvider(boto3_client=client("secretsmanager"))


def get_secret_string(secret_id: str) -> str:
    from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        value = _provider().get(secret_id, max_age=SECRET_CACHE_SECONDS)
    except GetParameterError as exc:
        cause = exc.__cause__ or exc.__context__
        code = cause.response.get("Error", {}).get("Code") if isinstance(cause, ClientError) else None
        raise SecretUnavailable(secret_id, code or "Secrets Manager refused the read") from None
    except (ClientError, BotoCoreError) as exc:
        raise SecretUnavailable(secret_id, type(exc).__name__) from None
    if not isinstance(value, str) or not value:
        raise SecretUnavailable(secret_id, "it has no SecretString")
    return value


def reset() -> None:
    """Forget the provider and its cache (tests, local mode)."""
    _provider.cache_clear()
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()  # type: ignore[no-untyped-call]
