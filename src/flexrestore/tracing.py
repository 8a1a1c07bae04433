"""X-Ray tracing of the intake, only when asked for and installed: powertools' Tracer imports the X-Ray SDK
(~300 ms of cold start), and Lambda's active tracing already records every invocation without it."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from typing import Any


def enabled() -> bool:
    disabled = os.environ.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower()
    if disabled in ("1", "true", "yes", "on"):
        return False
    return importlib.util.find_spec("aws_xray_sdk") is not None


def traced(handler: Callable[..., Any]) -> Callable[..., Any]:
    if not enabled():
        return handler
    from aws_lambda_powertools import Tracer

    wrapped: Callable[..., Any] = Tracer().capture_lambda_handler(handler)
    return wrapped
