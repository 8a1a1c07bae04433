"""Keep the handlers' output off the terminal while local mode runs.

The handlers log JSON lines (and moto's state-machine interpreter prints noise) on stdout and stderr, at
every level: file descriptors 1 and 2, ``sys.stdout``/``sys.stderr``, and logging handlers that powertools
bound to the console. :func:`handler_output_to` sends all of it to a log file and hands the caller a stream
on the original stdout for what the person (or the script reading ``--json``) should see.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO


def _console_log_handlers() -> list[logging.StreamHandler[Any]]:
    """Plain stream handlers: powertools binds one to sys.stdout when a Logger is created (file handlers and
    test-capture subclasses are left alone)."""
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    return [
        handler
        for logger in loggers
        if isinstance(logger, logging.Logger)
        for handler in logger.handlers
        if type(handler) is logging.StreamHandler
    ]


def _set_stream(handler: logging.StreamHandler[Any], stream: Any) -> None:
    # Not setStream(): it flushes the old stream, which may be closed (a finished test's capture).
    handler.acquire()
    try:
        handler.stream = stream
    finally:
        handler.release()


@contextlib.contextmanager
def handler_output_to(log_path: Path) -> Iterator[TextIO]:
    """Send what the handlers write (logs, metrics, moto's noise) to ``log_path``, at every level: fds 1 and
    2, ``sys.stdout``/``sys.stderr``, and logging handlers already bound to the console.

    Yields a stream on the original stdout for the view and the JSON result.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved_out, saved_err = os.dup(1), os.dup(2)
    view = os.fdopen(os.dup(saved_out), "w", encoding="utf-8", errors="replace")
    with open(log_path, "a", encoding="utf-8") as log:
        handlers = _console_log_handlers()
        streams = [handler.stream for handler in handlers]
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        for handler in handlers:
            _set_stream(handler, log)
        try:
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                yield view
        finally:
            for handler, stream in zip(handlers, streams, strict=True):
                _set_stream(handler, stream)
            log.flush()
            view.flush()
            os.dup2(saved_out, 1)
            os.dup2(saved_err, 2)
            os.close(saved_out)
            os.close(saved_err)
            view.close()
