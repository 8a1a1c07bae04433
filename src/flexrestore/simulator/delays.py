"""The client side of the simulator's slow and unanswered calls (simulator/faults.py), on the process clock.

The simulator answers every call at once; an answer it marks with ``X-Simulator-Delay`` stands for one that
Atlas would have sent that many seconds later (``never``: not at all). While :func:`honour_delays` is active,
httpx's transports make the calling thread live through that wait on ``flexrestore.clock``: the thread waits
the delay and gets the answer, or, when the delay reaches the request's read timeout, waits the timeout and
gets ``httpx.ReadTimeout``, as it would from a silent server. On a virtual clock that costs no real time; a
Lambda handler whose invocation ends meanwhile is stopped there, as Lambda would stop it.

The offline stack (local/harness.py) installs it while the simulator runs; a test driving a bare simulator
with its own client can use it directly::

    with AtlasSimulator(clock=clock) as sim, honour_delays():
        ...
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from flexrestore import clock
from flexrestore.simulator.faults import DELAY_HEADER, NEVER


def _delay_of(response: httpx.Response) -> float | None:
    value = response.headers.get(DELAY_HEADER)
    if value is None:
        return None
    if value == NEVER:
        return math.inf
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _read_timeout(request: httpx.Request) -> float | None:
    timeout: Any = (request.extensions.get("timeout") or {}).get("read")
    return float(timeout) if isinstance(timeout, int | float) else None


@contextmanager
def honour_delays() -> Iterator[None]:
    """While open, a simulator answer marked late makes the caller wait on the process clock (see above)."""
    original = httpx.HTTPTransport.handle_request

    def handle_request(self: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
        response = original(self, request)
        delay = _delay_of(response)
        if delay is None:
            return response
        timeout = _read_timeout(request)
        if delay == math.inf or (timeout is not None and delay >= timeout):
            response.close()
            if timeout is not None:
                clock.sleep(timeout)
            raise httpx.ReadTimeout("the simulated Atlas did not answer in time", request=request)
        clock.sleep(delay)
        return response

    httpx.HTTPTransport.handle_request = handle_request  # type: ignore[method-assign, assignment]
    try:
        yield
    finally:
        httpx.HTTPTransport.handle_request = original  # type: ignore[method-assign, assignment]
