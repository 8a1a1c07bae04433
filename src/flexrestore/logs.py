"""The handlers' powertools Logger. Our modules log through stdlib loggers named ``flexrestore.<module>``
(no powertools import cost in the domain and the adapters); they are children of the powertools logger
when the service is named ``flexrestore``, and get its JSON formatter copied otherwise."""

from __future__ import annotations

import logging
import os

from aws_lambda_powertools import Logger

_MODULE_LOGGERS = (
    "flexrestore.intake",
    "flexrestore.atlas",
    "flexrestore.executions",
    "flexrestore.notify",
    "flexrestore.outcome",
    "flexrestore.poll",
    "flexrestore.triggers",
)


def service_logger() -> Logger:
    logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "flexrestore"))
    if logger.name != "flexrestore":
        from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

        for name in _MODULE_LOGGERS:
            logging.getLogger(name)
        copy_config_to_registered_loggers(source_logger=logger, include=set(_MODULE_LOGGERS))
    return logger
